//! SP-API answers as outcomes: error bodies are `{"errors":[{code, message}]}`; a 429
//! (`QuotaExceeded`) carries no Retry-After, so the wait is derived from the operation's
//! published rate.

use crate::client::{self, Reply};
use crate::CallOutcome;
use serde_json::Value;
use std::time::Duration;

/// The `errors` list of an SP-API error body, as text.
pub fn error_text(reply: &Reply) -> String {
    let body = reply.json();
    match body.get("errors").and_then(Value::as_array) {
        Some(errors) if !errors.is_empty() => {
            format!("HTTP {}: ", reply.status)
                + &errors
                    .iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e.get("code").and_then(Value::as_str).unwrap_or("?"),
                            e.get("message").and_then(Value::as_str).unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
        }
        _ => format!("HTTP {}: {}", reply.status, reply.excerpt()),
    }
}

/// The outcome of a failed answer to an operation allowed `rate` requests per second.
pub fn failed(reply: &Reply, rate: f64) -> CallOutcome {
    let wait = (reply.status == 429).then(|| Duration::from_secs_f64((1.0 / rate).min(120.0)));
    client::outcome(reply, wait, error_text(reply))
}
