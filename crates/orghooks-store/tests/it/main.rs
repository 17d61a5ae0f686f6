//! The store's behavioural conformance suite. Every backend must pass the
//! same checks; each test gets a fresh database.

#[macro_use]
mod conformance;
mod postgres;
mod sqlite;
