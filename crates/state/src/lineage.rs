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
    /// The detail as stored: JSON text, written straight into a buffer (not through
    /// `Display`, which passes every piece through a formatter and grows from empty).
    pub fn detail_text(&self) -> String {
        // Writing a `Value` to a `Vec` cannot fail: its keys are strings and a `Vec` takes
        // every write.
        serde_json::to_string(&self.detail).unwrap_or_default()
    }

    /// The terms to store: at most [`MAX_TERMS`], each at most [`MAX_TERM`] bytes,
    /// without empty ones, duplicates or the correlation id itself (found directly).
    pub fn stored_terms(&self) -> Vec<&str> {
        // A row of several steps keeps the terms of each (its documents too).
        let most = match self.step == STEPS {
            true => 4 * MAX_TERMS,
            false => MAX_TERMS,
        };
        let mut terms: Vec<&str> = Vec::new();
        for term in &self.terms {
            let term = cut(term.trim());
            if !term.is_empty() && term != self.correlation && !terms.contains(&term) {
                terms.push(term);
            }
            if terms.len() == most {
                break;
            }
        }
        terms
    }
}

/// The `step` of a stored row holding several steps of one message (noted together).
pub const STEPS: &str = "*";

/// The events as stored: the events of one message noted in the same batch share a row
/// (step [`STEPS`], their steps in `detail.steps`), so a message delivered at once costs
/// one row, not one per step. Order is kept.
pub fn pack(events: Vec<Event>) -> Vec<Event> {
    let mut rows: Vec<Vec<Event>> = Vec::new();
    let mut by_correlation: std::collections::HashMap<String, usize> =
        std::collections::HashMap::new();
    for event in events {
        match by_correlation.get(&event.correlation) {
            Some(&row) => rows[row].push(event),
            None => {
                by_correlation.insert(event.correlation.clone(), rows.len());
                rows.push(vec![event]);
            }
        }
    }
    rows.into_iter()
        .map(|mut row| {
            if row.len() == 1 {
                return row.remove(0);
            }
            let first = &row[0];
            let (at_ms, correlation, flow) = (first.at_ms, first.correlation.clone(), first.flow.clone());
            let mut terms: Vec<String> = Vec::new();
            let steps: Vec<serde_json::Value> = row
                .into_iter()
                .map(|e| {
                    terms.extend(e.terms);
                    serde_json::json!({"at": e.at_ms, "step": e.step, "node": e.node, "detail": e.detail})
                })
                .collect();
            Event {
                at_ms,
                correlation,
                flow,
                step: STEPS.to_string(),
                node: String::new(),
                detail: serde_json::json!({ "steps": steps }),
                terms,
            }
        })
        .collect()
}

/// A stored row as the events it holds.
pub fn unpack(row: Event) -> Vec<Event> {
    if row.step != STEPS {
        return vec![row];
    }
    let Event {
        correlation,
        flow,
        mut detail,
        ..
    } = row;
    let steps = match detail.get_mut("steps").map(serde_json::Value::take) {
        Some(serde_json::Value::Array(steps)) => steps,
        _ => Vec::new(),
    };
    steps
        .into_iter()
        .map(|mut step| Event {
            at_ms: step["at"].as_i64().unwrap_or(0),
            correlation: correlation.clone(),
            flow: flow.clone(),
            step: step["step"].as_str().unwrap_or("").to_string(),
            node: step["node"].as_str().unwrap_or("").to_string(),
            detail: step
                .get_mut("detail")
                .map(serde_json::Value::take)
                .unwrap_or_default(),
            terms: Vec::new(),
        })
        .collect()
}

/// Rows read back as their events, oldest first, the newest `limit` of them.
pub fn events_of(rows: Vec<Event>, limit: usize) -> Vec<Event> {
    let mut events: Vec<Event> = rows.into_iter().flat_map(unpack).collect();
    events.sort_by_key(|e| e.at_ms);
    let extra = events.len().saturating_sub(limit);
    events.drain(..extra);
    events
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
    fn the_steps_of_a_message_noted_together_share_a_row_and_read_back_as_they_were() {
        let events = vec![
            at("m1", 1, "accepted", &["k1"]),
            at("m2", 2, "accepted", &["k2"]),
            at("m1", 3, "delivered", &["SO-1"]),
        ];
        let rows = pack(events.clone());
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].step.as_str(), rows[0].at_ms), (STEPS, 1));
        assert_eq!(rows[0].terms, ["k1", "SO-1"]);
        assert_eq!(rows[1], events[1]);
        let read: Vec<Event> = rows
            .into_iter()
            .flat_map(|mut row| {
                row.terms.clear();
                unpack(row)
            })
            .collect();
        let without_terms = |mut e: Event| {
            e.terms.clear();
            e
        };
        assert_eq!(
            read,
            [events[0].clone(), events[2].clone(), events[1].clone()].map(without_terms)
        );
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
