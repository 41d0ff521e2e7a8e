//! The connector side of a `test` block: `answers` (what each sink's target answers, call
//! by call, or each page a poll source reads), `requests` (what each sink or poll source
//! must send), `dead_letters` (which sinks end in a dead letter, and why) and `env` (the
//! values of `env(...)` and `secret(...)` names). Each is a JSON object keyed by node
//! (by name for `env`); its shape is checked here.

use crate::diagnostics::{codes, Diagnostic, Diagnostics};
use crate::ir::{self, NodeKind, TestAnswer, TestCalls, TestRequest};
use crate::source::Span;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The fields of a test block that make it a whole-flow test.
pub const FIELDS: [&str; 4] = ["answers", "requests", "dead_letters", "env"];

/// Reads one of [`FIELDS`] into `calls`; reports a wrong shape (`E0212`) or a key that is
/// not a sink of the flow (`E0104`, `E0408`).
pub fn read(
    calls: &mut TestCalls,
    name: &str,
    value: &Value,
    span: Span,
    flow: &ir::Flow,
    diags: &mut Diagnostics,
) {
    let Some(map) = value.as_object() else {
        return invalid(name, span, "a JSON object", diags);
    };
    if name == "env" {
        for (key, value) in map {
            match value.as_str() {
                Some(text) => {
                    calls.env.insert(key.clone(), text.to_string());
                }
                None => invalid(name, span, "an object of strings", diags),
            }
        }
        return;
    }
    for (sink, value) in map {
        if !is_callee(flow, sink, name != "dead_letters", span, diags) {
            continue;
        }
        match name {
            "answers" => match list(value).map(|l| l.iter().map(answer).collect()) {
                Some(Some(answers)) => {
                    calls.answers.insert(sink.clone(), answers);
                }
                _ => invalid(
                    name,
                    span,
                    "an object of lists of answers (status 200 to 599) like {\"status\": 201, \"headers\": {...}, \"body\": ...}",
                    diags,
                ),
            },
            "requests" => match list(value).map(|l| l.iter().map(request).collect()) {
                Some(Some(requests)) => {
                    calls.requests.insert(sink.clone(), requests);
                }
                _ => invalid(
                    name,
                    span,
                    "an object of lists of requests like {\"method\": \"POST\", \"path\": \"/x\", \"headers\": {...}, \"body\": ...}",
                    diags,
                ),
            },
            _ => match value.as_str() {
                Some(reason) => {
                    calls.dead_letters.insert(sink.clone(), reason.to_string());
                }
                None => invalid(name, span, "an object of reason texts", diags),
            },
        }
    }
}

fn list(value: &Value) -> Option<&Vec<Value>> {
    value.as_array().filter(|l| !l.is_empty())
}

fn answer(value: &Value) -> Option<TestAnswer> {
    let map = only(value, &["status", "headers", "body"])?;
    let status = map
        .get("status")?
        .as_u64()
        // A final answer: a 1xx is no answer to a call.
        .filter(|s| (200..=599).contains(s))?;
    Some(TestAnswer {
        status: status as u16,
        headers: headers(map)?,
        body: map.get("body").cloned(),
    })
}

fn request(value: &Value) -> Option<TestRequest> {
    let map = only(value, &["method", "path", "headers", "body"])?;
    let text = |key: &str| match map.get(key) {
        None => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    };
    Some(TestRequest {
        method: text("method")?.map(|m| m.to_ascii_uppercase()),
        path: text("path")?,
        headers: headers(map)?,
        body: map.get("body").cloned(),
    })
}

/// The object, when it has no keys but `allowed`.
fn only<'a>(value: &'a Value, allowed: &[&str]) -> Option<&'a Map<String, Value>> {
    let map = value.as_object()?;
    map.keys()
        .all(|k| allowed.contains(&k.as_str()))
        .then_some(map)
}

fn headers(map: &Map<String, Value>) -> Option<BTreeMap<String, String>> {
    match map.get("headers") {
        None => Some(BTreeMap::new()),
        Some(Value::Object(headers)) => headers
            .iter()
            .map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_string())))
            .collect(),
        Some(_) => None,
    }
}

/// A `schedule` source polls on its cron's ticks, which a test does not wait for: only
/// `poll` sources, which poll when they start, take pages.
pub fn is_polled(kind: &NodeKind) -> bool {
    matches!(kind, NodeKind::Source { kind, .. } if kind == "poll")
}

/// True when `name` is a sink of the flow, or (with `sources`) a source that polls.
fn is_callee(
    flow: &ir::Flow,
    name: &str,
    sources: bool,
    span: Span,
    diags: &mut Diagnostics,
) -> bool {
    match flow.node(name) {
        Some(node) if matches!(node.kind, NodeKind::Sink { .. }) => true,
        Some(node) if sources && is_polled(&node.kind) => true,
        Some(node) => {
            let (what, help) = match sources {
                true => (
                    "a sink or a polling source",
                    "key the object by the flow's sinks, or by a source that polls",
                ),
                false => ("a sink", "key the object by the names of the flow's sinks"),
            };
            diags.push(
                Diagnostic::error(
                    codes::WRONG_NODE_KIND,
                    span,
                    format!("`{name}` is a {}, not {what}", node.kind.word()),
                )
                .label("answers and requests belong to sinks and polling sources; dead letters to sinks")
                .help(help),
            );
            false
        }
        None => {
            let sinks: Vec<&str> = flow
                .nodes
                .iter()
                .filter(|n| matches!(n.kind, NodeKind::Sink { .. }))
                .map(|n| n.name.as_str())
                .collect();
            diags.push(
                Diagnostic::error(codes::UNKNOWN_NODE, span, format!("unknown sink `{name}`"))
                    .label(format!("flow `{}` has no sink of that name", flow.name))
                    .help(format!("the flow's sinks are {}", sinks.join(", "))),
            );
            false
        }
    }
}

fn invalid(name: &str, span: Span, want: &str, diags: &mut Diagnostics) {
    invalid_field(
        name,
        span,
        want,
        "see \"Tests with connector answers\" in docs/language.md",
        diags,
    );
}

/// Reports (`E0212`) a test field whose value is not `want`.
pub(super) fn invalid_field(
    name: &str,
    span: Span,
    want: &str,
    help: &str,
    diags: &mut Diagnostics,
) {
    diags.push(
        Diagnostic::error(
            codes::INVALID_TEST,
            span,
            format!("test field `{name}` must be {want}"),
        )
        .label(format!("expected {want}"))
        .help(help),
    );
}
