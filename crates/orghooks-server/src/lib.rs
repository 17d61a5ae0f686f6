//! The orghooks service as a library, so the binary stays thin and tests
//! can start the real thing in-process: configuration, the data folder,
//! the HTTP API, metrics, logs, and the operator's admin operations.

pub mod admin;
pub mod app;
pub mod config;
pub mod dashboard;
pub mod data_dir;
pub mod delivery;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod state;
pub mod telemetry;

pub use app::{App, Deps};
pub use config::{Config, Overrides};
