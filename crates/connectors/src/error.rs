//! Why a connector could not be built, and the map of resolved settings or options
//! builders read.

use serde_json::Value;
use std::collections::BTreeMap;

/// Resolved settings of a connection, or the options of a node.
pub type Map = BTreeMap<String, Value>;

/// Why a sink, pager, verifier or the settings they read could not be built. The text is
/// what the runtime reports when it refuses to start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectorError {
    /// No sink of that name in this runtime.
    #[error("connection `{connection}`: the `{connector}.{operation}` operation is not available in this runtime yet")]
    UnknownSink {
        connection: String,
        connector: String,
        operation: String,
    },
    /// No poll (or scheduled) source of that name in this runtime.
    #[error("the `{connector}.{operation}` poll source is not available in this runtime yet")]
    UnknownPoll {
        connector: String,
        operation: String,
    },
    /// The connector verifies no webhook deliveries.
    #[error(
        "the {connector} connector has no webhook signature scheme; deliveries cannot be verified"
    )]
    UnknownWebhook { connector: String },
    /// A required setting is absent or empty.
    #[error("{connector} connection needs `{setting}`")]
    MissingSetting {
        connector: &'static str,
        setting: &'static str,
    },
    /// A webhook source's connection lacks the secret that verifies its deliveries.
    #[error("a {connector} webhook source needs the connection setting `{setting}` to verify deliveries")]
    MissingWebhookSetting { connector: String, setting: String },
    /// `env(NAME)` names an unset variable.
    #[error("connection `{connection}`: setting `{setting}` reads the environment variable `{var}`, which is not set")]
    MissingEnv {
        connection: String,
        setting: String,
        var: String,
    },
    /// `secret(NAME)` names a file that cannot be read.
    #[error(
        "connection `{connection}`: setting `{setting}` reads the secret file `{path}`: {error}"
    )]
    SecretFile {
        connection: String,
        setting: String,
        path: String,
        error: String,
    },
    /// A setting or option has a value the connector cannot use (the reason says which).
    #[error("{0}")]
    BadSetting(String),
}

impl From<String> for ConnectorError {
    fn from(reason: String) -> ConnectorError {
        ConnectorError::BadSetting(reason)
    }
}
