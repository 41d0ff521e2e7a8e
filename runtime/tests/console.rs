//! The operator console of a running `omniflow run`, driven in headless Chromium
//! (`tests/console/drive.cjs`, playwright-core with Debian's chromium): sign-in with the
//! token, the flows page with its tables and plots, dead letters filtered and one replayed
//! (the order then reaches the sink), lineage search and a SKU's inventory; a screenshot
//! of every page is kept under the target directory. Over plain HTTP: the token is needed,
//! and a write from another origin is refused.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;
use support::process::terminate;
use support::{free_port, run_flows, wait_for, Faults, Recorder, Sink, TempDir};

const TOKEN: &str = "console-token-for-the-test-0123";

const FLOWS: &str = r#"use std.retail.{InventoryMovement}
use std.connectors.{file, http}

connection inbox = file { dir = env("OMNIFLOW_TEST_INBOX") }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }
connection shop_api = http { base_url = env("OMNIFLOW_TEST_SHOP") }

schema Order {
  id: string
  sku: string
}

ledger stock {
  locations = ["WH"]
  channel web { locations = ["WH"], share = 100%, publish = shop_api.post, rate = 10/s, burst = 1 }
}

flow orders {
  source lines = inbox.read { path = "orders.jsonl", format = jsonl }
  map order = lines -> Order {
    id = $.id
    sku = $.sku
  }
  sink post = api.post(order) { path = "/orders", idempotency_key = id, dead_letter = "orders" }
}

flow intake {
  source moves = inbox.read { path = "moves.jsonl", format = jsonl }
  map movement = moves -> InventoryMovement {
    id = $.id
    kind = "cycle_count"
    sku = $.sku
    location = "WH"
    quantity = $.quantity
    counterpart_location = null
    reference = null
    occurred_at = "2026-12-01T09:00:00Z"
  }
  sink book = stock.apply(movement) { idempotency_key = id, dead_letter = "moves" }
}
"#;

fn start(dir: &TempDir, sink: &Sink, shop: &Recorder, ops: u16) -> Child {
    dir.write_flows("console.flow", FLOWS);
    let config = dir.0.join("omniflow.yaml");
    std::fs::write(
        &config,
        "console:\n  token_secret: OMNIFLOW_CONSOLE_TOKEN\n",
    )
    .unwrap();
    let (config, ops) = (config.display().to_string(), format!("127.0.0.1:{ops}"));
    run_flows(
        dir,
        &[
            "--config",
            &config,
            "--webhook-addr",
            "127.0.0.1:0",
            "--ops-addr",
            &ops,
        ],
        &[
            (
                "OMNIFLOW_TEST_INBOX",
                dir.0.join("in").display().to_string(),
            ),
            (
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", sink.port),
            ),
            (
                "OMNIFLOW_TEST_SHOP",
                format!("http://127.0.0.1:{}", shop.port),
            ),
            ("OMNIFLOW_CONSOLE_TOKEN", TOKEN.to_string()),
        ],
    )
}

/// One request to the console: its status and body.
fn request(
    ops: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut text = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{ops}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    support::process::exchange(ops, &text)
}

/// Signs in with the token's form; the session cookie it sets (`name=value`).
fn sign_in(ops: u16) -> String {
    use std::io::{Read, Write};
    let body = format!("token={TOKEN}");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", ops)).unwrap();
    write!(
        stream,
        "POST /console/login HTTP/1.1\r\nhost: 127.0.0.1:{ops}\r\nconnection: close\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    answer
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().split(';').next().unwrap_or("").to_string())
        })
        .unwrap_or_else(|| panic!("no cookie: {answer}"))
}

#[test]
fn operators_sign_in_see_the_flows_replay_a_dead_letter_trace_an_order_and_read_stock() {
    let modules = support::node_modules();
    let dir = TempDir::new("console");
    let sink = Sink::start(Faults {
        rejected: 100,
        ..Faults::default()
    });
    let shop = Recorder::start();
    std::fs::write(
        dir.0.join("in").join("orders.jsonl"),
        "{\"id\": \"o-1\", \"sku\": \"TEE-M\"}\n{\"id\": \"o-2\", \"sku\": \"CAP\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.0.join("in").join("moves.jsonl"),
        "{\"id\": \"count-1\", \"sku\": \"TEE-M\", \"quantity\": 40}\n",
    )
    .unwrap();
    let ops = free_port();
    let mut child = start(&dir, &sink, &shop, ops);
    let bearer = format!("Bearer {TOKEN}");
    wait_for("two dead letters", Duration::from_secs(60), || {
        let (status, body) = request(
            ops,
            "GET",
            "/console/dead-letters",
            &[("authorization", &bearer)],
            "",
        );
        status == 200 && body.matches("<tr id=\"letter-").count() == 2
    });
    wait_for("the stock's publication", Duration::from_secs(60), || {
        !shop.bodies.lock().unwrap().is_empty()
    });

    // Over plain HTTP: no token, no console; a write from another origin is refused.
    let (status, body) = request(ops, "GET", "/console", &[], "");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Console token"), "{body}");
    let (status, _) = request(
        ops,
        "GET",
        "/console",
        &[("authorization", "Bearer wrong-token-wrong-token")],
        "",
    );
    assert_eq!(status, 401);
    // A signed-in browser's cookie is not the token, and a page elsewhere cannot use it to
    // write: a POST with it needs an Origin naming the console's host.
    let cookie = sign_in(ops);
    assert!(!cookie.contains(TOKEN), "{cookie}");
    let form = ("content-type", "application/x-www-form-urlencoded");
    let (status, _) = request(ops, "GET", "/console", &[("cookie", &cookie)], "");
    assert_eq!(status, 200, "the cookie signs in");
    for origin in [Some("http://evil.example"), None] {
        let mut headers = vec![("cookie", cookie.as_str()), form];
        headers.extend(origin.map(|o| ("origin", o)));
        let (status, body) = request(
            ops,
            "POST",
            "/console/dead-letters/discard",
            &headers,
            "id=1",
        );
        assert_eq!(status, 403, "{origin:?}: {body}");
    }

    // The target accepts from now on; the browser replays one of the two.
    sink.set_faults(Faults::default());
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let driven = Command::new("node")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console/drive.cjs"))
        .arg(format!("http://127.0.0.1:{ops}"))
        .arg(TOKEN)
        .arg(&shots)
        .arg("o-1")
        .arg("TEE-M")
        .env("NODE_PATH", &modules)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&driven.stdout);
    assert!(
        driven.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&driven.stderr)
    );
    let seen: Value = serde_json::from_str(out.trim()).unwrap();

    assert_eq!(seen["unauthenticated"], 401, "{seen}");
    assert_eq!(seen["wrong_token"], 1, "{seen}");
    // Both flows with every node, both sinks, a rate plot per flow.
    let flows = seen["flows_text"].as_str().unwrap();
    for name in ["orders", "intake", "lines", "order", "post", "book"] {
        assert!(flows.contains(name), "{name}: {flows}");
    }
    assert_eq!(seen["sink_rows"], 3, "a header and two sinks: {seen}");
    assert!(seen["plots"].as_u64().unwrap() >= 2, "{seen}");
    // The filter keeps the two refused orders; the replay is confirmed.
    assert_eq!(seen["letters"], 2, "{seen}");
    assert!(
        seen["letters_text"]
            .as_str()
            .unwrap()
            .contains("unknown sku"),
        "{seen}"
    );
    assert!(
        seen["notice"].as_str().unwrap().contains("replayed"),
        "{seen}"
    );
    // The lineage of o-1: accepted, dead-lettered (and, once replayed, more).
    let events = seen["events_text"].as_str().unwrap();
    assert!(events.contains("accepted"), "{events}");
    assert!(events.contains("dead_lettered"), "{events}");
    assert!(events.contains("unknown sku"), "{events}");
    // The stock the cycle count set, offered in full to the one channel.
    let locations = seen["locations_text"].as_str().unwrap();
    assert!(
        locations.contains("WH") && locations.contains("40"),
        "{locations}"
    );
    let channels = seen["channels_text"].as_str().unwrap();
    assert!(
        channels.contains("web") && channels.contains("40"),
        "{channels}"
    );

    // The replayed order reaches the target; the other stays a dead letter.
    wait_for("the replayed order", Duration::from_secs(60), || {
        sink.distinct() == 1
    });
    let (_, body) = request(
        ops,
        "GET",
        "/console/dead-letters",
        &[("authorization", &bearer)],
        "",
    );
    assert_eq!(body.matches("<tr id=\"letter-").count(), 1, "{body}");
    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");

    for name in [
        "login",
        "flows",
        "dead-letters",
        "dead-letters-replayed",
        "lineage",
        "inventory",
    ] {
        let png = std::fs::read(shots.join(format!("{name}.png"))).unwrap();
        assert!(
            png.len() > 1_000 && png.starts_with(b"\x89PNG"),
            "{name}.png is not a screenshot"
        );
    }
}
