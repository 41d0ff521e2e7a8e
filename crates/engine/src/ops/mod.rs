//! Operations: metrics and the ops endpoint's counters.

pub mod console;
pub mod health;
pub mod metrics;
