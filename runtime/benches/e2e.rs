//! Durable end-to-end throughput and latency: file and webhook sources → map → route →
//! HTTP sink on localhost, through the real `omniflow run` and its SQLite state.
//! Run: `cargo bench -p omniflow-runtime --bench e2e -- [MESSAGES] [SECONDS]`; the runtime is
//! pinned to CPU 1 (`taskset`), the load generator and sink use the other core.
//! `E2E_OMNIFLOW=PATH` runs another `omniflow` binary (to compare two builds in one run);
//! `E2E_STATE=postgres` runs on a fresh PostgreSQL database (on `OMNIFLOW_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`) instead of a SQLite file.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

#[path = "support/cpu.rs"]
mod cpu;
#[path = "../tests/support/http_read.rs"]
mod http_read;
#[allow(dead_code)]
#[path = "../tests/support/postgres.rs"]
mod postgres_db;
#[path = "../tests/support/signing.rs"]
mod signing;

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A keep-alive HTTP sink that counts messages and records `now - sent` latencies.
fn sink(count: Arc<AtomicU64>, latencies: Arc<Mutex<Vec<u64>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (count, latencies) = (count.clone(), latencies.clone());
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                while let Some(request) = http_read::read_request(&mut reader) {
                    let body = request.body;
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                        if let Some(sent) =
                            v.get("sent").and_then(|s| s.as_u64()).filter(|s| *s > 0)
                        {
                            latencies
                                .lock()
                                .unwrap()
                                .push(now_us().saturating_sub(sent));
                        }
                    }
                    count.fetch_add(1, Ordering::Relaxed);
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

/// The webhook secret of the benchmark flow.
const HOOK_SECRET: &str = "bench-hook-secret";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let dir = std::env::temp_dir().join(format!("omniflow-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::write(
        dir.join("bench.flow"),
        r#"use std.connectors.{file, http, webhook}
connection inbox = file { dir = env("BENCH_INBOX") }
connection hooks = webhook { path = "/events", secret = secret("BENCH_HOOK_SECRET"), signature_header = "x-signature" }
connection api = http { base_url = env("BENCH_SINK") }
schema Event {
  id: string
  sent: int
  qty: int
}
flow from_files {
  source lines = inbox.read { path = "*.jsonl", format = jsonl }
  map event = lines -> Event { id = "f" + $.id, sent = $.sent, qty = $.qty }
  route by_size = event {
    when qty > 100 -> big
    otherwise -> post
  }
  sink big = api.post(by_size) { path = "/big", idempotency_key = id, concurrency = 64, dead_letter = "bench" }
  sink post = api.post(by_size) { path = "/events", idempotency_key = id, concurrency = 64, dead_letter = "bench" }
}
flow from_webhooks {
  source hits = hooks.receive { path = "/events" }
  map event = hits -> Event { id = "w" + $.id, sent = $.sent, qty = $.qty }
  sink post = api.post(event) { path = "/events", idempotency_key = id, concurrency = 64, dead_letter = "bench" }
}
"#,
    )
    .unwrap();
    {
        let mut file =
            std::io::BufWriter::new(std::fs::File::create(dir.join("in/load.jsonl")).unwrap());
        for i in 0..n {
            writeln!(
                file,
                "{{\"id\": \"{i}\", \"sent\": 0, \"qty\": {}}}",
                i % 150
            )
            .unwrap();
        }
    }
    let count = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let sink_port = sink(count.clone(), latencies.clone());
    let (ops, hooks) = (free_port(), free_port());
    let database = (std::env::var("E2E_STATE").as_deref() == Ok("postgres"))
        .then(|| postgres_db::FreshDb::create("bench"));
    let state = match &database {
        Some(db) => db.url.clone(),
        None => format!("sqlite:{}", dir.join("state.db").display()),
    };
    let started = Instant::now();
    let mut child = Command::new("taskset")
        .args(["-c", "1"])
        .arg(std::env::var("E2E_OMNIFLOW").unwrap_or(env!("CARGO_BIN_EXE_omniflow").into()))
        .arg("run")
        .arg(dir.join("bench.flow"))
        .arg("--state")
        .arg(&state)
        .arg("--ops-addr")
        .arg(format!("127.0.0.1:{ops}"))
        .arg("--webhook-addr")
        .arg(format!("127.0.0.1:{hooks}"))
        .env("BENCH_INBOX", dir.join("in"))
        .env("BENCH_HOOK_SECRET", HOOK_SECRET)
        .env("BENCH_SINK", format!("http://127.0.0.1:{sink_port}"))
        .env("OMNIFLOW_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while count.load(Ordering::Relaxed) < n {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "throughput phase did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = n as f64 / elapsed;
    let cpu = cpu::cpu_seconds(child.id());
    println!("throughput ({}): {n} messages file -> map -> route -> http sink, durable, one core: {elapsed:.2} s = {rate:.0} msg/s; runtime CPU {cpu:.2} s = {:.1} µs/msg ({:.0}% of its core)", if database.is_some() { "PostgreSQL" } else { "SQLite" }, cpu * 1e6 / n as f64, 100.0 * cpu / elapsed);

    // Latency at half that rate, through the webhook source.
    let target = (rate / 2.0).max(1.0);
    latencies.lock().unwrap().clear();
    let total = (target * seconds as f64) as u64;
    let senders = 8;
    let before = count.load(Ordering::Relaxed);
    let handles: Vec<_> = (0..senders)
        .map(|s| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", hooks)).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let interval = Duration::from_secs_f64(senders as f64 / target);
                let begin = Instant::now();
                let mut i = s;
                let mut k = 0u64;
                while i < total {
                    let due = begin + interval * k as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let body = format!("{{\"id\": \"{i}\", \"sent\": {}, \"qty\": 1}}", now_us());
                    let request = format!("POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Signature: {}\r\nContent-Length: {}\r\n\r\n{body}", signing::sign(HOOK_SECRET, &body), body.len());
                    stream.write_all(request.as_bytes()).unwrap();
                    http_read::read_response(&mut reader).expect("an answer");
                    i += senders;
                    k += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::Relaxed) < before + total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_unstable();
    println!(
        "latency at {target:.0} msg/s (half the throughput) for {seconds} s, webhook accepted -> sink received: {} messages, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    drop(database);
    let _ = std::fs::remove_dir_all(&dir);
}
