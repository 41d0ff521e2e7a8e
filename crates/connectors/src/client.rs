//! What the HTTP connectors share: the client, sending with transport failures classified,
//! reading settings, money and error bodies.

use super::CallOutcome;
pub use omniflow_mapping::money::{
    minor_digits, minor_to_decimal, minor_units, money_number, money_text,
};
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most of a response body kept in a dead-letter reason.
pub const MAX_REASON: usize = 500;

/// An HTTP client (HTTP and HTTPS, webpki roots) with connection reuse.
pub fn build() -> Result<reqwest::Client, String> {
    builder().build().map_err(|e| format!("http client: {e}"))
}

/// Like [`build`], keeping the cookies servers set (an S/4 gateway binds its CSRF token
/// to the session cookie).
pub fn build_with_cookies() -> Result<reqwest::Client, String> {
    builder()
        .cookie_store(true)
        .build()
        .map_err(|e| format!("http client: {e}"))
}

/// Like [`build`], following redirects only within the origin (scheme, host, port) of
/// the request: a declared connector's credentials, in any header, never leave for
/// another host.
pub fn build_same_origin() -> Result<reqwest::Client, String> {
    builder()
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let same = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if !same {
                attempt.error(
                    "a redirect to another host is not followed (credentials stay with the API)",
                )
            } else if attempt.previous().len() > 5 {
                attempt.error("more than 5 redirects")
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|e| format!("http client: {e}"))
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .pool_max_idle_per_host(32)
        .tcp_nodelay(true)
        .user_agent(concat!(
            "omniflow/",
            env!("CARGO_PKG_VERSION"),
            " (Language=Rust)"
        ))
}

/// A received answer.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as JSON; `Err` names what came instead (a cut or spoiled answer, an HTML
    /// error page), so a read fails with the reason instead of reading nothing.
    pub fn document(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|err| {
            format!(
                "the {} answer is not JSON ({err}): {}",
                self.status,
                self.excerpt()
            )
        })
    }

    /// The body as text, cut to [`MAX_REASON`] characters.
    pub fn excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(MAX_REASON)
            .collect()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// True for 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends a request; a transport failure becomes the matching outcome.
pub async fn send(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<Reply, CallOutcome> {
    let request = match crate::trace::current() {
        Some(traceparent) => request.header("traceparent", traceparent),
        None => request,
    };
    match request.timeout(timeout).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            match response.bytes().await {
                Ok(body) => Ok(Reply {
                    status,
                    headers,
                    body: body.to_vec(),
                }),
                Err(err) => Err(CallOutcome::Transient {
                    class: if err.is_timeout() {
                        "timeout"
                    } else {
                        "connect"
                    }
                    .into(),
                    reason: format!("the answer was cut off: {err}"),
                    retry_after: None,
                }),
            }
        }
        Err(err) if err.is_builder() => Err(CallOutcome::Permanent {
            reason: format!("the request could not be built: {err}"),
        }),
        Err(err) if err.is_timeout() => Err(CallOutcome::Transient {
            class: "timeout".into(),
            reason: format!("timed out after {timeout:?}"),
            retry_after: None,
        }),
        Err(err) => Err(CallOutcome::Transient {
            class: "connect".into(),
            reason: format!("connection failed: {err}"),
            retry_after: None,
        }),
    }
}

/// The classified outcome of an answer: 2xx ok; 408, 425, 429 and 5xx transient; the
/// rest permanent. `reason` is the connector's reading of the error body (with the status).
pub fn outcome(reply: &Reply, retry_after: Option<Duration>, reason: String) -> CallOutcome {
    match reply.status {
        200..=299 => CallOutcome::Ok,
        429 => CallOutcome::Transient {
            class: "rate_limited".into(),
            reason,
            retry_after,
        },
        408 => CallOutcome::Transient {
            class: "timeout".into(),
            reason,
            retry_after,
        },
        425 | 500..=599 => CallOutcome::Transient {
            class: "server_error".into(),
            reason,
            retry_after,
        },
        _ => CallOutcome::Permanent { reason },
    }
}

/// The reason of an outcome (empty for ok), for readers that report errors as text.
pub fn reason(outcome: CallOutcome) -> String {
    match outcome {
        CallOutcome::Ok | CallOutcome::Recorded { .. } => String::new(),
        CallOutcome::Transient { reason, .. } | CallOutcome::Permanent { reason } => reason,
    }
}

/// A poll's `page_size` option, `default` when absent, kept within 1..=`max`.
pub fn page_size(options: &BTreeMap<String, Value>, default: u64, max: u64) -> u64 {
    options
        .get("page_size")
        .and_then(Value::as_u64)
        .unwrap_or(default)
        .clamp(1, max)
}

/// A poll's `lookback` option (milliseconds in the IR), zero when absent.
pub fn lookback(options: &BTreeMap<String, Value>) -> Duration {
    Duration::from_millis(options.get("lookback").and_then(Value::as_u64).unwrap_or(0))
}

/// A required text setting.
pub fn setting<'a>(
    settings: &'a BTreeMap<String, Value>,
    name: &str,
    connector: &str,
) -> Result<&'a str, String> {
    settings
        .get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{connector} connection needs `{name}`"))
}

/// An optional text setting.
pub fn optional<'a>(settings: &'a BTreeMap<String, Value>, name: &str) -> Option<&'a str> {
    settings
        .get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// The connection's `max_body_bytes`, `None` when unset: a whole number from 1 to `max`,
/// given as a number or as text (from the environment). Anything else refuses to start,
/// as `omniflowc check` refuses such a literal (`E0509`), rather than being ignored.
pub fn body_limit(settings: &BTreeMap<String, Value>, max: u64) -> Result<Option<usize>, String> {
    let Some(value) = settings.get("max_body_bytes") else {
        return Ok(None);
    };
    let bytes = value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()));
    match bytes {
        Some(bytes) if (1..=max).contains(&bytes) => {
            Ok(Some(usize::try_from(bytes).unwrap_or(usize::MAX)))
        }
        _ => Err(format!("`max_body_bytes` is {value}, allowed 1 to {max}")),
    }
}

/// A `key=value,key=value` setting as a map (vendor ids by canonical code).
pub fn pairs(text: Option<&str>) -> BTreeMap<String, String> {
    text.unwrap_or("")
        .split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .collect()
}

/// The message a sink received, as JSON.
pub fn input(body: &[u8]) -> Result<Value, CallOutcome> {
    serde_json::from_slice(body).map_err(|e| CallOutcome::Permanent {
        reason: format!("the message is not JSON: {e}"),
    })
}

/// A text field of the message.
pub fn field<'a>(value: &'a Value, name: &str) -> Result<&'a str, CallOutcome> {
    value
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| CallOutcome::Permanent {
            reason: format!("the message has no `{name}`"),
        })
}

/// Why an order's line price cannot travel as an exact JSON number (`None` when all can):
/// for vendors that take prices as numbers, a price is refused rather than rounded or left out.
pub fn inexact_price(order: &Value) -> Option<String> {
    let lines = order.get("lines")?.as_array()?;
    lines.iter().find_map(|line| {
        let price = line.get("unit_price").filter(|p| p.is_object())?;
        money_number(price).is_none().then(|| {
            format!(
                "the unit price {} of line {} is not exactly a JSON number",
                price, line["sku"]
            )
        })
    })
}

/// A seconds header (`Retry-After`, `x-retry-after`) as a bounded duration.
pub fn seconds_header(headers: &HeaderMap, name: &str) -> Option<Duration> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s.min(600.0)).ok())
}

/// A 2xx answer that cannot be read as the API defines it (cut off, spoiled, an error page):
/// worth trying again, never read as nothing.
pub fn unreadable(reason: String) -> CallOutcome {
    CallOutcome::Transient {
        class: "unreadable_answer".to_string(),
        reason,
        retry_after: None,
    }
}

/// What a JSON value is, for reasons.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The list at `path` in `body` (the body itself for an empty path). A missing list is empty
/// when `missing_is_empty` (vendors that leave empty lists out, as Square does) and otherwise
/// a failure, as is anything but a list there: a wrong answer must not read as no records.
pub fn list_at(body: &Value, path: &[&str], missing_is_empty: bool) -> Result<Vec<Value>, String> {
    let mut at = body;
    for (depth, key) in path.iter().enumerate() {
        match at.get(key) {
            Some(next) => at = next,
            None if missing_is_empty && at.is_object() => return Ok(Vec::new()),
            None => {
                let here = if depth == 0 {
                    "the answer".to_string()
                } else {
                    format!("`{}`", path[..depth].join("."))
                };
                let fields = at
                    .as_object()
                    .map(|o| o.keys().take(10).cloned().collect::<Vec<_>>().join(", "))
                    .map_or_else(
                        || format!("it is {}", kind(at)),
                        |f| format!("its fields: {f}"),
                    );
                return Err(format!("{here} has no `{key}` ({fields})"));
            }
        }
    }
    match at {
        Value::Array(found) => Ok(found.clone()),
        Value::Null if missing_is_empty => Ok(Vec::new()),
        other => Err(format!(
            "`{}` in the answer is {}, not a list",
            if path.is_empty() {
                "the body".to_string()
            } else {
                path.join(".")
            },
            kind(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn https_endpoints_are_reachable_in_principle() {
        // Nothing listens there: a connection failure (transient), not an unsupported
        // scheme (which would make every real SaaS endpoint a permanent failure).
        let client = build().unwrap();
        let outcome = send(client.get("https://127.0.0.1:9/"), Duration::from_secs(5)).await;
        match outcome {
            Err(CallOutcome::Transient { class, .. }) => assert_eq!(class, "connect"),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("nothing should answer on port 9"),
        }
    }

    #[test]
    fn money_and_pairs() {
        assert_eq!(minor_to_decimal(1999, 2), "19.99");
        assert_eq!(minor_to_decimal(-5, 2), "-0.05");
        assert_eq!(minor_to_decimal(1200, 0), "1200");
        assert_eq!(
            money_text(&serde_json::json!({"amount": 250, "currency": "KWD"})).as_deref(),
            Some("0.250")
        );
        assert_eq!(
            money_text(&serde_json::json!({"amount": 1500, "currency": "JPY"})).as_deref(),
            Some("1500")
        );
        assert_eq!(
            money_text(&serde_json::json!({"amount": 1500, "currency": "XYZ"})),
            None
        );
        assert_eq!(
            money_number(&serde_json::json!({"amount": 1999, "currency": "USD"})),
            Some(serde_json::json!(19.99))
        );
        assert_eq!(
            money_number(&serde_json::json!({"amount": i64::MAX, "currency": "USD"})),
            None
        );
        let order = |amount: i64| serde_json::json!({"lines": [{"sku": "A", "unit_price": {"amount": amount, "currency": "USD"}}]});
        assert_eq!(inexact_price(&order(1999)), None);
        assert!(inexact_price(&order(i64::MAX)).is_some());
        assert_eq!(minor_units("1500", "JPY"), Some(1500));
        assert_eq!(minor_units("19.99", "USD"), Some(1999));
        assert_eq!(minor_units("19.999", "USD"), None);
        assert_eq!(minor_units("0.250", "KWD"), Some(250));
        let map = pairs(Some("WH-MAIN=655441491, STORE-NYC-SOHO = 1,broken,=x"));
        assert_eq!(map.len(), 2);
        assert_eq!(map["STORE-NYC-SOHO"], "1");
    }
}

/// `text` percent-encoded for a URL, keeping unreserved characters and those in `keep`.
pub fn percent_encode(text: &str, keep: &[u8]) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b if keep.contains(&b) => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The class of a failed poll's reason, for `omniflow_poll_errors_total{reason}`: what the
/// connectors' own messages say, most specific first.
pub fn poll_reason(error: &str) -> &'static str {
    let has = |needle: &str| error.contains(needle);
    // An answer's status speaks first (its body's words come after it in the reason).
    let status = error
        .split_once("HTTP ")
        .and_then(|(before, rest)| {
            (before.is_empty() || before.ends_with(": "))
                .then(|| rest.get(..3)?.parse::<u16>().ok())
        })
        .flatten();
    match status {
        Some(429) => return "rate_limited",
        Some(401 | 403) => return "auth",
        Some(408) => return "timeout",
        Some(500..=599) => return "server_error",
        Some(400..=499) if !error.starts_with("the login") => return "refused",
        _ => {}
    }
    if has("THROTTLED") || has("RATE_LIMITED") || has("throttl") {
        "rate_limited"
    } else if has("UNAUTHENTICATED")
        || has("ACCESS_DENIED")
        || has("login")
        || has("credentials were refused")
    {
        "auth"
    } else if has("GraphQL") {
        "graphql_error"
    } else if has("not JSON") || has("cut off") || has("unreadable") {
        "unreadable_answer"
    } else if has("timed out") {
        "timeout"
    } else if has("connection failed") || has("request failed") {
        "connect"
    } else if has("next page") || has("pages and the API") {
        "paging"
    } else if has("nothing at")
        || has("not a list")
        || has("no `")
        || has("not an array")
        || has("error(s)")
    {
        "unexpected_answer"
    } else if has("refused") {
        "refused"
    } else {
        "other"
    }
}

#[cfg(test)]
mod poll_reason_tests {
    use super::poll_reason;

    #[test]
    fn reasons_fall_into_classes() {
        for (error, class) in [
            (
                "the 200 answer is not JSON (EOF while parsing): <html>",
                "unreadable_answer",
            ),
            (
                "the answer was cut off: error decoding response body",
                "unreadable_answer",
            ),
            ("timed out after 30s", "timeout"),
            ("connection failed: error sending request", "connect"),
            ("HTTP 429: slow down", "rate_limited"),
            ("HTTP 503: unavailable", "server_error"),
            ("the login was refused: HTTP 401: bad password", "auth"),
            ("the login was refused: HTTP 400: bad grant", "auth"),
            (
                "the credentials were refused again after a fresh login: HTTP 401: ",
                "auth",
            ),
            ("HTTP 404: {\"errors\":\"Not Found\"}", "refused"),
            ("the GraphQL answer reports 1 error(s): undefinedField: Field 'x' doesn't exist", "graphql_error"),
            ("the GraphQL answer reports 1 error(s): ACCESS_DENIED: no scope", "auth"),
            ("the API names a next page on another host (http://e); it is not followed, so the connection's credentials stay with the API", "paging"),
            ("HTTP 404: {\"error\": \"request failed, login expired\"}", "refused"),
            (
                "the answer has nothing at `$.orders[*]` (its fields: data)",
                "unexpected_answer",
            ),
            (
                "the answer reports 1 error(s): Throttled",
                "unexpected_answer",
            ),
            (
                "the GraphQL answer reports 1 error(s): THROTTLED: Throttled",
                "rate_limited",
            ),
            (
                "the API answered the same next page again (\"x\"); stopping the poll",
                "paging",
            ),
            ("the state is read-only", "other"),
        ] {
            assert_eq!(poll_reason(error), class, "{error}");
        }
    }
}
