//! ShipBob's answers as outcomes: 429 waits `x-retry-after` (or `retry-after`) seconds;
//! error bodies (field maps, ProblemDetails, messages) become the reason.

use crate::client::{self, Reply};
use crate::CallOutcome;
use serde_json::Value;

/// A ShipBob error body (field map, ProblemDetails or message) as text.
pub fn error_text(reply: &Reply) -> String {
    let body = reply.json();
    let text = match &body {
        Value::Object(map) if map.contains_key("title") || map.contains_key("detail") => format!(
            "{} {}",
            map.get("title").and_then(Value::as_str).unwrap_or(""),
            map.get("detail").and_then(Value::as_str).unwrap_or("")
        ),
        Value::Object(map) if map.contains_key("message") => {
            map["message"].as_str().unwrap_or("").to_string()
        }
        Value::Object(map) => map
            .iter()
            .map(|(field, messages)| {
                let messages = match messages {
                    Value::Array(m) => m
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                    other => other.to_string(),
                };
                format!("{field}: {messages}")
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => reply.excerpt(),
    };
    format!("HTTP {}: {}", reply.status, text.trim())
}

/// The outcome of a failed answer.
pub fn failed(reply: &Reply) -> CallOutcome {
    let wait = client::seconds_header(&reply.headers, "x-retry-after")
        .or_else(|| client::seconds_header(&reply.headers, "retry-after"));
    client::outcome(reply, wait, error_text(reply))
}
