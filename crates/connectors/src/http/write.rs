//! The generic REST sink: sends the message as JSON (or a body template over it), with its
//! idempotency key and correlation id as headers, and classifies the response. A token
//! fetched by OAuth 2 or a login is fetched once more after a 401 or 403, and the call
//! sent again.

use super::classify::{classify, retry_after};
use super::Settings;
use crate::api::{ConnectorError, Map};
use crate::client;
use crate::transport::{Failure, Outbound, Transport};
use crate::{Call, CallFuture, CallOutcome, SinkConnector};
use hyper::header::{HeaderName, CONTENT_TYPE};
use hyper::{Method, Uri};
use serde_json::Value;

/// Header carrying the idempotency key of every call (`Idempotency-Key`; header names
/// are case-insensitive and kept in lower case).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Header carrying the correlation id of every call (`X-Correlation-Id`).
pub const CORRELATION_HEADER: &str = "x-correlation-id";

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
    /// Credential headers from the settings (`auth_header`, bearer, basic, an API key).
    credentials: Vec<(HeaderName, String)>,
    /// Largest request body sent (the connection's `max_body_bytes`).
    max_body: Option<usize>,
    /// A token fetched by OAuth 2 or a login (from the settings), when there is one: sent
    /// with each call, fetched again once after a 401 or 403.
    pub fetched: Option<crate::declared::api::Api>,
}

/// Most idle keep-alive connections a sink keeps to its endpoint.
const IDLE_CONNECTIONS: usize = 64;

impl HttpSink {
    /// Builds the sink from connection settings and sink options.
    pub fn new(
        settings_map: &Map,
        operation: &str,
        options: &Map,
    ) -> Result<HttpSink, ConnectorError> {
        let settings = Settings::parse(settings_map)?;
        let base = settings.base.clone();
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
        let (credentials, key) = super::declare::credentials(settings_map);
        let credentials = credentials
            .into_iter()
            .map(|(name, value)| {
                HeaderName::from_bytes(name.as_bytes())
                    .map(|name| (name, value))
                    .map_err(|_| format!("`key_header`: `{name}` is not a header name"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut url_template = format!("{base}{path}");
        // An API key in the query, percent-encoded (so no brace of it reads as a template).
        if let Some((name, value)) = key {
            let sep = if url_template.contains('?') { '&' } else { '?' };
            let encode = |text: &str| client::percent_encode(text, b"");
            url_template = format!("{url_template}{sep}{}={}", encode(&name), encode(&value));
        }
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
            max_body: client::body_limit(settings_map, i64::MAX as u64)?,
            credentials,
            fetched: None,
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

impl SinkConnector for HttpSink {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let uri = match self.uri(call.body) {
                Ok(uri) => uri,
                Err(reason) => return CallOutcome::Permanent { reason },
            };
            let mut body = match self.body(call.body) {
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
            let traceparent = crate::trace::current();
            let mut fresh = false;
            let sent = loop {
                let token = match &self.fetched {
                    Some(api) => match api.token_header(call.timeout).await {
                        Ok(token) => token,
                        Err(outcome) => return outcome,
                    },
                    None => None,
                };
                let token = match token {
                    Some((name, value)) => match HeaderName::from_bytes(name.as_bytes()) {
                        Ok(name) => Some((name, value)),
                        Err(_) => {
                            return CallOutcome::Permanent {
                                reason: format!("`token_header`: `{name}` is not a header name"),
                            }
                        }
                    },
                    None => None,
                };
                let mut headers = vec![
                    (CONTENT_TYPE, "application/json"),
                    (HeaderName::from_static(IDEMPOTENCY_HEADER), call.key),
                    (
                        HeaderName::from_static(CORRELATION_HEADER),
                        call.correlation_id,
                    ),
                ];
                for (name, value) in &self.credentials {
                    headers.push((name.clone(), value.as_str()));
                }
                if let Some((name, value)) = &token {
                    headers.push((name.clone(), value.as_str()));
                }
                if let Some(traceparent) = &traceparent {
                    headers.push((HeaderName::from_static("traceparent"), traceparent.as_str()));
                }
                // The body is kept for a second try only when a token may be refused.
                let retry = self.fetched.is_some() && !fresh;
                let sent = self
                    .transport
                    .send(Outbound {
                        method: &self.method,
                        uri: uri.clone(),
                        headers: &headers,
                        body: if retry {
                            body.clone()
                        } else {
                            std::mem::take(&mut body)
                        },
                        timeout: call.timeout,
                    })
                    .await;
                match (&sent, &self.fetched) {
                    (Ok(answer), Some(api)) if retry && matches!(answer.status, 401 | 403) => {
                        if let Err(outcome) = api.refused(token.as_ref().map(|(_, v)| v.as_str())) {
                            return outcome;
                        }
                        tracing::info!(
                            status = answer.status,
                            "http: the token was refused; fetching a new one"
                        );
                        fresh = true;
                    }
                    _ => break sent,
                }
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

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
}
