//! Square's connection settings, read once when a sink or pager is built.

use crate::api::{ConnectorError, Map};
use crate::client;
use std::collections::BTreeMap;

/// Where, as whom, and how canonical codes map to Square's ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `base_url` (`https://connect.squareup.com`).
    pub base: String,
    /// `access_token`.
    pub token: String,
    /// `square_version`, sent as `Square-Version`.
    pub version: String,
    /// `location_ids`: the locations read.
    pub locations: Vec<String>,
    /// `location_map`: canonical location = Square location id pairs.
    pub location_map: BTreeMap<String, String>,
    /// `item_map`: canonical SKU = catalog variation id pairs.
    pub item_map: BTreeMap<String, String>,
}

impl Settings {
    /// Reads the connection settings.
    pub fn parse(settings: &Map) -> Result<Settings, ConnectorError> {
        Ok(Settings {
            base: client::optional(settings, "base_url")
                .unwrap_or("https://connect.squareup.com")
                .trim_end_matches('/')
                .to_string(),
            token: client::optional(settings, "access_token")
                .ok_or(ConnectorError::MissingSetting {
                    connector: "square",
                    setting: "access_token",
                })?
                .to_string(),
            version: client::optional(settings, "square_version")
                .unwrap_or("2025-08-20")
                .to_string(),
            locations: client::optional(settings, "location_ids")
                .unwrap_or("")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            location_map: client::pairs(client::optional(settings, "location_map")),
            item_map: client::pairs(client::optional(settings, "item_map")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_and_defaults() {
        let map: Map = [("access_token", "t"), ("location_ids", " L1, ,L2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let settings = Settings::parse(&map).unwrap();
        assert_eq!(settings.locations, ["L1", "L2"]);
        assert_eq!(settings.base, "https://connect.squareup.com");
        let missing = Settings::parse(&Map::new()).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "square connection needs `access_token`"
        );
    }
}
