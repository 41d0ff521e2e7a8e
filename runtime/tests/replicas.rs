//! Replicas of the real binary sharing one PostgreSQL state, end to end: a file source, a
//! webhook source and a Shopify poll against the sandbox feed three flows while a random
//! replica (and often the one holding the file source's lease) is SIGKILLed and started
//! again every few seconds. Every message reaches its sink, leases move to the survivors
//! with higher fencing tokens, the file cursor never goes back, and a webhook delivery
//! repeated to another replica is acknowledged as a duplicate.
// The chaos test prints what it did (messages, calls, kills) for the record.
#![allow(clippy::print_stderr)]

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::process::{exchange, terminate};
use support::{free_port, signing::sign, wait_for, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");
const REPLICAS: usize = 3;
const FILE_LINES: usize = 6_000;
const WEBHOOKS: usize = 2_000;
const ORDERS: usize = 2_000;
const HOOK_SECRET: &str = "hook-secret";

const FLOW: &str = r#"use std.connectors.{file, http, shopify, webhook}

connection inbox = file { dir = env("OMNIFLOW_TEST_INBOX") }
connection hooks = webhook { path = "/events", secret = secret("HOOK_SECRET"), signature_header = "x-signature" }
connection shop = shopify { shop = env("SHOP"), access_token = secret("SHOP_TOKEN") }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }

policy retry patient {
  attempts = 30
  backoff = exponential
  initial = 10ms
  max_delay = 200ms
  jitter = 20%
  transient = [timeout, connect, rate_limited, server_error]
  retry_after = false
}

schema Event {
  id: string
}

flow files {
  source lines = inbox.read { path = "*.jsonl", format = jsonl }
  map event = lines -> Event { id = $.id }
  sink post = api.post(event) { path = "/files", idempotency_key = id, retry = patient, concurrency = 8, dead_letter = "files" }
}

flow deliveries {
  source posted = hooks.receive { path = "/hooks/events", dedupe = true }
  map event = posted -> Event { id = $.id }
  sink post = api.post(event) { path = "/hooks", idempotency_key = id, retry = patient, concurrency = 8, dead_letter = "hooks" }
}

flow orders {
  source polled = shop.orders { every = 1s, cursor = watermark, page_size = 250 }
  map event = polled -> Event { id = "s-" + to_string($.id) }
  sink post = api.post(event) { path = "/orders", idempotency_key = id, retry = patient, concurrency = 8, dead_letter = "orders" }
}
"#;

/// One replica's ports and process.
struct Replica {
    hooks: u16,
    ops: u16,
    child: Option<Child>,
}

struct Cluster<'a> {
    dir: &'a TempDir,
    flow: std::path::PathBuf,
    sandbox: u16,
    sink: &'a Sink,
    replicas: Vec<Replica>,
}

impl Cluster<'_> {
    fn spawn(&self, idx: usize) -> Child {
        let replica = &self.replicas[idx];
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.0.join(format!("replica-{idx}.log")))
            .unwrap();
        Command::new(BIN)
            .arg("run")
            .arg(&self.flow)
            .args(["--state", &self.dir.state()])
            .args(["--webhook-addr", &format!("127.0.0.1:{}", replica.hooks)])
            .args(["--ops-addr", &format!("127.0.0.1:{}", replica.ops)])
            .args(["--replica-ttl", "2s", "--state-wait", "30s"])
            .env("OMNIFLOW_TEST_INBOX", self.dir.0.join("in"))
            .env(
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", self.sink.port),
            )
            .env("SHOP", format!("http://127.0.0.1:{}", self.sandbox))
            .env("SHOP_TOKEN", "shpat_sandbox")
            .env("HOOK_SECRET", HOOK_SECRET)
            .env("OMNIFLOW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap()
    }

    fn start(&mut self, idx: usize) {
        let child = self.spawn(idx);
        self.replicas[idx].child = Some(child);
    }

    fn kill(&mut self, idx: usize) {
        if let Some(mut child) = self.replicas[idx].child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// The replica whose process holds lease `name` now, if one of ours does.
    fn holder_of(&self, name: &str) -> Option<usize> {
        let db = self.dir.database()?;
        let holder = db
            .texts(&format!("SELECT holder FROM leases WHERE name = '{name}'"))
            .pop()?;
        self.replicas.iter().position(|r| {
            r.child
                .as_ref()
                .is_some_and(|c| holder.contains(&format!("-{}-", c.id())))
        })
    }

    /// Fails the test, with the log's tail, when a replica stopped by itself.
    fn assert_running(&mut self) {
        for (idx, replica) in self.replicas.iter_mut().enumerate() {
            if let Some(status) = replica.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                let log = std::fs::read_to_string(self.dir.0.join(format!("replica-{idx}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!("replica {idx} stopped by itself ({status:?}); log tail: {tail:#?}");
            }
        }
    }

    /// SIGTERM to every replica; each must stop cleanly.
    fn stop_all(&mut self) {
        for replica in &mut self.replicas {
            if let Some(mut child) = replica.child.take() {
                let status = terminate(&mut child);
                assert!(status.success(), "SIGTERM must exit 0, got {status:?}");
            }
        }
    }
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        for replica in &mut self.replicas {
            if let Some(mut child) = replica.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn post_delivery(port: u16, delivery_id: &str, body: &str) -> (u16, String) {
    exchange(
        port,
        &format!(
            "POST /hooks/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nX-Webhook-Id: {delivery_id}\r\nX-Signature: {}\r\nContent-Length: {}\r\n\r\n{body}",
            sign(HOOK_SECRET, body),
            body.len()
        ),
    )
}

fn create_order(sandbox: u16) {
    let body = r#"{"line_items": [{"sku": "TSHIRT-039-RED-M", "quantity": 1}]}"#;
    let (status, answer) = exchange(
        sandbox,
        &format!(
            "POST /_sandbox/shopify/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 201, "{answer}");
}

/// A fixed-seed sequence of numbers below `n`.
fn next(seed: &mut u64, n: u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 33) % n
}

#[test]
fn three_replicas_deliver_every_message_once_while_replicas_are_killed_and_restarted() {
    let dir = TempDir::on_database("replicas");
    let flow = dir.0.join("replicas.flow");
    std::fs::write(&flow, FLOW).unwrap();
    let sandbox_port = free_port();
    let _sandbox = support::process::sandbox(sandbox_port);
    // One call in ten fails transiently: deliveries are in retry when a replica dies.
    let sink = Sink::start(Faults {
        server_error: 10,
        ..Faults::default()
    });
    let mut cluster = Cluster {
        dir: &dir,
        flow,
        sandbox: sandbox_port,
        sink: &sink,
        replicas: (0..REPLICAS)
            .map(|_| Replica {
                hooks: free_port(),
                ops: free_port(),
                child: None,
            })
            .collect(),
    };
    for idx in 0..REPLICAS {
        cluster.start(idx);
    }
    let hook_ports: Vec<u16> = cluster.replicas.iter().map(|r| r.hooks).collect();

    // The traffic arrives over ~15 s, so that kills land in the middle of it.
    let done = Arc::new(AtomicBool::new(false));
    let duplicates_acknowledged = Arc::new(AtomicUsize::new(0));
    let traffic = {
        let (dir_in, done, acknowledged) = (
            dir.0.join("in").join("events.jsonl"),
            done.clone(),
            duplicates_acknowledged.clone(),
        );
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&dir_in).unwrap();
            let (mut hook, mut order) = (0usize, 0usize);
            for step in 0..100 {
                for n in step * FILE_LINES / 100..(step + 1) * FILE_LINES / 100 {
                    writeln!(file, r#"{{"id": "f-{n}"}}"#).unwrap();
                }
                file.flush().unwrap();
                while hook < (step + 1) * WEBHOOKS / 100 {
                    let body = format!(r#"{{"id": "w-{hook}"}}"#);
                    let delivery = format!("d-{hook}");
                    // Any replica: a refused or failed post goes to the next one.
                    let mut target = hook;
                    loop {
                        let port = hook_ports[target % hook_ports.len()];
                        let (status, _) = post_delivery(port, &delivery, &body);
                        if (200..300).contains(&status) {
                            break;
                        }
                        target += 1;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    // One in ten is delivered again, to another replica.
                    if hook % 10 == 0 {
                        loop {
                            let port = hook_ports[(target + 1) % hook_ports.len()];
                            let (status, answer) = post_delivery(port, &delivery, &body);
                            if status == 200 && answer.contains("duplicate") {
                                acknowledged.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            assert!(
                                !(200..300).contains(&status),
                                "a repeated delivery was stored again: {status} {answer}"
                            );
                            target += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    hook += 1;
                }
                while order < (step + 1) * ORDERS / 100 {
                    create_order(sandbox_port);
                    order += 1;
                }
                std::thread::sleep(Duration::from_millis(150));
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let db = dir.database().unwrap();
    let file_cursor = || -> Option<u64> {
        db.texts("SELECT value FROM cursors WHERE flow = 'files'")
            .pop()
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let total = FILE_LINES + WEBHOOKS + ORDERS;
    let (mut kills, mut holder_kills, mut seed) = (0, 0, 0x5EED_u64);
    let mut last_cursor = 0;
    let started = Instant::now();
    while sink.distinct() < total {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{} of {total} messages after 300 s",
            sink.distinct()
        );
        std::thread::sleep(Duration::from_millis(1500 + next(&mut seed, 1500)));
        cluster.assert_running();
        if let Some(cursor) = file_cursor() {
            assert!(
                cursor >= last_cursor,
                "the file cursor went back: {last_cursor} -> {cursor}"
            );
            last_cursor = cursor;
        }
        if done.load(Ordering::SeqCst) && kills >= 6 {
            continue;
        }
        // Every other kill takes the file source's lease holder.
        let victim = match kills % 2 {
            0 => cluster.holder_of("source:files/lines"),
            _ => None,
        };
        let victim = victim.unwrap_or_else(|| next(&mut seed, REPLICAS as u64) as usize);
        if cluster.holder_of("source:files/lines") == Some(victim) {
            holder_kills += 1;
        }
        cluster.kill(victim);
        kills += 1;
        std::thread::sleep(Duration::from_millis(300));
        cluster.start(victim);
    }
    traffic.join().unwrap();
    wait_for("an empty inbox", Duration::from_secs(60), || {
        db.count("SELECT COUNT(*) FROM inbox") == 0
    });
    cluster.stop_all();

    let seen = sink.seen.lock().unwrap();
    let expected: HashSet<String> = (0..FILE_LINES)
        .map(|n| format!("f-{n}"))
        .chain((0..WEBHOOKS).map(|n| format!("w-{n}")))
        .collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|k| !seen.effects.contains_key(*k))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    let orders = seen.effects.keys().filter(|k| k.starts_with("s-")).count();
    assert_eq!(orders, ORDERS, "Shopify orders delivered");
    assert_eq!(seen.effects.len(), total);
    assert_eq!(seen.without_key, 0);
    assert_eq!(seen.mismatched, 0);
    // A call that succeeded just before its replica was killed, before its outcome was
    // committed, is made again with the same idempotency key; nothing else repeats.
    let repeated = seen.effects.values().filter(|n| **n > 1).count();
    assert!(
        repeated <= kills * 3 * 8,
        "{repeated} keys called again after {kills} kills"
    );
    let calls = seen.requests;
    drop(seen);
    eprintln!(
        "{total} messages, {calls} successful calls, {repeated} keys called again, {kills} kills ({holder_kills} of the file source's holder) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        duplicates_acknowledged.load(Ordering::SeqCst),
        WEBHOOKS / 10
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM dead_letters"), 0);
    assert!(
        holder_kills >= 1,
        "the file source's lease holder was never killed"
    );
    // Each kill of a holder handed its lease to a survivor with a higher token.
    let token = db.count("SELECT token FROM leases WHERE name = 'source:files/lines'");
    assert!(
        token >= 2,
        "the file source's lease never moved (token {token})"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM key_claims"), 0);

    let cluster_status = || {
        let status = Command::new(BIN)
            .args(["cluster", "status", "--json", "--state", &dir.state()])
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
        serde_json::from_slice::<serde_json::Value>(&status.stdout).unwrap()
    };
    // A replica killed last counts as live until its time to live has passed.
    let mut status = cluster_status();
    let started = Instant::now();
    while status["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["live"] == true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a replica stays live: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
        status = cluster_status();
    }
    let replicas = status["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), REPLICAS + kills);
    let stopped = replicas
        .iter()
        .filter(|r| !r["stopped_at"].is_null())
        .count();
    assert_eq!(
        stopped, REPLICAS,
        "the last three stopped cleanly: {status}"
    );
}

#[test]
fn a_replica_paused_past_its_time_to_live_stops_when_it_resumes_and_the_other_takes_over() {
    let dir = TempDir::on_database("replica-paused");
    let flow = dir.0.join("replicas.flow");
    std::fs::write(&flow, FLOW).unwrap();
    let sink = Sink::start(Faults::default());
    let mut cluster = Cluster {
        dir: &dir,
        flow,
        // No Shopify here: its poll fails and is retried, which changes nothing below.
        sandbox: free_port(),
        sink: &sink,
        replicas: (0..2)
            .map(|_| Replica {
                hooks: free_port(),
                ops: free_port(),
                child: None,
            })
            .collect(),
    };
    cluster.start(0);
    cluster.start(1);
    let lines = dir.0.join("in").join("events.jsonl");
    let mut file = std::fs::File::create(&lines).unwrap();
    for n in 0..500 {
        writeln!(file, r#"{{"id": "f-{n}"}}"#).unwrap();
    }
    file.flush().unwrap();
    wait_for("the first lines", Duration::from_secs(60), || {
        sink.distinct() == 500
    });
    let paused = cluster
        .holder_of("source:files/lines")
        .expect("a replica holds the file source");
    let pid = cluster.replicas[paused]
        .child
        .as_ref()
        .unwrap()
        .id()
        .to_string();
    let signal = |name: &str| {
        assert!(Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    // More lines while it is paused: the other replica takes the source over.
    for n in 500..1000 {
        writeln!(file, r#"{{"id": "f-{n}"}}"#).unwrap();
    }
    file.flush().unwrap();
    let survivor = 1 - paused;
    let started = Instant::now();
    while sink.distinct() != 1000 {
        if started.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(dir.0.join(format!("replica-{survivor}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "timed out waiting for the other replica's deliveries: {} of 1000, the file source held by {:?}; the survivor's log tail: {tail:#?}",
                sink.distinct(),
                cluster.holder_of("source:files/lines")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cluster.holder_of("source:files/lines"), Some(survivor));
    signal("-CONT");
    // On resuming, it stops by itself, with the reason: its next heartbeat is refused, or,
    // when it was paused inside a batch, that batch fails first (the server ended the
    // session it left idle in a transaction).
    let child = cluster.replicas[paused].child.as_mut().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a fenced replica kept running"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    cluster.replicas[paused].child = None;
    assert_eq!(status.code(), Some(2));
    let log = std::fs::read_to_string(dir.0.join(format!("replica-{paused}.log"))).unwrap();
    assert!(
        log.contains("counted as gone")
            || log.contains("a state write of this replica failed; it leaves its work to the other replicas and stops"),
        "{log}"
    );
    // The survivor goes on alone.
    for n in 1000..1100 {
        writeln!(file, r#"{{"id": "f-{n}"}}"#).unwrap();
    }
    file.flush().unwrap();
    wait_for("the last lines", Duration::from_secs(60), || {
        sink.distinct() == 1100
    });
    cluster.stop_all();
    assert_eq!(sink.seen.lock().unwrap().mismatched, 0);
}
