//! OpenTelemetry through the real binary and a real OTLP receiver (`tests/otlp/receiver.py`
//! on the OpenTelemetry project's protobuf package): a webhook arriving with a W3C
//! `traceparent` becomes one trace continuing the sender's (the message, its mapping and
//! routing, its delivery, each attempt), the sink call carries the attempt's
//! `traceparent`, and the runtime's metrics arrive as OTLP metrics.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::process::{exchange, terminate, Killed};
use support::{free_port, run_flows, wait_for, Recorder, TempDir};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

const FLOW: &str = r#"use std.connectors.{webhook, http}

connection hooks = webhook { path = "/hooks", scheme = "none" }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }

schema Order {
  id: string
}

flow orders {
  source incoming = hooks.receive { path = "/hooks/orders" }
  map order = incoming -> Order {
    id = $.id
  }
  sink post = api.post(order) { path = "/orders", idempotency_key = id, dead_letter = "orders" }
}
"#;

/// The Python of the venv holding opentelemetry-proto (`.ci/run` makes it).
fn python() -> PathBuf {
    let python = std::env::var_os("OMNIFLOW_OTLP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/omniflow/otlp/bin/python")
        });
    assert!(
        python.exists(),
        "no Python with opentelemetry-proto at {} (bash .ci/run makes that venv)",
        python.display()
    );
    python
}

/// Starts the receiver; answers it (killed on drop) and its port.
fn receiver(out: &std::path::Path) -> (Killed, u16) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/otlp/receiver.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("receiver said {line:?}"));
    (Killed(child), port)
}

fn start(dir: &TempDir, sink: &Recorder, otlp: u16, hooks: u16) -> Child {
    dir.write_flows("orders.flow", FLOW);
    let config = dir.0.join("omniflow.yaml");
    std::fs::write(
        &config,
        format!(
            "telemetry:\n  otlp_endpoint: http://127.0.0.1:{otlp}\n  service_name: omniflow-test\n  metrics_every: 500ms\n"
        ),
    )
    .unwrap();
    let (config, hooks) = (config.display().to_string(), format!("127.0.0.1:{hooks}"));
    run_flows(
        dir,
        &["--config", &config, "--webhook-addr", &hooks],
        &[
            (
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", sink.port),
            ),
            // Spans are exported whatever the log level.
            ("OMNIFLOW_LOG", "warn".to_string()),
        ],
    )
}

fn records(out: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn a_webhooks_trace_goes_on_through_the_flow_to_the_sink_and_metrics_reach_the_collector() {
    let dir = TempDir::new("telemetry");
    let out = dir.0.join("otlp.jsonl");
    let (_receiver, otlp) = receiver(&out);
    let sink = Recorder::start();
    let hooks = free_port();
    let mut child = start(&dir, &sink, otlp, hooks);
    let body = r#"{"id": "o-1"}"#;
    wait_for("the webhook accepted", Duration::from_secs(30), || {
        let (status, _) = exchange(
            hooks,
            &format!(
                "POST /hooks/orders HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ntraceparent: 00-{TRACE}-{PARENT}-01\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        status == 202
    });
    wait_for("the delivery", Duration::from_secs(30), || {
        !sink.on("/orders").is_empty()
    });
    wait_for("metrics exported", Duration::from_secs(30), || {
        records(&out).iter().any(|r| r["kind"] == "metric")
    });
    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");

    // The call carried the attempt's context, in the sender's trace.
    let sent = sink.traceparents.lock().unwrap()[0].clone().unwrap();
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    assert_eq!((parts[0], parts[1]), ("00", TRACE), "{sent}");
    assert_ne!(parts[2], PARENT, "the attempt's own span: {sent}");

    wait_for("the spans", Duration::from_secs(30), || {
        records(&out)
            .iter()
            .any(|r| r["kind"] == "span" && r["name"] == "attempt")
    });
    let all = records(&out);
    let spans: Vec<&Value> = all
        .iter()
        .filter(|r| r["kind"] == "span" && r["trace_id"] == TRACE)
        .collect();
    let named = |name: &str| -> &Value {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no span `{name}` in the trace: {all:#?}"))
    };
    let message = named("message");
    assert_eq!(
        message["parent_span_id"], PARENT,
        "continues the sender's span"
    );
    assert_eq!(message["service"], "omniflow-test");
    assert_eq!(message["attributes"]["flow"], "orders");
    let route = named("map and route");
    assert_eq!(route["parent_span_id"], message["span_id"]);
    let delivery = named("delivery");
    assert_eq!(delivery["parent_span_id"], message["span_id"]);
    assert_eq!(delivery["attributes"]["key"], "o-1");
    let attempt = named("attempt");
    assert_eq!(attempt["parent_span_id"], delivery["span_id"]);
    assert_eq!(
        attempt["span_id"], parts[2],
        "the call's traceparent names the attempt"
    );
    assert_eq!(attempt["attributes"]["outcome"], "ok");

    // The runtime's metrics, labelled by flow and node.
    let metric = |name: &str| {
        all.iter()
            .filter(|r| r["kind"] == "metric" && r["name"] == name)
            .cloned()
            .collect::<Vec<Value>>()
    };
    let accepted = metric("omniflow_messages_in");
    assert!(
        accepted.iter().any(|m| m["attributes"]["flow"] == "orders"
            && m["attributes"]["node"] == "incoming"
            && m["value"] == 1),
        "{accepted:#?}"
    );
    let latency = metric("omniflow_sink_latency_seconds");
    assert!(
        latency
            .iter()
            .any(|m| m["type"] == "histogram" && m["attributes"]["node"] == "post"),
        "{all:#?}"
    );
}
