//! Shopify's answers as outcomes: a 429 carries `Retry-After` (seconds, possibly
//! fractional); a nearly full call-limit bucket asks callers to hold back; error bodies
//! hold `errors` as a string, a list or a field map.

use crate::client::{self, Reply};
use crate::CallOutcome;
use serde_json::Value;
use std::time::Duration;

/// Share of the leaky bucket above which calls are slowed down.
const BUCKET_HIGH: f64 = 0.8;

/// How long to wait for a `X-Shopify-Shop-Api-Call-Limit: used/capacity` bucket to drain
/// back to three quarters, when it is above [`BUCKET_HIGH`]; the bucket leaks capacity/20
/// calls a second (2/s for 40 on Standard, 4/s for 80 on Advanced).
pub fn call_limit_wait(header: &str) -> Option<Duration> {
    let (used, capacity) = header.trim().split_once('/')?;
    let (used, capacity): (f64, f64) = (used.trim().parse().ok()?, capacity.trim().parse().ok()?);
    if capacity <= 0.0 || used < capacity * BUCKET_HIGH {
        return None;
    }
    let leak = capacity / 20.0;
    Duration::try_from_secs_f64((used - capacity * 0.75) / leak).ok()
}

/// The `errors` of a Shopify error body, as text.
pub fn error_text(reply: &Reply) -> String {
    let body = reply.json();
    let text = match body.get("errors") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|e| {
                e.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| e.to_string())
            })
            .collect::<Vec<_>>()
            .join("; "),
        Some(Value::Object(fields)) => fields
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
                format!("{field} {messages}")
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => reply.excerpt(),
    };
    format!("HTTP {}: {text}", reply.status)
}

/// The outcome of a failed answer.
pub fn failed(reply: &Reply) -> CallOutcome {
    let wait = client::seconds_header(&reply.headers, "retry-after");
    client::outcome(reply, wait, error_text(reply))
}

#[cfg(test)]
mod tests {
    use super::call_limit_wait;
    use std::time::Duration;

    #[test]
    fn call_limit_slows_down_near_full() {
        assert_eq!(call_limit_wait("10/40"), None);
        assert_eq!(call_limit_wait("32/40"), Some(Duration::from_secs(1)));
        assert_eq!(call_limit_wait("40/40"), Some(Duration::from_secs(5)));
        assert_eq!(call_limit_wait("72/80"), Some(Duration::from_secs(3)));
        assert_eq!(call_limit_wait("garbage"), None);
    }
}
