//! The http connection's settings, read once when a sink or pager is built.

use crate::api::{ConnectorError, Map};
use serde_json::Value;

/// Where, and the `Authorization` header value sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `base_url` without a trailing slash.
    pub base: String,
    /// `auth_header`: sent as `Authorization` as is.
    pub auth: Option<String>,
}

impl Settings {
    /// Reads `base_url` and `auth_header`.
    pub fn parse(settings: &Map) -> Result<Settings, ConnectorError> {
        let base = settings
            .get("base_url")
            .and_then(Value::as_str)
            .ok_or(ConnectorError::MissingSetting {
                connector: "http",
                setting: "base_url",
            })?
            .trim_end_matches('/')
            .to_string();
        Ok(Settings {
            base,
            auth: settings
                .get("auth_header")
                .and_then(Value::as_str)
                .map(String::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_is_required() {
        let missing = Settings::parse(&Map::new()).unwrap_err();
        assert_eq!(missing.to_string(), "http connection needs `base_url`");
        let map: Map = [("base_url".to_string(), Value::from("http://h/api/"))]
            .into_iter()
            .collect();
        assert_eq!(Settings::parse(&map).unwrap().base, "http://h/api");
    }
}
