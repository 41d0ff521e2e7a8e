//! The state on PostgreSQL with the real binary: a run killed with SIGKILL mid-way and
//! started again delivers every message once by key; `dlq list` and `state check` read the
//! state beside the running replica, and a writer that would own it alone is refused meanwhile.

mod support;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::postgres::FreshDb;
use support::{free_port, wait_for, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

/// Lines of input, and every how many one lacks its quantity (a dead letter).
const LINES: usize = 3_000;
const BAD_EVERY: usize = 500;

/// A started runtime, killed if the test fails before it stops it.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(dir: &TempDir, db: &FreshDb, sink: &Sink, ops: u16, wait: &str) -> Child {
    Command::new(BIN)
        .arg("run")
        .arg(dir.0.join("durable.flow"))
        .args(["--state", &db.url, "--state-wait", wait])
        .args(["--webhook-addr", "127.0.0.1:0"])
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

fn ready(ops: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", ops)) else {
        return false;
    };
    let _ = stream.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

fn omniflow(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("OMNIFLOW_LOG", "warn")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_run_killed_mid_way_on_postgres_delivers_every_message_once_by_key() {
    let dir = TempDir::new("state-postgres");
    support::flow_file(&dir.0);
    let db = FreshDb::create("kill");
    let sink = Sink::start(Faults::default());
    let mut lines = String::new();
    for id in 0..LINES {
        if id % BAD_EVERY == 0 {
            lines.push_str(&format!("{{\"id\": {id}}}\n"));
        } else {
            lines.push_str(&format!("{{\"id\": {id}, \"qty\": 1}}\n"));
        }
    }
    let part = dir.0.join("orders.part");
    std::fs::write(&part, lines).unwrap();
    std::fs::rename(part, dir.0.join("in/orders.jsonl")).unwrap();
    let expected = LINES - LINES.div_ceil(BAD_EVERY);

    // Killed while delivering: some messages out, the rest still to go.
    let mut first = Running(Some(spawn(&dir, &db, &sink, free_port(), "15s")));
    wait_for("the first deliveries", Duration::from_secs(60), || {
        sink.distinct() >= 200
    });
    let mut child = first.0.take().unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        sink.distinct() < expected,
        "the run was killed before it finished"
    );

    // Started again: its lock waits for the killed session to end.
    let ops = free_port();
    let mut second = Running(Some(spawn(&dir, &db, &sink, ops, "30s")));
    wait_for("/ready", Duration::from_secs(60), || ready(ops));
    wait_for(
        "every message at the sink",
        Duration::from_secs(120),
        || sink.distinct() == expected,
    );
    wait_for("an empty inbox", Duration::from_secs(30), || {
        db.count("SELECT COUNT(*) FROM inbox") == 0
    });

    // A writer that would own the state alone is refused while a replica runs.
    let refused = Command::new(BIN)
        .arg("run")
        .arg(dir.0.join("durable.flow"))
        .args(["--state", &db.url, "--state-wait", "0s", "--alone"])
        .args(["--webhook-addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0"])
        .env("OMNIFLOW_TEST_INBOX", dir.0.join("in"))
        .env("OMNIFLOW_TEST_SINK", "http://127.0.0.1:9")
        .env("OMNIFLOW_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("in use by another omniflow"),
        "{}",
        text(&refused)
    );

    // Inspection beside the running writer.
    let letters = omniflow(&["dlq", "list", "--state", &db.url, "--json"]);
    assert!(letters.status.success(), "{}", text(&letters));
    // One letter per line.
    let letters: Vec<serde_json::Value> = String::from_utf8_lossy(&letters.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(letters.len(), LINES.div_ceil(BAD_EVERY), "{letters:#?}");
    assert!(letters
        .iter()
        .all(|l| l["error"].as_str().unwrap_or("").contains("missing qty")));
    let running = omniflow(&["state", "check", "--state", &db.url]);
    assert!(running.status.success(), "{}", text(&running));
    let report = text(&running);
    assert!(report.contains("schema     5"), "{report}");
    assert!(report.contains("in use by  another omniflow"), "{report}");
    assert!(report.contains("integrity  ok"), "{report}");
    assert!(report.contains("inbox      0 messages waiting"), "{report}");

    let mut child = second.0.take().unwrap();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "omniflow stops within 60 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "SIGTERM must exit 0, got {status:?}");
    let stopped = omniflow(&["state", "check", "--state", &db.url]);
    let report = text(&stopped);
    assert!(stopped.status.success(), "{report}");
    assert!(report.contains("last stop  clean"), "{report}");
    assert!(report.contains("in use by  nobody"), "{report}");

    // Every key once: no message lost, none delivered under a key of another.
    let seen = sink.seen.lock().unwrap();
    let keys: std::collections::BTreeSet<usize> =
        seen.effects.keys().map(|k| k.parse().unwrap()).collect();
    let wanted: std::collections::BTreeSet<usize> =
        (0..LINES).filter(|id| id % BAD_EVERY != 0).collect();
    assert_eq!(keys, wanted, "the keys delivered");
    assert_eq!(
        seen.without_key, 0,
        "a delivery without its idempotency key"
    );
    assert_eq!(
        seen.mismatched, 0,
        "a delivery whose key is not the message's"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM outcomes WHERE status = 'delivered'"),
        expected as i64,
        "an outcome per delivered key"
    );
}
