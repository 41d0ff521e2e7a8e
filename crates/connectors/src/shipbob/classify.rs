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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn reply(status: u16, headers: &[(&'static str, &str)], body: &str) -> Reply {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        Reply {
            status,
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn field_maps_problem_details_and_messages() {
        let fields = reply(
            400,
            &[],
            r#"{"Recipient.Address.Zip": ["is required", "is too short"], "Products": "empty"}"#,
        );
        assert_eq!(
            error_text(&fields),
            r#"HTTP 400: Products: "empty"; Recipient.Address.Zip: is required, is too short"#
        );
        let problem = reply(422, &[], r#"{"title": "Invalid", "detail": "duplicate"}"#);
        assert_eq!(error_text(&problem), "HTTP 422: Invalid duplicate");
        let message = reply(500, &[], r#"{"message": "down"}"#);
        assert_eq!(error_text(&message), "HTTP 500: down");
    }

    #[test]
    fn rate_limits_wait_the_announced_seconds() {
        let limited = reply(429, &[("x-retry-after", "7")], "{}");
        assert!(matches!(
            failed(&limited),
            CallOutcome::Transient { retry_after: Some(wait), .. } if wait == Duration::from_secs(7)
        ));
        let refused = reply(400, &[], r#"{"message": "bad"}"#);
        assert_eq!(
            failed(&refused),
            CallOutcome::Permanent {
                reason: "HTTP 400: bad".into()
            }
        );
    }
}
