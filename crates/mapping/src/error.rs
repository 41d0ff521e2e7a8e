//! Why a graph cannot be prepared to run. The compiler refuses each of these before the
//! runtime sees them; a graph read from a `graph.json` may still hold one.

use omniflow_ir::expr::MAX_TEMPLATE_BYTES;

/// A graph the evaluator cannot compile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompileError {
    #[error("unknown function `{0}`")]
    UnknownFunction(String),
    #[error("unknown table `{0}`")]
    UnknownTable(String),
    #[error("unknown schema `{0}`")]
    UnknownSchema(String),
    #[error("schema `{schema}` has no field `{field}`")]
    UnknownField { schema: String, field: String },
    #[error("unknown node `{0}`")]
    UnknownNode(String),
    #[error("bad decimal literal `{0}`")]
    BadDecimal(String),
    #[error("JSONPath `{text}`: {reason}")]
    JsonPath { text: String, reason: String },
    #[error("a template of {bytes} bytes, over the {MAX_TEMPLATE_BYTES} byte limit")]
    TemplateTooLarge { bytes: usize },
    #[error("template `{text}`: {reason}")]
    Template { text: String, reason: String },
    /// One of the above, in a flow.
    #[error("flow `{flow}`: {error}")]
    InFlow {
        flow: String,
        error: Box<CompileError>,
    },
}
