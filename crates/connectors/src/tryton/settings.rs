//! Tryton's connection settings, read once when a sink or pager is built.

use crate::api::{ConnectorError, Map};
use crate::client;

/// Which database, as whom, and the locations stock moves between.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `{url}/{database}/rpc/`.
    pub rpc_url: String,
    pub username: String,
    pub password: String,
    /// `warehouse`: the location code stock is read at (`WH`).
    pub warehouse: String,
    /// `storage_location`: the location code stock movements use (`STO`).
    pub storage: String,
}

impl Settings {
    /// Reads `url`, `database`, `username`, `password`, `warehouse`, `storage_location`.
    pub fn parse(settings: &Map) -> Result<Settings, ConnectorError> {
        let required = |setting: &'static str| {
            client::optional(settings, setting).ok_or(ConnectorError::MissingSetting {
                connector: "tryton",
                setting,
            })
        };
        let url = required("url")?.trim_end_matches('/');
        let database = required("database")?;
        Ok(Settings {
            rpc_url: format!("{url}/{database}/rpc/"),
            username: required("username")?.to_string(),
            password: required("password")?.to_string(),
            warehouse: client::optional(settings, "warehouse")
                .unwrap_or("WH")
                .to_string(),
            storage: client::optional(settings, "storage_location")
                .unwrap_or("STO")
                .to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rpc_url_and_missing_settings() {
        let mut map: Map = [("url", "http://h/"), ("database", "db"), ("username", "u")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let missing = Settings::parse(&map).unwrap_err();
        assert_eq!(missing.to_string(), "tryton connection needs `password`");
        map.insert("password".into(), json!("p"));
        let settings = Settings::parse(&map).unwrap();
        assert_eq!(settings.rpc_url, "http://h/db/rpc/");
        assert_eq!(
            (settings.warehouse.as_str(), settings.storage.as_str()),
            ("WH", "STO")
        );
    }
}
