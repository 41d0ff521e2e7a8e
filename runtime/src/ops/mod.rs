//! The operations side: metrics and the small HTTP server behind `/health`, `/ready`,
//! `/metrics` and the inbound webhooks.

pub mod connections;
pub mod metrics;
pub mod server;
