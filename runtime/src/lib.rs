//! The omniflow runtime: loads a compiled graph and executes its flows.

pub mod decimal;
pub mod eval;
pub mod json_in;
pub mod json_out;
pub mod load;
pub mod pipeline;
pub mod testing;
pub mod value;
