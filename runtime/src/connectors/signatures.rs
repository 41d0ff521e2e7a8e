//! Inbound webhook signatures and delivery ids, per vendor scheme:
//! - Shopify: `X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(secret, raw body)); duplicates
//!   share `X-Shopify-Event-Id` (then `X-Shopify-Webhook-Id`);
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

/// How a webhook source checks deliveries.
#[derive(Clone)]
pub enum Verifier {
    /// Trusted network: no signature.
    None,
    Shopify {
        secret: Vec<u8>,
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

fn check_b64(expected: &[u8], given: Option<&str>, name: &str) -> Result<(), String> {
    let given = given.ok_or_else(|| format!("missing signature header `{name}`"))?;
    let decoded = B64
        .decode(given.trim())
        .map_err(|_| format!("signature header `{name}` is not base64"))?;
    if same(expected, &decoded) {
        Ok(())
    } else {
        Err("signature does not match the body".into())
    }
}

impl Verifier {
    /// The verifier a connector's webhook source uses, from its settings.
    pub fn for_source(
        connector: &str,
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
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        match self {
            Verifier::None => Ok(()),
            Verifier::Shopify { secret } => check_b64(
                &hmac(secret, &[body]),
                header(headers, "x-shopify-hmac-sha256"),
                "X-Shopify-Hmac-Sha256",
            ),
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
                let id = header(headers, "webhook-id").ok_or("missing header `webhook-id`")?;
                let ts = header(headers, "webhook-timestamp")
                    .ok_or("missing header `webhook-timestamp`")?;
                let when: i64 = ts
                    .trim()
                    .parse()
                    .map_err(|_| "`webhook-timestamp` is not a number")?;
                if (chrono::Utc::now().timestamp() - when).abs() > TOLERANCE_SECS {
                    return Err("`webhook-timestamp` is outside the tolerance window".into());
                }
                let expected = hmac(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
                let given = header(headers, "webhook-signature")
                    .ok_or("missing header `webhook-signature`")?;
                let matched = given.split_whitespace().any(|entry| {
                    entry
                        .strip_prefix("v1,")
                        .and_then(|sig| B64.decode(sig).ok())
                        .is_some_and(|sig| same(&expected, &sig))
                });
                if matched {
                    Ok(())
                } else {
                    Err("signature does not match the body".into())
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

    #[test]
    fn shopify_valid_tampered_missing() {
        let v = Verifier::Shopify {
            secret: b"s3cret".to_vec(),
        };
        let body = br#"{"id":1}"#;
        let sig = B64.encode(hmac(b"s3cret", &[body]));
        assert!(v
            .verify(&headers(&[("x-shopify-hmac-sha256", sig.clone())]), body)
            .is_ok());
        assert!(v
            .verify(&headers(&[("x-shopify-hmac-sha256", sig)]), br#"{"id":2}"#)
            .is_err());
        assert!(v
            .verify(&HeaderMap::new(), body)
            .unwrap_err()
            .contains("missing"));
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
        assert!(v.verify(&stale, body).unwrap_err().contains("tolerance"));
    }
}
