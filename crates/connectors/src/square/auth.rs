//! Square's authentication: `Authorization: Bearer` and a `Square-Version` header on
//! every call (the [`Seller`]); webhook signatures: `x-square-hmacsha256-signature` = base64(HMAC-SHA256(key,
//! notification URL ‖ raw body)); duplicates share the envelope's `event_id`.

use super::classify::failed;
use super::Settings;
use crate::api::{ConnectorError, Map, Verifier};
use crate::client::{self, Reply};
use crate::signatures::{check_b64, header, hmac, Refusal};
use crate::CallOutcome;
use hyper::HeaderMap;
use serde_json::Value;
use std::time::Duration;

/// One Square seller connection.
pub struct Seller {
    pub client: reqwest::Client,
    pub settings: Settings,
}

impl Seller {
    /// The seller of a connection's settings.
    pub fn new(settings: &Map) -> Result<Seller, ConnectorError> {
        Ok(Seller {
            client: client::build()?,
            settings: Settings::parse(settings)?,
        })
    }

    /// A request to `path` with the seller's token and API version.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.settings.base))
            .bearer_auth(&self.settings.token)
            .header("Square-Version", &self.settings.version)
    }

    /// POSTs a JSON body; a failure is classified.
    pub async fn post(
        &self,
        path: &str,
        body: String,
        timeout: Duration,
    ) -> Result<Reply, CallOutcome> {
        let request = self
            .request(reqwest::Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let reply = client::send(request, timeout).await?;
        if reply.ok() {
            return Ok(reply);
        }
        Err(failed(&reply))
    }
}

/// The header Square signs deliveries in.
const SIGNATURE: &str = "x-square-hmacsha256-signature";

/// Square's webhook verifier (and the generic `webhook` connector's
/// `hmac_sha256_url_body` scheme).
pub struct SquareWebhooks {
    pub key: Vec<u8>,
    /// The notification URL the subscription posts to (part of what is signed).
    pub url: String,
}

impl Verifier for SquareWebhooks {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
        check_b64(
            &hmac(&self.key, &[self.url.as_bytes(), body]),
            header(headers, SIGNATURE),
            SIGNATURE,
        )
    }

    fn delivery_id(&self, _headers: &HeaderMap, body: &[u8]) -> Option<String> {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("event_id").and_then(Value::as_str).map(String::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signatures::test_headers::headers;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;

    #[test]
    fn square_signs_url_and_body() {
        let v = SquareWebhooks {
            key: b"k".to_vec(),
            url: "http://h/hook".into(),
        };
        let body = br#"{"event_id":"e1"}"#;
        let sig = B64.encode(hmac(b"k", &[b"http://h/hook", body]));
        let h = headers(&[("x-square-hmacsha256-signature", sig)]);
        assert!(v.verify(&h, body).is_ok());
        assert_eq!(v.delivery_id(&h, body).as_deref(), Some("e1"));
        let wrong_url = SquareWebhooks {
            key: b"k".to_vec(),
            url: "http://other/hook".into(),
        };
        assert!(wrong_url.verify(&h, body).is_err());
    }
}
