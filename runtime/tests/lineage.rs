//! Lineage through the real binary: `omniflow trace` finds a message by its order id, a
//! key, its correlation id, or a later message that names the same order (a shipment),
//! and shows where it was accepted, where it was routed, every failed attempt before the
//! delivery, and why a rejected message was rejected; beside a running runtime and after
//! it stopped.

mod support;

use serde_json::Value;
use std::process::{Child, Command, Output};
use std::time::Duration;
use support::process::terminate;
use support::{free_port, run_flows, wait_for, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

const FLOWS: &str = r#"use std.connectors.{file, http}

connection inbox = file { dir = env("OMNIFLOW_TEST_INBOX") }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }

table skus: string -> string = { "TEE-M": "ITM-1", "CAP": "ITM-2" }

schema Order {
  id: string
  item: string
}

schema Shipment {
  id: string
  order_id: string
}

flow orders {
  source lines = inbox.read { path = "orders.jsonl", format = jsonl }
  map order = lines -> Order {
    let sku = $.sku
    id = $.id
    item = skus[sku] ?? (reject "unknown SKU {{ sku }}")
  }
  sink post = api.post(order) { path = "/orders", idempotency_key = id, dead_letter = "orders" }
}

flow shipments {
  source lines = inbox.read { path = "shipments.jsonl", format = jsonl }
  map shipment = lines -> Shipment {
    id = $.id
    order_id = $.order
  }
  sink post = api.post(shipment) { path = "/shipments", idempotency_key = id, dead_letter = "shipments" }
}
"#;

fn start(dir: &TempDir, sink: &Sink) -> Child {
    dir.write_flows("lineage.flow", FLOWS);
    let ops = format!("127.0.0.1:{}", free_port());
    run_flows(
        dir,
        &["--webhook-addr", "127.0.0.1:0", "--ops-addr", &ops],
        &[
            (
                "OMNIFLOW_TEST_INBOX",
                dir.0.join("in").display().to_string(),
            ),
            (
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", sink.port),
            ),
        ],
    )
}

fn trace(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["trace", "--state", &dir.state()])
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn events(dir: &TempDir, term: &str) -> Vec<Value> {
    let output = trace(dir, &["--json", term]);
    if output.status.code() == Some(1) {
        return Vec::new(); // nothing known (yet)
    }
    assert!(output.status.success(), "{output:?}");
    text(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn trace_shows_each_hop_of_an_order_its_failed_attempts_its_shipment_and_a_rejection() {
    let dir = TempDir::new("lineage");
    // Every call fails until the retries have been seen.
    let sink = Sink::start(Faults {
        server_error: 100,
        ..Faults::default()
    });
    std::fs::write(
        dir.0.join("in").join("orders.jsonl"),
        "{\"id\": \"o-1\", \"sku\": \"TEE-M\"}\n{\"id\": \"o-2\", \"sku\": \"MUG\"}\n",
    )
    .unwrap();
    let mut child = start(&dir, &sink);
    wait_for("a retried call", Duration::from_secs(60), || {
        dir.log().contains("transient failure; retrying")
    });
    // While it is being retried, the order already shows: accepted, not yet delivered.
    wait_for(
        "the order's lineage while retried",
        Duration::from_secs(5),
        || {
            let found = events(&dir, "o-1");
            found.len() == 1 && found[0]["step"] == "accepted"
        },
    );
    sink.set_faults(Faults::default());
    wait_for("the order", Duration::from_secs(60), || {
        sink.distinct() == 1
    });
    std::fs::write(
        dir.0.join("in").join("shipments.jsonl"),
        "{\"id\": \"s-1\", \"order\": \"o-1\"}\n",
    )
    .unwrap();
    wait_for("the shipment", Duration::from_secs(60), || {
        sink.distinct() == 2
    });

    // Beside the running runtime: the order and its shipment, found by the order's id.
    wait_for("the shipment's lineage", Duration::from_secs(30), || {
        events(&dir, "o-1")
            .iter()
            .any(|e| e["flow"] == "shipments" && e["step"] == "delivered")
    });
    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");

    let found = events(&dir, "o-1");
    let steps: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|e| {
            (
                e["flow"].as_str().unwrap(),
                e["step"].as_str().unwrap(),
                e["node"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("orders", "accepted", "lines"),
            ("orders", "delivered", "post"),
            ("shipments", "accepted", "lines"),
            ("shipments", "delivered", "post"),
        ],
        "{found:#?}"
    );
    let order = &found[1];
    let attempts = order["detail"]["attempts"].as_array().unwrap();
    assert!(
        !attempts.is_empty()
            && attempts
                .iter()
                .all(|a| a.as_str().unwrap().contains("server_error")),
        "the failed attempts before the delivery: {order}"
    );
    assert_eq!(order["detail"]["key"], "o-1");
    assert_eq!(found[0]["detail"]["routed_to"], serde_json::json!(["post"]));
    let correlation = found[0]["correlation"].as_str().unwrap();
    assert_eq!(found[1]["correlation"], correlation);
    assert_ne!(found[2]["correlation"], correlation, "a message of its own");

    // People read it as a timeline.
    let shown = trace(&dir, &["o-1"]);
    let shown = text(&shown);
    assert!(
        shown.starts_with("o-1: 4 event(s) of 2 message(s)"),
        "{shown}"
    );
    assert!(
        shown.contains("orders/lines (inbox 1), routed to post"),
        "{shown}"
    );
    assert!(shown.contains("failed "), "{shown}");
    assert!(shown.contains("post key s-1"), "{shown}");

    // By correlation id: that message only; by the shipment's own key: the shipment.
    let by_id = events(&dir, correlation);
    assert_eq!(by_id.len(), 2, "{by_id:#?}");
    assert_eq!(events(&dir, "s-1").len(), 2);

    // A rejected order is found by its id, with the reason.
    let rejected = events(&dir, "o-2");
    assert_eq!(rejected.len(), 1, "{rejected:#?}");
    assert_eq!(rejected[0]["step"], "rejected");
    assert_eq!(rejected[0]["node"], "order");
    assert!(
        rejected[0]["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("unknown SKU MUG"),
        "{rejected:#?}"
    );

    // Nothing known: exit 1 with a reason.
    let unknown = trace(&dir, &["o-404"]);
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nothing is known of `o-404`"));
}
