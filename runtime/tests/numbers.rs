//! Numbers and money stay exact end to end with the real binary: ids beyond f64 precision
//! keep their own idempotency keys at a real HTTP sink, and hostile documents (deep
//! nesting, a megabyte of digits, lone surrogates) become dead letters with a reason.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, wait_for, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

/// Starts the runtime and waits until its ops endpoint answers /ready.
fn start(dir: &TempDir, flow: &Path, sink: &Sink) -> Child {
    let ops = free_port();
    let child = Command::new(BIN)
        .arg("run")
        .arg(flow)
        .arg("--state")
        .arg(dir.state())
        .arg("--webhook-addr")
        .arg("127.0.0.1:0")
        .arg("--ops-addr")
        .arg(format!("127.0.0.1:{ops}"))
        .env("OMNIFLOW_TEST_INBOX", dir.0.join("in"))
        .env(
            "OMNIFLOW_TEST_SINK",
            format!("http://127.0.0.1:{}", sink.port),
        )
        .env("OMNIFLOW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("/ready", Duration::from_secs(60), || {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", ops)) else {
            return false;
        };
        let _ = stream.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200")
    });
    child
}

fn terminate(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("omniflow did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dead_letters(dir: &TempDir) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.0.join("state.db")).unwrap();
    let mut statement = conn.prepare("SELECT error FROM dead_letters").unwrap();
    let rows = statement.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn ids_beyond_f64_precision_keep_their_own_keys() {
    let dir = TempDir::new("big-ids");
    let flow = support::flow_file(&dir.0);
    let sink = Sink::start(Faults::default());
    // Both ids round to the same f64 (1.2345678901234568e22), as do the decimals.
    let ids = [
        "12345678901234567890123",
        "12345678901234567890124",
        "-98765432109876543210987654321",
        "0.12345678901234567890123",
        "0.12345678901234567890124",
        "1E-7",
    ];
    let lines: String = ids
        .iter()
        .map(|id| format!("{{\"id\": {id}, \"qty\": 1}}\n"))
        .collect();
    std::fs::write(dir.0.join("in/orders.jsonl"), lines).unwrap();
    let child = start(&dir, &flow, &sink);
    wait_for("every order at the sink", Duration::from_secs(60), || {
        sink.distinct() == ids.len()
    });
    terminate(child);
    let seen = sink.seen.lock().unwrap();
    let mut keys: Vec<&str> = seen.effects.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = vec![
        "12345678901234567890123",
        "12345678901234567890124",
        "-98765432109876543210987654321",
        "0.12345678901234567890123",
        "0.12345678901234567890124",
        "0.0000001",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected, "each id is its own key, digit for digit");
    assert_eq!(seen.mismatched, 0, "the body's id is the key");
    assert!(dead_letters(&dir).is_empty());
}

#[test]
fn hostile_documents_become_dead_letters_with_reasons() {
    let dir = TempDir::new("hostile-json");
    let flow = support::flow_file(&dir.0);
    let sink = Sink::start(Faults::default());
    let deep = format!("{{\"id\": {}, \"qty\": 1}}", "[".repeat(100_000));
    let digits = format!("{{\"id\": 1{}, \"qty\": 1}}", "7".repeat(1 << 20));
    let huge_exponent = r#"{"id": 1e400, "qty": 1}"#.to_string();
    let surrogate = r#"{"id": "a\uD800b", "qty": 1}"#.to_string();
    let fine = r#"{"id": "ok", "qty": 1}"#.to_string();
    let lines = [deep, digits, huge_exponent, surrogate, fine].join("\n") + "\n";
    std::fs::write(dir.0.join("in/orders.jsonl"), lines).unwrap();
    let child = start(&dir, &flow, &sink);
    wait_for(
        "the good order and four letters",
        Duration::from_secs(60),
        || sink.distinct() == 1 && dead_letters(&dir).len() == 4,
    );
    terminate(child);
    let letters = dead_letters(&dir).join("\n");
    for reason in ["nest", "digits", "1e400", "surrogate"] {
        assert!(letters.contains(reason), "no `{reason}` in {letters}");
    }
}

/// The hostile documents of these tests, with the words their reasons must hold.
fn hostile() -> Vec<(String, &'static str)> {
    vec![
        (
            format!("{{\"id\": {}, \"qty\": 1}}", "[".repeat(100_000)),
            "nests deeper than 128",
        ),
        (
            format!("{{\"id\": 1{}, \"qty\": 1}}", "7".repeat(1 << 20)),
            "cannot be kept exactly",
        ),
        (r#"{"id": "a\uD800b", "qty": 1}"#.to_string(), "surrogate"),
    ]
}

#[test]
fn omniflow_map_rejects_hostile_lines_with_reasons_and_goes_on() {
    let dir = TempDir::new("map-hostile");
    let flow = support::flow_file(&dir.0);
    let mut lines: Vec<String> = hostile().into_iter().map(|(doc, _)| doc).collect();
    lines.push(r#"{"id": 12345678901234567890123, "qty": 2}"#.to_string());
    let input = dir.0.join("in.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let output = Command::new(BIN)
        .arg("map")
        .arg(&flow)
        .arg("--flow")
        .arg("events")
        .arg("--input")
        .arg(&input)
        .env("OMNIFLOW_TEST_INBOX", dir.0.join("in"))
        .env("OMNIFLOW_TEST_SINK", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(output.status.code().is_some(), "killed by a signal");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for (line, (_, reason)) in hostile().iter().enumerate() {
        let found = stderr
            .lines()
            .find(|l| l.starts_with(&format!("line {}:", line + 1)))
            .unwrap_or_else(|| panic!("no rejection of line {}: {stderr}", line + 1));
        assert!(found.contains(reason), "{found}");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(r#""id":"12345678901234567890123""#),
        "{stdout}"
    );
}

fn http(port: u16, request: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[test]
fn webhook_deliveries_keep_their_digits_and_hostile_ones_become_dead_letters() {
    let dir = TempDir::new("webhook-numbers");
    let flow = dir.0.join("hooks.flow");
    std::fs::write(
        &flow,
        r#"use std.connectors.{http, webhook}
connection hooks = webhook { path = "/orders", secret = secret("HOOK_SECRET"), signature_header = "x-signature", max_body_bytes = 2097152 }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }
schema Event {
  id: string
  number: decimal
  qty: int
}
flow orders {
  source deliveries = hooks.receive { path = "/hooks/orders", dedupe = true }
  map event = deliveries -> Event { id = to_string($.id), number = $.id, qty = $.qty }
  sink post = api.post(event) { path = "/events", idempotency_key = "order-{{ input.number }}", dead_letter = "orders" }
}
"#,
    )
    .unwrap();
    let sink = Sink::start(Faults::default());
    let (ops, hooks) = (free_port(), free_port());
    let child = Command::new(BIN)
        .arg("run")
        .arg(&flow)
        .arg("--state")
        .arg(dir.state())
        .arg("--ops-addr")
        .arg(format!("127.0.0.1:{ops}"))
        .arg("--webhook-addr")
        .arg(format!("127.0.0.1:{hooks}"))
        .env(
            "OMNIFLOW_TEST_SINK",
            format!("http://127.0.0.1:{}", sink.port),
        )
        .env("HOOK_SECRET", "hook-secret")
        .env("OMNIFLOW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("/health", Duration::from_secs(60), || {
        std::net::TcpStream::connect(("127.0.0.1", ops)).is_ok()
            && http(
                ops,
                b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .0 == 200
    });
    let mut bodies: Vec<String> = hostile().into_iter().map(|(doc, _)| doc).collect();
    bodies.push(r#"{"id": 12345678901234567890123, "qty": 1}"#.to_string());
    bodies.push(r#"{"id": 12345678901234567890124, "qty": 1}"#.to_string());
    for (idx, body) in bodies.iter().enumerate() {
        let mut request = format!(
            "POST /hooks/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nX-Webhook-Id: d{idx}\r\nX-Signature: {}\r\nContent-Length: {}\r\n\r\n",
            support::signing::sign("hook-secret", body),
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body.as_bytes());
        let (status, answer) = http(hooks, &request);
        assert_eq!(status, 202, "delivery {idx}: {answer}");
    }
    wait_for(
        "two orders and three letters",
        Duration::from_secs(60),
        || sink.distinct() == 2 && dead_letters(&dir).len() == 3,
    );
    terminate(child);
    let letters = dead_letters(&dir).join("\n");
    for (_, reason) in hostile() {
        assert!(letters.contains(reason), "no `{reason}` in {letters}");
    }
    let seen = sink.seen.lock().unwrap();
    // The key is a template over a decimal field: every digit is kept there too.
    assert!(seen.effects.contains_key("order-12345678901234567890123"));
    assert!(seen.effects.contains_key("order-12345678901234567890124"));
}

/// `omniflow map` on worker threads writes exactly what it writes in line: the same
/// documents in the input's order and the same rejections with their line numbers, over
/// an input of several chunks, with a line longer than a chunk, CRLF line ends and a last
/// line without a newline.
#[test]
fn omniflow_map_on_threads_writes_what_it_writes_in_line() {
    let dir = TempDir::new("map-threads");
    let flow = support::flow_file(&dir.0);
    let note = "n".repeat(2_000);
    let long_note = "l".repeat(3 << 19);
    let hostile = hostile();
    let lines: Vec<String> = (0..12_000)
        .map(|i| match i % 997 {
            13 => hostile[i % hostile.len()].0.clone(),
            500 => String::new(),
            700 => format!(r#"{{"id": {i}, "qty": 1, "note": "{long_note}"}}"#),
            800 => format!("{{\"id\": {i}, \"qty\": 2}}\r"),
            _ => format!(r#"{{"id": {i}, "qty": {}, "note": "{note}"}}"#, i % 7),
        })
        .collect();
    let expected_ids: Vec<String> = (0..12_000)
        .filter(|i| !matches!(i % 997, 13 | 500))
        .map(|i| format!(r#""id":"{i}""#))
        .collect();
    let input = dir.0.join("in.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let run = |threads: &str| {
        let output = Command::new(BIN)
            .arg("map")
            .arg(&flow)
            .arg("--flow")
            .arg("events")
            .arg("--input")
            .arg(&input)
            .arg("--with-route")
            .arg("--threads")
            .arg(threads)
            .env("OMNIFLOW_TEST_INBOX", dir.0.join("in"))
            .env("OMNIFLOW_TEST_SINK", "http://127.0.0.1:9")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        // The last line is the count and the time.
        let (rejections, summary) = stderr.trim_end().rsplit_once('\n').unwrap();
        (
            output.stdout,
            rejections.to_string(),
            summary.split(" in ").next().unwrap().to_string(),
        )
    };
    let inline = run("1");
    let threaded = run("3");
    // Every document, once, in the input's order, whatever chunk its line fell in.
    let ids: Vec<String> = String::from_utf8_lossy(&inline.0)
        .lines()
        .map(|line| {
            let at = line
                .find(r#""id":""#)
                .unwrap_or_else(|| panic!("no id in {line:.200}"));
            let end = line[at + 6..].find('"').unwrap() + at + 7;
            line[at..end].to_string()
        })
        .collect();
    assert_eq!(ids.len(), expected_ids.len());
    assert!(
        ids == expected_ids,
        "documents lost, repeated or out of order"
    );
    assert!(inline.2.starts_with("11988 documents"), "{}", inline.2);
    assert_eq!(inline.1.lines().count(), 13, "{}", inline.1);
    assert!(inline.1.starts_with("line 14: rejected by"), "{}", inline.1);
    assert_eq!(threaded.2, inline.2);
    assert_eq!(threaded.1, inline.1);
    assert!(
        threaded.0 == inline.0,
        "the documents differ or are out of order"
    );
    let size = std::fs::metadata(&input).unwrap().len();
    assert!(size > 8 << 20, "an input of several chunks: {size}");
    // A thread count out of range is refused before anything runs.
    for wrong in ["0", "257", "many"] {
        let refused = Command::new(BIN)
            .args([
                "map",
                "x.flow",
                "--flow",
                "events",
                "--input",
                "in.jsonl",
                "--threads",
                wrong,
            ])
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2), "--threads {wrong}");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("--threads"));
    }
}

/// A line longer than the source's `max_line_bytes` is refused with its line number and
/// its length without the newline, as `run` refuses it, and the lines after it are mapped;
/// a line exactly at the limit is mapped; an endless line is read past without being held.
#[test]
fn omniflow_map_refuses_lines_over_max_line_bytes_without_holding_them() {
    let dir = TempDir::new("map-long-lines");
    let flow = support::flow_file(&dir.0);
    let map = |flow: &Path, input: &Path, threads: &str| {
        let mut command = Command::new(BIN);
        command
            .arg("map")
            .arg(flow)
            .args(["--flow", "events", "--threads", threads, "--input"])
            .arg(input)
            .env("OMNIFLOW_TEST_INBOX", dir.0.join("in"))
            .env("OMNIFLOW_TEST_SINK", "http://127.0.0.1:9")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let refusal = |line: usize, len: usize, limit: usize| {
        format!(
            "line {line}: rejected by `input`: the line is {len} bytes, longer than max_line_bytes ({limit}); not read"
        )
    };

    // The default limit, 4 MiB: the same long line with and without a newline.
    let long = format!(
        r#"{{"id": 2, "qty": 1, "note": "{}"}}"#,
        "x".repeat(5 << 20)
    );
    let input = dir.0.join("in.jsonl");
    let text = format!(
        "{}\n{long}\n{}\n{long}",
        r#"{"id": 1, "qty": 1}"#, r#"{"id": 3, "qty": 1}"#
    );
    std::fs::write(&input, text).unwrap();
    let output = map(&flow, &input, "1").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&refusal(2, long.len(), 4 << 20)),
        "{stderr}"
    );
    assert!(
        stderr.contains(&refusal(4, long.len(), 4 << 20)),
        "{stderr}"
    );
    assert!(
        stderr.contains("4 documents, 2 mapped, 2 rejected"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let docs: Vec<&str> = stdout.lines().collect();
    assert_eq!(docs, [r#"{"id":"1","qty":1}"#, r#"{"id":"3","qty":1}"#]);

    // The source's own limit: over-long lines first, back to back, beside lines exactly at
    // the limit (CRLF counts its CR, as `run` counts it), on one thread and on three.
    let limited = dir.0.join("limited.flow");
    let text = std::fs::read_to_string(&flow).unwrap();
    assert!(text.contains("format = jsonl }"));
    std::fs::write(
        &limited,
        text.replace("format = jsonl }", "format = jsonl, max_line_bytes = 40 }"),
    )
    .unwrap();
    let at_limit = |id: usize, crlf: bool| {
        let end = if crlf { "\r" } else { "" };
        let pad = 40 - end.len() - format!(r#"{{"id": {id}, "qty": 1, "n": ""}}"#).len();
        format!(
            r#"{{"id": {id}, "qty": 1, "n": "{}"}}{end}"#,
            "p".repeat(pad)
        )
    };
    let over = |id: usize, len: usize| {
        let pad = len - format!(r#"{{"id": {id}, "qty": 1, "n": ""}}"#).len();
        format!(r#"{{"id": {id}, "qty": 1, "n": "{}"}}"#, "o".repeat(pad))
    };
    let lines = [
        over(1, 41),
        over(2, 3 << 20),
        at_limit(3, false),
        over(4, 100_000),
        over(5, 41),
        at_limit(6, true),
        String::new(),
        over(8, 2 << 20),
    ];
    std::fs::write(dir.0.join("limited.jsonl"), lines.join("\n")).unwrap();
    let mut runs = Vec::new();
    for threads in ["1", "3"] {
        let output = map(&limited, &dir.0.join("limited.jsonl"), threads)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        for (line, len) in [(1, 41), (2, 3 << 20), (4, 100_000), (5, 41), (8, 2 << 20)] {
            assert!(stderr.contains(&refusal(line, len, 40)), "{stderr}");
        }
        assert!(
            stderr.contains("7 documents, 2 mapped, 5 rejected"),
            "{stderr}"
        );
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let docs: Vec<&str> = stdout.lines().collect();
        assert_eq!(docs, [r#"{"id":"3","qty":1}"#, r#"{"id":"6","qty":1}"#]);
        runs.push((
            stdout,
            stderr
                .trim_end()
                .rsplit_once('\n')
                .map(|(head, _)| head.to_string()),
        ));
    }
    assert_eq!(runs[0], runs[1]);

    // An input that never ends a line: memory stays bounded while it is read past.
    let mut child = map(&flow, Path::new("/dev/zero"), "1").spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    assert!(
        peak_kib < 64 << 10,
        "peak RSS {peak_kib} KiB reading an endless line"
    );
}

/// `omniflow test` reads a test's input and expected output as production reads a message:
/// every digit kept, so a test passes only for what production does.
#[test]
fn tests_read_their_numbers_as_production_does() {
    let dir = TempDir::new("test-digits");
    let flow = dir.0.join("digits.flow");
    std::fs::write(
        &flow,
        r#"use std.connectors.{file}
connection inbox = file { dir = "in" }
schema M {
  id: string
  total: money
  raw: decimal?
  text: string?
}
flow m {
  source lines = inbox.read { path = "*.jsonl", format = jsonl }
  map out = lines -> M {
    id = to_string($.id)
    total = money($.amount, "USD")
    raw = $.raw
    text = to_string($.places)
  }
  sink post = inbox.write(out) { path = "out.jsonl", idempotency_key = id, dead_letter = "m" }
  test "an id beyond 64 bits keeps its digits" {
    input = {"id": 12345678901234567890123, "amount": 1, "raw": 12345678901234567890123}
    expect = {"id": "12345678901234567890123", "raw": 12345678901234567890123}
  }
  test "a 19th decimal is refused, not rounded away" {
    input = {"id": "a", "amount": 19.9900000000000000001}
    reject = "more than two decimals"
  }
  test "1e-19 dollars are refused, not zero" {
    input = {"id": "b", "amount": 1e-19}
    reject = "more than two decimals"
  }
  test "decimal places are kept as written, beside a number beyond floats" {
    input = {"id": "d", "amount": 1, "places": 1.50, "raw": 12345678901234567890123}
    expect = {"text": "1.50"}
  }
  test "decimal places are kept as written" {
    input = {"id": "e", "amount": 1, "places": 2.0}
    expect = {"text": "2.0"}
  }
  test "one digit off is a difference" {
    input = {"id": "c", "amount": 1, "raw": 12345678901234567890123}
    expect = {"raw": 12345678901234567890124}
  }
}
"#,
    )
    .unwrap();
    let output = Command::new(BIN).arg("test").arg(&flow).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for passing in [
        "ok      m :: an id beyond 64 bits keeps its digits",
        "ok      m :: a 19th decimal is refused, not rounded away",
        "ok      m :: 1e-19 dollars are refused, not zero",
        "ok      m :: decimal places are kept as written, beside a number beyond floats",
        "ok      m :: decimal places are kept as written",
    ] {
        assert!(stdout.contains(passing), "{stdout}");
    }
    assert!(
        stdout.contains("FAILED  m :: one digit off is a difference"),
        "{stdout}"
    );
    assert!(stdout.contains("6 tests, 5 passed, 1 failed"), "{stdout}");
}
