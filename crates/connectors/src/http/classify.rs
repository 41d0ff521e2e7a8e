//! Generic HTTP answers as outcomes: 2xx ok; 408, 425, 429 and 5xx transient (with the
//! `Retry-After` seconds); the rest permanent, with an excerpt of the body.

use crate::CallOutcome;
use std::time::Duration;

/// Most of a response body kept in a dead-letter reason.
const MAX_REASON_BODY: usize = 500;

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

#[cfg(test)]
mod tests {
    use super::*;

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
