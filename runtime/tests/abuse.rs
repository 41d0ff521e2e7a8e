//! The runtime under abuse, with the real binary: idle and slow connections, oversized and
//! endless bodies, hostile files in a watched directory, and webhooks missing what their
//! vendor always sends. Nothing takes the servers down, nothing accepted is lost, and every
//! refusal is visible. Hostile inputs are generated here, never committed.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::signing::sign;
use support::{free_port, wait_for, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

/// Generous bound on anything the tests wait for; the product's deadlines are set small.
const PATIENCE: Duration = Duration::from_secs(60);

/// A runtime this test started, killed however the test ends.
struct Runtime {
    child: Child,
    ops: u16,
    hooks: u16,
    dir: PathBuf,
    /// The `--state` it runs on.
    state: String,
}

impl Runtime {
    /// Starts `omniflow run FLOW` with `config` as omniflow.yaml (none when empty) and
    /// waits for /health.
    fn start(temp: &TempDir, flow: &str, config: &str, env: &[(&str, String)]) -> Runtime {
        let dir = temp.0.as_path();
        let (ops, hooks) = (free_port(), free_port());
        std::fs::write(dir.join("test.flow"), flow).unwrap();
        let log = std::fs::File::create(dir.join("runtime.log")).unwrap();
        let mut command = Command::new(BIN);
        command.arg("run").arg(dir.join("test.flow"));
        if !config.is_empty() {
            std::fs::write(dir.join("omniflow.yaml"), config).unwrap();
            command.arg("--config").arg(dir.join("omniflow.yaml"));
        }
        let child = command
            .arg("--state")
            .arg(temp.state())
            .arg("--ops-addr")
            .arg(format!("127.0.0.1:{ops}"))
            .arg("--webhook-addr")
            .arg(format!("127.0.0.1:{hooks}"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("OMNIFLOW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut runtime = Runtime {
            child,
            ops,
            hooks,
            dir: dir.to_path_buf(),
            state: temp.state(),
        };
        wait_for("/health", PATIENCE, || {
            if let Ok(Some(status)) = runtime.child.try_wait() {
                panic!("omniflow exited with {status}: {}", runtime.log());
            }
            TcpStream::connect(("127.0.0.1", ops)).is_ok() && get(ops, "/health").0 == 200
        });
        runtime
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("runtime.log")).unwrap_or_default()
    }

    fn metrics(&self) -> String {
        get(self.ops, "/metrics").1
    }

    /// The dead letters, as `omniflow dlq list --json` prints them.
    fn dead_letters(&self) -> Vec<serde_json::Value> {
        let output = Command::new(BIN)
            .arg("dlq")
            .arg("--state")
            .arg(&self.state)
            .args(["list", "--json", "--limit", "1000"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a raw request on a new connection; returns the status and the body.
fn exchange(port: u16, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    status_and_body(&answer)
}

fn status_and_body(answer: &[u8]) -> (u16, String) {
    let answer = String::from_utf8_lossy(answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn get(port: u16, path: &str) -> (u16, String) {
    exchange(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// POSTs `body` with `headers` (each `Name: value`) on a new connection.
fn post(port: u16, path: &str, headers: &[String], body: &str) -> (u16, String) {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    exchange(port, request.as_bytes())
}

/// True once the server closed `stream` (end of file or reset); never blocks.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => closed_by_server(stream),
        Err(err) => err.kind() != std::io::ErrorKind::WouldBlock,
    }
}

const HOOK_SECRET: &str = "hook-secret";

/// A signed webhook flow posting to the sink, and small deadlines for both servers.
const HOOK_FLOW: &str = r#"use std.connectors.{http, webhook}
connection hooks = webhook { path = "/orders", secret = env("HOOK_SECRET"), signature_header = "x-signature", max_body_bytes = 2048 }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }
schema Event {
  id: string
  qty: int
}
flow orders {
  source deliveries = hooks.receive { path = "/hooks/orders" }
  map event = deliveries -> Event { id = $.id, qty = $.qty }
  sink post = api.post(event) { path = "/events", idempotency_key = id, dead_letter = "orders" }
}
"#;

const SMALL_DEADLINES: &str = "servers:
  max_connections: 800
  header_timeout: 1s
  body_timeout: 1s
  idle_timeout: 2s
";

fn hook_runtime(dir: &TempDir, sink: &Sink) -> Runtime {
    Runtime::start(
        dir,
        HOOK_FLOW,
        SMALL_DEADLINES,
        &[
            ("HOOK_SECRET", HOOK_SECRET.to_string()),
            (
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", sink.port),
            ),
        ],
    )
}

fn signed_delivery(port: u16, id: &str) -> (u16, String) {
    let body = format!("{{\"id\": \"{id}\", \"qty\": 1}}");
    post(
        port,
        "/hooks/orders",
        &[format!("X-Signature: {}", sign(HOOK_SECRET, &body))],
        &body,
    )
}

/// Sends a request head one byte a second until the server closes the connection;
/// returns how many bytes it got to send, and the head's length.
fn slowloris(port: u16) -> (usize, usize) {
    let head = b"POST /hooks/orders HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nContent-Length: 2\r\n\r\n{}";
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    for (sent, byte) in head.iter().enumerate() {
        if stream.write_all(&[*byte]).is_err() {
            return (sent, head.len());
        }
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(0) => return (sent + 1, head.len()),
            Err(err)
                if !matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (sent + 1, head.len())
            }
            _ => {}
        }
    }
    (head.len(), head.len())
}

#[test]
fn idle_and_slow_connections_are_closed_and_never_take_webhooks_or_health_down() {
    let dir = TempDir::new("abuse-idle");
    let sink = Sink::start(Faults::default());
    let runtime = hook_runtime(&dir, &sink);
    let loris = std::thread::spawn({
        let port = runtime.hooks;
        move || slowloris(port)
    });
    // 1,100 idle connections on each server: more than its cap of 800.
    let mut idle: Vec<TcpStream> = Vec::new();
    for port in [runtime.hooks, runtime.ops] {
        for _ in 0..1_100 {
            idle.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
        }
    }
    let (status, body) = signed_delivery(runtime.hooks, "o1");
    assert_eq!(status, 202, "{body}");
    assert_eq!(get(runtime.ops, "/health").0, 200);
    wait_for("the delivery at the sink", PATIENCE, || {
        sink.distinct() == 1
    });
    // Every idle connection is closed by the server: 300 of each server's to make room at
    // the cap, the others at their deadline.
    wait_for("every idle connection closed", PATIENCE, || {
        idle.retain_mut(|stream| !closed_by_server(stream));
        idle.is_empty()
    });
    let (sent, head_len) = loris.join().unwrap();
    assert!(sent < head_len, "the slow head was read to its end");
    // Alone, with no cap to make room for, a slow head meets its deadline.
    let (sent, head_len) = slowloris(runtime.ops);
    assert!(sent < head_len, "the slow head was read to its end");
    // Still serving after all that.
    assert_eq!(signed_delivery(runtime.hooks, "o2").0, 202);
    assert_eq!(get(runtime.ops, "/ready").0, 200);
}

/// Opens a connection that sends a request head and `sent` bytes of a body of `declared`
/// bytes, and then nothing more.
fn stalled_body(port: u16, path: &str, declared: usize, sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![b' '; sent]).unwrap();
    stream
}

#[test]
fn stalled_bodies_never_take_webhooks_or_health_down_nor_fill_memory() {
    let dir = TempDir::new("abuse-stalled");
    let sink = Sink::start(Faults::default());
    // Bodies may take ten minutes: only making room closes a stalled one before that.
    let runtime = Runtime::start(
        &dir,
        HOOK_FLOW,
        "servers:\n  max_connections: 60\n  body_timeout: 10m\n",
        &[
            ("HOOK_SECRET", HOOK_SECRET.to_string()),
            (
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", sink.port),
            ),
        ],
    );
    // More bodies that never finish than either server's cap of 60.
    let mut stalled: Vec<TcpStream> = Vec::new();
    for _ in 0..100 {
        stalled.push(stalled_body(runtime.hooks, "/hooks/orders", 100, 1));
        stalled.push(stalled_body(runtime.ops, "/health", 100, 1));
    }
    let (status, body) = signed_delivery(runtime.hooks, "o1");
    assert_eq!(status, 202, "{body}");
    assert_eq!(get(runtime.ops, "/health").0, 200);
    wait_for("the stalled bodies that made room closed", PATIENCE, || {
        stalled.retain_mut(|stream| !closed_by_server(stream));
        stalled.len() <= 2 * 60
    });
    // Nearly whole bodies of the largest size, more than a server keeps in memory at once
    // (sixteen): the ones stalled longest are dropped to make room, and deliveries go on.
    let largest = omniflow_ir::MAX_WEBHOOK_BODY_BYTES as usize;
    let mut large: Vec<TcpStream> = (0..24)
        .map(|_| stalled_body(runtime.hooks, "/hooks/orders", largest, largest - 1))
        .collect();
    wait_for("bodies over the memory cap dropped", PATIENCE, || {
        large.retain_mut(|stream| !closed_by_server(stream));
        large.len() <= 16
    });
    let (status, body) = signed_delivery(runtime.hooks, "o2");
    assert_eq!(status, 202, "{body}");
    wait_for("both deliveries at the sink", PATIENCE, || {
        sink.distinct() == 2
    });
}

/// Sends `head`, then keeps writing `chunk` every `pause` (forever, until the server
/// closes); returns the answer read meanwhile.
fn endless(port: u16, head: &str, chunk: Vec<u8>, pause: Duration) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        while writer.write_all(&chunk).is_ok() {
            std::thread::sleep(pause);
        }
    });
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // The answer comes first; a reset may follow once the server stops reading.
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    status_and_body(&answer)
}

#[test]
fn oversized_stalled_and_endless_bodies_are_bounded() {
    let dir = TempDir::new("abuse-bodies");
    let sink = Sink::start(Faults::default());
    let runtime = hook_runtime(&dir, &sink);
    let hooks = runtime.hooks;
    let head = |extra: &str| {
        format!("POST /hooks/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}\r\n")
    };
    // A declared length over the server's limit: refused before any byte of it is read.
    let (status, _) = exchange(hooks, head("Content-Length: 10000000000\r\n").as_bytes());
    assert_eq!(status, 413);
    // A body that stops coming.
    let stalled = format!("{}{{\"id\": ", head("Content-Length: 100\r\n"));
    let (status, body) = exchange(hooks, stalled.as_bytes());
    assert_eq!(status, 408, "{body}");
    // Chunked bodies that never end: fast ones meet the size limit, slow ones the deadline.
    let chunked = head("Transfer-Encoding: chunked\r\n");
    let fast = [&b"4000\r\n"[..], &[b'x'; 0x4000], b"\r\n"].concat();
    let (status, body) = endless(hooks, &chunked, fast, Duration::ZERO);
    assert_eq!(status, 413, "{body}");
    let slow = b"1\r\nx\r\n".to_vec();
    let (status, body) = endless(hooks, &chunked, slow, Duration::from_millis(100));
    assert_eq!(status, 408, "{body}");
    // None of it reached the inbox; a good delivery still does.
    assert_eq!(signed_delivery(hooks, "after").0, 202);
    wait_for("the delivery at the sink", PATIENCE, || {
        sink.distinct() == 1
    });
}

/// JSONL and CSV files of the watched directory posted to the sink (`OMNIFLOW_TEST_INBOX`,
/// `OMNIFLOW_TEST_SINK`); JSONL lines over 64 KiB are dead letters.
const FILE_FLOW: &str = r#"use std.connectors.{file, http}
connection inbox = file { dir = env("OMNIFLOW_TEST_INBOX") }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }
schema Event {
  id: string
  qty: int
}
flow events {
  source lines = inbox.read { path = "*.jsonl", format = jsonl, max_line_bytes = 65536 }
  map event = lines -> Event { id = to_string($.id), qty = $.qty }
  sink post = api.post(event) { path = "/events", idempotency_key = id, dead_letter = "events" }
}
flow rows {
  source rows = inbox.read { path = "*.csv", format = csv }
  map event = rows -> Event { id = $.id, qty = 1 }
  sink post = api.post(event) { path = "/events", idempotency_key = id, dead_letter = "rows" }
}
"#;

fn file_runtime(dir: &TempDir, sink: &Sink) -> Runtime {
    Runtime::start(
        dir,
        FILE_FLOW,
        "",
        &[
            (
                "OMNIFLOW_TEST_INBOX",
                dir.0.join("in").display().to_string(),
            ),
            (
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", sink.port),
            ),
        ],
    )
}

fn jsonl(ids: impl IntoIterator<Item = String>) -> String {
    ids.into_iter()
        .map(|id| format!("{{\"id\": \"{id}\", \"qty\": 1}}\n"))
        .collect()
}

fn delivered(sink: &Sink, id: &str) -> bool {
    sink.seen.lock().unwrap().effects.contains_key(id)
}

#[test]
fn a_line_over_the_limit_is_dead_lettered_and_the_rest_of_the_file_goes_on() {
    let dir = TempDir::new("abuse-long-line");
    let sink = Sink::start(Faults::default());
    let huge = format!(
        "{{\"id\": \"huge\", \"pad\": \"{}\"}}\n",
        "x".repeat(8 << 20)
    );
    let file = dir.0.join("in/orders.jsonl");
    std::fs::write(&file, jsonl(["a1".into()]) + &huge + &jsonl(["a2".into()])).unwrap();
    let runtime = file_runtime(&dir, &sink);
    wait_for("the lines around the long one", PATIENCE, || {
        delivered(&sink, "a1") && delivered(&sink, "a2")
    });
    // The file goes on: lines written later arrive too.
    let mut more = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    more.write_all(jsonl(["a3".into()]).as_bytes()).unwrap();
    wait_for("a later line", PATIENCE, || delivered(&sink, "a3"));
    assert!(!delivered(&sink, "huge"));
    let letters = runtime.dead_letters();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    let error = letter["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("line of {} bytes", huge.len() - 1))
            && error.contains("max_line_bytes (65536)"),
        "{error}"
    );
    let kept = letter["message"].as_str().unwrap();
    assert!(kept.starts_with("{\"id\": \"huge\""), "{kept}");
    assert_eq!(kept.len(), 1024, "the letter keeps the line's first KiB");
    assert!(runtime
        .metrics()
        .contains("omniflow_dead_letters_total{flow=\"events\",node=\"lines\"} 1"));
}

#[test]
fn a_key_holding_a_nul_character_is_dead_lettered_and_the_rest_go_on() {
    let dir = TempDir::new("abuse-nul-key");
    let sink = Sink::start(Faults::default());
    // No state backend can hold every key byte for byte (PostgreSQL's text holds no NUL),
    // so the message is refused with its reason on every backend instead of stalling one.
    let lines = jsonl(["n1".into(), "n\\u0000x".into(), "n2".into()]);
    std::fs::write(dir.0.join("in/orders.jsonl"), lines).unwrap();
    let runtime = file_runtime(&dir, &sink);
    wait_for("the lines around the NUL key", PATIENCE, || {
        delivered(&sink, "n1") && delivered(&sink, "n2")
    });
    wait_for("the letter", PATIENCE, || {
        !runtime.dead_letters().is_empty()
    });
    let letters = runtime.dead_letters();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let error = letters[0]["error"].as_str().unwrap();
    assert!(error.contains("holds a NUL character"), "{error}");
    assert_eq!(sink.distinct(), 2);
}

#[test]
fn a_byte_order_mark_is_skipped_and_a_file_named_in_another_encoding_is_read() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new("abuse-names");
    let sink = Sink::start(Faults::default());
    let bom = "\u{feff}";
    std::fs::write(
        dir.0.join("in/bom.jsonl"),
        format!("{bom}{}", jsonl(["b1".into(), "b2".into()])),
    )
    .unwrap();
    std::fs::write(
        dir.0.join("in/rows.csv"),
        format!("{bom}id,qty\nr1,1\nr2,1\n"),
    )
    .unwrap();
    // `café.jsonl` written in Latin-1, as an old Windows share would.
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.jsonl");
    std::fs::write(dir.0.join("in").join(latin1), jsonl(["c1".into()])).unwrap();
    let runtime = file_runtime(&dir, &sink);
    wait_for("every line", PATIENCE, || sink.distinct() == 5);
    for id in ["b1", "b2", "r1", "r2", "c1"] {
        assert!(delivered(&sink, id), "{id}");
    }
    assert!(runtime.dead_letters().is_empty());
    let log = runtime.log();
    assert!(
        log.contains("not UTF-8") && log.contains("caf\\xE9.jsonl"),
        "{log}"
    );
}

#[test]
fn csv_rows_that_would_lose_or_invent_values_are_dead_lettered_with_their_reason() {
    let dir = TempDir::new("abuse-csv");
    let sink = Sink::start(Faults::default());
    let mut rows = b"id,note,qty\n1,plain,3\n2,\"multi\nline note\",4\n3,\"a,b\",5\n".to_vec();
    rows.extend_from_slice(
        b"4,too,many,columns,6\n5\n6,\"unterminated,7\n7,caf\xe9,8\n8,\"x\"\"y\",9\n",
    );
    std::fs::write(dir.0.join("in/rows.csv"), rows).unwrap();
    // A file that has no header yet fails each look; it is logged once, not at each.
    std::fs::write(dir.0.join("in/empty.csv"), "").unwrap();
    let runtime = file_runtime(&dir, &sink);
    wait_for("the good rows", PATIENCE, || sink.distinct() == 3);
    let letters = wait_for_letters(&runtime, 6);
    let reasons: Vec<String> = letters
        .iter()
        .map(|letter| letter["error"].as_str().unwrap_or_default().to_string())
        .collect();
    let count = |needle: &str| reasons.iter().filter(|r| r.contains(needle)).count();
    // Both halves of the row with a line break in a quoted field, and the unclosed quote.
    assert_eq!(count("not closed on its line"), 3, "{reasons:?}");
    assert_eq!(
        count("the row has 5 fields where the header has 3"),
        1,
        "{reasons:?}"
    );
    assert_eq!(
        count("the row has 1 fields where the header has 3"),
        1,
        "{reasons:?}"
    );
    assert_eq!(count("not UTF-8"), 1, "{reasons:?}");
    for id in ["1", "3", "8"] {
        assert!(delivered(&sink, id), "{id}");
    }
    assert_eq!(sink.distinct(), 3, "no row made up of another's parts");
    // The source looks at the files four times a second.
    std::thread::sleep(Duration::from_secs(2));
    let log = runtime.log();
    let logged = log
        .lines()
        .filter(|l| l.contains("empty.csv") && l.contains("cannot read"))
        .count();
    assert_eq!(logged, 1, "{log}");
}

/// The dead letters once there are `n` of them.
fn wait_for_letters(runtime: &Runtime, n: usize) -> Vec<serde_json::Value> {
    let mut letters = Vec::new();
    wait_for("the dead letters", PATIENCE, || {
        letters = runtime.dead_letters();
        letters.len() >= n
    });
    letters
}

#[test]
fn special_files_and_symlinks_out_of_the_directory_are_skipped_with_a_warning() {
    let dir = TempDir::new("abuse-special");
    let sink = Sink::start(Faults::default());
    let inbox = dir.0.join("in");
    let status = Command::new("mkfifo")
        .arg(inbox.join("pipe.jsonl"))
        .status()
        .unwrap();
    assert!(status.success());
    let _socket = std::os::unix::net::UnixListener::bind(inbox.join("sock.jsonl")).unwrap();
    std::fs::create_dir_all(dir.0.join("elsewhere")).unwrap();
    std::fs::write(
        dir.0.join("elsewhere/secret.jsonl"),
        jsonl(["outside".into()]),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        dir.0.join("elsewhere/secret.jsonl"),
        inbox.join("outside.jsonl"),
    )
    .unwrap();
    std::fs::write(
        inbox.join("real.jsonl"),
        jsonl((1..=3).map(|i| format!("r{i}"))),
    )
    .unwrap();
    std::os::unix::fs::symlink("real.jsonl", inbox.join("link.jsonl")).unwrap();
    std::fs::write(inbox.join("zz.jsonl"), jsonl(["z1".into()])).unwrap();
    let runtime = file_runtime(&dir, &sink);
    wait_for("the regular files' lines", PATIENCE, || {
        sink.distinct() == 4
    });
    wait_for("a warning for each skipped file", PATIENCE, || {
        let log = runtime.log();
        log.contains("FIFO")
            && log.contains("socket")
            && log.contains("outside the connection's directory")
    });
    assert!(!delivered(&sink, "outside"));
    // The link and its target are one file, read once.
    assert!(
        runtime
            .metrics()
            .contains("omniflow_messages_in_total{flow=\"events\",node=\"lines\"} 4"),
        "{}",
        runtime.metrics()
    );
}

#[test]
fn a_file_that_grows_or_is_rewritten_loses_and_repeats_no_line() {
    let dir = TempDir::new("abuse-rewrite");
    let sink = Sink::start(Faults::default());
    let file = dir.0.join("in/orders.jsonl");
    std::fs::write(&file, jsonl((0..100).map(|i| format!("g{i}")))).unwrap();
    let runtime = file_runtime(&dir, &sink);
    wait_for("the first lines", PATIENCE, || sink.distinct() == 100);
    // A line written in two parts.
    let mut append = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    append.write_all(b"{\"id\": \"g100\", ").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    append.write_all(b"\"qty\": 1}\n").unwrap();
    wait_for("the line written in two parts", PATIENCE, || {
        sink.distinct() == 101
    });
    // Truncated and rewritten shorter than what was read.
    std::fs::write(&file, jsonl((0..5).map(|i| format!("s{i}")))).unwrap();
    wait_for("the shorter rewrite", PATIENCE, || sink.distinct() == 106);
    // Rewritten longer than what was read.
    std::fs::write(&file, jsonl((0..300).map(|i| format!("l{i}")))).unwrap();
    wait_for("the longer rewrite", PATIENCE, || sink.distinct() == 406);
    let seen = sink.seen.lock().unwrap();
    assert!(
        seen.effects.values().all(|n| *n == 1),
        "a line delivered twice"
    );
    assert_eq!(seen.requests, 406, "a line sent twice");
    drop(seen);
    assert!(
        runtime.dead_letters().is_empty(),
        "{:?}",
        runtime.dead_letters()
    );
}

/// The Shopify orders flow on `shop`, signed with `secret`, posting to `sink`.
fn shopify_runtime(dir: &TempDir, sink: &Sink, shop: &str, secret: &str) -> Runtime {
    Runtime::start(
        dir,
        support::SHOPIFY_ORDERS_FLOW,
        "",
        &[
            ("SHOPIFY_SHOP", shop.to_string()),
            ("SHOPIFY_TOKEN", "shpat_test".to_string()),
            ("SHOPIFY_WEBHOOK_SECRET", secret.to_string()),
            (
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", sink.port),
            ),
        ],
    )
}

/// Starts `omniflow sandbox` on a free port; killed on drop.
struct Sandbox(Child, u16);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn shopify_deliveries_without_its_headers_or_for_another_topic_are_refused() {
    let dir = TempDir::new("abuse-shopify");
    let sink = Sink::start(Faults::default());
    let runtime = shopify_runtime(&dir, &sink, "example", "shpss_secret");
    let body = r#"{"id": 820982911946154508, "email": "jon@example.com"}"#;
    let all = |topic: &str, body: &str| {
        vec![
            format!("X-Shopify-Hmac-Sha256: {}", sign("shpss_secret", body)),
            format!("X-Shopify-Topic: {topic}"),
            "X-Shopify-Shop-Domain: example.myshopify.com".to_string(),
            "X-Shopify-API-Version: 2026-04".to_string(),
            "X-Shopify-Webhook-Id: b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".to_string(),
            "X-Shopify-Triggered-At: 2026-04-01T10:00:00.000Z".to_string(),
            "X-Shopify-Event-Id: 98880550-7158-44d4-b7cd-2c97c8a091b5".to_string(),
        ]
    };
    let path = "/hooks/shopify/orders";
    let headers = all("orders/create", body);
    // Each header Shopify's library requires, left out in turn.
    for (idx, name) in [
        (1, "X-Shopify-Topic"),
        (2, "X-Shopify-Shop-Domain"),
        (3, "X-Shopify-API-Version"),
        (4, "X-Shopify-Webhook-Id"),
    ] {
        let mut some = headers.clone();
        some.remove(idx);
        let (status, answer) = post(runtime.hooks, path, &some, body);
        assert_eq!(status, 400, "without {name}: {answer}");
        assert!(answer.contains(name), "{answer}");
    }
    let (status, answer) = post(runtime.hooks, path, &headers[1..], body);
    assert_eq!(status, 400, "without the HMAC: {answer}");
    let (status, _) = post(runtime.hooks, path, &all("orders/create", ""), "");
    assert_eq!(status, 400, "without a body");
    let (status, _) = post(runtime.hooks, path, &all("orders/create", "{}"), body);
    assert_eq!(status, 401, "with another body's HMAC");
    let (status, answer) = post(runtime.hooks, path, &all("refunds/create", body), body);
    assert_eq!(status, 404, "a refund on the orders source: {answer}");
    assert!(answer.contains("`orders/create`"), "{answer}");
    // Only the whole delivery is taken in.
    let (status, answer) = post(runtime.hooks, path, &headers, body);
    assert_eq!(status, 202, "{answer}");
    wait_for("the order at the sink", PATIENCE, || {
        delivered(&sink, "820982911946154508")
    });
    assert_eq!(sink.seen.lock().unwrap().requests, 1);
    assert!(runtime
        .metrics()
        .contains("omniflow_webhooks_rejected_total{flow=\"orders\",node=\"created\"} 8"));
    assert_eq!(
        runtime.log().matches("webhook delivery refused").count(),
        8,
        "each refusal is logged"
    );

    // The sandbox sends every header Shopify sends, so the demo keeps working.
    drop(runtime);
    let dir = TempDir::new("abuse-shopify-sandbox");
    let port = free_port();
    let sandbox = Sandbox(
        Command::new(BIN)
            .args(["sandbox", "--addr", &format!("127.0.0.1:{port}")])
            .env("OMNIFLOW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        port,
    );
    wait_for("the sandbox", PATIENCE, || {
        TcpStream::connect(("127.0.0.1", sandbox.1)).is_ok()
    });
    let sink = Sink::start(Faults::default());
    let base = format!("http://127.0.0.1:{}", sandbox.1);
    let secret = omniflow_sandbox::shopify::WEBHOOK_SECRET;
    let runtime = shopify_runtime(&dir, &sink, &base, secret);
    let control = |path: &str, body: String| post(sandbox.1, path, &[], &body).0;
    let hook = format!("http://127.0.0.1:{}/hooks/shopify/orders", runtime.hooks);
    assert_eq!(
        control(
            "/_sandbox/webhooks",
            format!(r#"{{"system": "shopify", "topic": "orders/create", "url": "{hook}"}}"#)
        ),
        201
    );
    assert_eq!(
        control(
            "/_sandbox/shopify/orders",
            r#"{"line_items": [{"sku": "CAP-009-BLK-XL", "quantity": 1}]}"#.to_string()
        ),
        201
    );
    wait_for("the sandbox's order at the sink", PATIENCE, || {
        sink.distinct() == 1
    });
    assert!(!runtime
        .metrics()
        .contains("omniflow_webhooks_rejected_total"));
}
