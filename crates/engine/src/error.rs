//! The engine's errors at its public edge.

/// Why the flows could not start; each says what failed as `omniflow run` reports it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A ledger could not be opened, or a channel's publication target built.
    #[error("{0}")]
    Ledger(String),
    /// A sink of a flow could not be built.
    #[error("flow `{flow}`: {reason}")]
    Sink { flow: String, reason: String },
    /// A source of a flow could not start.
    #[error("{0}")]
    Source(String),
    /// The webhook server could not listen.
    #[error(transparent)]
    Webhooks(#[from] omniflow_http::server::ServeError),
}

impl From<StartError> for String {
    fn from(err: StartError) -> String {
        err.to_string()
    }
}
