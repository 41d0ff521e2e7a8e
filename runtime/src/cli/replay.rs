//! `omniflow test --from-recording FILE PATHS`: runs each message of a recording (see
//! `omniflow run --record`) through the flows at PATHS and reports every message whose
//! outcome differs from the recorded one: a sink given another document (with the first
//! fields that differ), a sink no longer reached or newly reached, a rejection gained or
//! lost. Exit 1 when any differs.

use omniflow_engine::recording::mask::is_pseudonym;
use omniflow_engine::recording::outcome;
use omniflow_mapping::pipeline::Pipeline;
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;

/// Longest recording line read (a masked message and its outcome).
const MAX_LINE: u64 = 64 << 20;
/// Differences shown per document.
const SHOWN: usize = 3;

/// What a replay found.
#[derive(Default)]
pub struct Report {
    pub replayed: usize,
    pub skipped: usize,
    /// Each differing message: its correlation id and what differs.
    pub differences: Vec<(String, Vec<String>)>,
}

/// Replays `recording` against `pipeline`.
pub fn replay(pipeline: &Pipeline, recording: &Path) -> Result<Report, String> {
    let file = std::fs::File::open(recording)
        .map_err(|err| format!("cannot read `{}`: {err}", recording.display()))?;
    let mut reader = std::io::BufReader::new(file);
    let mut report = Report::default();
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = std::io::Read::take(&mut reader, MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(|err| format!("reading `{}`: {err}", recording.display()))?;
        if read == 0 {
            break;
        }
        if line.len() as u64 >= MAX_LINE && !line.ends_with(b"\n") {
            return Err(format!("line {number}: longer than {MAX_LINE} bytes"));
        }
        let record: Value = serde_json::from_slice(&line)
            .map_err(|err| format!("line {number}: not a recording line: {err}"))?;
        if record["kind"] != "message" {
            continue;
        }
        let correlation = record["correlation"].as_str().unwrap_or("").to_string();
        match compare(pipeline, &record) {
            None => report.skipped += 1,
            Some(found) => {
                report.replayed += 1;
                if !found.is_empty() {
                    report.differences.push((correlation, found));
                }
            }
        }
    }
    Ok(report)
}

/// What differs for one recorded message; `None` when it cannot be replayed (not JSON).
fn compare(pipeline: &Pipeline, record: &Value) -> Option<Vec<String>> {
    let (flow, source) = (
        record["flow"].as_str().unwrap_or(""),
        record["source"].as_str().unwrap_or(""),
    );
    if record["message"].is_null() {
        return None;
    }
    let Some(flow_idx) = pipeline.flow(flow) else {
        return Some(vec![format!("flow `{flow}` is not in the flows any more")]);
    };
    let Some(&source_idx) = pipeline.flows[flow_idx].index.get(source) else {
        return Some(vec![format!(
            "flow `{flow}` has no source `{source}` any more"
        )]);
    };
    let now = outcome(
        pipeline,
        (flow_idx, source_idx),
        &record["message"].to_string(),
    );
    Some(differences(&record["outcome"], &now))
}

/// The differences between a recorded outcome and today's, in words.
pub fn differences(before: &Value, now: &Value) -> Vec<String> {
    let mut found = Vec::new();
    match (&before["rejected"], &now["rejected"]) {
        (Value::Null, Value::Null) => {}
        (Value::Null, rejected) => {
            found.push(format!(
                "now rejected by `{}`: {}",
                rejected["node"].as_str().unwrap_or(""),
                rejected["reason"].as_str().unwrap_or("")
            ));
            return found;
        }
        (rejected, Value::Null) => {
            found.push(format!(
                "no longer rejected (was by `{}`: {})",
                rejected["node"].as_str().unwrap_or(""),
                rejected["reason"].as_str().unwrap_or("")
            ));
        }
        (was, is) => {
            if was != is {
                found.push(format!("rejected differently: was {was}, now {is}"));
            }
            return found;
        }
    }
    let empty = Vec::new();
    let list = |outcome: &Value| outcome["deliveries"].as_array().unwrap_or(&empty).clone();
    let (mut was, is) = (list(before), list(now));
    for delivery in &is {
        let sink = delivery["sink"].as_str().unwrap_or("");
        // The recorded delivery to the same sink with the same key, else the first to the sink.
        let matched = was
            .iter()
            .position(|w| w["sink"] == delivery["sink"] && w["key"] == delivery["key"])
            .or_else(|| was.iter().position(|w| w["sink"] == delivery["sink"]));
        let Some(idx) = matched else {
            found.push(format!(
                "sink `{sink}` is now reached (key {})",
                delivery["key"]
            ));
            continue;
        };
        let recorded = was.remove(idx);
        let masked_key = recorded["key"].as_str().is_some_and(is_pseudonym);
        if recorded["key"] != delivery["key"] && !masked_key {
            found.push(format!(
                "sink `{sink}`: idempotency key {} → {}",
                recorded["key"], delivery["key"]
            ));
        }
        let mut fields = Vec::new();
        document_differences(
            &recorded["document"],
            &delivery["document"],
            "$",
            &mut fields,
        );
        let more = fields.len().saturating_sub(SHOWN);
        fields.truncate(SHOWN);
        for field in fields {
            found.push(format!("sink `{sink}`: {field}"));
        }
        if more > 0 {
            found.push(format!("sink `{sink}`: and {more} more fields"));
        }
    }
    for gone in was {
        found.push(format!(
            "sink `{}` is no longer reached (key {})",
            gone["sink"].as_str().unwrap_or(""),
            gone["key"]
        ));
    }
    found
}

/// Appends `PATH: before → now` for each leaf that differs.
fn document_differences(before: &Value, now: &Value, path: &str, out: &mut Vec<String>) {
    match (before, now) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (x, y) = (
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                );
                document_differences(x, y, &format!("{path}.{key}"), out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (idx, (x, y)) in a.iter().zip(b).enumerate() {
                document_differences(x, y, &format!("{path}[{idx}]"), out);
            }
        }
        // A masked value is not compared: masking may have changed it after the flow ran.
        (Value::String(masked), Value::String(_)) if is_pseudonym(masked) => {}
        (a, b) if a != b => out.push(format!("{path}: {a} → {b}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_the_sink_and_the_fields() {
        let before = json!({"deliveries": [
            {"sink": "post", "key": "o-1", "document": {"id": "o-1", "lines": [{"sku": "A"}], "total": 5}},
            {"sink": "audit", "key": "o-1", "document": {}}
        ]});
        let now = json!({"deliveries": [
            {"sink": "post", "key": "o-1", "document": {"id": "web:o-1", "lines": [{"sku": "A"}], "total": 5}},
            {"sink": "review", "key": "o-1", "document": {}}
        ]});
        assert_eq!(
            differences(&before, &now),
            [
                "sink `post`: $.id: \"o-1\" → \"web:o-1\"",
                "sink `review` is now reached (key \"o-1\")",
                "sink `audit` is no longer reached (key \"o-1\")",
            ]
        );
        assert_eq!(differences(&before, &before), Vec::<String>::new());
        let rejected = json!({"rejected": {"node": "order", "reason": "unknown SKU X"}});
        assert_eq!(
            differences(&before, &rejected),
            ["now rejected by `order`: unknown SKU X"]
        );
        assert_eq!(
            differences(&rejected, &before),
            [
                "no longer rejected (was by `order`: unknown SKU X)",
                "sink `post` is now reached (key \"o-1\")",
                "sink `audit` is now reached (key \"o-1\")",
            ]
        );
    }
}
