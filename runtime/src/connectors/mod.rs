//! Built-in connectors at run time. A connector only classifies each call's outcome
//! (ok, transient with an optional retry-after, permanent with a reason); retries, limits,
//! idempotency and dead letters stay in `delivery/`.

mod file;
mod http;

use omniflow_compiler::ir::{Connection, SettingValue};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How one call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    Ok,
    /// Worth retrying; `class` is `timeout`, `connect`, `rate_limited`, `server_error`
    /// or a named connector error.
    Transient {
        class: String,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help; the reason goes to the dead letter.
    Permanent {
        reason: String,
    },
}

/// One outbound call of a sink.
pub struct Call<'a> {
    pub key: &'a str,
    pub correlation_id: &'a str,
    pub body: &'a [u8],
    pub timeout: Duration,
}

/// A boxed future, as connectors return them.
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = CallOutcome> + 'a>>;

/// A sink operation of a connector.
pub trait SinkConnector {
    /// Performs the side effect for one message.
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a>;
}

/// Resolves a connection's settings: `env(NAME)` and `secret(NAME)` read the process
/// environment (deployment settings decide what is in it).
pub fn settings(connection: &Connection) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for (name, value) in &connection.settings {
        let resolved = match value {
            SettingValue::Value(v) => v.clone(),
            SettingValue::Env(var) | SettingValue::Secret(var) => Value::String(std::env::var(var).map_err(|_| {
                format!(
                    "connection `{}`: setting `{name}` reads the environment variable `{var}`, which is not set",
                    connection.name
                )
            })?),
        };
        out.insert(name.clone(), resolved);
    }
    Ok(out)
}

/// Builds the sink connector for an operation.
pub fn sink(
    connection: &Connection,
    operation: &str,
    options: &BTreeMap<String, Value>,
) -> Result<Box<dyn SinkConnector>, String> {
    let settings = settings(connection)?;
    match (connection.connector.as_str(), operation) {
        ("http", "post" | "put" | "patch") => Ok(Box::new(http::HttpSink::new(&settings, operation, options)?)),
        ("file", "write") => Ok(Box::new(file::FileSink::new(&settings, options)?)),
        (connector, op) => Err(format!(
            "connection `{}`: the `{connector}.{op}` operation is not available in this runtime yet",
            connection.name
        )),
    }
}

pub use file::{matching_files, read_lines};
