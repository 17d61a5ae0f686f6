//! The orghooks domain, as plain functions and types with no IO and no async.
//!
//! Everything here is decided once and trusted after: the event catalog and
//! its JSON Schemas, payload validation and completion, webhook field rules
//! (URL, description, subscriptions, secrets), the outbound address policy,
//! sealing of secrets at rest, and the clock abstraction that lets tests move
//! time by hand.

pub mod attempt;
pub mod catalog;
pub mod circuit;
pub mod clock;
pub mod credentials;
pub mod notices;
pub mod payload;
pub mod retry;
pub mod sealing;
pub mod signing;
pub mod url_policy;
pub mod webhook;

pub use catalog::{Catalog, EventType};
pub use clock::{Clock, ManualClock, SystemClock};
