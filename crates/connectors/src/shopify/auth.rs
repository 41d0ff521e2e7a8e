//! Shopify's authentication: `X-Shopify-Access-Token` on every request (the [`Store`]);
//! webhook signatures: `X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(secret, raw
//! body)). As Shopify's own library (`shopify-api` `webhooks.validate`) does, a delivery
//! without the HMAC, without a body or without `X-Shopify-Topic`, `X-Shopify-Shop-Domain`,
//! `X-Shopify-API-Version` or `X-Shopify-Webhook-Id` is refused with 400, a wrong HMAC with
//! 401, and a topic the source does not take with 404; duplicates share
//! `X-Shopify-Event-Id` (then `X-Shopify-Webhook-Id`).

use super::classify::{call_limit_wait, failed};
use super::Settings;
use crate::api::{ConnectorError, Map, Verifier};
use crate::client::{self, Reply};
use crate::signatures::{check_b64, first_header, header, hmac, Refusal};
use crate::CallOutcome;
use hyper::HeaderMap;
use std::time::Duration;

/// One Shopify store connection.
pub struct Store {
    pub client: reqwest::Client,
    /// `https://SHOP/admin/api/VERSION`.
    pub base: String,
    token: String,
    /// The sinks write through the GraphQL Admin API (`api = "graphql"`).
    pub graphql: bool,
    /// `api_version`, e.g. `2026-04`.
    pub version: String,
    /// Until when callers should hold back, from the last call-limit header or cost
    /// report.
    pub(super) hold: std::cell::Cell<Option<std::time::Instant>>,
}

impl Store {
    /// The store of a connection's settings.
    pub fn new(settings: &Map) -> Result<Store, ConnectorError> {
        let settings = Settings::parse(settings)?;
        Ok(Store {
            // The access token must not follow a redirect to another host.
            client: client::build_same_origin()?,
            base: settings.base,
            token: settings.token,
            graphql: settings.graphql,
            version: settings.version,
            hold: std::cell::Cell::new(None),
        })
    }

    /// What is left of the hold the call-limit header asked for.
    pub fn backoff(&self) -> Option<Duration> {
        let until = self.hold.get()?;
        let left = until.saturating_duration_since(std::time::Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// A request with the store's access token.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, url)
            .header("X-Shopify-Access-Token", &self.token)
            .header(reqwest::header::ACCEPT, "application/json")
    }

    /// Sends a request; the call-limit header sets the hold, a failure is classified.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<Reply, CallOutcome> {
        let reply = client::send(request, timeout).await?;
        if let Some(wait) = reply
            .header("x-shopify-shop-api-call-limit")
            .and_then(call_limit_wait)
        {
            self.hold.set(Some(std::time::Instant::now() + wait));
        }
        if reply.ok() {
            return Ok(reply);
        }
        Err(failed(&reply))
    }
}

/// Headers Shopify's library requires besides the HMAC (`X-Shopify-Triggered-At` and
/// `X-Shopify-Event-Id` are sent too, and read when present).
pub const SHOPIFY_HEADERS: [&str; 4] = [
    "X-Shopify-Topic",
    "X-Shopify-Shop-Domain",
    "X-Shopify-API-Version",
    "X-Shopify-Webhook-Id",
];

/// The Shopify topic of a webhook source operation.
pub fn topic(operation: &str) -> Option<&'static str> {
    match operation {
        "orders_create" => Some("orders/create"),
        "refunds_create" => Some("refunds/create"),
        _ => None,
    }
}

/// Shopify's webhook verifier.
pub struct ShopifyWebhooks {
    pub secret: Vec<u8>,
    /// The topic the source takes (`orders/create`).
    pub topic: Option<&'static str>,
}

impl Verifier for ShopifyWebhooks {
    /// Shopify's checks, in its library's order: HMAC present, body, HMAC, headers; then
    /// the topic.
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
        const HMAC: &str = "X-Shopify-Hmac-Sha256";
        if header(headers, HMAC).is_none() {
            return Err(Refusal::MissingSignature {
                header: HMAC.to_string(),
                status: 400,
            });
        }
        if body.is_empty() {
            return Err(Refusal::MissingBody);
        }
        check_b64(&hmac(&self.secret, &[body]), header(headers, HMAC), HMAC)?;
        let missing: Vec<&'static str> = SHOPIFY_HEADERS
            .into_iter()
            .filter(|name| header(headers, name).is_none_or(|v| v.trim().is_empty()))
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::MissingHeaders(missing));
        }
        let given = header(headers, "x-shopify-topic")
            .unwrap_or_default()
            .trim();
        match self.topic {
            Some(expected) if !given.eq_ignore_ascii_case(expected) => Err(Refusal::WrongTopic {
                expected: expected.to_string(),
                given: given.to_string(),
            }),
            _ => Ok(()),
        }
    }

    fn delivery_id(&self, headers: &HeaderMap, _body: &[u8]) -> Option<String> {
        first_header(headers, &["x-shopify-event-id", "x-shopify-webhook-id"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signatures::test_headers::headers;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;

    /// Every header Shopify sends with a delivery of `topic`, signed over `body`.
    fn shopify_headers(topic: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        vec![
            (
                "x-shopify-hmac-sha256",
                B64.encode(hmac(b"s3cret", &[body])),
            ),
            ("x-shopify-topic", topic.into()),
            ("x-shopify-shop-domain", "example.myshopify.com".into()),
            ("x-shopify-api-version", "2026-04".into()),
            ("x-shopify-webhook-id", "b54557e4".into()),
            ("x-shopify-triggered-at", "2026-04-01T10:00:00Z".into()),
            ("x-shopify-event-id", "98880550".into()),
        ]
    }

    fn orders_create() -> ShopifyWebhooks {
        ShopifyWebhooks {
            secret: b"s3cret".to_vec(),
            topic: topic("orders_create"),
        }
    }

    #[test]
    fn shopify_valid_tampered_missing() {
        let v = orders_create();
        let body = br#"{"id":1}"#;
        let all = shopify_headers("orders/create", body);
        assert_eq!(v.verify(&headers(&all), body), Ok(()));
        assert_eq!(
            v.delivery_id(&headers(&all), body).as_deref(),
            Some("98880550")
        );
        let tampered = v.verify(&headers(&all), br#"{"id":2}"#).unwrap_err();
        assert_eq!((tampered.status(), tampered), (401, Refusal::Mismatch));
        let unsigned = v.verify(&headers(&all[1..]), body).unwrap_err();
        assert_eq!(unsigned.status(), 400);
        assert!(unsigned.to_string().contains("X-Shopify-Hmac-Sha256"));
        assert_eq!(
            v.verify(&headers(&all), b"").unwrap_err(),
            Refusal::MissingBody
        );
    }

    #[test]
    fn shopify_refuses_what_its_library_refuses() {
        let v = orders_create();
        let body = br#"{"id":1}"#;
        let all = shopify_headers("orders/create", body);
        for (idx, name) in SHOPIFY_HEADERS.iter().enumerate() {
            let mut some = all.clone();
            some.remove(idx + 1);
            let refusal = v.verify(&headers(&some), body).unwrap_err();
            assert_eq!(refusal, Refusal::MissingHeaders(vec![name]), "{name}");
            assert_eq!(refusal.status(), 400);
        }
        // Sent, but not required by Shopify's library.
        assert_eq!(v.verify(&headers(&all[..5]), body), Ok(()));
        let refund = v
            .verify(&headers(&shopify_headers("refunds/create", body)), body)
            .unwrap_err();
        assert_eq!(refund.status(), 404);
        assert!(refund.to_string().contains("`orders/create`"), "{refund}");
    }
}
