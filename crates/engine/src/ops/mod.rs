//! Operations: metrics and the ops endpoint's counters.

pub mod health;
pub mod metrics;
pub mod telemetry;
