//! The omniflow runtime: loads a compiled graph and executes its flows.
#![deny(clippy::unwrap_used)]

pub mod connectors;
pub mod decimal;
pub mod delivery;
pub mod deploy;
pub mod engine;
pub mod eval;
pub mod intern;
pub mod json_in;
pub mod json_number;
pub mod json_out;
pub mod json_scan;
pub mod ledger;
pub mod load;
pub mod ops;
pub mod pipeline;
pub mod runner;
pub mod sandbox;
pub mod sources;
pub mod state;
pub mod testing;
pub mod value;
