//! Syntax: the pest grammar (`flow.pest`), the AST and the parser that builds it.

pub mod ast;
pub mod charset;
pub mod comments;
pub mod parse;

pub use parse::{parse_expr, parse_module, KEYWORDS};
