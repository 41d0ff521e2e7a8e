//! ShipBob's authentication: `Authorization: Bearer` and `shipbob_channel_id` on every
//! request; webhook deliveries signed the Standard Webhooks way: `webhook-signature` holds
//! `v1,<base64>` entries over `{webhook-id}.{webhook-timestamp}.{body}` keyed by the base64
//! secret after `whsec_`; stale timestamps are refused; duplicates share `webhook-id`.

use super::Settings;
use crate::api::{ConnectorError, Verifier};
use crate::signatures::{first_header, header, hmac, same, Refusal};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hyper::HeaderMap;

/// Oldest Standard Webhooks timestamp accepted, in seconds either side of now.
const TOLERANCE_SECS: i64 = 300;

/// A request to ShipBob with its auth headers.
pub fn request(
    client: &reqwest::Client,
    settings: &Settings,
    method: reqwest::Method,
    url: &str,
) -> reqwest::RequestBuilder {
    client
        .request(method, url)
        .bearer_auth(&settings.token)
        .header("shipbob_channel_id", &settings.channel)
}

/// Standard Webhooks signatures (ShipBob's, and the generic `webhook` connector's
/// `standard_webhooks` scheme).
pub struct StandardWebhooks {
    key: Vec<u8>,
}

impl StandardWebhooks {
    /// The verifier of a `whsec_` + base64 secret.
    pub fn from_secret(secret: &str) -> Result<StandardWebhooks, ConnectorError> {
        Ok(StandardWebhooks {
            key: standard_key(secret)?,
        })
    }
}

/// The HMAC key of a Standard Webhooks secret (`whsec_` + base64).
fn standard_key(secret: &str) -> Result<Vec<u8>, ConnectorError> {
    B64.decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| {
            ConnectorError::BadSetting(
                "a Standard Webhooks secret is `whsec_` followed by base64".to_string(),
            )
        })
}

impl Verifier for StandardWebhooks {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
        let invalid = |reason: &str| Refusal::Invalid(reason.to_string());
        let id =
            header(headers, "webhook-id").ok_or_else(|| invalid("missing header `webhook-id`"))?;
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
        let expected = hmac(&self.key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
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

    fn delivery_id(&self, headers: &HeaderMap, _body: &[u8]) -> Option<String> {
        first_header(headers, &["webhook-id"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signatures::test_headers::headers;

    #[test]
    fn standard_webhooks_checks_timestamp_and_any_entry() {
        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        let secret = format!("whsec_{}", B64.encode(&key));
        let v = StandardWebhooks::from_secret(&secret).unwrap();
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
        assert!(StandardWebhooks::from_secret("whsec_!!").is_err());
    }
}
