//! A declared connector's answers to outcomes: the operation's rules, then the
//! connector's, then the defaults (2xx ok unless a GraphQL answer reports `errors`;
//! 401/403 authenticate again when a token can be fetched; 408, 425, 429 and 5xx
//! transient, honouring `Retry-After`; other statuses permanent with the answer).

use super::select::Path;
use crate::client::{self, Reply};
use crate::CallOutcome;
use omniflow_ir::declared::{Rule, Then};
use serde_json::Value;
use std::time::Duration;

/// What an answer means.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Ok,
    /// Fetch a token again and send once more.
    Reauth(String),
    Failed(CallOutcome),
}

/// One compiled rule.
pub struct Compiled {
    rule: Rule,
    when: Option<Path>,
    wait: Option<Path>,
}

/// Compiles rules (their paths were checked by the compiler).
pub fn compile(rules: &[Rule]) -> Result<Vec<Compiled>, String> {
    rules
        .iter()
        .map(|rule| {
            Ok(Compiled {
                when: rule.when.as_deref().map(Path::new).transpose()?,
                wait: rule.wait.as_deref().map(Path::new).transpose()?,
                rule: rule.clone(),
            })
        })
        .collect()
}

/// The transient class of a status.
fn class(status: u16) -> &'static str {
    match status {
        429 => "rate_limited",
        408 => "timeout",
        _ => "server_error",
    }
}

/// A reason from the answer: the status and the start of the body.
pub fn reason(reply: &Reply) -> String {
    format!("HTTP {}: {}", reply.status, reply.excerpt())
}

/// Classifies `reply` (`body` its JSON, when it is JSON). `renders` renders a rule's
/// reason template over the answer; `token_auth` is true when a token can be fetched
/// again; `graphql` when the request was a GraphQL operation.
pub fn decide(
    reply: &Reply,
    body: Option<&Value>,
    rules: &[&[Compiled]],
    renders: &dyn Fn(&str) -> String,
    token_auth: bool,
    graphql: bool,
) -> Decision {
    for compiled in rules.iter().flat_map(|r| r.iter()) {
        let rule = &compiled.rule;
        if !rule.status.is_empty()
            && !rule
                .status
                .iter()
                .any(|(lo, hi)| (*lo..=*hi).contains(&reply.status))
        {
            continue;
        }
        if let Some(when) = &compiled.when {
            let Some(body) = body else { continue };
            let selected = when.select(body);
            let matched = match &rule.equals {
                Some(want) => selected.contains(&want),
                None => selected.iter().any(|v| {
                    !matches!(v, Value::Null | Value::Bool(false))
                        && *v != &Value::Array(Vec::new())
                }),
            };
            if !matched {
                continue;
            }
        }
        let reason = rule
            .reason
            .as_deref()
            .map(renders)
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| reason(reply));
        return match rule.then {
            Then::Ok => Decision::Ok,
            Then::Reauth => Decision::Reauth(reason),
            Then::Permanent => Decision::Failed(CallOutcome::Permanent { reason }),
            Then::Transient => {
                let wait = rule
                    .wait_header
                    .as_deref()
                    .and_then(|h| client::seconds_header(&reply.headers, h))
                    .or_else(|| {
                        let seconds = compiled.wait.as_ref()?.first(body?)?;
                        let seconds = seconds
                            .as_f64()
                            .or_else(|| seconds.as_str()?.trim().parse().ok())?;
                        (seconds.is_finite() && seconds >= 0.0)
                            .then(|| Duration::from_secs_f64(seconds.min(600.0)))
                    });
                let class = if wait.is_some() && reply.ok() {
                    "rate_limited"
                } else {
                    class(reply.status)
                };
                Decision::Failed(CallOutcome::Transient {
                    class: class.into(),
                    reason,
                    retry_after: wait,
                })
            }
        };
    }
    defaults(reply, body, token_auth, graphql)
}

fn defaults(reply: &Reply, body: Option<&Value>, token_auth: bool, graphql: bool) -> Decision {
    if reply.ok() {
        if !graphql {
            return Decision::Ok;
        }
        let Some(body) = body else {
            return Decision::Failed(client::unreadable(format!(
                "the GraphQL answer is not JSON: {}",
                reply.excerpt()
            )));
        };
        let errors = body.get("errors").and_then(Value::as_array);
        return match errors.and_then(|e| e.first()) {
            None => Decision::Ok,
            Some(first) => graphql_error(first, errors.map_or(0, Vec::len), body),
        };
    }
    if matches!(reply.status, 401 | 403) && token_auth {
        return Decision::Reauth(reason(reply));
    }
    let retry_after = client::seconds_header(&reply.headers, "retry-after");
    Decision::Failed(client::outcome(reply, retry_after, reason(reply)))
}

/// A GraphQL `errors` entry: throttling is transient (waiting as the cost extension
/// says), an authentication error asks for a new token, the rest is permanent.
fn graphql_error(first: &Value, count: usize, body: &Value) -> Decision {
    let message = first
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| first.to_string(), String::from);
    let code = first
        .pointer("/extensions/code")
        .and_then(Value::as_str)
        .unwrap_or("");
    let reason = format!(
        "the GraphQL answer reports {count} error(s): {}{}",
        if code.is_empty() {
            String::new()
        } else {
            format!("{code}: ")
        },
        message.chars().take(300).collect::<String>()
    );
    match code {
        "THROTTLED" | "RATE_LIMITED" => {
            let wait = throttle_wait(body);
            Decision::Failed(CallOutcome::Transient {
                class: "rate_limited".into(),
                reason,
                retry_after: wait,
            })
        }
        "UNAUTHENTICATED" | "ACCESS_DENIED" | "FORBIDDEN" => Decision::Reauth(reason),
        "INTERNAL_SERVER_ERROR" | "SERVICE_UNAVAILABLE" | "TIMEOUT" => {
            Decision::Failed(CallOutcome::Transient {
                class: "server_error".into(),
                reason,
                retry_after: None,
            })
        }
        _ => Decision::Failed(CallOutcome::Permanent { reason }),
    }
}

/// How long a throttled GraphQL query waits: the cost it asked for, less what is left,
/// over the restore rate (`extensions.cost` as Shopify reports it).
fn throttle_wait(body: &Value) -> Option<Duration> {
    let cost = body.pointer("/extensions/cost")?;
    let requested = cost.get("requestedQueryCost")?.as_f64()?;
    let status = cost.get("throttleStatus")?;
    let available = status.get("currentlyAvailable")?.as_f64()?;
    let rate = status.get("restoreRate")?.as_f64().filter(|r| *r > 0.0)?;
    let seconds = ((requested - available) / rate).clamp(0.0, 600.0);
    seconds
        .is_finite()
        .then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(status: u16, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut map = hyper::HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        Reply {
            status,
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    fn decide_on(r: &Reply, rules: &[Compiled], token: bool, graphql: bool) -> Decision {
        let body: Option<Value> = serde_json::from_slice(&r.body).ok();
        decide(
            r,
            body.as_ref(),
            &[rules],
            &|t| t.to_string(),
            token,
            graphql,
        )
    }

    #[test]
    fn rules_then_defaults() {
        let rules = compile(&[
            Rule {
                status: vec![(200, 299)],
                when: Some("$.error".into()),
                equals: None,
                then: Then::Permanent,
                reason: Some("refused".into()),
                wait_header: None,
                wait: None,
            },
            Rule {
                status: vec![(503, 503)],
                when: None,
                equals: None,
                then: Then::Transient,
                reason: None,
                wait_header: None,
                wait: Some("$.retry_in".into()),
            },
        ])
        .unwrap();
        let refused = decide_on(
            &reply(200, r#"{"error": ["UserError", "no"]}"#, &[]),
            &rules,
            false,
            false,
        );
        assert_eq!(
            refused,
            Decision::Failed(CallOutcome::Permanent {
                reason: "refused".into()
            })
        );
        assert_eq!(
            decide_on(&reply(200, r#"{"error": null}"#, &[]), &rules, false, false),
            Decision::Ok
        );
        let wait = decide_on(&reply(503, r#"{"retry_in": 7}"#, &[]), &rules, false, false);
        assert!(
            matches!(wait, Decision::Failed(CallOutcome::Transient { retry_after: Some(d), .. }) if d == Duration::from_secs(7)),
            "{wait:?}"
        );
        let limited = decide_on(&reply(429, "", &[("retry-after", "3")]), &[], false, false);
        assert!(
            matches!(limited, Decision::Failed(CallOutcome::Transient { ref class, retry_after: Some(_), .. }) if class == "rate_limited"),
            "{limited:?}"
        );
        assert!(matches!(
            decide_on(&reply(401, "", &[]), &[], true, false),
            Decision::Reauth(_)
        ));
        assert!(matches!(
            decide_on(&reply(401, "", &[]), &[], false, false),
            Decision::Failed(CallOutcome::Permanent { .. })
        ));
        assert!(matches!(
            decide_on(&reply(422, "{}", &[]), &[], true, false),
            Decision::Failed(CallOutcome::Permanent { .. })
        ));
    }

    #[test]
    fn graphql_errors_are_failures() {
        let throttled = json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {"cost": {"requestedQueryCost": 102, "throttleStatus": {"currentlyAvailable": 2, "restoreRate": 50}}}});
        let d = decide_on(&reply(200, &throttled.to_string(), &[]), &[], false, true);
        assert!(
            matches!(d, Decision::Failed(CallOutcome::Transient { retry_after: Some(w), .. }) if w == Duration::from_secs(2)),
            "{d:?}"
        );
        let bad = json!({"errors": [{"message": "Field 'x' doesn't exist"}], "data": null});
        assert!(
            matches!(decide_on(&reply(200, &bad.to_string(), &[]), &[], false, true), Decision::Failed(CallOutcome::Permanent { reason }) if reason.contains("doesn't exist"))
        );
        assert!(
            matches!(decide_on(&reply(200, "<html>", &[]), &[], false, true), Decision::Failed(CallOutcome::Transient { class, .. }) if class == "unreadable_answer")
        );
        assert_eq!(
            decide_on(&reply(200, r#"{"data": {}}"#, &[]), &[], false, true),
            Decision::Ok
        );
    }
}
