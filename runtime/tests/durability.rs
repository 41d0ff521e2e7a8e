//! The runtime's guarantees, end to end with the real binary, a real SQLite file and an
//! HTTP sink on localhost: nothing lost across SIGKILL, no side effect without its key,
//! faults retried or dead-lettered and replayed, bad input dead-lettered with reasons.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::process::exchange;
use support::signing::sign;
use support::{free_port, wait_for, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

fn write_lines(path: &Path, from: usize, to: usize, bad_every: Option<usize>) -> usize {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let mut bad = 0;
    for i in from..to {
        match bad_every {
            Some(n) if i % n == 0 => {
                bad += 1;
                // Malformed JSON, a wrong type, and a record the mapping rejects, in turn.
                match (i / n) % 3 {
                    0 => writeln!(file, "{{\"id\": {i}, \"qty\": ").unwrap(),
                    1 => writeln!(file, "{{\"id\": {i}, \"qty\": \"many\"}}").unwrap(),
                    _ => writeln!(file, "{{\"id\": {i}}}").unwrap(),
                }
            }
            _ => writeln!(file, "{{\"id\": {i}, \"qty\": {}}}", i % 9).unwrap(),
        }
    }
    bad
}

/// Starts the runtime and waits until its ops endpoint answers /ready.
fn start(dir: &TempDir, flow: &Path, sink: &Sink) -> Child {
    let ops = free_port();
    let child = spawn(dir, flow, sink, ops);
    wait_for("/ready", Duration::from_secs(30), || {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", ops)) else {
            return false;
        };
        let _ = stream.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200")
    });
    child
}

fn spawn(dir: &TempDir, flow: &Path, sink: &Sink, ops: u16) -> Child {
    Command::new(BIN)
        .arg("run")
        .arg(flow)
        .arg("--state")
        .arg(dir.state())
        .arg("--webhook-addr")
        .arg("127.0.0.1:0")
        .arg("--ops-addr")
        .arg(format!("127.0.0.1:{ops}"))
        .env("OMNIFLOW_TEST_INBOX", dir.0.join("in"))
        .env(
            "OMNIFLOW_TEST_SINK",
            format!("http://127.0.0.1:{}", sink.port),
        )
        .env("OMNIFLOW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.0.join("runtime.log"))
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

fn terminate(mut child: Child) -> std::process::ExitStatus {
    support::process::terminate(&mut child)
}

fn dlq(dir: &TempDir, args: &[&str]) -> String {
    let output = Command::new(BIN)
        .arg("dlq")
        .arg("--state")
        .arg(dir.state())
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "dlq {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// True once the file source has read the whole input file.
fn consumed(dir: &TempDir, file: &str) -> bool {
    let size = std::fs::metadata(dir.0.join("in").join(file))
        .map(|m| m.len())
        .unwrap_or(0);
    let Some(mut state) = dir.read_state() else {
        return false;
    };
    let offset = state.cursor("events", "lines", file).ok().flatten();
    // The value is `OFFSET MARK` (the mark of the bytes before the offset).
    offset.and_then(|o| o.split_whitespace().next()?.parse::<u64>().ok()) == Some(size)
}

/// Messages of `flow` waiting in the inbox (-1 while the state cannot be read).
fn inbox_len(dir: &TempDir, flow: &str) -> i64 {
    dir.read_state()
        .and_then(|mut state| state.backlog(flow).ok())
        .map_or(-1, |n| n as i64)
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_repeats_no_side_effect() {
    let dir = TempDir::new("crash");
    let flow = support::flow_file(&dir.0);
    let sink = Sink::start(Faults::default());
    write_lines(&dir.0.join("in/orders.jsonl"), 0, 10_000, None);
    let mut kills = 0;
    let mut seed: u64 = 0x5EED;
    while kills < 12 {
        // Killed at any instant: during start-up, intake or delivery.
        let child = spawn(&dir, &flow, &sink, free_port());
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(100 + (seed >> 33) % 300));
        let mut child = child;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    let child = start(&dir, &flow, &sink);
    wait_for(
        "every message at the sink",
        Duration::from_secs(120),
        || sink.distinct() == 10_000,
    );
    wait_for("an empty inbox", Duration::from_secs(30), || {
        inbox_len(&dir, "events") == 0
    });
    let status = terminate(child);
    let log = std::fs::read_to_string(dir.0.join("runtime.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(15).collect();
    assert!(
        status.success(),
        "SIGTERM must exit 0, got {status:?}; log tail: {tail:#?}"
    );
    let seen = sink.seen.lock().unwrap();
    assert_eq!(seen.effects.len(), 10_000, "distinct side effects");
    assert_eq!(
        seen.without_key, 0,
        "a delivery without its idempotency key"
    );
    assert_eq!(
        seen.mismatched, 0,
        "a delivery whose key is not the message's"
    );
}

#[test]
fn faults_are_retried_or_dead_lettered_and_replay_delivers_the_rest() {
    let dir = TempDir::new("faults");
    let flow = support::flow_file(&dir.0);
    let sink = Sink::start(Faults {
        server_error: 30,
        rate_limited: 10,
        slow: 5,
        rejected: 3,
    });
    write_lines(&dir.0.join("in/orders.jsonl"), 0, 1_000, None);
    let child = start(&dir, &flow, &sink);
    wait_for(
        "every message delivered or dead-lettered",
        Duration::from_secs(180),
        || consumed(&dir, "orders.jsonl") && inbox_len(&dir, "events") == 0,
    );
    assert!(terminate(child).success());
    let delivered = sink.distinct();
    let listed = dlq(&dir, &["list", "--json", "--limit", "100000"]);
    let letters: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let log = std::fs::read_to_string(dir.0.join("runtime.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(10).collect();
    assert_eq!(
        delivered + letters.len(),
        1_000,
        "each message is delivered or a dead letter; log tail: {tail:#?}"
    );
    assert!(
        !letters.is_empty(),
        "with 45% faults and 4 attempts some messages must exhaust their retries"
    );
    let mut permanent = 0;
    for letter in &letters {
        let error = letter["error"].as_str().unwrap();
        let attempts = letter["attempts"].as_array().unwrap().len();
        if error.starts_with("HTTP 422") {
            permanent += 1;
            assert!(error.contains("unknown sku"), "{letter}");
        } else {
            assert!(error.contains("gave up after 4 attempts"), "{letter}");
            assert_eq!(attempts, 4, "{letter}");
        }
        assert!(!letter["correlation_id"].as_str().unwrap().is_empty());
        assert!(!letter["payload"].as_str().unwrap().is_empty());
    }
    assert!(permanent > 0, "422 answers are permanent failures");
    let delivered_before = sink.seen.lock().unwrap().effects.clone();
    sink.set_faults(Faults::default());
    let replayed = dlq(&dir, &["replay", "--all"]);
    assert_eq!(
        replayed.trim(),
        format!("replayed {} dead letters", letters.len()),
        "{replayed}"
    );
    let child = start(&dir, &flow, &sink);
    wait_for("the replayed messages", Duration::from_secs(60), || {
        sink.distinct() == 1_000
    });
    wait_for("an empty inbox", Duration::from_secs(30), || {
        inbox_len(&dir, "events") == 0
    });
    assert!(terminate(child).success());
    let seen = sink.seen.lock().unwrap();
    assert_eq!(seen.without_key, 0);
    assert_eq!(seen.mismatched, 0);
    assert_eq!(seen.effects.len(), 1_000);
    for (key, count) in &delivered_before {
        assert_eq!(
            seen.effects.get(key),
            Some(count),
            "replay repeated the side effect of {key}"
        );
    }
}

#[test]
fn bad_input_becomes_dead_letters_with_reasons_and_never_stops_the_flow() {
    let dir = TempDir::new("badinput");
    let flow = support::flow_file(&dir.0);
    let sink = Sink::start(Faults::default());
    let bad = write_lines(&dir.0.join("in/orders.jsonl"), 0, 11_000, Some(11));
    assert_eq!(bad, 1_000);
    let child = start(&dir, &flow, &sink);
    wait_for("the good messages", Duration::from_secs(120), || {
        sink.distinct() == 10_000
    });
    wait_for("an empty inbox", Duration::from_secs(30), || {
        consumed(&dir, "orders.jsonl") && inbox_len(&dir, "events") == 0
    });
    assert!(terminate(child).success());
    let listed = dlq(&dir, &["list", "--json", "--limit", "100000"]);
    let letters: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 1_000);
    let malformed = letters
        .iter()
        .filter(|l| l["error"].as_str().unwrap().starts_with("malformed JSON"))
        .count();
    let wrong_type = letters
        .iter()
        .filter(|l| {
            l["error"]
                .as_str()
                .unwrap()
                .contains("`Event.qty` expects int, found the string \"many\"")
        })
        .count();
    let rejected = letters
        .iter()
        .filter(|l| l["error"].as_str().unwrap() == "missing qty")
        .count();
    assert_eq!(
        malformed + wrong_type + rejected,
        1_000,
        "every dead letter names its reason"
    );
    assert_eq!((malformed, wrong_type, rejected), (334, 333, 333));
    assert!(
        letters
            .iter()
            .all(|l| !l["message"].as_str().unwrap().is_empty()),
        "the payload is kept"
    );
}

#[test]
fn a_key_seen_again_in_the_same_run_is_not_delivered_again() {
    use std::io::Write;
    let dir = TempDir::new("repeats");
    let flow = support::flow_file(&dir.0);
    let sink = Sink::start(Faults::default());
    // 200 keys: each twice in a row (the copies are in flight together), then the first
    // 100 once more, after their first deliveries.
    let mut file = std::fs::File::create(dir.0.join("in/orders.jsonl")).unwrap();
    for i in (0..400).map(|i| i / 2).chain(0..100) {
        writeln!(file, "{{\"id\": {i}, \"qty\": 1}}").unwrap();
    }
    drop(file);
    let ops = free_port();
    let child = spawn(&dir, &flow, &sink, ops);
    wait_for("every line consumed", Duration::from_secs(60), || {
        consumed(&dir, "orders.jsonl") && inbox_len(&dir, "events") == 0
    });
    let (status, metrics) = exchange(
        ops,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(terminate(child).success());
    let seen = sink.seen.lock().unwrap();
    assert_eq!(seen.effects.len(), 200, "distinct keys delivered");
    assert_eq!(
        seen.effects.values().sum::<u64>(),
        200,
        "a key delivered twice: {:?}",
        seen.effects
            .iter()
            .filter(|(_, n)| **n > 1)
            .collect::<Vec<_>>()
    );
    assert!(
        metrics.contains("omniflow_duplicates_prevented_total{flow=\"events\",node=\"post\"} 300"),
        "{metrics}"
    );
}

/// The webhook secret of the test flow.
const HOOK_SECRET: &str = "hook-secret";

/// POSTs a delivery signed with `signature` (none when empty).
fn post_signed(
    port: u16,
    path: &str,
    delivery_id: &str,
    body: &str,
    signature: &str,
) -> (u16, String) {
    let signature = if signature.is_empty() {
        String::new()
    } else {
        format!("X-Signature: {signature}\r\n")
    };
    exchange(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nX-Webhook-Id: {delivery_id}\r\n{signature}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn post(port: u16, path: &str, delivery_id: &str, body: &str) -> (u16, String) {
    post_signed(port, path, delivery_id, body, &sign(HOOK_SECRET, body))
}

#[test]
fn webhooks_are_acknowledged_once_durable_deduplicated_and_counted_in_metrics() {
    let dir = TempDir::new("webhook");
    let flow = dir.0.join("hooks.flow");
    std::fs::write(
        &flow,
        r#"use std.connectors.{http, webhook}
connection hooks = webhook { path = "/orders", secret = secret("HOOK_SECRET"), signature_header = "x-signature", max_body_bytes = 2048 }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }
schema Event {
  id: string
  qty: int
}
flow orders {
  source deliveries = hooks.receive { path = "/hooks/orders", dedupe = true }
  map event = deliveries -> Event { id = $.id, qty = $.qty }
  sink post = api.post(event) { path = "/events", idempotency_key = id, dead_letter = "orders" }
}
"#,
    )
    .unwrap();
    let sink = Sink::start(Faults::default());
    let (ops, hooks) = (free_port(), free_port());
    let child = Command::new(BIN)
        .arg("run")
        .arg(&flow)
        .arg("--state")
        .arg(dir.state())
        .arg("--ops-addr")
        .arg(format!("127.0.0.1:{ops}"))
        .arg("--webhook-addr")
        .arg(format!("127.0.0.1:{hooks}"))
        .env(
            "OMNIFLOW_TEST_SINK",
            format!("http://127.0.0.1:{}", sink.port),
        )
        .env("HOOK_SECRET", HOOK_SECRET)
        .env("OMNIFLOW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("/health", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", ops)).is_ok()
            && exchange(
                ops,
                "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .0 == 200
    });
    for i in 0..100 {
        let (status, body) = post(
            hooks,
            "/hooks/orders",
            &format!("d{i}"),
            &format!("{{\"id\": \"o{i}\", \"qty\": {i}}}"),
        );
        assert_eq!(status, 202, "{body}");
        // The 202 comes after the commit: the message is already in the inbox or done.
        assert!(body.contains("accepted"), "{body}");
    }
    for i in 0..20 {
        let (status, body) = post(
            hooks,
            "/hooks/orders",
            &format!("d{i}"),
            &format!("{{\"id\": \"o{i}\", \"qty\": {i}}}"),
        );
        assert_eq!(
            status, 200,
            "a repeated delivery id is acknowledged, not stored again: {body}"
        );
    }
    let (status, _) = post(hooks, "/hooks/nowhere", "x", "{}");
    assert_eq!(status, 404);
    // Tampered and unsigned deliveries are refused before anything is stored.
    let forged = r#"{"id": "forged", "qty": 1}"#;
    let (status, body) = post_signed(hooks, "/hooks/orders", "f1", forged, &sign("wrong", forged));
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("does not match"), "{body}");
    let (status, body) = post_signed(hooks, "/hooks/orders", "f2", forged, "");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("missing signature"), "{body}");
    // A body over the connection's limit is refused before anything else.
    let large = format!(
        "{{\"id\": \"big\", \"qty\": 1, \"pad\": \"{}\"}}",
        "x".repeat(3000)
    );
    let (status, body) = post(hooks, "/hooks/orders", "f3", &large);
    assert_eq!(status, 413, "{body}");
    wait_for(
        "the deliveries at the sink",
        Duration::from_secs(30),
        || sink.distinct() == 100,
    );
    wait_for("an empty inbox", Duration::from_secs(30), || {
        inbox_len(&dir, "orders") == 0
    });
    let (status, metrics) = exchange(
        ops,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(
        metrics.contains("omniflow_messages_out_total{flow=\"orders\",node=\"post\"} 100"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("omniflow_duplicates_prevented_total{flow=\"orders\",node=\"webhook\"} 20"),
        "{metrics}"
    );
    assert!(
        metrics.contains("omniflow_sink_latency_seconds_count{flow=\"orders\",node=\"post\"} 100"),
        "{metrics}"
    );
    assert!(
        metrics.contains("omniflow_webhooks_rejected_total{flow=\"orders\",node=\"deliveries\"} 3"),
        "{metrics}"
    );
    // Every metric says what it measures, in the form Prometheus's own checker accepts.
    assert!(
        metrics.contains("# HELP omniflow_sink_latency_seconds Duration of sink calls"),
        "{metrics}"
    );
    support::promtool_check(&metrics);
    assert!(terminate(child).success());
    assert_eq!(
        sink.seen.lock().unwrap().effects.values().sum::<u64>(),
        100,
        "no repeated side effect"
    );
}

/// Serves `/orders` in three pages of 50 (`page_token` paging).
fn pager() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
            }
            let page = if request.contains("page_token=t2") {
                2
            } else if request.contains("page_token=t1") {
                1
            } else {
                0
            };
            let items: Vec<String> = (page * 50..page * 50 + 50)
                .map(|i| format!("{{\"id\": \"p{i}\", \"qty\": 1}}"))
                .collect();
            let next = match page {
                0 => "\"t1\"",
                1 => "\"t2\"",
                _ => "null",
            };
            let body = format!("{{\"items\": [{}], \"next\": {next}}}", items.join(","));
            let _ = writer.write_all(
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                    .as_bytes(),
            );
        }
    });
    port
}

#[test]
fn a_polled_page_is_committed_with_its_cursor() {
    let dir = TempDir::new("poll");
    let flow = dir.0.join("poll.flow");
    std::fs::write(
        &flow,
        r#"use std.connectors.{http}
connection feed = http { base_url = env("OMNIFLOW_TEST_FEED") }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }
schema Event {
  id: string
  qty: int
}
flow orders {
  source pages = feed.get { every = 1s, cursor = page_token, page_size = 50, path = "/orders" }
  map event = pages -> Event { id = $.id, qty = $.qty }
  sink post = api.post(event) { path = "/events", idempotency_key = id, dead_letter = "orders" }
}
"#,
    )
    .unwrap();
    let sink = Sink::start(Faults::default());
    let feed = pager();
    let ops = free_port();
    let mut command = Command::new(BIN);
    command
        .arg("run")
        .arg(&flow)
        .arg("--state")
        .arg(dir.state())
        .arg("--ops-addr")
        .arg(format!("127.0.0.1:{ops}"))
        .arg("--webhook-addr")
        .arg("127.0.0.1:0")
        .env("OMNIFLOW_TEST_FEED", format!("http://127.0.0.1:{feed}"))
        .env(
            "OMNIFLOW_TEST_SINK",
            format!("http://127.0.0.1:{}", sink.port),
        )
        .env("OMNIFLOW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = command.spawn().unwrap();
    wait_for(
        "every polled item at the sink",
        Duration::from_secs(60),
        || sink.distinct() == 150,
    );
    // The next polls re-read only the last page; its items are skipped by their keys.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(terminate(child).success());
    let cursor = dir
        .read_state()
        .unwrap()
        .cursor("orders", "pages", "page_token")
        .unwrap();
    assert_eq!(cursor.as_deref(), Some("t2"));
    let seen = sink.seen.lock().unwrap();
    assert_eq!(seen.effects.len(), 150);
    assert!(
        seen.effects.values().all(|n| *n == 1),
        "a re-read page repeated a side effect"
    );
}

/// Two sinks naming two dead-letter queues, every call refused: `dlq list --queue` shows
/// one queue's letters with its name, and `dlq replay --all --queue` puts back only those.
#[test]
fn dead_letters_are_kept_and_replayed_by_queue() {
    let dir = TempDir::new("dlq-queues");
    let flow = dir.0.join("queues.flow");
    std::fs::write(
        &flow,
        r#"use std.connectors.{file, http}
connection inbox = file { dir = env("OMNIFLOW_TEST_INBOX") }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }
schema Event {
  id: string
  qty: int
}
flow events {
  source lines = inbox.read { path = "*.jsonl", format = jsonl }
  map event = lines -> Event { id = to_string($.id), qty = $.qty }
  sink erp = api.post(event) { path = "/erp", idempotency_key = id, dead_letter = "erp_rejects" }
  sink wms = api.post(event) { path = "/wms", idempotency_key = id, dead_letter = "wms_rejects" }
}
"#,
    )
    .unwrap();
    let sink = Sink::start(Faults {
        rejected: 100,
        ..Faults::default()
    });
    write_lines(&dir.0.join("in/events.jsonl"), 0, 5, None);
    let child = start(&dir, &flow, &sink);
    let letters = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["list", "--json", "--all"];
        all.extend_from_slice(args);
        dlq(&dir, &all)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    wait_for("ten dead letters", Duration::from_secs(60), || {
        letters(&[]).len() == 10
    });
    let erp = letters(&["--queue", "erp_rejects"]);
    assert_eq!(erp.len(), 5);
    assert!(
        erp.iter()
            .all(|l| l["queue"] == "erp_rejects" && l["node"] == "erp"),
        "{erp:?}"
    );
    assert!(letters(&["--queue", "nowhere"]).is_empty());
    assert!(dlq(&dir, &["list", "--queue", "wms_rejects"]).contains("[wms_rejects]"));
    let _ = terminate(child);

    let replayed = dlq(&dir, &["replay", "--all", "--queue", "wms_rejects"]);
    assert!(replayed.contains("replayed 5 dead letters"), "{replayed}");
    let settled = |queue: &str| {
        letters(&["--queue", queue])
            .iter()
            .filter(|l| !l["replayed_at"].is_null())
            .count()
    };
    assert_eq!(settled("wms_rejects"), 5);
    assert_eq!(
        settled("erp_rejects"),
        0,
        "another queue's letters were replayed"
    );
}
