//! Peak memory under backlog: a file of N messages is accepted into the inbox while the
//! sink answers slowly, so nearly all of them wait durably. Peak RSS (VmHWM) must not grow
//! with N. Run: `cargo bench -p omniflow-runtime --bench backlog -- [N...]`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

#[path = "../tests/support/http_read.rs"]
mod http_read;

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A sink that takes a second per answer: a slow ERP.
fn slow_sink() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                while http_read::read_request(&mut reader).is_some() {
                    std::thread::sleep(Duration::from_secs(1));
                    if writer
                        .write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn run(n: u64, sink: u16) {
    let dir = std::env::temp_dir().join(format!("omniflow-backlog-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::write(
        dir.join("backlog.flow"),
        r#"use std.connectors.{file, http}
connection inbox = file { dir = env("BENCH_INBOX") }
connection api = http { base_url = env("BENCH_SINK") }
schema Order {
  id: string
  customer: string
  total: int
}
flow orders {
  source lines = inbox.read { path = "*.jsonl", format = jsonl }
  map order = lines -> Order { id = $.id, customer = $.customer, total = $.total }
  sink post = api.post(order) { path = "/orders", idempotency_key = id, timeout = 60s, dead_letter = "orders" }
}
"#,
    )
    .unwrap();
    let file_path = dir.join("in/orders.jsonl");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&file_path).unwrap());
        for i in 0..n {
            writeln!(file, "{{\"id\": \"o{i}\", \"customer\": \"customer-{}\", \"total\": {}, \"note\": \"a backlog of orders waiting for a slow ERP\"}}", i % 997, i % 10_000).unwrap();
        }
    }
    let size = std::fs::metadata(&file_path).unwrap().len();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_omniflow"))
        .arg("run")
        .arg(dir.join("backlog.flow"))
        .arg("--state")
        .arg(format!("sqlite:{}", dir.join("state.db").display()))
        .arg("--webhook-addr")
        .arg("127.0.0.1:0")
        .env("BENCH_INBOX", dir.join("in"))
        .env("BENCH_SINK", format!("http://127.0.0.1:{sink}"))
        .env("OMNIFLOW_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until the whole file is in the inbox (its cursor reached the end).
    let db = dir.join("state.db");
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let offset: Option<String> = rusqlite::Connection::open(&db).ok().and_then(|c| {
            c.query_row("SELECT value FROM cursors", [], |r| r.get(0))
                .ok()
        });
        // The value is `OFFSET MARK`.
        let offset = offset.and_then(|o| o.split_whitespace().next()?.parse::<u64>().ok());
        if offset == Some(size) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "intake did not finish"
        );
    }
    let intake = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let backlog: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM inbox", [], |r| r.get(0))
        .unwrap();
    let peak = status_kb(pid, "VmHWM:");
    let now = status_kb(pid, "VmRSS:");
    println!(
        "{n:>9} messages accepted in {intake:.1} s ({:.0} msg/s intake); backlog {backlog}; peak RSS {:.1} MiB, RSS now {:.1} MiB",
        n as f64 / intake,
        peak as f64 / 1024.0,
        now as f64 / 1024.0
    );
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let sink = slow_sink();
    for n in sizes {
        run(n, sink);
    }
}
