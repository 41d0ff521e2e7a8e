//! The engine: runs compiled flows. Sources accept into the durable inbox, the engine maps
//! and routes, delivery calls sinks with retries, limits and idempotency, the ledger keeps
//! inventory; the runner starts it all from a graph and a deployment.
#![deny(clippy::unwrap_used)]

pub mod bus;
pub mod cluster;
pub mod connect;
pub mod console;
pub mod delivery;
pub mod deploy;
pub mod engine;
pub mod error;
pub mod ledger;
pub mod lineage;
pub mod mapper;
pub mod ops;
pub mod recording;
pub mod runner;
pub mod shared;
pub mod sources;
