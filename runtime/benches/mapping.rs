//! Mapping + routing throughput in process, one thread, against baseline A (a plain
//! serde_json parse into `Value` and serialize back) measured in the same run.
//! Run: `taskset -c 1 cargo bench -p omniflow-runtime --bench mapping -- CORPUS.jsonl [RUNS]`
//! (the corpus comes from the perf-anchors generator).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use omniflow_mapping::pipeline::Pipeline;
use omniflow_mapping::{json_in, json_out};
use std::path::PathBuf;
use std::time::Instant;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let corpus_path = args
        .first()
        .cloned()
        .unwrap_or_else(|| "data/orders.jsonl".to_string());
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(5);
    let bytes = std::fs::read(&corpus_path).unwrap_or_else(|e| {
        panic!("read {corpus_path}: {e} (generate it with the perf-anchors `gen`)")
    });
    let docs: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let flow_file =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows/bench/shopify_canonical.flow");
    let graph = omniflow_runtime::load::load_graph(&[flow_file]).unwrap();
    let pipeline = Pipeline::new(graph).unwrap();
    let flow_idx = pipeline.flow("shopify_canonical").unwrap();
    let flow = &pipeline.flows[flow_idx];
    let (source, projection) = pipeline
        .first_source(flow_idx)
        .map(|(s, p)| (s, p.clone()))
        .unwrap();
    let map_node = pipeline.first_map(flow_idx).unwrap();
    let mut out = Vec::with_capacity(1 << 16);

    let baseline = |out: &mut Vec<u8>| {
        let mut total = 0usize;
        for doc in &docs {
            out.clear();
            let value: serde_json::Value = serde_json::from_slice(doc).unwrap();
            serde_json::to_writer(&mut *out, &value).unwrap();
            total += out.len();
        }
        total
    };
    let ours = |out: &mut Vec<u8>| {
        let mut total = 0usize;
        let mut priority = 0usize;
        for doc in &docs {
            out.clear();
            let input = json_in::parse(doc, &projection).unwrap();
            let outcome = pipeline
                .process(flow_idx, source, input, false, true)
                .unwrap();
            let (_, document) = outcome.trace.iter().find(|(n, _)| *n == map_node).unwrap();
            json_out::write(out, document);
            priority += usize::from(flow.nodes[outcome.deliveries[0].sink].name == "priority");
            total += out.len();
        }
        (total, priority)
    };
    // Warm-up.
    baseline(&mut out);
    let (_, priority) = ours(&mut out);
    let mut a_times = Vec::new();
    let mut o_times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        baseline(&mut out);
        a_times.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        ours(&mut out);
        o_times.push(start.elapsed().as_secs_f64());
    }
    // Phase split (one pass each): parse only, parse + process.
    let start = Instant::now();
    for doc in &docs {
        std::hint::black_box(json_in::parse(doc, &projection).unwrap());
    }
    let parse_only = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for doc in &docs {
        let input = json_in::parse(doc, &projection).unwrap();
        std::hint::black_box(
            pipeline
                .process(flow_idx, source, input, false, true)
                .unwrap(),
        );
    }
    let parse_process = start.elapsed().as_secs_f64();
    let n = docs.len() as f64;
    println!(
        "phases: parse {:.2} us/doc, map + route {:.2} us/doc",
        parse_only / n * 1e6,
        (parse_process - parse_only) / n * 1e6
    );
    let (a, o) = (median(a_times), median(o_times));
    println!(
        "corpus: {} docs, {:.1} MB; {priority} routed to priority",
        docs.len(),
        bytes.len() as f64 / 1e6
    );
    println!(
        "baseline A (serde_json Value parse + serialize): {:>9.0} docs/s  {:>7.2} us/doc",
        n / a,
        a / n * 1e6
    );
    println!(
        "omniflow map + route + serialize:               {:>9.0} docs/s  {:>7.2} us/doc",
        n / o,
        o / n * 1e6
    );
    println!("ratio to A: {:.2}x (median of {runs} passes each)", a / o);
}
