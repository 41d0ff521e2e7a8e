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
//! another build of omniflow. After the rounds, the latency a user sees at half omniflow's
//! median rate: the same orders POSTed to a webhook source of the same flow for
//! `E2E_LATENCY_SECONDS` (default 20), each timed from its POST to its arrival at the sink.
//! Each omniflow round also prints the CPU each of its threads spent per message (the
//! runtime thread `omniflow`, the state thread, the mapping threads together).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

#[path = "support/anchor_flow.rs"]
mod anchor_flow;
#[path = "support/cpu.rs"]
mod cpu;
#[path = "../tests/support/http_read.rs"]
mod http_read;
#[path = "../tests/support/signing.rs"]
mod signing;

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The webhook secret of the latency flow.
const HOOK_SECRET: &str = "bench-hook-secret";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `omniflow run` of `dir/bench.flow` on a fresh SQLite state in `dir`, its inbox `dir/in`,
/// its sink on `sink` and, with `hooks`, its webhook server on that port.
fn run_omniflow(binary: &Path, dir: &Path, sink: u16, hooks: Option<u16>) -> Child {
    let mut command = pinned(binary);
    command
        .arg("run")
        .arg(dir.join("bench.flow"))
        .arg("--state")
        .arg(format!("sqlite:{}", dir.join("state.db").display()))
        .arg("--ops-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .env("OMNIFLOW_INBOX", dir.join("in"))
        .env("BENCH_SINK", format!("http://127.0.0.1:{sink}"))
        .env("BENCH_HOOK_SECRET", HOOK_SECRET)
        .env("OMNIFLOW_LOG", "warn")
        .stdout(Stdio::null());
    if let Some(hooks) = hooks {
        command
            .arg("--webhook-addr")
            .arg(format!("127.0.0.1:{hooks}"));
    }
    command.spawn().unwrap()
}

/// Waits until `what` listens on `port`, at most `limit`.
fn wait_listening(port: u16, limit: Duration, what: &str) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < limit, "{what} did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
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

/// CPU seconds so far of each thread of process `pid`, summed by thread name with its
/// number dropped (`omniflow-map-0`, `omniflow-map-1`: `omniflow-map`), from `/proc`.
fn thread_seconds(pid: u32) -> Vec<(String, f64)> {
    let mut by_name: Vec<(String, f64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let seconds = cpu::stat_seconds(&stat);
        let name = stat
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map_or("", |(name, _)| name)
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .trim_end_matches('-');
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some((_, s)) => *s += seconds,
            None => by_name.push((name.to_string(), seconds)),
        }
    }
    by_name
}

/// What `until_count` saw of the child: the seconds since `started`, its CPU seconds and
/// its threads' as last read (every 5 ms, so a child that exits at the end is counted too),
/// and its peak RSS.
struct Seen {
    seconds: f64,
    cpu: f64,
    threads: Vec<(String, f64)>,
    peak: f64,
}

/// Waits for `n` at the sink.
fn until_count(port: u16, n: u64, started: Instant, child: &mut Child) -> Seen {
    let mut seen = Seen {
        seconds: 0.0,
        cpu: 0.0,
        threads: Vec::new(),
        peak: 0.0,
    };
    loop {
        let cpu = cpu::cpu_seconds(child.id());
        if cpu.is_finite() {
            seen.cpu = cpu;
            seen.threads = thread_seconds(child.id());
        }
        seen.peak = seen.peak.max(peak_mib(child.id()));
        if sink_count(port) >= n {
            seen.seconds = started.elapsed().as_secs_f64();
            return seen;
        }
        if let Ok(Some(status)) = child.try_wait() {
            if sink_count(port) >= n {
                seen.seconds = started.elapsed().as_secs_f64();
                return seen;
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
    /// CPU µs per message by thread, the busiest first.
    threads_us: Vec<(String, f64)>,
    /// Peak RSS of the contender (VmHWM), in MiB.
    peak_mib: f64,
}

impl Round {
    /// The round of `n` messages the contender was `seen` to take.
    fn of(seen: Seen, n: u64) -> Round {
        let per_message = |seconds: f64| seconds * 1e6 / n as f64;
        let mut threads_us: Vec<(String, f64)> = seen
            .threads
            .into_iter()
            .map(|(name, seconds)| (name, per_message(seconds)))
            .collect();
        threads_us.sort_by(|a, b| b.1.total_cmp(&a.1));
        Round {
            rate: n as f64 / seen.seconds,
            cpu_us: per_message(seen.cpu),
            threads_us,
            peak_mib: seen.peak,
        }
    }

    /// `name µs, …` for the threads that took at least 0.5 µs a message.
    fn by_thread(&self) -> String {
        self.threads_us
            .iter()
            .filter(|(_, us)| *us >= 0.5)
            .map(|(name, us)| format!("{name} {us:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A process's peak resident memory (VmHWM) in MiB, 0 when it cannot be read.
fn peak_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
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
    let seen = until_count(sink, n, started, &mut child);
    child.wait().unwrap();
    assert_eq!(sink_count(sink), n, "the ceiling sent each order once");
    Round::of(seen, n)
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
    let mut child = run_omniflow(binary, &dir, sink, None);
    let seen = until_count(sink, n, started, &mut child);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert_eq!(sink_count(sink), n, "omniflow sent each order once");
    let _ = std::fs::remove_dir_all(&dir);
    Round::of(seen, n)
}

/// The latency flow: the bench flow with a signed webhook source in place of the file source.
fn latency_flow(flow: &str) -> String {
    flow.replace(
        "use std.connectors.{file, http}",
        "use std.connectors.{file, http, webhook}",
    )
    .replace(
        "connection api = http",
        "connection hooks = webhook { path = \"/orders\", secret = secret(\"BENCH_HOOK_SECRET\"), signature_header = \"x-signature\" }\nconnection api = http",
    )
    .replace(
        "source orders = inbox.read { path = \"orders/*.jsonl\", format = jsonl }",
        "source orders = hooks.receive { path = \"/orders\" }",
    )
}

/// When each order arrived, by its `external_id`.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// A keep-alive sink that answers 200 and notes when each canonical order arrived.
fn timing_sink(arrivals: Arrivals) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let arrivals = arrivals.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                while let Some(request) = http_read::read_request(&mut reader) {
                    let at = Instant::now();
                    let body = String::from_utf8_lossy(&request.body);
                    if let Some(id) = body
                        .split_once("\"external_id\":\"")
                        .and_then(|(_, rest)| rest.split_once('"'))
                        .map(|(id, _)| id.to_string())
                    {
                        arrivals.lock().unwrap().insert(id, at);
                    }
                    if writer
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
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

/// The `q`-quantile of sorted durations, in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx].as_secs_f64() * 1e3
}

/// `line` with its order id made unique for pass `cycle` over the corpus (an order sent
/// twice would be deduplicated, not timed).
fn order_for(line: &str, cycle: u64) -> (String, String) {
    let mut order: serde_json::Value = serde_json::from_str(line).unwrap();
    let id = order["id"].as_u64().unwrap() + cycle * 1_000_000_000_000;
    order["id"] = serde_json::json!(id);
    (id.to_string(), order.to_string())
}

/// POSTs orders to the webhook source at `rate` for `seconds` from 8 senders on keep-alive
/// connections; the latencies from each POST to the sink's arrival, sorted.
fn latency(
    binary: &Path,
    flow: &str,
    data: &Path,
    rate: f64,
    seconds: f64,
) -> (Vec<Duration>, u64, f64) {
    let arrivals: Arrivals = Arc::default();
    let sink = timing_sink(arrivals.clone());
    let dir = std::env::temp_dir().join(format!("omniflow-e2e-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::write(dir.join("bench.flow"), latency_flow(flow)).unwrap();
    std::fs::copy(data.join("skumap.json"), dir.join("skumap.json")).unwrap();
    let hooks = free_port();
    let mut child = run_omniflow(binary, &dir, sink, Some(hooks));
    wait_listening(hooks, Duration::from_secs(30), "the webhook source");
    let corpus: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(data.join("orders.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
    );
    let total = (rate * seconds) as u64;
    let senders = 8u64;
    let sent: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let handles: Vec<_> = (0..senders)
        .map(|s| {
            let (corpus, sent) = (corpus.clone(), sent.clone());
            std::thread::spawn(move || {
                let stream = TcpStream::connect(("127.0.0.1", hooks)).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let interval = Duration::from_secs_f64(senders as f64 / rate);
                let begin = Instant::now();
                let mut mine = Vec::new();
                let (mut i, mut k) = (s, 0u32);
                while i < total {
                    let n = corpus.len() as u64;
                    let (id, body) = order_for(&corpus[(i % n) as usize], i / n);
                    let due = begin + interval * k;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let request = format!(
                        "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Signature: {}\r\nContent-Length: {}\r\n\r\n{body}",
                        signing::sign(HOOK_SECRET, &body),
                        body.len()
                    );
                    mine.push((id, Instant::now()));
                    writer.write_all(request.as_bytes()).unwrap();
                    let (status, _) = http_read::read_response(&mut reader).expect("an answer");
                    assert!(status.contains(" 2"), "the webhook source answered {status}");
                    i += senders;
                    k += 1;
                }
                sent.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while (arrivals.lock().unwrap().len() as u64) < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let peak = peak_mib(child.id());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let arrivals = arrivals.lock().unwrap();
    let mut times: Vec<Duration> = sent
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(id, at)| {
            arrivals
                .get(id)
                .map(|got| got.saturating_duration_since(*at))
        })
        .collect();
    times.sort_unstable();
    (times, total, peak)
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
    let flow = anchor_flow::http_flow("30s");
    let binary = PathBuf::from(
        std::env::var("E2E_OMNIFLOW").unwrap_or(env!("CARGO_BIN_EXE_omniflow").into()),
    );
    let port = free_port();
    let mut sink = Command::new(anchors.join("target/release/e2e-sink"))
        .args(["--addr", &format!("127.0.0.1:{port}"), "--threads", "1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port, Duration::from_secs(10), "the sink");
    let (mut ceil, mut ours) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        ceil.push(ceiling(&anchors, &data, port, n));
        ours.push(omniflow(&binary, &flow, &data, port, n, round));
        println!(
            "round {}: ceiling {:.0} msg/s ({:.1} µs CPU/msg, peak RSS {:.1} MiB), omniflow {:.0} msg/s ({:.1} µs CPU/msg, peak RSS {:.1} MiB), ratio {:.2}",
            round + 1,
            ceil[round].rate,
            ceil[round].cpu_us,
            ceil[round].peak_mib,
            ours[round].rate,
            ours[round].cpu_us,
            ours[round].peak_mib,
            ours[round].rate / ceil[round].rate
        );
        println!(
            "  omniflow's CPU µs/msg by thread: {}",
            ours[round].by_thread()
        );
    }
    let _ = sink.kill();
    let _ = sink.wait();
    let median_rate = span(&ours.iter().map(|x| x.rate).collect::<Vec<_>>()).1;
    let seconds: f64 = std::env::var("E2E_LATENCY_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    let (times, total, latency_peak) = latency(&binary, &flow, &data, median_rate / 2.0, seconds);
    println!(
        "latency at {:.0} msg/s (half omniflow's median) for {seconds:.0} s, webhook POST -> sink: {} of {total} timed, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; omniflow peak RSS {latency_peak:.1} MiB",
        median_rate / 2.0,
        times.len(),
        quantile_ms(&times, 0.50),
        quantile_ms(&times, 0.99),
        quantile_ms(&times, 1.0),
    );
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
