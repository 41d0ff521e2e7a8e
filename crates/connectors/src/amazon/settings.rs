//! Amazon SP-API's connection settings, read once when a sink or pager is built.

use crate::api::{ConnectorError, Map};
use crate::client;
use std::collections::BTreeMap;

/// Where and as whom the SP-API is called.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `endpoint`, else the `region`'s (`na`, `eu`, `fe`) SP-API host.
    pub endpoint: String,
    /// The LWA token endpoint (`token_endpoint`).
    pub token_url: String,
    pub refresh_token: String,
    pub client_id: String,
    pub client_secret: String,
    pub marketplace: String,
    /// The seller id (listings calls), empty when unset.
    pub seller: String,
    /// `sku_map`: canonical code = seller SKU pairs.
    pub sku_map: BTreeMap<String, String>,
}

impl Settings {
    /// Reads the connection settings.
    pub fn parse(settings: &Map) -> Result<Settings, ConnectorError> {
        let required = |setting: &'static str| {
            client::optional(settings, setting).map(String::from).ok_or(
                ConnectorError::MissingSetting {
                    connector: "amazon_sp",
                    setting,
                },
            )
        };
        let region = client::optional(settings, "region").unwrap_or("na");
        let endpoint = match client::optional(settings, "endpoint") {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => format!("https://sellingpartnerapi-{region}.amazon.com"),
        };
        Ok(Settings {
            endpoint,
            token_url: client::optional(settings, "token_endpoint")
                .unwrap_or("https://api.amazon.com/auth/o2/token")
                .to_string(),
            refresh_token: required("refresh_token")?,
            client_id: required("client_id")?,
            client_secret: required("client_secret")?,
            marketplace: required("marketplace_id")?,
            seller: client::optional(settings, "seller_id")
                .unwrap_or("")
                .to_string(),
            sku_map: client::pairs(client::optional(settings, "sku_map")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn region_endpoint_and_missing_credentials() {
        let mut map: Map = [
            ("refresh_token", "r"),
            ("client_id", "c"),
            ("client_secret", "s"),
            ("region", "eu"),
            ("sku_map", "A=B"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
        let missing = Settings::parse(&map).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "amazon_sp connection needs `marketplace_id`"
        );
        map.insert("marketplace_id".into(), json!("M"));
        let settings = Settings::parse(&map).unwrap();
        assert_eq!(settings.endpoint, "https://sellingpartnerapi-eu.amazon.com");
        assert_eq!(settings.sku_map.get("A").map(String::as_str), Some("B"));
    }
}
