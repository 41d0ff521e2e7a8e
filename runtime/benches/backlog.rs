//! Peak memory under backlog: a file of N messages is accepted into the inbox while the
//! sink answers slowly, so nearly all of them wait durably. Peak RSS (VmHWM) must not grow
//! with N. Run: `cargo bench -p omniflow-runtime --bench backlog -- [N...]`.
//! `BACKLOG_ORDERS=DIR` (perf-anchors `gen` output: `orders.jsonl`, `skumap.json`) runs the
//! anchor workload instead: 2.8 KB orders through the whole `canonical.order.v1` mapping,
//! the corpus repeated with fresh order ids up to N.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

#[path = "support/anchor_flow.rs"]
mod anchor_flow;
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

/// The small-message flow.
const SMALL_FLOW: &str = r#"use std.connectors.{file, http}
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
"#;

fn run(n: u64, sink: u16) {
    let dir = std::env::temp_dir().join(format!("omniflow-backlog-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let anchor = std::env::var("BACKLOG_ORDERS").ok();
    // The anchor flow reads `orders/*.jsonl` under its inbox.
    let file_path = match anchor {
        Some(_) => dir.join("in/orders/orders.jsonl"),
        None => dir.join("in/orders.jsonl"),
    };
    std::fs::create_dir_all(file_path.parent().unwrap()).unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(&file_path).unwrap());
    match anchor {
        Some(corpus) => {
            let corpus = std::path::PathBuf::from(corpus);
            std::fs::write(dir.join("backlog.flow"), anchor_flow::http_flow("60s")).unwrap();
            std::fs::copy(corpus.join("skumap.json"), dir.join("skumap.json")).unwrap();
            let text = std::fs::read_to_string(corpus.join("orders.jsonl")).unwrap();
            let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
            // Each order's id is its leading field: a fresh one per line.
            for i in 0..n {
                let line = lines[(i % lines.len() as u64) as usize];
                let rest = line.split_once(',').expect("an order's fields").1;
                writeln!(file, "{{\"id\":{},{rest}", 7_000_000_000_000 + i).unwrap();
            }
        }
        None => {
            std::fs::write(dir.join("backlog.flow"), SMALL_FLOW).unwrap();
            for i in 0..n {
                writeln!(file, "{{\"id\": \"o{i}\", \"customer\": \"customer-{}\", \"total\": {}, \"note\": \"a backlog of orders waiting for a slow ERP\"}}", i % 997, i % 10_000).unwrap();
            }
        }
    }
    file.flush().unwrap();
    drop(file);
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
        .env("OMNIFLOW_INBOX", dir.join("in"))
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
