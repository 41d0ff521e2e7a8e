//! Numbers and money stay exact end to end with the real binary: ids beyond f64 precision
//! keep their own idempotency keys at a real HTTP sink, and hostile documents (deep
//! nesting, a megabyte of digits, lone surrogates) become dead letters with a reason.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, wait_for, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

/// Starts the runtime and waits until its ops endpoint answers /ready.
fn start(dir: &TempDir, flow: &Path, sink: &Sink) -> Child {
    let ops = free_port();
    let child = Command::new(BIN)
        .arg("run")
        .arg(flow)
        .arg("--state")
        .arg(format!("sqlite:{}", dir.0.join("state.db").display()))
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
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("/ready", Duration::from_secs(60), || {
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

fn terminate(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("omniflow did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dead_letters(dir: &TempDir) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.0.join("state.db")).unwrap();
    let mut statement = conn.prepare("SELECT error FROM dead_letters").unwrap();
    let rows = statement.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn ids_beyond_f64_precision_keep_their_own_keys() {
    let dir = TempDir::new("big-ids");
    let flow = support::flow_file(&dir.0);
    let sink = Sink::start(Faults::default());
    // Both ids round to the same f64 (1.2345678901234568e22), as do the decimals.
    let ids = [
        "12345678901234567890123",
        "12345678901234567890124",
        "-98765432109876543210987654321",
        "0.12345678901234567890123",
        "0.12345678901234567890124",
        "1E-7",
    ];
    let lines: String = ids
        .iter()
        .map(|id| format!("{{\"id\": {id}, \"qty\": 1}}\n"))
        .collect();
    std::fs::write(dir.0.join("in/orders.jsonl"), lines).unwrap();
    let child = start(&dir, &flow, &sink);
    wait_for("every order at the sink", Duration::from_secs(60), || {
        sink.distinct() == ids.len()
    });
    terminate(child);
    let seen = sink.seen.lock().unwrap();
    let mut keys: Vec<&str> = seen.effects.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = vec![
        "12345678901234567890123",
        "12345678901234567890124",
        "-98765432109876543210987654321",
        "0.12345678901234567890123",
        "0.12345678901234567890124",
        "0.0000001",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected, "each id is its own key, digit for digit");
    assert_eq!(seen.mismatched, 0, "the body's id is the key");
    assert!(dead_letters(&dir).is_empty());
}

#[test]
fn hostile_documents_become_dead_letters_with_reasons() {
    let dir = TempDir::new("hostile-json");
    let flow = support::flow_file(&dir.0);
    let sink = Sink::start(Faults::default());
    let deep = format!("{{\"id\": {}, \"qty\": 1}}", "[".repeat(100_000));
    let digits = format!("{{\"id\": 1{}, \"qty\": 1}}", "7".repeat(1 << 20));
    let huge_exponent = r#"{"id": 1e400, "qty": 1}"#.to_string();
    let surrogate = r#"{"id": "a\uD800b", "qty": 1}"#.to_string();
    let fine = r#"{"id": "ok", "qty": 1}"#.to_string();
    let lines = [deep, digits, huge_exponent, surrogate, fine].join("\n") + "\n";
    std::fs::write(dir.0.join("in/orders.jsonl"), lines).unwrap();
    let child = start(&dir, &flow, &sink);
    wait_for(
        "the good order and four letters",
        Duration::from_secs(60),
        || sink.distinct() == 1 && dead_letters(&dir).len() == 4,
    );
    terminate(child);
    let letters = dead_letters(&dir).join("\n");
    for reason in ["nest", "digits", "1e400", "surrogate"] {
        assert!(letters.contains(reason), "no `{reason}` in {letters}");
    }
}
