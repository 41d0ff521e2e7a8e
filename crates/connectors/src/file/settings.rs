//! The file connection's settings, read once when a sink is built.

use crate::api::{ConnectorError, Map};
use serde_json::Value;

/// The directory files are read from and written to.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `dir`.
    pub dir: String,
}

impl Settings {
    /// Reads `dir`.
    pub fn parse(settings: &Map) -> Result<Settings, ConnectorError> {
        let dir =
            settings
                .get("dir")
                .and_then(Value::as_str)
                .ok_or(ConnectorError::MissingSetting {
                    connector: "file",
                    setting: "dir",
                })?;
        Ok(Settings {
            dir: dir.to_string(),
        })
    }
}
