//! The delivery layer, once for every connector: retries with backoff, rate limits,
//! the circuit breaker, idempotency and dead letters live here; connectors only classify
//! each call's outcome.

pub mod circuit;
pub mod rate_limit;
pub mod retry;
mod worker;

pub use worker::{SinkJob, SinkWorker};
