//! The mapping threads answer exactly what mapping in line answers: the same deliveries
//! (sink, key, order key, bytes) and lineage terms, or the same refusal, for every message
//! of the benchmark's sample orders and for broken ones, whichever thread takes it.

use omniflow_engine::mapper::{self, Mapped, Mappers};
use omniflow_mapping::pipeline::Pipeline;
use std::path::PathBuf;
use std::sync::Arc;

/// What an answer says, comparable.
type Said = Result<(Vec<(usize, String, Option<String>, Vec<u8>)>, Vec<String>), (String, String)>;

fn said(mapped: Mapped) -> Said {
    mapped.map(|(jobs, terms)| {
        let jobs = jobs
            .into_iter()
            .map(|j| (j.sink, j.key, j.order, j.payload))
            .collect();
        (jobs, terms)
    })
}

#[test]
fn mapping_threads_answer_what_mapping_in_line_answers() {
    let bench = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows/bench");
    let graph = omniflow_runtime::load::load_graph(&[bench.join("shopify_canonical.flow")])
        .expect("the benchmark flow");
    let pipeline = Pipeline::new(graph.clone()).unwrap();
    let flow = pipeline.flow("shopify_canonical").unwrap();
    let source = *pipeline.flows[flow].index.get("orders").unwrap();
    let projection = mapper::projection(&pipeline, flow, "orders");
    let mut messages: Vec<Vec<u8>> = std::fs::read(bench.join("fixtures/sample_orders.jsonl"))
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    assert!(messages.len() >= 3);
    messages.push(b"{\"id\": ".to_vec());
    messages.push(b"[1, 2, 3]".to_vec());
    messages.push(br#"{"id": 1, "line_items": "not a list"}"#.to_vec());

    let mappers = Mappers::with_threads(&graph, 3).expect("three mapping threads");
    let answers: Vec<_> = messages
        .iter()
        .map(|m| {
            mappers.map(
                (flow, source),
                "orders",
                Arc::from(m.as_slice()),
                tracing::Span::none(),
            )
        })
        .collect();
    let mut refused = 0;
    for (message, answer) in messages.iter().zip(answers) {
        let threaded = said(answer.blocking_recv().expect("an answer"));
        let inline = said(mapper::map_message(
            &pipeline,
            (flow, source),
            "orders",
            &projection,
            message,
        ));
        assert_eq!(threaded, inline, "{}", String::from_utf8_lossy(message));
        refused += usize::from(threaded.is_err());
    }
    assert!(refused >= 2, "the broken messages are refused the same way");
}
