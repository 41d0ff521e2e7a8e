//! The OData connection's settings, read once when a sink or pager is built.

use crate::api::{ConnectorError, Map};
use crate::client;
use base64::Engine;
use serde_json::Value;

/// Which service, as whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `service_url` with one trailing slash.
    pub root: String,
    /// The `Authorization` header: `Bearer token`, or `Basic` of `username`/`password`.
    pub authorization: Option<String>,
    /// `csrf`: fetch a CSRF token before the first write.
    pub csrf: bool,
    /// `sales_order_set` (`SalesOrders`).
    pub sales_orders: String,
}

impl Settings {
    /// Reads `service_url`, `username`/`password` or `token`, `csrf`, `sales_order_set`.
    pub fn parse(settings: &Map) -> Result<Settings, ConnectorError> {
        let authorization = match (
            client::optional(settings, "username"),
            client::optional(settings, "password"),
            client::optional(settings, "token"),
        ) {
            (_, _, Some(token)) => Some(format!("Bearer {token}")),
            (Some(user), Some(password), None) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            _ => None,
        };
        let url =
            client::optional(settings, "service_url").ok_or(ConnectorError::MissingSetting {
                connector: "odata",
                setting: "service_url",
            })?;
        Ok(Settings {
            root: format!("{}/", url.trim_end_matches('/')),
            authorization,
            csrf: settings
                .get("csrf")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            sales_orders: client::optional(settings, "sales_order_set")
                .unwrap_or("SalesOrders")
                .to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_before_basic_auth() {
        let mut map: Map = [
            ("service_url", "http://h/odata/v4/sales//"),
            ("username", "u"),
            ("password", "p"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
        let basic = Settings::parse(&map).unwrap();
        assert_eq!(basic.root, "http://h/odata/v4/sales/");
        assert_eq!(basic.authorization.as_deref(), Some("Basic dTpw"));
        map.insert("token".into(), json!("t"));
        assert_eq!(
            Settings::parse(&map).unwrap().authorization.as_deref(),
            Some("Bearer t")
        );
        let missing = Settings::parse(&Map::new()).unwrap_err();
        assert_eq!(missing.to_string(), "odata connection needs `service_url`");
    }
}
