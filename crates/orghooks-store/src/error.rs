//! The errors every backend answers with. Driver errors stay inside as
//! sources; constraint violations become domain errors here.

use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the string names the rule.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("limit reached")]
    LimitReached,
    /// The write queue is full: the caller should push back, not wait.
    #[error("the store's write queue is full")]
    Busy,
    #[error("the store is shutting down")]
    Closed,
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database cannot be reached or cannot write now (connection
    /// lost, server restarting, disk full, read-only): nothing was written,
    /// and the same call may succeed later.
    #[error("the database is unavailable")]
    Unavailable(#[source] Arc<dyn std::error::Error + Send + Sync>),
    #[error("database error")]
    Backend(#[source] Arc<dyn std::error::Error + Send + Sync>),
}

/// The unique-constraint names that are domain rules, not bugs.
pub(crate) const WEBHOOK_URL_RULE: &str = "webhook url already exists in this org";
pub(crate) const CLIENT_ID_RULE: &str = "client id already exists";
pub(crate) const ORG_RULE: &str = "organization already exists";
