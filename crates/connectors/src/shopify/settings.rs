//! Shopify's connection settings, read once when a sink or pager is built.

use crate::api::{ConnectorError, Map};
use crate::client;

/// Which store, as whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `https://SHOP/admin/api/VERSION` from `shop` (a shop name, a domain, or a full base
    /// URL for a sandbox) and `api_version`.
    pub base: String,
    /// `access_token`.
    pub token: String,
    /// `api = "graphql"`: the sinks write through the GraphQL Admin API.
    pub graphql: bool,
    /// `api_version`.
    pub version: String,
}

impl Settings {
    /// Reads `shop`, `api_version` and `access_token`.
    pub fn parse(settings: &Map) -> Result<Settings, ConnectorError> {
        let required = |setting: &'static str| {
            client::optional(settings, setting).ok_or(ConnectorError::MissingSetting {
                connector: "shopify",
                setting,
            })
        };
        let shop = required("shop")?;
        let version = client::optional(settings, "api_version").unwrap_or("2026-04");
        let origin = if shop.starts_with("http://") || shop.starts_with("https://") {
            shop.trim_end_matches('/').to_string()
        } else if shop.contains('.') {
            format!("https://{shop}")
        } else {
            format!("https://{shop}.myshopify.com")
        };
        let graphql = match client::optional(settings, "api").unwrap_or("rest") {
            "rest" => false,
            "graphql" => true,
            other => {
                return Err(ConnectorError::BadSetting(format!(
                    "shopify connection: `api` is `{other}`; it takes `rest` or `graphql`"
                )))
            }
        };
        Ok(Settings {
            base: format!("{origin}/admin/api/{version}"),
            token: required("access_token")?.to_string(),
            graphql,
            version: version.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shop_names_domains_and_urls() {
        let base = |shop: &str| {
            let map: Map = [("shop", shop), ("access_token", "t")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            Settings::parse(&map).unwrap().base
        };
        assert_eq!(base("s"), "https://s.myshopify.com/admin/api/2026-04");
        assert_eq!(base("s.example"), "https://s.example/admin/api/2026-04");
        assert_eq!(
            base("http://127.0.0.1:9/"),
            "http://127.0.0.1:9/admin/api/2026-04"
        );
        let api = |api: &str| {
            let map: Map = [("shop", "s"), ("access_token", "t"), ("api", api)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            Settings::parse(&map).map(|s| s.graphql)
        };
        assert!(api("graphql").unwrap());
        assert!(!api("rest").unwrap());
        assert!(api("soap")
            .unwrap_err()
            .to_string()
            .contains("`rest` or `graphql`"));
        let missing = Settings::parse(&Map::new()).unwrap_err();
        assert_eq!(missing.to_string(), "shopify connection needs `shop`");
    }
}
