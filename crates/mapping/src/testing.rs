//! `test` blocks: runs a fixture through its flow and compares the output, the
//! rejection or the sinks reached with what the test expects.

use crate::json_in;
use crate::pipeline::Pipeline;
use crate::value::Val;
use omniflow_ir::Test;
use serde_json::Value;

/// The verdict on one test.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    pub flow: String,
    pub name: String,
    /// `None` when it passed, else why it failed.
    pub failure: Option<String>,
}

/// Runs every test of every flow.
pub fn run_all(pipeline: &Pipeline) -> Vec<TestResult> {
    let mut results = Vec::new();
    for (flow_idx, flow) in pipeline.flows.iter().enumerate() {
        for test in &flow.ir.tests {
            results.push(TestResult {
                flow: flow.name.clone(),
                name: test.name.clone(),
                failure: run_one(pipeline, flow_idx, test).err(),
            });
        }
    }
    results
}

fn run_one(pipeline: &Pipeline, flow_idx: usize, test: &Test) -> Result<(), String> {
    // Its messages are the pages a polling source reads: only a whole-flow run has them.
    if test.input.is_null() && test.calls.is_some() {
        return Ok(());
    }
    let flow = &pipeline.flows[flow_idx];
    let source = *flow.index.get(&test.source).ok_or("unknown source")?;
    let compared = *flow.index.get(&test.node).ok_or("unknown node")?;
    // Through the same projected parser as production input, as written.
    let bytes = input_bytes(test);
    let projection = match &flow.nodes[source].kind {
        crate::pipeline::KindRt::Source { projection } => projection.clone(),
        _ => json_in::Projection::whole(),
    };
    let input = json_in::parse(&bytes, &projection)?;
    match pipeline.process(flow_idx, source, input, true, true) {
        Err(rejected) => match &test.reject {
            Some(expected) if rejected.reason.contains(expected.as_str()) => Ok(()),
            Some(expected) => Err(format!(
                "rejected with \"{}\", expected a rejection containing \"{expected}\"",
                rejected.reason
            )),
            None => Err(format!(
                "rejected by `{}`: {}",
                rejected.node, rejected.reason
            )),
        },
        Ok(outcome) => {
            if let Some(expected) = &test.reject {
                return Err(format!(
                    "expected a rejection containing \"{expected}\", but the message was accepted"
                ));
            }
            if let Some(expected) = &test.expect {
                let output = outcome
                    .trace
                    .iter()
                    .find(|(node, _)| *node == compared)
                    .map(|(_, v)| v.to_json_exact())
                    .ok_or_else(|| format!("`{}` emitted nothing", test.node))?;
                if let Some(path) = mismatch(expected, &output, String::from("$")) {
                    return Err(format!(
                        "output differs at {path}\n  expected: {}\n  actual:   {}",
                        compact(&Val::from_json_exact(expected).to_json()),
                        compact(&Val::from_json_exact(&output).to_json())
                    ));
                }
            }
            if let Some(expected) = &test.sinks {
                let mut reached: Vec<&str> = outcome
                    .deliveries
                    .iter()
                    .map(|d| flow.nodes[d.sink].name.as_str())
                    .collect();
                reached.sort_unstable();
                reached.dedup();
                let mut wanted: Vec<&str> = expected.iter().map(String::as_str).collect();
                wanted.sort_unstable();
                if reached != wanted {
                    return Err(format!("reached sinks {reached:?}, expected {wanted:?}"));
                }
            }
            Ok(())
        }
    }
}

/// The bytes a test feeds to the parser production input goes through: its input as
/// written (a graph built before that was kept: as serde_json writes the input).
pub fn input_bytes(test: &Test) -> Vec<u8> {
    match &test.input_text {
        Some(text) => text.clone().into_bytes(),
        None => serde_json::to_vec(&test.input).unwrap_or_default(),
    }
}

/// A JSON number, or a number marked exact by [`Val::to_json_exact`].
fn is_number(value: &Value) -> bool {
    match value {
        Value::Number(_) => true,
        Value::String(_) => Val::from_json_exact(value).is_number(),
        _ => false,
    }
}

fn compact(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 400 {
        format!(
            "{}…",
            &text[..text.char_indices().nth(400).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text
    }
}

/// The first path where `actual` does not match `expected`. Objects match partially
/// (every expected key must match); lists and scalars match exactly, numbers by value.
pub fn mismatch(expected: &Value, actual: &Value, path: String) -> Option<String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            want.iter().find_map(|(key, value)| match got.get(key) {
                Some(actual) => mismatch(value, actual, format!("{path}.{key}")),
                None if value.is_null() => None,
                None => Some(format!("{path}.{key} (missing)")),
            })
        }
        (Value::Array(want), Value::Array(got)) => {
            if want.len() != got.len() {
                return Some(format!(
                    "{path} (length {} instead of {})",
                    got.len(),
                    want.len()
                ));
            }
            want.iter()
                .zip(got)
                .enumerate()
                .find_map(|(idx, (w, g))| mismatch(w, g, format!("{path}[{idx}]")))
        }
        // A number no float holds, on either side (see `Val::to_json_exact`): by value,
        // every digit counted (fixtures and expectations are read exactly too).
        (want, got)
            if matches!((want, got), (Value::String(_), _) | (_, Value::String(_)))
                && is_number(want)
                && is_number(got) =>
        {
            (!crate::value::equal(&Val::from_json_exact(want), &Val::from_json_exact(got)))
                .then_some(path)
        }
        (Value::Number(_), Value::Number(_)) => {
            let as_val = |v: &Value| Val::from_json(v);
            (!crate::value::equal(&as_val(expected), &as_val(actual))).then_some(path)
        }
        (want, got) => (want != got).then_some(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_match_numbers_beyond_floats() {
        let doc = br#"{"id": 12345678901234567890123, "p": 0.12345678901234567890123, "s": "12345678901234567890123"}"#;
        let output = json_in::parse(doc, &json_in::Projection::whole())
            .unwrap()
            .to_json_exact();
        let other: Value =
            serde_json::json!({"id": 12345678901234567890u64, "s": 12345678901234567890123.0});
        assert_eq!(mismatch(&other, &output, "$".into()), Some("$.id".into()));
        // A float read from the same text is another number: its digits were rounded.
        let rounded: Value = serde_json::from_slice(doc).unwrap();
        assert_eq!(mismatch(&rounded, &output, "$".into()), Some("$.id".into()));
        // Expectations read exactly compare every digit: one digit off is a difference.
        let exact = |text: &str| {
            json_in::parse(text.as_bytes(), &json_in::Projection::whole())
                .unwrap()
                .to_json_exact()
        };
        let same = exact(r#"{"id": 12345678901234567890123, "p": 0.123456789012345678901230}"#);
        assert_eq!(mismatch(&same, &output, "$".into()), None);
        let off = exact(r#"{"id": 12345678901234567890124}"#);
        assert_eq!(mismatch(&off, &output, "$".into()), Some("$.id".into()));
        let close = exact(r#"{"p": 0.1234567890123456789}"#);
        assert_eq!(mismatch(&close, &output, "$".into()), Some("$.p".into()));
    }
}
