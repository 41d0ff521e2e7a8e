//! The engine's errors at its public edge.

/// Why the flows could not start; each says what failed as `omniflow run` reports it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A ledger could not be opened.
    #[error("{0}")]
    Ledger(String),
    /// A ledger channel's publication target could not be built.
    #[error("ledger `{ledger}`: channel `{channel}`: {reason}")]
    Publisher {
        ledger: String,
        channel: String,
        #[source]
        reason: Box<SinkError>,
    },
    /// A sink of a flow could not be built.
    #[error("flow `{flow}`: {reason}")]
    Sink {
        flow: String,
        #[source]
        reason: Box<SinkError>,
    },
    /// A source of a flow could not start.
    #[error("{0}")]
    Source(String),
    /// The webhook server could not listen.
    #[error(transparent)]
    Webhooks(#[from] omniflow_http::server::ServeError),
}

/// Why a sink (of a flow, or a ledger channel's publication target) could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The connector refused the connection's settings or the sink's options.
    #[error(transparent)]
    Connector(#[from] omniflow_connectors::ConnectorError),
    /// A ledger sink names a ledger that does not run here, or an operation or option the
    /// ledger lacks.
    #[error("{0}")]
    Ledger(String),
    /// A bus publication could not be set up.
    #[error("{0}")]
    Bus(String),
    /// The sink names a connection the graph lacks.
    #[error("unknown connection `{0}`")]
    UnknownConnection(String),
    /// The node is not a sink.
    #[error("`{0}` is not a sink")]
    NotASink(String),
}
