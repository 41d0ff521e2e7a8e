//! The event bus on the embedded backend (`url = "embedded:"`; `nats://` URLs go to
//! `nats.rs`, JetStream): a publish appends the
//! message to the inbox of every flow source subscribed to a matching subject, in one
//! transaction that also records the message id, so a republished message is delivered to
//! each subscriber once. Subjects follow NATS rules: `.`-separated tokens, `*` matches one
//! token, a trailing `>` matches the rest. Subjects are minijinja templates over the message.

pub mod nats;

use omniflow_connectors::{Call, CallFuture, CallOutcome, SinkConnector};
use omniflow_state::Store;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Messages published, by subject pattern of the sink.
pub const PUBLISHED: &str = "omniflow_bus_published_total";

/// A flow's inbox as the bus sees it: where a subscription appends what it receives.
pub trait Inbox {
    /// The flow the inbox belongs to.
    fn flow_name(&self) -> &str;
    /// The state store the inbox lives in.
    fn store(&self) -> &Store;
    /// Wakes the flow's processor after an append.
    fn appended(&self);
}

struct Subscriber {
    pattern: String,
    inbox: Rc<dyn Inbox>,
    source: String,
}

/// The subscriptions of a runner's embedded bus.
#[derive(Default)]
pub struct Subscribers(RefCell<Vec<Subscriber>>);

impl Subscribers {
    /// Forgets every subscription (a runner that stops clears them).
    pub fn clear(&self) {
        self.0.borrow_mut().clear();
    }

    /// The flows and sources subscribed to a subject.
    fn matching(&self, subject: &str) -> Vec<(Rc<dyn Inbox>, String)> {
        self.0
            .borrow()
            .iter()
            .filter(|sub| matches(&sub.pattern, subject))
            .map(|sub| (sub.inbox.clone(), sub.source.clone()))
            .collect()
    }
}

/// True when the connection's bus is NATS JetStream (`nats://…`).
pub fn on_nats(settings: &BTreeMap<String, Value>) -> bool {
    settings
        .get("url")
        .and_then(Value::as_str)
        .is_some_and(|u| u.starts_with("nats://"))
}

fn embedded(settings: &BTreeMap<String, Value>) -> Result<(), String> {
    match settings.get("url").and_then(Value::as_str) {
        Some(url) if url.starts_with("embedded") => Ok(()),
        Some(url) => Err(format!(
            "bus url `{url}`: use `embedded:` (in-process, on the state store) or `nats://host:port` (JetStream)"
        )),
        None => Err("bus connection needs `url`".into()),
    }
}

/// True when `subject` matches the NATS-style `pattern`.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in pattern.split('.') {
        if token == ">" {
            return subject_tokens.next().is_some();
        }
        match subject_tokens.next() {
            Some(s) if token == "*" || token == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

/// The subject of one message: the sink's `subject`, rendered over the message when it is
/// a template.
pub fn subject_of(template: &str, body: &[u8]) -> Result<String, CallOutcome> {
    if !template.contains("{{") {
        return Ok(template.to_string());
    }
    let context: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    minijinja::Environment::new()
        .render_str(template, context)
        .map_err(|e| CallOutcome::Permanent {
            reason: format!("subject template: {e}"),
        })
}

/// Registers a `bus.subscribe` source.
pub fn subscribe(
    inbox: Rc<dyn Inbox>,
    subscribers: &Subscribers,
    source: &str,
    settings: &BTreeMap<String, Value>,
    options: &BTreeMap<String, Value>,
) -> Result<(), String> {
    embedded(settings)?;
    let pattern = options
        .get("subject")
        .and_then(Value::as_str)
        .ok_or("a bus source needs `subject`")?
        .to_string();
    subscribers.0.borrow_mut().push(Subscriber {
        pattern,
        inbox,
        source: source.to_string(),
    });
    Ok(())
}

/// `bus.publish`.
pub struct Publish {
    subject: String,
    subscribers: Rc<Subscribers>,
}

impl Publish {
    /// Reads the `subject` option.
    pub fn new(
        subscribers: &Rc<Subscribers>,
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<Publish, String> {
        embedded(settings)?;
        Ok(Publish {
            subscribers: subscribers.clone(),
            subject: options
                .get("subject")
                .and_then(Value::as_str)
                .ok_or("a bus sink needs `subject`")?
                .to_string(),
        })
    }
}

impl SinkConnector for Publish {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let subject = match subject_of(&self.subject, call.body) {
                Ok(s) => s,
                Err(e) => return e,
            };
            let targets = self.subscribers.matching(&subject);
            for (inbox, source) in targets {
                let (flow, key, payload) = (
                    inbox.flow_name().to_string(),
                    call.key.to_string(),
                    call.body.to_vec(),
                );
                let stored = inbox
                    .store()
                    .call(move |b| {
                        let namespace = format!("bus:{flow}/{source}");
                        let delivered = omniflow_state::OutcomeStatus::Delivered;
                        if !b.record_new_outcome(&namespace, &key, delivered)? {
                            return Ok(false);
                        }
                        b.append(&flow, &source, &[payload], None)?;
                        Ok(true)
                    })
                    .await;
                match stored {
                    Ok(true) => inbox.appended(),
                    Ok(false) => {}
                    Err(reason) => {
                        return CallOutcome::Transient {
                            class: "bus".into(),
                            reason: format!("subject {subject}: {reason}"),
                            retry_after: None,
                        }
                    }
                }
            }
            CallOutcome::Ok
        })
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn nats_subject_matching() {
        assert!(matches("orders.accepted.amazon", "orders.accepted.amazon"));
        assert!(matches("orders.*.amazon", "orders.accepted.amazon"));
        assert!(matches("orders.>", "orders.accepted.amazon"));
        assert!(!matches("orders.>", "orders"));
        assert!(!matches("orders.*", "orders.accepted.amazon"));
        assert!(!matches("orders.accepted", "orders.accepted.amazon"));
    }
}
