//! A recording HTTP sink for the durability tests: an idempotent receiver that counts
//! side effects by `Idempotency-Key`, with injectable faults (5xx, 429 + Retry-After,
//! slow answers that time out).
#![allow(dead_code)]

pub mod http_read;
pub mod peers;
pub mod postgres;
pub mod process;
pub mod signing;

/// Runs `future` to completion on a current-thread runtime, inside a `LocalSet` (the
/// runtime's tasks are `spawn_local`).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, future)
}

/// A connection of `connector` with literal settings (a JSON object).
pub fn connection(
    name: &str,
    connector: &str,
    settings: serde_json::Value,
) -> omniflow_ir::Connection {
    omniflow_ir::Connection {
        name: name.into(),
        connector: connector.into(),
        settings: settings
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), omniflow_ir::SettingValue::Value(v.clone())))
            .collect(),
        quota: omniflow_ir::Quota::default(),
        declared: None,
    }
}

/// Calls a sink operation of a connection once with `message`, its key as correlation id.
pub async fn call_sink(
    connection: &omniflow_ir::Connection,
    operation: &str,
    key: &str,
    message: &serde_json::Value,
    timeout: std::time::Duration,
) -> omniflow_connectors::CallOutcome {
    let sink = omniflow_engine::connect::sink(
        std::rc::Rc::new(omniflow_connectors::Context::default()),
        connection,
        operation,
        &Default::default(),
    )
    .unwrap();
    let body = message.to_string();
    sink.call(omniflow_connectors::Call {
        key,
        correlation_id: key,
        body: body.as_bytes(),
        timeout,
    })
    .await
}

/// A port nothing listens on right now, for a server a test starts. It is taken below the
/// kernel's ephemeral range (`ip_local_port_range`, 32768 and up by default), so no
/// socket bound to port 0 meanwhile (a runtime's webhook server, a client) can take it
/// before the server does, and one test process never hands out the same port twice.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..12_000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (start.wrapping_add(n) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 31999 on 127.0.0.1")
}

/// Polls `done` until it holds; panics with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: std::time::Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Fault rates in percent.
#[derive(Clone, Copy, Default)]
pub struct Faults {
    pub server_error: u64,
    pub rate_limited: u64,
    pub slow: u64,
    /// Answered 422: a permanent failure, dead-lettered at once.
    pub rejected: u64,
}

/// What the sink saw.
#[derive(Default)]
pub struct Seen {
    /// Side effects per key (2xx answers; a repeated key is acknowledged, not re-applied).
    pub effects: HashMap<String, u64>,
    /// Requests that carried no idempotency key.
    pub without_key: u64,
    /// Requests whose body id did not match the key.
    pub mismatched: u64,
    pub requests: u64,
    /// The bodies of the requests answered 2xx, in the order they arrived.
    pub accepted: Vec<serde_json::Value>,
}

/// A running sink server.
pub struct Sink {
    pub port: u16,
    pub seen: Arc<Mutex<Seen>>,
    faults: Arc<Mutex<Faults>>,
    stop: Arc<AtomicBool>,
    counter: Arc<AtomicU64>,
}

impl Sink {
    /// Starts on a free port.
    pub fn start(faults: Faults) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = Sink {
            port,
            seen: Arc::default(),
            faults: Arc::new(Mutex::new(faults)),
            stop: Arc::default(),
            counter: Arc::default(),
        };
        let (seen, fault_cfg, stop, counter) = (
            sink.seen.clone(),
            sink.faults.clone(),
            sink.stop.clone(),
            sink.counter.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (seen, fault_cfg, counter) = (seen.clone(), fault_cfg.clone(), counter.clone());
                std::thread::spawn(move || serve(stream, seen, fault_cfg, counter));
            }
        });
        sink
    }

    /// Changes the fault profile.
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }

    /// Distinct keys with a side effect.
    pub fn distinct(&self) -> usize {
        self.seen.lock().unwrap().effects.len()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn roll(counter: &AtomicU64) -> u64 {
    // A fixed-seed sequence: the same run sees the same faults.
    let n = counter.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    x % 100
}

fn serve(
    stream: TcpStream,
    seen: Arc<Mutex<Seen>>,
    faults: Arc<Mutex<Faults>>,
    counter: Arc<AtomicU64>,
) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = http_read::read_request(&mut reader) {
        let (line, key, body) = (
            request.line.clone(),
            request.header("idempotency-key").map(str::to_string),
            request.body,
        );
        if line.starts_with("GET") {
            let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            continue;
        }
        let fault = *faults.lock().unwrap();
        let dice = roll(&counter);
        let response: &[u8] = if dice < fault.server_error {
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\n\r\nunavailable"
        } else if dice < fault.server_error + fault.rate_limited {
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nslow"
        } else if dice < fault.server_error + fault.rate_limited + fault.slow {
            std::thread::sleep(Duration::from_millis(1500));
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nlate"
        } else if dice < fault.server_error + fault.rate_limited + fault.slow + fault.rejected {
            b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 11\r\n\r\nunknown sku"
        } else {
            let mut seen = seen.lock().unwrap();
            seen.requests += 1;
            match &key {
                None => seen.without_key += 1,
                Some(key) => {
                    let parsed = serde_json::from_slice::<serde_json::Value>(&body).ok();
                    let body_id = parsed
                        .as_ref()
                        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(String::from));
                    if body_id.as_deref() != Some(key.as_str()) {
                        seen.mismatched += 1;
                    }
                    *seen.effects.entry(key.clone()).or_default() += 1;
                    seen.accepted.extend(parsed);
                }
            }
            b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
        };
        if writer.write_all(response).is_err() {
            return;
        }
    }
}

/// A flow reading JSONL files and posting each record to the sink.
pub fn flow_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("durable.flow");
    std::fs::write(
        &path,
        r#"use std.connectors.{file, http}

connection inbox = file { dir = env("OMNIFLOW_TEST_INBOX") }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }

policy retry brisk {
  attempts = 4
  backoff = exponential
  initial = 50ms
  max_delay = 400ms
  jitter = 20%
  transient = [timeout, connect, rate_limited, server_error]
  retry_after = true
}

schema Event {
  id: string
  qty: int
}

flow events {
  source lines = inbox.read { path = "*.jsonl", format = jsonl }
  map event = lines -> Event {
    id = to_string($.id)
    qty = $.qty ?? reject "missing qty"
  }
  sink post = api.post(event) {
    path = "/events"
    idempotency_key = id
    retry = brisk
    timeout = 1s
    concurrency = 32
    dead_letter = "events"
  }
}
"#,
    )
    .unwrap();
    path
}

/// A temporary directory removed on drop, with the state of the runtimes started in it:
/// `state.db` inside it, or a fresh PostgreSQL database when `OMNIFLOW_TEST_STATE` is
/// `postgres` (the suites that run on both backends).
pub struct TempDir(pub std::path::PathBuf, Option<postgres::FreshDb>);

impl TempDir {
    /// Creates a fresh directory (and database).
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("omniflow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.join("in")).unwrap();
        let db = on_postgres().then(|| postgres::FreshDb::create(&name.replace('-', "_")));
        TempDir(path, db)
    }

    /// A fresh directory whose state is always a fresh PostgreSQL database (replicas
    /// share one).
    pub fn on_database(name: &str) -> TempDir {
        let mut dir = TempDir::new(name);
        if dir.1.is_none() {
            dir.1 = Some(postgres::FreshDb::create(&name.replace('-', "_")));
        }
        dir
    }

    /// The database of a state on PostgreSQL.
    pub fn database(&self) -> Option<&postgres::FreshDb> {
        self.1.as_ref()
    }

    /// The `--state` of a runtime started in this directory.
    pub fn state(&self) -> String {
        match &self.1 {
            Some(db) => db.url.clone(),
            None => format!("sqlite:{}", self.0.join("state.db").display()),
        }
    }

    /// The state, opened for reading beside a running runtime (`None` before it exists).
    pub fn read_state(&self) -> Option<Box<dyn omniflow_state::Backend>> {
        let mut backend = omniflow_state::open_for_reading(&self.state()).ok()?;
        backend.begin().ok()?;
        Some(backend)
    }
}

impl TempDir {
    /// Writes a flow file into `flows/`.
    pub fn write_flows(&self, name: &str, text: &str) {
        std::fs::create_dir_all(self.0.join("flows")).unwrap();
        std::fs::write(self.0.join("flows").join(name), text).unwrap();
    }

    /// What the runtime started by [`run_flows`] logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.0.join("runtime.log")).unwrap_or_default()
    }
}

/// Starts `omniflow run` on `dir/flows` with the directory's state, `args` added (the
/// addresses, `--config`), `env` set after `OMNIFLOW_LOG=info`; it logs to
/// `dir/runtime.log`.
pub fn run_flows(dir: &TempDir, args: &[&str], env: &[(&str, String)]) -> std::process::Child {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_omniflow"));
    command
        .arg("run")
        .arg(dir.0.join("flows"))
        .args(["--state", &dir.state()])
        .args(args)
        .env("OMNIFLOW_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(
            std::fs::File::create(dir.0.join("runtime.log")).unwrap(),
        ));
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().unwrap()
}

/// True when the suites run against PostgreSQL (`OMNIFLOW_TEST_STATE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("OMNIFLOW_TEST_STATE").is_ok_and(|v| v == "postgres")
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An HTTP server that answers 200 to every request and keeps each body, in order, by path.
pub struct Recorder {
    pub port: u16,
    pub bodies: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    /// Each request's `traceparent` header, in order.
    pub traceparents: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    /// Starts on a free port.
    pub fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (bodies, stop): (Arc<Mutex<Vec<_>>>, Arc<AtomicBool>) = Default::default();
        let traceparents: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let (b, t, s) = (bodies.clone(), traceparents.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (bodies, traceparents) = (b.clone(), t.clone());
                std::thread::spawn(move || record(stream, bodies, traceparents));
            }
        });
        Recorder {
            port,
            bodies,
            traceparents,
            stop,
        }
    }

    /// The bodies received on a path, in order.
    pub fn on(&self, path: &str) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn record(
    stream: TcpStream,
    bodies: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    traceparents: Arc<Mutex<Vec<Option<String>>>>,
) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = http_read::read_request(&mut reader) {
        traceparents
            .lock()
            .unwrap()
            .push(request.header("traceparent").map(str::to_string));
        let (path, body) = (request.path().to_string(), request.body);
        let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        bodies.lock().unwrap().push((path, value));
        if writer
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
            )
            .is_err()
        {
            return;
        }
    }
}

/// Runs `promtool check metrics` (Prometheus's own checker) over a `/metrics` text and fails
/// with its complaints. promtool is taken from `OMNIFLOW_PROMTOOL`, else the `PATH`, else
/// `~/.cache/omniflow/promtool/usr/bin/promtool` (where `.ci/run` unpacks Debian's
/// `prometheus` package).
pub fn promtool_check(metrics: &str) {
    let cached = std::env::var_os("HOME").map(|home| {
        std::path::PathBuf::from(home).join(".cache/omniflow/promtool/usr/bin/promtool")
    });
    let promtool = std::env::var_os("OMNIFLOW_PROMTOOL")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::process::Command::new("promtool")
                .arg("--version")
                .output()
                .ok()
                .map(|_| "promtool".into())
        })
        .or(cached.filter(|path| path.exists()))
        .unwrap_or_else(|| {
            panic!(
                "promtool is required: install Debian's prometheus package, run .ci/run \
                 (it unpacks one into ~/.cache/omniflow/promtool) or set OMNIFLOW_PROMTOOL"
            )
        });
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", promtool.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\n{metrics}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Shopify `orders/create` deliveries (deduplicated) posted to `OMNIFLOW_TEST_SINK` by id,
/// on the shop `SHOPIFY_SHOP` with its secrets `SHOPIFY_TOKEN` and `SHOPIFY_WEBHOOK_SECRET`.
pub const SHOPIFY_ORDERS_FLOW: &str = r#"use std.connectors.{http, shopify}
connection shop = shopify { shop = env("SHOPIFY_SHOP"), access_token = secret("SHOPIFY_TOKEN"), webhook_secret = secret("SHOPIFY_WEBHOOK_SECRET") }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }
schema Event {
  id: string
  qty: int
}
flow orders {
  source created = shop.orders_create { path = "/hooks/shopify/orders", dedupe = true }
  map event = created -> Event { id = to_string($.id), qty = 1 }
  sink post = api.post(event) { path = "/events", idempotency_key = id, dead_letter = "orders" }
}
"#;

/// Where playwright-core is installed for the browser tests (`.ci/run` installs it in
/// `~/.cache/omniflow/node`; `OMNIFLOW_NODE_MODULES` names another place).
pub fn node_modules() -> std::path::PathBuf {
    let dir = std::env::var_os("OMNIFLOW_NODE_MODULES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/omniflow/node/node_modules")
        });
    assert!(
        dir.join("playwright-core").is_dir(),
        "playwright-core is not installed in {} (bash .ci/run installs it; or npm install playwright-core there)",
        dir.display()
    );
    dir
}
