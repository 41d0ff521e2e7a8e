//! Why a message cannot be processed, and the result of evaluating one expression.

use crate::value::Val;

/// Why a message cannot be processed: a `reject`, or bad input found at run time.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject(pub String);

/// Result of evaluating one expression.
pub type Eval<'a> = Result<Val<'a>, Reject>;
