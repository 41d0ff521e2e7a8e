//! Generic REST sink: sends the message as JSON, with its idempotency key and
//! correlation id as headers, and classifies the response.

use super::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Header carrying the idempotency key of every call.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Header carrying the correlation id of every call.
pub const CORRELATION_HEADER: &str = "X-Correlation-Id";
/// Most of a response body kept in a dead-letter reason.
const MAX_REASON_BODY: usize = 500;

/// `http.post|put|patch`.
pub struct HttpSink {
    client: reqwest::Client,
    method: reqwest::Method,
    url_template: String,
    /// A minijinja template of the request body over the message (the message as JSON
    /// when absent).
    body_template: Option<String>,
    auth: Option<String>,
    /// Largest request body sent (the connection's `max_body_bytes`).
    max_body: Option<usize>,
}

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
            m if m.eq_ignore_ascii_case("put") => reqwest::Method::PUT,
            m if m.eq_ignore_ascii_case("patch") => reqwest::Method::PATCH,
            _ => reqwest::Method::POST,
        };
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(HttpSink {
            client,
            method,
            url_template: format!("{base}{path}"),
            body_template: options
                .get("body")
                .and_then(Value::as_str)
                .map(String::from),
            max_body: settings
                .get("max_body_bytes")
                .and_then(Value::as_u64)
                .map(|n| n as usize),
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
        let context: Value = serde_json::from_slice(message).unwrap_or(Value::Null);
        minijinja::Environment::new()
            .render_str(template, context)
            .map(String::into_bytes)
            .map_err(|e| format!("body template: {e}"))
    }

    fn url(&self, body: &[u8]) -> Result<String, String> {
        if !self.url_template.contains("{{") {
            return Ok(self.url_template.clone());
        }
        let context: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        minijinja::Environment::new()
            .render_str(&self.url_template, context)
            .map_err(|e| format!("path template: {e}"))
    }
}

/// Seconds from a `Retry-After` header (delta-seconds form).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
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
            let url = match self.url(call.body) {
                Ok(url) => url,
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
            let mut request = self
                .client
                .request(self.method.clone(), url)
                .timeout(call.timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(IDEMPOTENCY_HEADER, call.key)
                .header(CORRELATION_HEADER, call.correlation_id)
                .body(body);
            if let Some(auth) = &self.auth {
                request = request.header(reqwest::header::AUTHORIZATION, auth.as_str());
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry = retry_after(response.headers());
                    let body = if (200..300).contains(&status) {
                        String::new()
                    } else {
                        response.text().await.unwrap_or_default()
                    };
                    classify(status, retry, &body)
                }
                Err(err)
                    if err.is_builder()
                        || err.is_request() && !err.is_connect() && !err.is_timeout() =>
                {
                    CallOutcome::Permanent {
                        reason: format!("the request could not be built: {err}"),
                    }
                }
                Err(err) if err.is_timeout() => CallOutcome::Transient {
                    class: "timeout".into(),
                    reason: format!("timed out after {:?}", call.timeout),
                    retry_after: None,
                },
                Err(err) => CallOutcome::Transient {
                    class: "connect".into(),
                    reason: format!("connection failed: {err}"),
                    retry_after: None,
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
