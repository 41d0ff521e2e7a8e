//! Per-key ordering (`order_by`), end to end with the real binary: versions of one order
//! reach the sink in the order they were accepted, through transient failures, retries
//! and a SIGKILL, while other orders go on.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{wait_for, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

const KEYS: usize = 1000;
const VERSIONS: usize = 5;

const FLOW: &str = r#"use std.connectors.{file, http}

connection inbox = file { dir = env("OMNIFLOW_TEST_INBOX") }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }

policy retry patient {
  attempts = 30
  backoff = exponential
  initial = 5ms
  max_delay = 40ms
  jitter = 20%
  transient = [timeout, connect, rate_limited, server_error]
  retry_after = false
}

schema Update {
  id: string
  order_id: string
  version: int
}

flow updates {
  source lines = inbox.read { path = "*.jsonl", format = jsonl }
  map update = lines -> Update {
    id = $.id
    order_id = $.order_id
    version = $.version
  }
  sink erp = api.post(update) {
    path = "/orders"
    idempotency_key = id
    order_by = order_id
    retry = patient
    concurrency = 16
    dead_letter = "updates"
  }
}
"#;

fn start(dir: &TempDir, sink: &Sink) -> Child {
    Command::new(BIN)
        .arg("run")
        .args(["--replica-ttl", "2s", "--state-wait", "30s"])
        .arg(dir.0.join("ordering.flow"))
        .arg("--state")
        .arg(dir.state())
        .arg("--webhook-addr")
        .arg("127.0.0.1:0")
        .env("OMNIFLOW_TEST_INBOX", dir.0.join("in"))
        .env(
            "OMNIFLOW_TEST_SINK",
            format!("http://127.0.0.1:{}", sink.port),
        )
        .env("OMNIFLOW_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Every version of every order, ten orders at a time: the versions of one order are
/// accepted close together (a later one right behind an earlier one still failing).
fn write_updates(dir: &TempDir) {
    let mut file = std::fs::File::create(dir.0.join("in").join("updates.jsonl")).unwrap();
    for block in (0..KEYS).step_by(10) {
        for version in 1..=VERSIONS {
            for key in block..block + 10 {
                writeln!(
                    file,
                    r#"{{"id": "o{key}-v{version}", "order_id": "o{key}", "version": {version}}}"#
                )
                .unwrap();
            }
        }
    }
}

/// The versions each order reached the sink with, in arrival order, each counted at its
/// first success (a repeat after a crash is acknowledged by the target's idempotency).
fn versions_by_order(sink: &Sink) -> HashMap<String, Vec<u64>> {
    let seen = sink.seen.lock().unwrap();
    let mut first = std::collections::HashSet::new();
    let mut by_order: HashMap<String, Vec<u64>> = HashMap::new();
    for body in &seen.accepted {
        if first.insert(body["id"].as_str().unwrap().to_string()) {
            by_order
                .entry(body["order_id"].as_str().unwrap().to_string())
                .or_default()
                .push(body["version"].as_u64().unwrap());
        }
    }
    by_order
}

#[test]
fn versions_of_one_order_reach_the_sink_in_acceptance_order_through_failures_and_a_kill() {
    let dir = TempDir::new("ordering");
    std::fs::write(dir.0.join("ordering.flow"), FLOW).unwrap();
    // Three calls in ten fail transiently and are retried.
    let sink = Sink::start(Faults {
        server_error: 30,
        ..Faults::default()
    });
    write_updates(&dir);
    let mut runtime = start(&dir, &sink);
    wait_for("a third of the updates", Duration::from_secs(120), || {
        sink.distinct() >= KEYS * VERSIONS / 3
    });
    runtime.kill().unwrap();
    runtime.wait().unwrap();
    let mut runtime = start(&dir, &sink);
    wait_for("every update", Duration::from_secs(300), || {
        sink.distinct() == KEYS * VERSIONS
    });
    runtime.kill().unwrap();
    runtime.wait().unwrap();

    let by_order = versions_by_order(&sink);
    assert_eq!(by_order.len(), KEYS);
    let expected: Vec<u64> = (1..=VERSIONS as u64).collect();
    let out_of_order: Vec<_> = by_order
        .iter()
        .filter(|(_, versions)| **versions != expected)
        .take(5)
        .collect();
    assert!(out_of_order.is_empty(), "out of order: {out_of_order:?}");
    assert_eq!(sink.seen.lock().unwrap().mismatched, 0);
}

#[test]
fn versions_of_one_order_stay_in_order_across_three_replicas_when_the_flows_holder_is_killed() {
    let dir = TempDir::on_database("ordering-replicas");
    std::fs::write(dir.0.join("ordering.flow"), FLOW).unwrap();
    let sink = Sink::start(Faults {
        server_error: 30,
        ..Faults::default()
    });
    write_updates(&dir);
    let mut replicas: Vec<Child> = (0..3).map(|_| start(&dir, &sink)).collect();
    let db = dir.database().unwrap();
    wait_for("a third of the updates", Duration::from_secs(120), || {
        sink.distinct() >= KEYS * VERSIONS / 3
    });
    // One replica at a time processes the flow: the holder of its lease.
    let holder = db
        .texts("SELECT holder FROM leases WHERE name = 'flow:updates'")
        .pop()
        .expect("the flow's lease is held");
    let victim = replicas
        .iter()
        .position(|r| holder.contains(&format!("-{}-", r.id())))
        .expect("a replica of ours holds the flow's lease");
    replicas[victim].kill().unwrap();
    replicas[victim].wait().unwrap();
    replicas[victim] = start(&dir, &sink);
    wait_for("every update", Duration::from_secs(300), || {
        sink.distinct() == KEYS * VERSIONS
    });
    for replica in &mut replicas {
        replica.kill().unwrap();
        replica.wait().unwrap();
    }
    let token = db.count("SELECT token FROM leases WHERE name = 'flow:updates'");
    assert!(token >= 2, "the flow's lease never moved (token {token})");
    let by_order = versions_by_order(&sink);
    assert_eq!(by_order.len(), KEYS);
    let expected: Vec<u64> = (1..=VERSIONS as u64).collect();
    let out_of_order: Vec<_> = by_order
        .iter()
        .filter(|(_, versions)| **versions != expected)
        .take(5)
        .collect();
    assert!(out_of_order.is_empty(), "out of order: {out_of_order:?}");
}
