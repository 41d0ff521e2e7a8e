//! The delivery layer, once for every connector: retries with backoff, rate limits,
//! the circuit breaker, idempotency and dead letters live here; connectors only classify
//! each call's outcome. Sink workers and the ledger's publishers deliver through the same
//! layers ([`layer`]).

pub mod circuit;
pub mod layer;
pub mod outcomes;
pub mod rate_limit;
pub mod retry;
mod worker;

pub use worker::{AfterDelivery, Message, SinkJob, SinkWorker};

/// Builds the connector of a sink: (connection, operation, options) → sink.
pub type BuildSink<'a> =
    &'a dyn Fn(
        &omniflow_ir::Connection,
        &str,
        &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<Box<dyn omniflow_connectors::SinkConnector>, crate::error::SinkError>;
