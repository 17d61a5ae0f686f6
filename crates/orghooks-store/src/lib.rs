//! Where orghooks keeps its state: the [`Store`] trait, the errors it
//! answers with, the records it holds, and its backends. This is the only
//! crate that knows SQL; callers see [`StoreError`], never a driver error.
//!
//! The store is split by aggregate: [`Tenancy`] (orgs, accounts, tokens),
//! [`Webhooks`], the [`DeliveryQueue`] and the [`DeliveryLog`]. Each
//! aggregate's module holds its statements, written once for both
//! backends, and its row decoders; `sqlite/` and `postgres/` hold only how
//! a statement runs (a writer thread with group commit; a connection pool
//! with a batching appender) and the few statements only one dialect can
//! say.
//!
//! The write path is batch-first: a backend commits many callers' writes in
//! one transaction (group commit) and answers each caller only after that
//! commit is durable.

mod error;
mod log;
mod migrations;
pub mod model;
pub mod postgres;
mod queue;
mod sql;
pub mod sqlite;
mod tenancy;
mod webhooks;

use async_trait::async_trait;

pub use error::StoreError;
pub use log::DeliveryLog;
pub use model::*;
pub use queue::{Backpressure, DeliveryQueue};
pub use tenancy::Tenancy;
pub use webhooks::Webhooks;

/// Everything orghooks reads and writes, whatever the backend: the sum of
/// the role traits, one per aggregate. A client that needs one part takes
/// that trait (the engine's target cache needs only [`Webhooks`], the
/// admin CLI mostly [`Tenancy`]).
#[async_trait]
pub trait Store: Tenancy + Webhooks + DeliveryQueue + DeliveryLog + 'static {
    /// Answers when the database can take a write (for readiness checks).
    async fn ping(&self) -> Result<(), StoreError>;
}
