//! Mapping: values, exact decimals and money, interned names, projected JSON in and out, the
//! built-in functions, the expression evaluator, the flow pipeline (map, route, split) and test blocks. Pure
//! computation: no tokio, no I/O.
#![deny(clippy::unwrap_used)]

pub mod builtins;
pub mod decimal;
pub mod error;
pub mod eval;
pub mod intern;
pub mod json_in;
pub mod json_number;
pub mod json_out;
pub mod json_scan;
pub mod money;
pub mod ops;
pub mod pipeline;
pub mod projection;
pub mod reads;
pub mod reject;
pub mod templates;
pub mod testing;
pub mod value;
