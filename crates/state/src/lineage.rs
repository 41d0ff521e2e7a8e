//! Lineage: what happened to each message, as events kept beside the inbox and the
//! outcomes. A message's events share its correlation id; each event names the terms it
//! can be found by (business keys, the documents a target answered with), so
//! `omniflow trace` finds a message by its channel order id, its correlation id or the ERP
//! document it became, through an index, never a scan.

use serde::{Deserialize, Serialize};

/// Longest term kept (longer ones are cut at a character boundary).
pub const MAX_TERM: usize = 200;
/// Most terms one event is indexed by.
pub const MAX_TERMS: usize = 8;
/// Most rows of one term a trace reads (the newest): how many messages a common term
/// (a customer, a location) can bring into one trace.
pub const TERM_ROWS: usize = 1_000;

/// One step of one message's way through a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (milliseconds since the epoch).
    pub at_ms: i64,
    /// The message's correlation id: the same for all its events.
    pub correlation: String,
    pub flow: String,
    /// `accepted`, `rejected`, `delivered`, `duplicate`, `dead_lettered`, `replayed`.
    pub step: String,
    /// The node (source, rejecting node or sink) it concerns.
    pub node: String,
    /// What the step knows, as JSON (the source and inbox id; a sink's key, attempts and
    /// the document it became; a reason).
    pub detail: serde_json::Value,
    /// What the event can be found by, besides its correlation id.
    #[serde(skip)]
    pub terms: Vec<String>,
}

impl Event {
    /// The terms to store: at most [`MAX_TERMS`], each at most [`MAX_TERM`] bytes,
    /// without empty ones, duplicates or the correlation id itself (found directly).
    pub fn stored_terms(&self) -> Vec<&str> {
        let mut terms: Vec<&str> = Vec::new();
        for term in &self.terms {
            let term = cut(term.trim());
            if !term.is_empty() && term != self.correlation && !terms.contains(&term) {
                terms.push(term);
            }
            if terms.len() == MAX_TERMS {
                break;
            }
        }
        terms
    }
}

/// `text` cut to at most [`MAX_TERM`] bytes at a character boundary.
pub fn cut(text: &str) -> &str {
    if text.len() <= MAX_TERM {
        return text;
    }
    let mut end = MAX_TERM;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(terms: &[&str]) -> Event {
        Event {
            at_ms: 1,
            correlation: "c1".into(),
            flow: "f".into(),
            step: "accepted".into(),
            node: "n".into(),
            detail: serde_json::json!({}),
            terms: terms.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn at(correlation: &str, at_ms: i64, step: &str, terms: &[&str]) -> Event {
        Event {
            at_ms,
            correlation: correlation.into(),
            step: step.into(),
            ..event(terms)
        }
    }

    #[tokio::test]
    async fn a_trace_finds_every_message_a_term_names_in_time_order_and_retention_forgets_it() {
        for state in crate::testing::each("lineage") {
            let kind = state.kind();
            let store = &state.store;
            let events = vec![
                at("m1", 1_000, "accepted", &[]),
                at("m1", 2_000, "delivered", &["amazon:1", "SO-7\0x"]),
                at("m2", 3_000, "accepted", &[]),
                at("m2", 4_000, "delivered", &["ship-9", "amazon:1"]),
                at("m3", 5_000, "delivered", &["amazon:2"]),
            ];
            store
                .call(move |b| b.record_lineage(&events))
                .await
                .unwrap();
            let steps = |found: Vec<Event>| -> Vec<(String, i64)> {
                found
                    .into_iter()
                    .map(|e| (e.correlation, e.at_ms))
                    .collect()
            };
            let by_order = store.call(|b| b.lineage("amazon:1", 100)).await.unwrap();
            assert_eq!(
                steps(by_order),
                [("m1", 1_000), ("m1", 2_000), ("m2", 3_000), ("m2", 4_000)]
                    .map(|(c, t)| (c.to_string(), t)),
                "{kind}"
            );
            let by_document = store.call(|b| b.lineage("SO-7\0x", 100)).await.unwrap();
            assert_eq!(by_document.len(), 2, "{kind}");
            let by_id = store.call(|b| b.lineage("m3", 100)).await.unwrap();
            assert_eq!(steps(by_id), [("m3".to_string(), 5_000)], "{kind}");
            // Cut to the newest events, still oldest first.
            let limited = store.call(|b| b.lineage("amazon:1", 3)).await.unwrap();
            assert_eq!(
                steps(limited),
                [("m1", 2_000), ("m2", 3_000), ("m2", 4_000)].map(|(c, t)| (c.to_string(), t)),
                "{kind}"
            );
            assert!(store
                .call(|b| b.lineage("nothing", 10))
                .await
                .unwrap()
                .is_empty());

            // Retention: what is older than 3.5 s goes, the rest stays.
            let removed = store.call(|b| b.forget_lineage(3_500, 100)).await.unwrap();
            assert_eq!(removed, 3, "{kind}");
            let left = store.call(|b| b.lineage("amazon:1", 100)).await.unwrap();
            assert_eq!(steps(left), [("m2".to_string(), 4_000)], "{kind}");
            assert!(
                store
                    .call(|b| b.lineage("SO-7\0x", 10))
                    .await
                    .unwrap()
                    .is_empty(),
                "{kind}: a forgotten term still finds its message"
            );
        }
    }

    #[test]
    fn stored_terms_are_bounded_distinct_and_never_the_correlation_id() {
        let long = "é".repeat(150);
        let many: Vec<String> = (0..20).map(|n| format!("t{n}")).collect();
        let mut all = vec!["", " a ", "a", "c1", long.as_str()];
        all.extend(many.iter().map(String::as_str));
        let e = event(&all);
        let terms = e.stored_terms();
        assert_eq!(terms.len(), MAX_TERMS);
        assert_eq!(terms[0], "a");
        assert!(terms[1].len() <= MAX_TERM && terms[1].starts_with('é'));
        assert!(!terms.contains(&"c1"));
    }
}
