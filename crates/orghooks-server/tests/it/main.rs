//! Integration tests: the real server on a 127.0.0.1 port with its own
//! SQLite file, driven over HTTP.

mod auth;
mod browser;
mod dashboard;
mod dashboard_log;
mod delivery;
mod edge;
mod guide;
mod handoff;
mod helpers;
mod log;
mod notices;
mod ocrolus;
mod once;
mod openapi;
mod options;
mod portal;
mod proxy;
mod publish;
mod receiver;
mod robustness;
mod schemathesis;
mod storage;
mod validation;
mod webhooks;
