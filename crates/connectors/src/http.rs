//! Generic REST sink: sends the message as JSON, with its idempotency key and
//! correlation id as headers, and classifies the response.

use super::transport::{Failure, Outbound, Transport};
use super::{Call, CallFuture, CallOutcome, Page, PageFuture, Pager, SinkConnector};
use hyper::header::{HeaderName, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Uri};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Header carrying the idempotency key of every call (`Idempotency-Key`; header names
/// are case-insensitive and kept in lower case).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Header carrying the correlation id of every call (`X-Correlation-Id`).
pub const CORRELATION_HEADER: &str = "x-correlation-id";
/// Most of a response body kept in a dead-letter reason.
const MAX_REASON_BODY: usize = 500;

/// `http.post|put|patch`.
pub struct HttpSink {
    transport: Transport,
    method: Method,
    /// The request URI, parsed once, when the path has no template.
    uri: Option<Uri>,
    url_template: String,
    /// A minijinja template of the request body over the message (the message as JSON
    /// when absent).
    body_template: Option<String>,
    auth: Option<String>,
    /// Largest request body sent (the connection's `max_body_bytes`).
    max_body: Option<usize>,
}

/// Most idle keep-alive connections a sink keeps to its endpoint.
const IDLE_CONNECTIONS: usize = 64;

impl HttpSink {
    /// Builds the sink from connection settings and sink options.
    pub fn new(
        settings: &BTreeMap<String, Value>,
        operation: &str,
        options: &BTreeMap<String, Value>,
    ) -> Result<HttpSink, String> {
        let base = settings
            .get("base_url")
            .and_then(Value::as_str)
            .ok_or("http connection needs `base_url`")?
            .trim_end_matches('/')
            .to_string();
        let path = options.get("path").and_then(Value::as_str).unwrap_or("");
        let method = match options
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or(operation)
        {
            m if m.eq_ignore_ascii_case("put") => Method::PUT,
            m if m.eq_ignore_ascii_case("patch") => Method::PATCH,
            _ => Method::POST,
        };
        let url_template = format!("{base}{path}");
        let endpoint = request_uri(&base).map_err(|e| format!("`base_url`: {e}"))?;
        let uri = if url_template.contains("{{") {
            None
        } else {
            Some(request_uri(&url_template)?)
        };
        Ok(HttpSink {
            transport: Transport::for_endpoint(&endpoint, IDLE_CONNECTIONS)?,
            method,
            uri,
            url_template,
            body_template: options
                .get("body")
                .and_then(Value::as_str)
                .map(String::from),
            max_body: super::client::body_limit(settings, i64::MAX as u64)?,
            auth: settings
                .get("auth_header")
                .and_then(Value::as_str)
                .map(String::from),
        })
    }

    fn body(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let Some(template) = &self.body_template else {
            return Ok(message.to_vec());
        };
        minijinja::Environment::new()
            .render_str(template, template_context(message))
            .map(String::into_bytes)
            .map_err(|e| format!("body template: {e}"))
    }

    fn uri(&self, body: &[u8]) -> Result<Uri, String> {
        if let Some(uri) = &self.uri {
            return Ok(uri.clone());
        }
        let url = minijinja::Environment::new()
            .render_str(&self.url_template, template_context(body))
            .map_err(|e| format!("path template: {e}"))?;
        request_uri(&url)
    }
}

/// The message as a template context, every number's digits kept (null when not JSON).
fn template_context(message: &[u8]) -> minijinja::Value {
    omniflow_mapping::json_in::parse(message, &omniflow_mapping::json_in::Projection::whole())
        .map(|value| value.to_template())
        .unwrap_or_else(|_| minijinja::Value::from(()))
}

/// An absolute `http` or `https` URL as a request URI.
fn request_uri(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(uri),
        _ => Err(format!("`{url}` is not an http or https URL")),
    }
}

/// Seconds from a `Retry-After` header (delta-seconds form).
pub fn retry_after(headers: &hyper::header::HeaderMap) -> Option<Duration> {
    headers
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s.min(600.0)).ok())
}

/// Classifies an HTTP status: 2xx ok; 408, 425, 429 and 5xx transient; the rest permanent.
pub fn classify(status: u16, retry: Option<Duration>, body: &str) -> CallOutcome {
    let excerpt: String = body.chars().take(MAX_REASON_BODY).collect();
    match status {
        200..=299 => CallOutcome::Ok,
        429 => CallOutcome::Transient {
            class: "rate_limited".into(),
            reason: format!("HTTP 429: {excerpt}"),
            retry_after: retry,
        },
        408 | 425 | 500..=599 => CallOutcome::Transient {
            class: if status == 408 {
                "timeout".into()
            } else {
                "server_error".into()
            },
            reason: format!("HTTP {status}: {excerpt}"),
            retry_after: retry,
        },
        _ => CallOutcome::Permanent {
            reason: format!("HTTP {status}: {excerpt}"),
        },
    }
}

impl SinkConnector for HttpSink {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let uri = match self.uri(call.body) {
                Ok(uri) => uri,
                Err(reason) => return CallOutcome::Permanent { reason },
            };
            let body = match self.body(call.body) {
                Ok(body) => body,
                Err(reason) => return CallOutcome::Permanent { reason },
            };
            if let Some(max) = self.max_body.filter(|max| body.len() > *max) {
                return CallOutcome::Permanent {
                    reason: format!(
                        "the request body is {} bytes, over max_body_bytes ({max})",
                        body.len()
                    ),
                };
            }
            let mut headers = vec![
                (CONTENT_TYPE, "application/json"),
                (HeaderName::from_static(IDEMPOTENCY_HEADER), call.key),
                (
                    HeaderName::from_static(CORRELATION_HEADER),
                    call.correlation_id,
                ),
            ];
            if let Some(auth) = &self.auth {
                headers.push((AUTHORIZATION, auth.as_str()));
            }
            let sent = self
                .transport
                .send(Outbound {
                    method: &self.method,
                    uri,
                    headers: &headers,
                    body,
                    timeout: call.timeout,
                })
                .await;
            match sent {
                Ok(answer) => classify(answer.status, retry_after(&answer.headers), &answer.body),
                Err(Failure::Invalid(reason)) => CallOutcome::Permanent { reason },
                Err(Failure::Timeout) => CallOutcome::Transient {
                    class: "timeout".into(),
                    reason: format!("timed out after {:?}", call.timeout),
                    retry_after: None,
                },
                Err(Failure::Connect(reason)) => CallOutcome::Transient {
                    class: "connect".into(),
                    reason,
                    retry_after: None,
                },
            }
        })
    }
}

/// The generic `http.get` pager (items read again unchanged under a watermark are skipped
/// by content). Every poll GETs `base_url + path`:
/// - `cursor = page_token`: sends `page_token=<token>`, follows the answer's `next` field
///   (option `next`, default `next`) until there is none;
/// - `cursor = watermark`: sends `since=<watermark>`, the largest value of the items' field
///   named by the option `watermark` (default `updated_at`);
/// - items are the answer itself when it is an array, else its field named by `items`
///   (default `items`). `page_size` adds `limit=N`.
pub struct HttpGetPager {
    client: reqwest::Client,
    url: String,
    cursor: String,
    page_size: Option<u64>,
    items: String,
    next: String,
    watermark: String,
    auth: Option<String>,
}

/// The raw items of a page (the page itself when it is an array, else its `items` field),
/// borrowed as written.
fn raw_items<'a>(page: &'a [u8], items: &str) -> Option<Vec<&'a serde_json::value::RawValue>> {
    use serde_json::value::RawValue;
    if let Ok(list) = serde_json::from_slice::<Vec<&RawValue>>(page) {
        return Some(list);
    }
    let fields: std::collections::HashMap<String, &RawValue> = serde_json::from_slice(page).ok()?;
    serde_json::from_str(fields.get(items)?.get()).ok()
}

/// 64-bit FNV-1a of a byte string (a content fingerprint, not a security hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn text(options: &BTreeMap<String, Value>, key: &str, default: &str) -> String {
    options
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_string()
}

impl HttpGetPager {
    /// Reads `base_url` (and `auth_header`) from the connection and the poll options.
    pub fn new(
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<HttpGetPager, String> {
        let base = settings
            .get("base_url")
            .and_then(Value::as_str)
            .ok_or("http connection needs `base_url`")?
            .trim_end_matches('/');
        Ok(HttpGetPager {
            client: super::client::build()?,
            url: format!("{base}{}", text(options, "path", "")),
            cursor: text(options, "cursor", "none"),
            page_size: options.get("page_size").and_then(Value::as_u64),
            items: text(options, "items", "items"),
            next: text(options, "next", "next"),
            watermark: text(options, "watermark", "updated_at"),
            auth: settings
                .get("auth_header")
                .and_then(Value::as_str)
                .map(String::from),
        })
    }
}

impl Pager for HttpGetPager {
    fn page<'a>(&'a self, position: Option<&'a str>, _first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let mut request = self.client.get(&self.url).timeout(Duration::from_secs(30));
            if let Some(limit) = self.page_size {
                request = request.query(&[("limit", limit.to_string())]);
            }
            match (self.cursor.as_str(), position) {
                ("page_token", Some(token)) => request = request.query(&[("page_token", token)]),
                ("watermark", Some(since)) => request = request.query(&[("since", since)]),
                _ => {}
            }
            if let Some(auth) = &self.auth {
                request = request.header(reqwest::header::AUTHORIZATION, auth.as_str());
            }
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("HTTP {status}"));
            }
            let bytes = response.bytes().await.map_err(|e| e.to_string())?;
            let body: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("the answer is not JSON: {e}"))?;
            let items: Vec<Value> = match &body {
                Value::Array(items) => items.clone(),
                other => other
                    .get(&self.items)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            };
            let next_position = match self.cursor.as_str() {
                "page_token" => body
                    .get(&self.next)
                    .and_then(Value::as_str)
                    .map(String::from),
                "watermark" => items
                    .iter()
                    .filter_map(|i| i.get(&self.watermark).and_then(Value::as_str))
                    .max()
                    .map(String::from)
                    .or(position.map(String::from)),
                _ => None,
            };
            // Each item's own bytes, so numbers keep every digit (a `Value` holds floats).
            let raw = raw_items(&bytes, &self.items);
            Ok(Page {
                items: items
                    .iter()
                    .enumerate()
                    .map(|(idx, i)| {
                        let bytes = serde_json::to_vec(i).unwrap_or_default();
                        // With a watermark, the API may answer `since` inclusively: an
                        // item read again unchanged is skipped by its content.
                        let key = (self.cursor == "watermark").then(|| {
                            let stamp =
                                i.get(&self.watermark).and_then(Value::as_str).unwrap_or("");
                            format!("{stamp}#{:016x}", fnv1a(&bytes))
                        });
                        let exact = raw.as_ref().and_then(|raw| raw.get(idx));
                        (exact.map_or(bytes, |r| r.get().as_bytes().to_vec()), key)
                    })
                    .collect(),
                more: self.cursor == "page_token" && next_position.is_some(),
                position: next_position,
            })
        })
    }
}

/// Registers the http connector's operations.
pub fn register(registry: &mut crate::api::Registry) {
    for operation in ["post", "put", "patch"] {
        registry.sink("http", operation, |_, s, op, o| {
            Ok(Box::new(HttpSink::new(s, op, o)?))
        });
    }
    registry.pager("http", "get", |_, s, o| {
        Ok(Box::new(HttpGetPager::new(s, o)?))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_items_keep_their_own_bytes() {
        let item = r#"{"id": 12345678901234567890123, "price": 0.12345678901234567890123}"#;
        for page in [
            format!("[{item}, {{}}]"),
            format!(r#"{{"items": [{item}, {{}}], "next": "x"}}"#),
        ] {
            let raw = raw_items(page.as_bytes(), "items").unwrap();
            assert_eq!(raw.len(), 2);
            assert_eq!(raw[0].get(), item);
        }
        assert!(raw_items(b"{\"other\": []}", "items").is_none());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_before_sending() {
        let settings: BTreeMap<String, Value> = [
            ("base_url".to_string(), Value::from("http://127.0.0.1:9")),
            ("max_body_bytes".to_string(), Value::from(16)),
        ]
        .into_iter()
        .collect();
        let sink = HttpSink::new(&settings, "post", &BTreeMap::new()).unwrap();
        let body = br#"{"id": "a-rather-long-message"}"#;
        let outcome = sink
            .call(Call {
                key: "k",
                correlation_id: "k",
                body,
                timeout: Duration::from_secs(1),
            })
            .await;
        assert!(
            matches!(&outcome, CallOutcome::Permanent { reason } if reason.contains("over max_body_bytes (16)")),
            "{outcome:?}"
        );
    }

    #[test]
    fn classifies_statuses() {
        assert_eq!(classify(201, None, ""), CallOutcome::Ok);
        assert!(matches!(
            classify(429, Some(Duration::from_secs(2)), ""),
            CallOutcome::Transient {
                retry_after: Some(_),
                ..
            }
        ));
        assert!(matches!(
            classify(503, None, ""),
            CallOutcome::Transient { .. }
        ));
        assert!(
            matches!(classify(422, None, "bad sku"), CallOutcome::Permanent { reason } if reason.contains("bad sku"))
        );
    }
}
