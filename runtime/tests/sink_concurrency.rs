//! A sink's `concurrency` bounds the calls its target sees at once, while the lookups
//! before a call and the recording after it hold no call slot: a slow target with a limit
//! of 3 never has more than 3 requests open, and every message arrives once.

mod support;

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::process::Killed;
use support::{run_flows, wait_for, TempDir};

const FLOW: &str = r#"use std.connectors.{file, http}
connection inbox = file { dir = env("OMNIFLOW_TEST_INBOX") }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }
schema Event {
  id: string
}
flow events {
  source lines = inbox.read { path = "*.jsonl", format = jsonl }
  map event = lines -> Event { id = $.id }
  sink post = api.post(event) { path = "/events", idempotency_key = id, concurrency = 3, dead_letter = "events" }
}
"#;

/// What the slow target saw: requests open now, the most open at once, bodies by id.
#[derive(Default)]
struct Target {
    open: AtomicUsize,
    peak: AtomicUsize,
    seen: Mutex<HashMap<String, usize>>,
}

/// A target that holds each request 20 ms before answering 200.
fn slow_target() -> (u16, Arc<Target>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = Arc::new(Target::default());
    let shared = target.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let target = shared.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                while let Some(request) = support::http_read::read_request(&mut reader) {
                    let body = request.body;
                    let now = target.open.fetch_add(1, Ordering::SeqCst) + 1;
                    target.peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let id = value["id"].as_str().unwrap_or("").to_string();
                    *target.seen.lock().unwrap().entry(id).or_default() += 1;
                    target.open.fetch_sub(1, Ordering::SeqCst);
                    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                    if writer.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, target)
}

#[test]
fn a_slow_target_never_sees_more_calls_at_once_than_the_sinks_concurrency() {
    let dir = TempDir::new("sink-concurrency");
    let (port, target) = slow_target();
    std::fs::create_dir_all(dir.0.join("in")).unwrap();
    let lines: String = (0..60).map(|i| format!("{{\"id\": \"e{i}\"}}\n")).collect();
    std::fs::write(dir.0.join("in/events.jsonl"), lines).unwrap();
    dir.write_flows("events.flow", FLOW);
    let _runtime = Killed(run_flows(
        &dir,
        &[],
        &[
            (
                "OMNIFLOW_TEST_INBOX",
                dir.0.join("in").display().to_string(),
            ),
            ("OMNIFLOW_TEST_SINK", format!("http://127.0.0.1:{port}")),
        ],
    ));
    wait_for("every event at the target", Duration::from_secs(60), || {
        target.seen.lock().unwrap().len() == 60
    });
    let peak = target.peak.load(Ordering::SeqCst);
    assert!(
        peak <= 3,
        "{peak} calls were open at once with concurrency = 3"
    );
    assert!(
        target.seen.lock().unwrap().values().all(|n| *n == 1),
        "each event was delivered once"
    );
}
