//! What the engine tells the lineage about a message: accepted and routed (or rejected),
//! then each delivery's end (delivered with its attempts and the document it became, a
//! duplicate of an earlier delivery, or a dead letter with its reason). The events are
//! written with the next batch of outcomes (see [`Outcomes::note`]).
//!
//! [`Outcomes::note`]: crate::delivery::outcomes::Outcomes::note

use omniflow_mapping::value::Val;
use omniflow_state::lineage::{cut, Event, MAX_TERMS};
use serde_json::Value;

/// Longest reason kept in an event (a target's error page can be long).
const MAX_REASON: usize = 2_000;
/// Largest rejected message whose record names are looked for.
const MAX_SCANNED: usize = 1 << 20;

/// `reason` cut to [`MAX_REASON`] bytes at a character boundary.
pub fn reason(text: &str) -> String {
    if text.len() <= MAX_REASON {
        return text.to_string();
    }
    let mut end = MAX_REASON;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// An event of `correlation` happening now.
pub fn event(
    correlation: &str,
    flow: &str,
    step: &str,
    node: &str,
    detail: Value,
    terms: Vec<String>,
) -> Event {
    Event {
        at_ms: now_ms(),
        correlation: correlation.to_string(),
        flow: flow.to_string(),
        step: step.to_string(),
        node: node.to_string(),
        detail,
        terms,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// True for a top-level field that names a business record: `id`, `number`,
/// `reference`, or a name ending in `_id`, `_ref`, `_number` or `Id` (`order_id`,
/// `external_id`, `AmazonOrderId`, `reference_id`).
fn names_a_record(field: &str) -> bool {
    matches!(field, "id" | "number" | "reference")
        || field.ends_with("_id")
        || field.ends_with("_ref")
        || field.ends_with("_number")
        || (field.ends_with("Id") && field.len() > 2)
}

/// The record names among the top-level fields of a delivered value (until `into` holds
/// [`MAX_TERMS`]).
pub fn references(value: &Val<'_>, into: &mut Vec<String>) {
    let Val::Obj(fields) = value else {
        return;
    };
    for (name, field) in fields.iter() {
        if into.len() >= MAX_TERMS {
            return;
        }
        if !names_a_record(name) {
            continue;
        }
        match field {
            Val::Str(text) => into.push(cut(text).to_string()),
            Val::Int(n) => into.push(n.to_string()),
            _ => {}
        }
    }
}

/// The record names among the top-level fields of a JSON message (a rejected one, whose
/// mapped value does not exist).
pub fn json_references(message: &[u8], into: &mut Vec<String>) {
    if message.len() > MAX_SCANNED {
        return;
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(message) else {
        return;
    };
    for (name, field) in &fields {
        if into.len() >= MAX_TERMS {
            return;
        }
        if !names_a_record(name) {
            continue;
        }
        match field {
            Value::String(text) => into.push(cut(text).to_string()),
            Value::Number(n) => into.push(n.to_string()),
            _ => {}
        }
    }
}

/// What a document is found by: the whole text, the text before a parenthesis and the
/// text inside it (`sale.sale 42 (SO0042)` is found by `sale.sale 42` and `SO0042` too),
/// and its last word when that holds a digit (`ShipBob order 9001` by `9001`).
pub fn document_terms(document: &str) -> Vec<String> {
    let mut terms = vec![document.to_string()];
    let mut head = document;
    if let (Some(open), true) = (document.find('('), document.ends_with(')')) {
        terms.push(document[open + 1..document.len() - 1].to_string());
        head = document[..open].trim_end();
        terms.push(head.to_string());
    }
    if let Some(last) = head.rsplit(' ').next() {
        if last.len() < head.len() && last.chars().any(|c| c.is_ascii_digit()) {
            terms.push(last.to_string());
        }
    }
    terms
}

/// An attempt as stored (`SECS attempt N: CLASS: REASON`) with its time of day.
pub fn attempt_line(stored: &str) -> String {
    let Some((secs, rest)) = stored.split_once(' ') else {
        return stored.to_string();
    };
    match secs.parse().map(jiff::Timestamp::from_second) {
        Ok(Ok(at)) => format!("{} {rest}", at.strftime("%H:%M:%S")),
        _ => stored.to_string(),
    }
}

/// One event's line after its step.
pub fn summary(event: &Event) -> String {
    let d = &event.detail;
    let text = |key: &str| d[key].as_str().unwrap_or("").to_string();
    let node = &event.node;
    match event.step.as_str() {
        "accepted" | "continued" => {
            let routed: Vec<&str> = d["routed_to"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let through = if event.step == "accepted" {
                format!("{}/{node} (inbox {})", event.flow, d["inbox_id"])
            } else {
                format!("after {node}")
            };
            match routed.is_empty() {
                true => format!("{through}, routed to no sink (filtered)"),
                false => format!("{through}, routed to {}", routed.join(", ")),
            }
        }
        "delivered" => {
            let document = match d["document"].as_str() {
                Some(document) => format!(" -> {document}"),
                None => String::new(),
            };
            format!("{node} key {}{document}", text("key"))
        }
        "duplicate" => format!(
            "{node} key {} skipped: {} earlier",
            text("key"),
            text("earlier").replace('_', " ")
        ),
        "dead_lettered" => {
            let queue = match d["queue"].as_str() {
                Some(queue) => format!(" [{queue}]"),
                None => String::new(),
            };
            format!("{node} key {}{queue}: {}", text("key"), text("reason"))
        }
        "rejected" => format!("by {node}: {}", text("reason")),
        _ => format!("{node} {d}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::rc::Rc;

    #[test]
    fn references_are_the_top_level_fields_that_name_records() {
        let value = Val::Obj(Rc::from(vec![
            (Cow::Borrowed("id"), Val::Str(Cow::Borrowed("amazon:1"))),
            (Cow::Borrowed("order_id"), Val::Int(7)),
            (
                Cow::Borrowed("AmazonOrderId"),
                Val::Str(Cow::Borrowed("111")),
            ),
            (Cow::Borrowed("total"), Val::Int(5)),
            (Cow::Borrowed("paid"), Val::Str(Cow::Borrowed("no"))),
            (Cow::Borrowed("Id"), Val::Str(Cow::Borrowed("skipped"))),
        ]));
        let mut found = Vec::new();
        references(&value, &mut found);
        assert_eq!(found, ["amazon:1", "7", "111"]);
        let mut from_json = Vec::new();
        json_references(
            br#"{"reference_id": "r-1", "id": 5, "name": "x", "lines": [{"id": 9}]}"#,
            &mut from_json,
        );
        from_json.sort();
        assert_eq!(from_json, ["5", "r-1"]);
        json_references(b"not json", &mut from_json);
        assert_eq!(from_json.len(), 2);
    }

    #[test]
    fn a_document_is_found_by_its_parts() {
        assert_eq!(
            document_terms("sale.sale 42 (SO0042)"),
            ["sale.sale 42 (SO0042)", "SO0042", "sale.sale 42", "42"]
        );
        assert_eq!(
            document_terms("SalesOrders(7f3a)"),
            ["SalesOrders(7f3a)", "7f3a", "SalesOrders"]
        );
        assert_eq!(
            document_terms("ShipBob order 9001"),
            ["ShipBob order 9001", "9001"]
        );
        assert_eq!(document_terms("plain"), ["plain"]);
    }
}
