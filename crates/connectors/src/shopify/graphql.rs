//! Shopify's GraphQL Admin API, which the sinks write through with `api = "graphql"`: one
//! `POST graphql.json` per operation. An answer's `errors` are failures: `THROTTLED`
//! waits until the cost bucket holds the query's requested cost again (from
//! `extensions.cost.throttleStatus`), `INTERNAL_SERVER_ERROR` is transient, the rest are
//! permanent. A mutation's `userErrors` are refusals. A cost report that shows the bucket
//! nearly empty holds the sinks back until it has refilled to a quarter.

use super::Store;
use crate::client;
use crate::CallOutcome;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// What a mutation costs when the answer does not say.
const MUTATION_COST: f64 = 10.0;
/// Share of the bucket below which the sinks hold back.
const BUCKET_LOW: f64 = 0.1;
/// Share of the bucket they wait for before going on.
const BUCKET_RESUME: f64 = 0.25;
/// The longest a cost report makes a call wait.
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// The longest `@idempotent` key sent as it is; longer keys are sent as their digest.
const KEY_MAX: usize = 255;

impl Store {
    /// Runs one GraphQL operation and returns its `data`.
    pub async fn graphql(
        &self,
        query: &str,
        variables: Value,
        timeout: Duration,
    ) -> Result<Value, CallOutcome> {
        let url = format!("{}/graphql.json", self.base);
        let body = json!({ "query": query, "variables": variables }).to_string();
        let request = self
            .request(reqwest::Method::POST, &url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let reply = self.send(request, timeout).await?;
        let mut answer = reply.document().map_err(client::unreadable)?;
        let cost = answer["extensions"]["cost"].take();
        if let Some(wait) = refill_wait(&cost, None) {
            self.hold.set(Some(Instant::now() + wait));
        }
        if let Some(errors) = answer["errors"].as_array().filter(|e| !e.is_empty()) {
            return Err(failure(errors, &cost));
        }
        match answer.get_mut("data").map(Value::take) {
            Some(data @ Value::Object(_)) => Ok(data),
            _ => Err(client::unreadable(format!(
                "Shopify's GraphQL answer has no data: {}",
                reply.excerpt()
            ))),
        }
    }
}

/// How long until the bucket holds `needed` points (without `needed`: a quarter of it,
/// when it is below a tenth).
fn refill_wait(cost: &Value, needed: Option<f64>) -> Option<Duration> {
    let status = &cost["throttleStatus"];
    let available = status["currentlyAvailable"].as_f64()?;
    let maximum = status["maximumAvailable"].as_f64()?;
    let rate = status["restoreRate"].as_f64().filter(|r| *r > 0.0)?;
    let target = match needed {
        Some(points) => points.min(maximum),
        None if available < maximum * BUCKET_LOW => maximum * BUCKET_RESUME,
        None => return None,
    };
    // A spoiled report (a rate near zero, a huge bucket) waits the longest, never panics.
    let seconds = ((target - available) / rate).min(LONGEST_WAIT.as_secs_f64());
    (seconds > 0.0).then(|| Duration::try_from_secs_f64(seconds).unwrap_or(LONGEST_WAIT))
}

/// The outcome of an answer with top-level `errors`.
fn failure(errors: &[Value], cost: &Value) -> CallOutcome {
    let code = |e: &Value| e["extensions"]["code"].as_str().unwrap_or("").to_string();
    let text = errors
        .iter()
        .map(|e| {
            let message = e["message"].as_str().unwrap_or("(no message)");
            match code(e).as_str() {
                "" => message.to_string(),
                c => format!("{c}: {message}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let reason = format!("Shopify GraphQL: {text}");
    if errors.iter().any(|e| code(e) == "THROTTLED") {
        let needed = cost["requestedQueryCost"].as_f64().unwrap_or(MUTATION_COST);
        return CallOutcome::Transient {
            class: "rate_limited".into(),
            reason,
            retry_after: Some(refill_wait(cost, Some(needed)).unwrap_or(Duration::from_secs(1))),
        };
    }
    if errors.iter().any(|e| {
        matches!(
            code(e).as_str(),
            "INTERNAL_SERVER_ERROR" | "SERVICE_UNAVAILABLE"
        )
    }) {
        return CallOutcome::Transient {
            class: "server_error".into(),
            reason,
            retry_after: None,
        };
    }
    CallOutcome::Permanent { reason }
}

/// True when a payload's `userErrors` has `code`.
pub fn has_code(payload: &Value, code: &str) -> bool {
    payload["userErrors"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e["code"] == code))
}

/// A mutation payload's `userErrors` as a refusal of `what`; an attempt under the same
/// `@idempotent` key still running is worth retrying.
pub fn refused(payload: &Value, what: &str) -> Result<(), CallOutcome> {
    let Some(errors) = payload["userErrors"].as_array().filter(|e| !e.is_empty()) else {
        return Ok(());
    };
    if has_code(payload, "IDEMPOTENCY_CONCURRENT_REQUEST") {
        return Err(CallOutcome::Transient {
            class: "conflict".into(),
            reason: format!("Shopify is still running an earlier attempt at {what}"),
            retry_after: Some(Duration::from_secs(1)),
        });
    }
    let text = errors
        .iter()
        .map(|e| {
            let field = e["field"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .map(|p| p.as_str().map_or_else(|| p.to_string(), String::from))
                        .collect::<Vec<_>>()
                        .join(".")
                })
                .unwrap_or_default();
            let mut line = e["message"].as_str().unwrap_or("(no message)").to_string();
            if let Some(code) = e["code"].as_str() {
                line = format!("{code} {line}");
            }
            if !field.is_empty() {
                line.push_str(&format!(" ({field})"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(CallOutcome::Permanent {
        reason: format!("Shopify refused {what}: {text}"),
    })
}

/// The mutation's payload in `data`, or an unreadable answer.
pub fn payload<'d>(data: &'d Value, mutation: &str) -> Result<&'d Value, CallOutcome> {
    data.get(mutation)
        .filter(|p| p.is_object())
        .ok_or_else(|| client::unreadable(format!("Shopify's answer has no `{mutation}` payload")))
}

/// The global id of a REST id (`123` → `gid://shopify/KIND/123`); a global id stays.
pub fn gid(kind: &str, id: &str) -> String {
    if id.starts_with("gid://") {
        id.to_string()
    } else {
        format!("gid://shopify/{kind}/{id}")
    }
}

/// The REST id of a global id (`gid://shopify/Order/123` → `123`).
pub fn legacy(gid: &str) -> &str {
    gid.rsplit('/').next().unwrap_or(gid)
}

/// The `@idempotent` key of a message key: as it is, or its SHA-256 when it is too long.
pub fn idempotency_key(key: &str) -> String {
    if key.len() <= KEY_MAX {
        return key.to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A search term matching a field exactly: `sku:"A \"B\""`.
pub fn search_term(field: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{field}:\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(available: f64, requested: f64) -> Value {
        json!({"requestedQueryCost": requested, "throttleStatus": {
            "maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": 100.0}})
    }

    #[test]
    fn throttled_waits_for_its_cost() {
        let errors = [json!({"message": "Throttled", "extensions": {"code": "THROTTLED"}})];
        match failure(&errors, &cost(50.0, 250.0)) {
            CallOutcome::Transient {
                class, retry_after, ..
            } => {
                assert_eq!(class, "rate_limited");
                assert_eq!(retry_after, Some(Duration::from_secs(2)));
            }
            other => panic!("{other:?}"),
        }
        let internal =
            [json!({"message": "boom", "extensions": {"code": "INTERNAL_SERVER_ERROR"}})];
        assert!(matches!(
            failure(&internal, &Value::Null),
            CallOutcome::Transient { class, .. } if class == "server_error"
        ));
        let unknown = [json!({"message": "Field 'x' doesn't exist on type 'Order'"})];
        assert!(matches!(
            failure(&unknown, &Value::Null),
            CallOutcome::Permanent { reason } if reason.contains("Field 'x'")
        ));
    }

    #[test]
    fn a_low_bucket_holds_back_until_a_quarter() {
        assert_eq!(refill_wait(&cost(1000.0, 10.0), None), None);
        assert_eq!(
            refill_wait(&cost(100.0, 10.0), None),
            Some(Duration::from_secs(4))
        );
        assert_eq!(refill_wait(&Value::Null, None), None);
        let spoiled = json!({"throttleStatus": {"maximumAvailable": 1e308,
            "currentlyAvailable": 0.0, "restoreRate": 1e-300}});
        assert_eq!(refill_wait(&spoiled, None), Some(LONGEST_WAIT));
        assert_eq!(refill_wait(&spoiled, Some(f64::MAX)), Some(LONGEST_WAIT));
        // A cost beyond the bucket waits for a full bucket, at most a minute.
        assert_eq!(
            refill_wait(&cost(0.0, 1e9), Some(1e9)),
            Some(Duration::from_secs(20))
        );
    }

    #[test]
    fn user_errors_name_code_message_and_field() {
        let payload = json!({"userErrors": [{"code": "INVALID_INVENTORY_ITEM",
            "field": ["input", "quantities", "0", "inventoryItemId"], "message": "not found"}]});
        match refused(&payload, "the quantity") {
            Err(CallOutcome::Permanent { reason }) => assert_eq!(
                reason,
                "Shopify refused the quantity: INVALID_INVENTORY_ITEM not found (input.quantities.0.inventoryItemId)"
            ),
            other => panic!("{other:?}"),
        }
        assert!(refused(&json!({"userErrors": []}), "x").is_ok());
        let running = json!({"userErrors": [{"code": "IDEMPOTENCY_CONCURRENT_REQUEST", "message": "in progress"}]});
        assert!(matches!(
            refused(&running, "the quantity"),
            Err(CallOutcome::Transient { class, .. }) if class == "conflict"
        ));
    }

    #[test]
    fn ids_keys_and_search_terms() {
        assert_eq!(gid("Order", "5"), "gid://shopify/Order/5");
        assert_eq!(
            gid("Order", "gid://shopify/Order/5"),
            "gid://shopify/Order/5"
        );
        assert_eq!(legacy("gid://shopify/Fulfillment/77"), "77");
        assert_eq!(idempotency_key("k-1"), "k-1");
        let long = idempotency_key(&"x".repeat(300));
        assert!(long.starts_with("sha256:") && long.len() == 71);
        assert_eq!(search_term("sku", r#"A "B"\"#), r#"sku:"A \"B\"\\""#);
    }
}
