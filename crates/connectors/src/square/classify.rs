//! Square's answers as outcomes: errors are `{"errors":[{category, code, detail}]}`; a 429
//! carries `Retry-After`.

use crate::client::{self, Reply};
use crate::CallOutcome;
use serde_json::Value;

/// The `errors` of a Square error body, as text.
pub fn error_text(reply: &Reply) -> String {
    match reply.json().get("errors").and_then(Value::as_array) {
        Some(errors) if !errors.is_empty() => {
            format!("HTTP {}: ", reply.status)
                + &errors
                    .iter()
                    .map(|e| {
                        let mut text = format!(
                            "{}/{}",
                            e["category"].as_str().unwrap_or("?"),
                            e["code"].as_str().unwrap_or("?")
                        );
                        if let Some(detail) = e["detail"].as_str() {
                            text.push_str(": ");
                            text.push_str(detail);
                        }
                        if let Some(field) = e["field"].as_str() {
                            text.push_str(&format!(" (field {field})"));
                        }
                        text
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
        }
        _ => format!("HTTP {}: {}", reply.status, reply.excerpt()),
    }
}

/// The outcome of a failed answer.
pub fn failed(reply: &Reply) -> CallOutcome {
    let wait = client::seconds_header(&reply.headers, "retry-after");
    client::outcome(reply, wait, error_text(reply))
}
