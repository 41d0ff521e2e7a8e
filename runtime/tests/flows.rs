//! The reference flows: every `test` block in `flows/` passes, and the benchmark mapping
//! reproduces the canonical documents of the perf-anchors reference on a corpus sample.

use omniflow_mapping::pipeline::Pipeline;
use omniflow_mapping::value::Val;
use omniflow_mapping::{json_in, json_out, testing};
use omniflow_runtime::load::load_graph;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_test_block_in_flows_passes() {
    let graph = load_graph(&[repo().join("flows")]).unwrap();
    let pipeline = Pipeline::new(graph).unwrap();
    let results = testing::run_all(&pipeline);
    assert!(
        results.len() >= 40,
        "expected the reference flows' tests, found {}",
        results.len()
    );
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.failure
                .as_ref()
                .map(|why| format!("{} :: {}: {why}", r.flow, r.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "failing flow tests:\n{}",
        failures.join("\n")
    );
}

#[test]
fn benchmark_mapping_matches_the_reference_documents() {
    let bench = repo().join("flows/bench");
    let pipeline =
        Pipeline::new(load_graph(&[bench.join("shopify_canonical.flow")]).unwrap()).unwrap();
    let flow_idx = pipeline.flow("shopify_canonical").unwrap();
    let flow = &pipeline.flows[flow_idx];
    let (source, projection) = pipeline
        .first_source(flow_idx)
        .map(|(s, p)| (s, p.clone()))
        .unwrap();
    let map = pipeline.first_map(flow_idx).unwrap();
    let inputs = std::fs::read_to_string(bench.join("fixtures/sample_orders.jsonl")).unwrap();
    let expected =
        std::fs::read_to_string(bench.join("fixtures/sample_orders.canonical.jsonl")).unwrap();
    let mut compared = 0;
    for (line_no, (input, want)) in inputs.lines().zip(expected.lines()).enumerate() {
        let value = json_in::parse(input.as_bytes(), &projection).unwrap();
        let outcome = pipeline
            .process(flow_idx, source, value, true, true)
            .unwrap();
        let (_, document) = outcome.trace.iter().find(|(n, _)| *n == map).unwrap();
        let got: serde_json::Value =
            serde_json::from_str(&omniflow_mapping::json_out::to_string(document)).unwrap();
        let want: serde_json::Value = serde_json::from_str(want).unwrap();
        assert_eq!(got, want, "line {}", line_no + 1);
        let sink = &flow.nodes[outcome.deliveries[0].sink].name;
        assert_eq!(
            sink.as_str(),
            want["route"].as_str().unwrap(),
            "line {}: routed to the wrong sink",
            line_no + 1
        );
        compared += 1;
    }
    assert_eq!(compared, 100);
}

/// A pipeline compiled from one flow source written to a scratch directory.
fn pipeline_of(tag: &str, source: &str) -> Pipeline {
    let dir = std::env::temp_dir().join(format!("omniflow-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flow = dir.join(format!("{tag}.flow"));
    std::fs::write(&flow, source).unwrap();
    let graph = load_graph(&[flow]);
    let _ = std::fs::remove_dir_all(&dir);
    Pipeline::new(graph.unwrap()).unwrap()
}

#[test]
fn a_local_schema_named_like_a_stdlib_one_is_the_one_used() {
    let pipeline = pipeline_of(
        "shadow",
        r#"use std.connectors.{file, shopify}
connection inbox = file { dir = env("INBOX") }
schema Order {
  id: string
  total: int
}
flow orders {
  source lines = inbox.read { path = "*.jsonl", format = jsonl }
  map order = lines -> Order { id = $.id, total = $.total }
  sink out = inbox.write(order) { idempotency_key = id, dead_letter = "orders" }
  test "uses the local Order" {
    input = {"id": "o1", "total": 5}
    expect = {"id": "o1", "total": 5}
  }
}
"#,
    );
    let results = testing::run_all(&pipeline);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].failure, None);
}

/// Field lookups remember where a field was last found; documents that change their
/// field order, lack a field or repeat the read must still see the right values, and a
/// concatenation that grows a string must not change the local it started from.
#[test]
fn field_reads_follow_each_document_and_concatenation_leaves_locals_alone() {
    let pipeline = pipeline_of(
        "fields",
        r#"use std.connectors.{file}
connection inbox = file { dir = env("INBOX") }
schema Out {
  a: string?
  c: string?
  label: string
  id: string
  n: int
  checks: [bool]
}
flow fields {
  source docs = inbox.read { path = "*.jsonl", format = jsonl }
  map out = docs -> Out {
    let id = to_string($.n)
    a = $.x.a
    c = $.x.c
    label = id + "-" + $.x.a + "!"
    id = id
    n = sum($.items[*].q)
    checks = [$.x.a == "A1", $.nope.deeper == null, $.n > 2, $.x.c in ["C1", "C3"], is_string($.x.a), $.items[*].q == [1, 2], $.items[0].q >= 1]
  }
  sink sink = inbox.write(out) { idempotency_key = id, dead_letter = "fields" }
}
"#,
    );
    let flow_idx = pipeline.flow("fields").unwrap();
    let (source, projection) = pipeline
        .first_source(flow_idx)
        .map(|(s, p)| (s, p.clone()))
        .unwrap();
    let map = pipeline.first_map(flow_idx).unwrap();
    let cases = [
        (
            r#"{"n": 1, "x": {"a": "A1", "b": 0, "c": "C1"}, "items": [{"q": 1}, {"q": 2}]}"#,
            serde_json::json!({"a": "A1", "c": "C1", "label": "1-A1!", "id": "1", "n": 3, "checks": [true, true, false, true, true, true, true]}),
        ),
        (
            r#"{"items": [{"z": 0, "q": 5}], "x": {"c": "C2", "a": "A2"}, "n": 2}"#,
            serde_json::json!({"a": "A2", "c": "C2", "label": "2-A2!", "id": "2", "n": 5, "checks": [false, true, false, false, true, false, true]}),
        ),
        (
            r#"{"n": 3, "x": {"c": "C3"}, "items": []}"#,
            serde_json::json!({"a": null, "c": "C3", "label": "3-!", "id": "3", "n": 0, "checks": [false, true, true, true, false, false, false]}),
        ),
        (
            r#"{"n": 4, "x": {"a": "A\u0034", "c": "C4"}, "items": [{"q": 4}]}"#,
            serde_json::json!({"a": "A4", "c": "C4", "label": "4-A4!", "id": "4", "n": 4, "checks": [false, true, true, false, true, false, true]}),
        ),
        (
            r#"{"n": 1, "x": {"a": "A1", "b": 0, "c": "C1"}, "items": [{"q": 1}, {"q": 2}]}"#,
            serde_json::json!({"a": "A1", "c": "C1", "label": "1-A1!", "id": "1", "n": 3, "checks": [true, true, false, true, true, true, true]}),
        ),
    ];
    // A key the mapping reads, given twice (after a document that put `a` second), is
    // refused by both parsers with its name: senders that keep the last copy mean `A6`.
    let repeated = r#"{"n": 5, "x": {"a": "A5", "a": "A6", "c": "C5"}, "items": []}"#;
    for refused in [
        json_in::parse(repeated.as_bytes(), &projection),
        json_in::parse_with_serde(repeated.as_bytes(), &projection),
    ] {
        let why = refused.unwrap_err();
        assert!(why.contains("the key `a` is given twice"), "{why}");
    }
    for (input, want) in cases {
        for parsed in [
            json_in::parse(input.as_bytes(), &projection).unwrap(),
            json_in::parse_with_serde(input.as_bytes(), &projection).unwrap(),
        ] {
            let outcome = pipeline
                .process(flow_idx, source, parsed, false, true)
                .unwrap();
            let (_, document) = outcome.trace.iter().find(|(n, _)| *n == map).unwrap();
            assert_eq!(document.to_json(), want, "{input}");
        }
    }
}

/// What one message makes of a flow: its trace and deliveries as JSON, or its rejection.
fn outcome_text(pipeline: &Pipeline, flow_idx: usize, source: usize, input: Val<'_>) -> String {
    match pipeline.process(flow_idx, source, input, true, true) {
        Ok(outcome) => {
            let trace: Vec<String> = outcome
                .trace
                .iter()
                .map(|(node, value)| format!("{node}: {}", json_out::to_string(value)))
                .collect();
            let deliveries: Vec<String> = outcome
                .deliveries
                .iter()
                .map(|d| format!("{} {} {}", d.sink, d.key, json_out::to_string(&d.value)))
                .collect();
            format!("{trace:?} {deliveries:?}")
        }
        Err(rejected) => format!("rejected by {}: {}", rejected.node, rejected.reason),
    }
}

/// Each message maps the same through its source's projection (scanned and parsed by
/// serde_json) as through the whole document: over every test input of the reference
/// flows, and over `as` variables read by field (filtered), whole, through `let`, in
/// templates and nested, `[*]` over objects, a list also read whole and a dotted key.
#[test]
fn projected_messages_map_as_whole_ones_do() {
    let narrowing = pipeline_of(
        "narrowing",
        r#"use std.connectors.{file}
connection inbox = file { dir = env("INBOX") }
schema Out {
  id: string
  skus: [string]
  kept: [json]
  named: [string]
  nested: [json]
  values: [json]
  counted: int
  pairs: [Pair]
}
schema Pair {
  sku: json?
  both: json?
}
schema Both {
  skus: [string]
  all_items: json?
  dotted: json
}
flow narrowing {
  source docs = inbox.read { path = "*.jsonl", format = jsonl }
  map out = docs -> Out {
    id = to_string($.id)
    skus = $.items[*] as it where it.qty > 0 -> it.sku
    kept = $.lines[*] as l -> l
    named = $.parts[*] as p -> "{{ p.name }}/{{ p.size }}"
    nested = $.orders[*] as o -> (o.lines[*] as x -> x.sku)
    values = $.attrs[*] as v -> v.x
    counted = count($.tags[*] as t -> 1)
    pairs = $.boxes[*] as b -> Pair {
      let same = b
      sku = same.w
      both = [b.w, same]
    }
  }
  sink sink = inbox.write(out) { idempotency_key = id, dead_letter = "narrowing" }
}
flow elsewhere {
  source docs = inbox.read { path = "*.jsonl", format = jsonl }
  map both = docs -> Both {
    skus = $.items[*] as it where it.qty > 0 -> it.sku
    all_items = $.items[*]
    dotted = [$['odd.key'], $.odd.key]
  }
  sink sink = inbox.write(both) { idempotency_key = "k", dead_letter = "elsewhere" }
}
"#,
    );
    let docs = [
        r#"{"id": 1, "items": [{"sku": "A", "qty": 1, "x": {"deep": [1]}}, {"sku": "B", "qty": 0}, {"qty": 2}], "lines": [{"a": 1, "b": [2, {"c": 3}]}, 4, "s"], "parts": [{"name": "n", "size": 2, "other": 1}], "orders": [{"lines": [{"sku": "S", "q": 1}], "meta": 1}], "attrs": {"k": {"x": 1, "y": 2}, "j": {"x": [3]}, "z": 5}, "boxes": [{"w": 1, "h": 2}, 2, null], "tags": [{"a": 1}, 2, null]}"#,
        r#"{"id": 2, "items": {"sku": "obj", "qty": 3}, "lines": {"a": 1}, "attrs": [{"x": 1}, {"y": 2}], "boxes": {"a": 1, "b": 2}}"#,
        r#"{"id": 3, "items": [{"sku": "A", "qty": 1, "more": -1}], "parts": [], "orders": [{"lines": {"k": {"sku": "o"}}}]}"#,
        r#"{"id": 4, "odd.key": 5, "odd": {"key": 6, "x": 7}}"#,
    ];
    let reference = Pipeline::new(load_graph(&[repo().join("flows")]).unwrap()).unwrap();
    let mut cases: Vec<(&Pipeline, usize, String)> = Vec::new();
    for (flow_idx, flow) in reference.flows.iter().enumerate() {
        // A flow that reads the clock maps no message twice alike.
        if serde_json::to_string(&flow.ir)
            .unwrap()
            .contains(r#""func":"now""#)
        {
            continue;
        }
        for test in flow.ir.tests.iter().filter(|t| !t.input.is_null()) {
            cases.push((&reference, flow_idx, test.input.to_string()));
        }
    }
    for flow in ["narrowing", "elsewhere"] {
        let flow_idx = narrowing.flow(flow).unwrap();
        cases.extend(
            docs.iter()
                .map(|doc| (&narrowing, flow_idx, doc.to_string())),
        );
    }
    let mut compared = 0;
    for (pipeline, flow_idx, doc) in cases {
        let Some((source, projection)) = pipeline.first_source(flow_idx) else {
            continue;
        };
        let bytes = doc.as_bytes();
        let want = outcome_text(
            pipeline,
            flow_idx,
            source,
            json_in::parse(bytes, &json_in::Projection::whole()).unwrap(),
        );
        // The crafted documents all map: a rejection would compare nothing.
        assert!(
            !std::ptr::eq(pipeline, &narrowing) || !want.starts_with("rejected"),
            "{doc}: {want}"
        );
        for input in [
            json_in::parse(bytes, projection).unwrap(),
            json_in::parse_with_serde(bytes, projection).unwrap(),
        ] {
            let got = outcome_text(pipeline, flow_idx, source, input);
            assert_eq!(got, want, "{doc}");
        }
        compared += 1;
    }
    assert!(compared >= 60, "compared {compared} messages");
}
