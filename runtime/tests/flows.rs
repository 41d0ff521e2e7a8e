//! The reference flows: every `test` block in `flows/` passes, and the benchmark mapping
//! reproduces the canonical documents of the perf-anchors reference on a corpus sample.

use omniflow_runtime::pipeline::Pipeline;
use omniflow_runtime::{json_in, load::load_graph, testing};
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
            serde_json::from_str(&omniflow_runtime::json_out::to_string(document)).unwrap();
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

#[test]
fn a_local_schema_named_like_a_stdlib_one_is_the_one_used() {
    let dir = std::env::temp_dir().join(format!("omniflow-shadow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flow = dir.join("shadow.flow");
    std::fs::write(
        &flow,
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
    )
    .unwrap();
    let pipeline = Pipeline::new(load_graph(&[flow]).unwrap()).unwrap();
    let results = testing::run_all(&pipeline);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].failure, None);
}
