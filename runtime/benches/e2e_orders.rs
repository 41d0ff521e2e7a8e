//! The retailer's workload end to end, side by side with the hand-written ceiling: 2.8 KB
//! Shopify orders through the whole `canonical.order.v1` mapping
//! (`flows/bench/shopify_canonical.flow`, its file sinks replaced by one `http` sink with 16
//! in flight), one POST each, durable on a fresh SQLite state and deduplicated, against the
//! Rust ceiling of the e2e anchors (tokio + reqwest + a typed serde map, no durability) on
//! the same corpus and the same sink, in interleaved rounds.
//!
//! Run: `E2E_ANCHORS=DIR cargo bench -p omniflow-runtime --bench e2e_orders -- [ROUNDS]`,
//! where DIR holds the anchors' `target/release/{e2e-baseline,e2e-sink}` (built as their
//! README says) and `data/{orders.jsonl,skumap.json}` (perf-anchors `gen --count 20000`).
//! `E2E_CPUS=1` (or `0,1`) pins both contenders with `taskset`; `E2E_OMNIFLOW=PATH` runs
//! another build of omniflow.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

#[path = "support/cpu.rs"]
mod cpu;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request to the sink's control API; the body of the answer.
fn sink_call(port: u16, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string())
}

fn sink_count(port: u16) -> u64 {
    let stats: serde_json::Value =
        serde_json::from_str(&sink_call(port, "GET", "/stats")).unwrap_or_default();
    stats["count"].as_u64().unwrap_or(0)
}

/// `command`, under `taskset -c CPUS` when `E2E_CPUS` is set.
fn pinned(program: &Path) -> Command {
    match std::env::var("E2E_CPUS") {
        Ok(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpus]).arg(program);
            c
        }
        Err(_) => Command::new(program),
    }
}

/// The bench flow: the reference mapping with one http sink in place of the file sinks
/// (and without its test blocks, which name those sinks).
fn bench_flow(reference: &str) -> String {
    let head = reference
        .split("  route by_priority")
        .next()
        .expect("the reference flow routes by priority")
        .replace(
            "use std.connectors.{file}",
            "use std.connectors.{file, http}",
        )
        .replace(
            "connection outbox = file { dir = env(\"OMNIFLOW_OUTBOX\") }",
            "connection api = http { base_url = env(\"BENCH_SINK\") }",
        );
    format!(
        "{head}  sink post = api.post(canonical) {{\n    path = \"/orders\"\n    \
         idempotency_key = idempotency_key\n    concurrency = 16\n    retry = quick\n    \
         dead_letter = \"shopify_canonical\"\n  }}\n}}\n"
    )
}

/// Waits for `n` at the sink: the seconds since `started`, and the child's CPU seconds as
/// last read (every 5 ms, so a child that exits at the end is counted too).
fn until_count(port: u16, n: u64, started: Instant, child: &mut Child) -> (f64, f64) {
    let mut cpu_seen = 0.0;
    loop {
        let cpu = cpu::cpu_seconds(child.id());
        if cpu.is_finite() {
            cpu_seen = cpu;
        }
        if sink_count(port) >= n {
            return (started.elapsed().as_secs_f64(), cpu_seen);
        }
        if let Ok(Some(status)) = child.try_wait() {
            if sink_count(port) >= n {
                return (started.elapsed().as_secs_f64(), cpu_seen);
            }
            panic!("the contender exited with {status} before the sink had {n}");
        }
        assert!(started.elapsed() < Duration::from_secs(600), "no end");
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Round {
    rate: f64,
    cpu_us: f64,
}

fn ceiling(anchors: &Path, data: &Path, sink: u16, n: u64) -> Round {
    sink_call(sink, "POST", "/reset");
    let started = Instant::now();
    let mut child = pinned(&anchors.join("target/release/e2e-baseline"))
        .arg("--data")
        .arg(data.join("orders.jsonl"))
        .arg("--skumap")
        .arg(data.join("skumap.json"))
        .arg("--url")
        .arg(format!("http://127.0.0.1:{sink}/orders"))
        .args(["--concurrency", "16"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (seconds, cpu) = until_count(sink, n, started, &mut child);
    child.wait().unwrap();
    assert_eq!(sink_count(sink), n, "the ceiling sent each order once");
    Round {
        rate: n as f64 / seconds,
        cpu_us: cpu * 1e6 / n as f64,
    }
}

fn omniflow(binary: &Path, flow: &str, data: &Path, sink: u16, n: u64, round: usize) -> Round {
    sink_call(sink, "POST", "/reset");
    let dir = std::env::temp_dir().join(format!(
        "omniflow-e2e-orders-{}-{round}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("in/orders")).unwrap();
    std::fs::write(dir.join("bench.flow"), flow).unwrap();
    std::fs::copy(data.join("skumap.json"), dir.join("skumap.json")).unwrap();
    std::fs::copy(
        data.join("orders.jsonl"),
        dir.join("in/orders/orders.jsonl"),
    )
    .unwrap();
    let started = Instant::now();
    let mut child = pinned(binary)
        .arg("run")
        .arg(dir.join("bench.flow"))
        .arg("--state")
        .arg(format!("sqlite:{}", dir.join("state.db").display()))
        .arg("--ops-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .env("OMNIFLOW_INBOX", dir.join("in"))
        .env("BENCH_SINK", format!("http://127.0.0.1:{sink}"))
        .env("OMNIFLOW_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (seconds, cpu) = until_count(sink, n, started, &mut child);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert_eq!(sink_count(sink), n, "omniflow sent each order once");
    let _ = std::fs::remove_dir_all(&dir);
    Round {
        rate: n as f64 / seconds,
        cpu_us: cpu * 1e6 / n as f64,
    }
}

fn span(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3);
    let anchors = PathBuf::from(std::env::var("E2E_ANCHORS").unwrap_or_else(|_| {
        panic!("set E2E_ANCHORS to the built e2e anchors (see this file's header)")
    }));
    let data = anchors.join("data");
    let corpus = std::fs::read(data.join("orders.jsonl")).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (perf-anchors `gen --count 20000 --out-dir DIR/data`)",
            data.display()
        )
    });
    let n = corpus
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    let reference = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows/bench/shopify_canonical.flow"),
    )
    .unwrap();
    let flow = bench_flow(&reference);
    let binary = PathBuf::from(
        std::env::var("E2E_OMNIFLOW").unwrap_or(env!("CARGO_BIN_EXE_omniflow").into()),
    );
    let port = free_port();
    let mut sink = Command::new(anchors.join("target/release/e2e-sink"))
        .args(["--addr", &format!("127.0.0.1:{port}"), "--threads", "1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the sink did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (mut ceil, mut ours) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        ceil.push(ceiling(&anchors, &data, port, n));
        ours.push(omniflow(&binary, &flow, &data, port, n, round));
        println!(
            "round {}: ceiling {:.0} msg/s ({:.1} µs CPU/msg), omniflow {:.0} msg/s ({:.1} µs CPU/msg), ratio {:.2}",
            round + 1,
            ceil[round].rate,
            ceil[round].cpu_us,
            ours[round].rate,
            ours[round].cpu_us,
            ours[round].rate / ceil[round].rate
        );
    }
    let _ = sink.kill();
    let _ = sink.wait();
    let rates = |r: &[Round]| r.iter().map(|x| x.rate).collect::<Vec<_>>();
    let ratios: Vec<f64> = ours
        .iter()
        .zip(&ceil)
        .map(|(o, c)| o.rate / c.rate)
        .collect();
    let (c, o, r) = (span(&rates(&ceil)), span(&rates(&ours)), span(&ratios));
    println!(
        "{n} orders ({} bytes), {rounds} interleaved rounds{}: ceiling {:.0}–{:.0} msg/s (median {:.0}); omniflow durable + deduplicated {:.0}–{:.0} msg/s (median {:.0}); ratio {:.2}–{:.2} (median {:.2})",
        corpus.len(),
        std::env::var("E2E_CPUS").map(|c| format!(", pinned to CPUs {c}")).unwrap_or_default(),
        c.0, c.2, c.1, o.0, o.2, o.1, r.0, r.2, r.1
    );
}
