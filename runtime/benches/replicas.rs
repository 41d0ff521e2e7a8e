//! Replicas on PostgreSQL against one process on SQLite, on the anchor workload: 2.8 KB
//! Shopify orders from a file source through the full `canonical.order.v1` mapping
//! (`flows/bench/shopify_canonical.flow`) to an HTTP sink (`concurrency = 16` per sink).
//! One file source runs on one replica (its lease); every replica claims and delivers.
//! "one owner" is one process owning the PostgreSQL state (`--alone`: no claims).
//! Run: `cargo bench -p omniflow-runtime --bench replicas -- [ORDERS] [MAX_REPLICAS]`.
//! `E2E_OMNIFLOW=PATH` runs another `omniflow` binary. Prints one line per setup: wall
//! time, msg/s, the ratio to SQLite measured in the same run, and omniflow's CPU per
//! message (all replicas together; PostgreSQL's own CPU is not included).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

#[path = "support/cpu.rs"]
mod cpu;
#[path = "../tests/support/http_read.rs"]
mod http_read;
#[allow(dead_code)]
#[path = "../tests/support/postgres.rs"]
mod postgres_db;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A keep-alive HTTP sink that counts requests.
fn sink(count: Arc<AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let count = count.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                while http_read::read_request(&mut reader).is_some() {
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

/// The benchmark flow: the anchor mapping with HTTP sinks in place of its file sinks.
fn write_flow(dir: &Path) {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows/bench");
    let flow = std::fs::read_to_string(bench.join("shopify_canonical.flow")).unwrap();
    let flow = flow
        .replace(
            "use std.connectors.{file}",
            "use std.connectors.{file, http}",
        )
        .replace(
            r#"connection outbox = file { dir = env("OMNIFLOW_OUTBOX") }"#,
            r#"connection outbox = http { base_url = env("OMNIFLOW_OUTBOX") }"#,
        )
        .replace(
            "outbox.write(by_priority) {",
            "outbox.post(by_priority) {\n    concurrency = 16",
        )
        .replace(r#"path = "priority.jsonl""#, r#"path = "/priority""#)
        .replace(r#"path = "standard.jsonl""#, r#"path = "/standard""#);
    assert!(
        flow.contains("outbox.post"),
        "the flow's sinks were not replaced"
    );
    std::fs::write(dir.join("bench.flow"), flow).unwrap();
    std::fs::copy(bench.join("skumap.json"), dir.join("skumap.json")).unwrap();
    std::fs::create_dir_all(dir.join("fixtures")).unwrap();
    for fixture in ["order_paid_us.json", "order_paid_us.canonical.json"] {
        std::fs::copy(
            bench.join("fixtures").join(fixture),
            dir.join("fixtures").join(fixture),
        )
        .unwrap();
    }
}

/// `orders` orders: the sample orders again and again, each with an id of its own.
fn write_orders(path: &Path, orders: u64) {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows/bench/fixtures");
    let samples: Vec<serde_json::Value> =
        BufReader::new(std::fs::File::open(bench.join("sample_orders.jsonl")).unwrap())
            .lines()
            .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
            .collect();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for n in 0..orders {
        let mut order = samples[(n % samples.len() as u64) as usize].clone();
        order["id"] = serde_json::json!(7_000_000_000_000u64 + n);
        serde_json::to_writer(&mut out, &order).unwrap();
        out.write_all(b"\n").unwrap();
    }
}

/// Runs `replicas` processes on `state` until the sink has `orders` calls; the wall time
/// and the processes' CPU seconds.
fn measure(dir: &Path, state: &str, replicas: usize, orders: u64, extra: &[&str]) -> (f64, f64) {
    let _ = std::fs::remove_dir_all(dir.join("in"));
    write_orders(&dir.join("in/orders/orders.jsonl"), orders);
    let count = Arc::new(AtomicU64::new(0));
    let port = sink(count.clone());
    let binary = std::env::var("E2E_OMNIFLOW").unwrap_or(env!("CARGO_BIN_EXE_omniflow").into());
    let started = Instant::now();
    let mut children: Vec<Child> = (0..replicas)
        .map(|_| {
            Command::new(&binary)
                .arg("run")
                .arg(dir.join("bench.flow"))
                .args(["--state", state, "--webhook-addr", "127.0.0.1:0"])
                .args(extra)
                .env("OMNIFLOW_INBOX", dir.join("in"))
                .env("OMNIFLOW_OUTBOX", format!("http://127.0.0.1:{port}"))
                .env("OMNIFLOW_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    while count.load(Ordering::Relaxed) < orders {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "not finished: {} of {orders}",
            count.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = children.iter().map(|c| cpu::cpu_seconds(c.id())).sum();
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    (elapsed, cpu)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let orders: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let most: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("omniflow-replicas-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_flow(&dir);
    let report = |setup: &str, (elapsed, cpu): (f64, f64), baseline: f64| {
        let rate = orders as f64 / elapsed;
        println!(
            "{setup:<28} {orders} orders in {elapsed:6.2} s = {rate:7.0} msg/s ({:.2}x SQLite), omniflow CPU {:.1} µs/msg",
            rate / baseline,
            cpu * 1e6 / orders as f64
        );
    };
    let sqlite = format!("sqlite:{}", dir.join("state.db").display());
    let measured = measure(&dir, &sqlite, 1, orders, &[]);
    let baseline = orders as f64 / measured.0;
    report("SQLite, one process", measured, baseline);
    let db = postgres_db::FreshDb::create("alone");
    let measured = measure(&dir, &db.url, 1, orders, &["--alone"]);
    report("PostgreSQL, one owner", measured, baseline);
    drop(db);
    for replicas in 1..=most {
        let db = postgres_db::FreshDb::create(&format!("replicas{replicas}"));
        let measured = measure(&dir, &db.url, replicas, orders, &[]);
        report(
            &format!("PostgreSQL, {replicas} replica(s)"),
            measured,
            baseline,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
