//! Inbound webhook plumbing the connectors' verifiers share: the refusals and their HTTP
//! answers, HMAC-SHA256, constant-time comparison, base64 signature headers, and the
//! settings a verifier reads. Each vendor's scheme is in its folder's `auth.rs`
//! (`shopify`, `square`, `shipbob`); the generic `webhook` connector picks one of them.

use crate::error::{ConnectorError, Map};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use serde_json::Value;
use sha2::Sha256;

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

/// HMAC-SHA256 of `parts` in order, keyed by `key`.
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Compares in constant time (for equal lengths).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A header's text, if present and visible ASCII.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks that the header `name` (`given`) holds base64 of `expected`.
pub fn check_b64(expected: &[u8], given: Option<&str>, name: &str) -> Result<(), Refusal> {
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

/// A non-empty text setting.
pub fn text(settings: &Map, name: &str) -> Option<String> {
    settings
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// A setting a `connector` webhook source needs to verify deliveries.
pub fn need(settings: &Map, connector: &str, name: &str) -> Result<String, ConnectorError> {
    text(settings, name).ok_or_else(|| ConnectorError::MissingWebhookSetting {
        connector: connector.to_string(),
        setting: name.to_string(),
    })
}

/// The first of `names` present in the headers (a delivery id).
pub fn first_header(headers: &HeaderMap, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| header(headers, n).map(String::from))
}

#[cfg(test)]
pub mod test_headers {
    //! Header maps for the verifiers' tests.
    use hyper::HeaderMap;

    /// A header map of `pairs`.
    pub fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }
}
