//! ShipBob's connection settings, read once when a sink or pager is built.

use crate::api::{ConnectorError, Map};
use crate::client;

/// Where and as whom ShipBob is called.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `base_url` and `api_version` (`https://api.shipbob.com/2026-07`).
    pub base: String,
    /// The bearer token.
    pub token: String,
    /// The `shipbob_channel_id` header.
    pub channel: String,
}

impl Settings {
    /// Reads `base_url`, `api_version`, `token` and `channel_id`.
    pub fn parse(settings: &Map) -> Result<Settings, ConnectorError> {
        let base = client::optional(settings, "base_url").unwrap_or("https://api.shipbob.com");
        let version = client::optional(settings, "api_version").unwrap_or("2026-07");
        let required = |setting: &'static str| {
            client::optional(settings, setting).map(String::from).ok_or(
                ConnectorError::MissingSetting {
                    connector: "shipbob",
                    setting,
                },
            )
        };
        Ok(Settings {
            base: format!("{}/{version}", base.trim_end_matches('/')),
            token: required("token")?,
            channel: required("channel_id")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_missing_settings() {
        let mut map = Map::new();
        map.insert("token".into(), json!("t"));
        let missing = Settings::parse(&map).unwrap_err();
        assert_eq!(missing.to_string(), "shipbob connection needs `channel_id`");
        map.insert("channel_id".into(), json!("7"));
        map.insert("base_url".into(), json!("http://127.0.0.1:9/"));
        let settings = Settings::parse(&map).unwrap();
        assert_eq!(settings.base, "http://127.0.0.1:9/2026-07");
        assert_eq!(
            (settings.token.as_str(), settings.channel.as_str()),
            ("t", "7")
        );
    }
}
