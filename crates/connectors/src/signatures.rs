//! Inbound webhook signatures and delivery ids, per vendor scheme:
//! - Shopify: `X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(secret, raw body)); as
//!   Shopify's own library (`shopify-api` `webhooks.validate`) does, a delivery without the
//!   HMAC, without a body or without `X-Shopify-Topic`, `X-Shopify-Shop-Domain`,
//!   `X-Shopify-API-Version` or `X-Shopify-Webhook-Id` is refused with 400, a wrong HMAC
//!   with 401, and a topic the source does not take with 404; duplicates share
//!   `X-Shopify-Event-Id` (then `X-Shopify-Webhook-Id`);
//! - Square: `x-square-hmacsha256-signature` = base64(HMAC-SHA256(key, notification URL ‖
//!   raw body)); duplicates share the envelope's `event_id`;
//! - Standard Webhooks (ShipBob): `webhook-signature` holds `v1,<base64>` entries over
//!   `{webhook-id}.{webhook-timestamp}.{body}` keyed by the base64 secret after `whsec_`;
//!   stale timestamps are refused; duplicates share `webhook-id`;
//! - the generic `webhook` connector picks one of these schemes, or `none`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use serde_json::Value;
use sha2::Sha256;
use std::collections::BTreeMap;

/// Oldest Standard Webhooks timestamp accepted, in seconds either side of now.
const TOLERANCE_SECS: i64 = 300;

/// Headers Shopify's library requires besides the HMAC (`X-Shopify-Triggered-At` and
/// `X-Shopify-Event-Id` are sent too, and read when present).
pub const SHOPIFY_HEADERS: [&str; 4] = [
    "X-Shopify-Topic",
    "X-Shopify-Shop-Domain",
    "X-Shopify-API-Version",
    "X-Shopify-Webhook-Id",
];

/// Why a delivery is refused; [`Refusal::status`] is the HTTP answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No signature header (401; 400 for Shopify, as its library answers).
    MissingSignature { header: String, status: u16 },
    /// The signature header is not base64 (401).
    NotBase64(String),
    /// The signature does not match the body (401).
    Mismatch,
    /// Another check of the scheme failed (401).
    Invalid(String),
    /// An empty body where the vendor always sends one (400).
    MissingBody,
    /// Headers the vendor always sends are absent (400).
    MissingHeaders(Vec<&'static str>),
    /// The delivery's topic is not the one this source takes (404).
    WrongTopic { expected: String, given: String },
}

impl Refusal {
    /// The HTTP status the delivery is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::MissingSignature { status, .. } => *status,
            Refusal::NotBase64(_) | Refusal::Mismatch | Refusal::Invalid(_) => 401,
            Refusal::MissingBody | Refusal::MissingHeaders(_) => 400,
            Refusal::WrongTopic { .. } => 404,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::MissingSignature { header, .. } => {
                write!(f, "missing signature header `{header}`")
            }
            Refusal::NotBase64(header) => write!(f, "signature header `{header}` is not base64"),
            Refusal::Mismatch => write!(f, "signature does not match the body"),
            Refusal::Invalid(reason) => f.write_str(reason),
            Refusal::MissingBody => write!(f, "the delivery has no body"),
            Refusal::MissingHeaders(names) => write!(
                f,
                "missing headers every delivery carries: {}",
                names.join(", ")
            ),
            Refusal::WrongTopic { expected, given } => write!(
                f,
                "this source takes `{expected}` deliveries, not `{given}`"
            ),
        }
    }
}

/// The Shopify topic of a webhook source operation.
fn shopify_topic(operation: &str) -> Option<&'static str> {
    match operation {
        "orders_create" => Some("orders/create"),
        "refunds_create" => Some("refunds/create"),
        _ => None,
    }
}

/// How a webhook source checks deliveries.
#[derive(Clone)]
pub enum Verifier {
    /// Trusted network: no signature.
    None,
    Shopify {
        secret: Vec<u8>,
        /// The topic the source takes (`orders/create`).
        topic: Option<&'static str>,
    },
    Square {
        key: Vec<u8>,
        url: String,
    },
    Standard {
        key: Vec<u8>,
    },
    /// `hmac_sha256_base64` over the body in a configurable header.
    Header {
        header: String,
        secret: Vec<u8>,
    },
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Compares in constant time (for equal lengths).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn check_b64(expected: &[u8], given: Option<&str>, name: &str) -> Result<(), Refusal> {
    let given = given.ok_or_else(|| Refusal::MissingSignature {
        header: name.to_string(),
        status: 401,
    })?;
    let decoded = B64
        .decode(given.trim())
        .map_err(|_| Refusal::NotBase64(name.to_string()))?;
    if same(expected, &decoded) {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

/// Shopify's checks, in its library's order: HMAC present, body, HMAC, headers; then the
/// topic.
fn check_shopify(
    secret: &[u8],
    topic: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
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
    check_b64(&hmac(secret, &[body]), header(headers, HMAC), HMAC)?;
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
    match topic {
        Some(expected) if !given.eq_ignore_ascii_case(expected) => Err(Refusal::WrongTopic {
            expected: expected.to_string(),
            given: given.to_string(),
        }),
        _ => Ok(()),
    }
}

impl Verifier {
    /// The verifier a connector's webhook source (`operation`) uses, from its settings.
    pub fn for_source(
        connector: &str,
        operation: &str,
        settings: &BTreeMap<String, Value>,
    ) -> Result<Verifier, String> {
        let text = |name: &str| {
            settings
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let need = |name: &str| {
            text(name).ok_or_else(|| {
                format!("a {connector} webhook source needs the connection setting `{name}` to verify deliveries")
            })
        };
        Ok(match connector {
            "shopify" => Verifier::Shopify {
                secret: need("webhook_secret")?.into_bytes(),
                topic: shopify_topic(operation),
            },
            "square" => Verifier::Square {
                key: need("signature_key")?.into_bytes(),
                url: need("notification_url")?,
            },
            "shipbob" => Verifier::Standard {
                key: standard_key(&need("webhook_secret")?)?,
            },
            "webhook" => match text("scheme").as_deref().unwrap_or("hmac_sha256_base64") {
                "none" => Verifier::None,
                "hmac_sha256_base64" => Verifier::Header {
                    header: text("signature_header").unwrap_or_else(|| "x-signature".into()),
                    secret: need("secret")?.into_bytes(),
                },
                "hmac_sha256_url_body" => Verifier::Square {
                    key: need("secret")?.into_bytes(),
                    url: need("notification_url")?,
                },
                "standard_webhooks" => Verifier::Standard {
                    key: standard_key(&need("secret")?)?,
                },
                other => return Err(format!("unknown webhook signature scheme `{other}`")),
            },
            other => {
                return Err(format!(
                    "the {other} connector has no webhook signature scheme; deliveries cannot be verified"
                ))
            }
        })
    }

    /// Checks a delivery's signature.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
        match self {
            Verifier::None => Ok(()),
            Verifier::Shopify { secret, topic } => check_shopify(secret, *topic, headers, body),
            Verifier::Header {
                header: name,
                secret,
            } => check_b64(&hmac(secret, &[body]), header(headers, name), name),
            Verifier::Square { key, url } => check_b64(
                &hmac(key, &[url.as_bytes(), body]),
                header(headers, "x-square-hmacsha256-signature"),
                "x-square-hmacsha256-signature",
            ),
            Verifier::Standard { key } => {
                let invalid = |reason: &str| Refusal::Invalid(reason.to_string());
                let id = header(headers, "webhook-id")
                    .ok_or_else(|| invalid("missing header `webhook-id`"))?;
                let ts = header(headers, "webhook-timestamp")
                    .ok_or_else(|| invalid("missing header `webhook-timestamp`"))?;
                let when: i64 = ts
                    .trim()
                    .parse()
                    .map_err(|_| invalid("`webhook-timestamp` is not a number"))?;
                if (chrono::Utc::now().timestamp() - when).abs() > TOLERANCE_SECS {
                    return Err(invalid(
                        "`webhook-timestamp` is outside the tolerance window",
                    ));
                }
                let expected = hmac(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
                let given = header(headers, "webhook-signature")
                    .ok_or_else(|| invalid("missing header `webhook-signature`"))?;
                let matched = given.split_whitespace().any(|entry| {
                    entry
                        .strip_prefix("v1,")
                        .and_then(|sig| B64.decode(sig).ok())
                        .is_some_and(|sig| same(&expected, &sig))
                });
                if matched {
                    Ok(())
                } else {
                    Err(Refusal::Mismatch)
                }
            }
        }
    }

    /// The delivery id duplicates share.
    pub fn delivery_id(&self, headers: &HeaderMap, body: &[u8]) -> Option<String> {
        let from_headers = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| header(headers, n).map(String::from))
        };
        match self {
            Verifier::Shopify { .. } => {
                from_headers(&["x-shopify-event-id", "x-shopify-webhook-id"])
            }
            Verifier::Square { .. } => serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("event_id").and_then(Value::as_str).map(String::from)),
            Verifier::Standard { .. } => from_headers(&["webhook-id"]),
            Verifier::None | Verifier::Header { .. } => from_headers(&[
                "x-shopify-webhook-id",
                "webhook-id",
                "x-webhook-id",
                "idempotency-key",
            ]),
        }
    }
}

/// The HMAC key of a Standard Webhooks secret (`whsec_` + base64).
fn standard_key(secret: &str) -> Result<Vec<u8>, String> {
    B64.decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "a Standard Webhooks secret is `whsec_` followed by base64".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

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

    #[test]
    fn shopify_valid_tampered_missing() {
        let v = Verifier::Shopify {
            secret: b"s3cret".to_vec(),
            topic: shopify_topic("orders_create"),
        };
        let body = br#"{"id":1}"#;
        let all = shopify_headers("orders/create", body);
        assert_eq!(v.verify(&headers(&all), body), Ok(()));
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
        let v = Verifier::Shopify {
            secret: b"s3cret".to_vec(),
            topic: shopify_topic("orders_create"),
        };
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

    #[test]
    fn square_signs_url_and_body() {
        let v = Verifier::Square {
            key: b"k".to_vec(),
            url: "http://h/hook".into(),
        };
        let body = br#"{"event_id":"e1"}"#;
        let sig = B64.encode(hmac(b"k", &[b"http://h/hook", body]));
        let h = headers(&[("x-square-hmacsha256-signature", sig)]);
        assert!(v.verify(&h, body).is_ok());
        assert_eq!(v.delivery_id(&h, body).as_deref(), Some("e1"));
        let wrong_url = Verifier::Square {
            key: b"k".to_vec(),
            url: "http://other/hook".into(),
        };
        assert!(wrong_url.verify(&h, body).is_err());
    }

    #[test]
    fn standard_webhooks_checks_timestamp_and_any_entry() {
        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        let secret = format!("whsec_{}", B64.encode(&key));
        let v = Verifier::Standard {
            key: standard_key(&secret).unwrap(),
        };
        let body = br#"{"id":7}"#;
        let ts = chrono::Utc::now().timestamp().to_string();
        let sig = B64.encode(hmac(&key, &[b"msg_1.", ts.as_bytes(), b".", body]));
        let h = headers(&[
            ("webhook-id", "msg_1".into()),
            ("webhook-timestamp", ts.clone()),
            ("webhook-signature", format!("v1,bm90IGl0 v1,{sig}")),
        ]);
        assert!(v.verify(&h, body).is_ok());
        assert_eq!(v.delivery_id(&h, body).as_deref(), Some("msg_1"));
        let stale = headers(&[
            ("webhook-id", "msg_1".into()),
            ("webhook-timestamp", "1000".into()),
            ("webhook-signature", format!("v1,{sig}")),
        ]);
        assert!(v
            .verify(&stale, body)
            .unwrap_err()
            .to_string()
            .contains("tolerance"));
    }
}
