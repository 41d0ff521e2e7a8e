//! The poll loop with a vendor pager, end to end: `omniflow run` polls the sandbox's
//! Amazon getOrders (two orders a page, a lookback window, each order completed with its
//! items) and posts each order to a recording sink; the runtime is killed and restarted
//! between batches. Every order arrives once, whatever the lookback reads again.

mod support;

use serde_json::json;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::process::{get, Killed};
use support::{free_port, wait_for, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

fn inbox_len(dir: &TempDir) -> i64 {
    // Read-only: never creates the file (an empty file is refused as a state).
    rusqlite::Connection::open_with_flags(
        dir.0.join("state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .and_then(|c| c.query_row("SELECT COUNT(*) FROM inbox", [], |r| r.get(0)))
    .unwrap_or(-1)
}

fn control(port: u16, path: &str, body: &str) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 20"), "{answer}");
}

fn run(dir: &TempDir, flow: &std::path::Path, sandbox: u16, sink: &Sink) -> Killed {
    Killed(
        Command::new(BIN)
            .arg("run")
            .arg(flow)
            .arg("--state")
            .arg(dir.state())
            .arg("--webhook-addr")
            .arg("127.0.0.1:0")
            .env("SANDBOX", format!("http://127.0.0.1:{sandbox}"))
            .env(
                "SANDBOX_TOKEN_URL",
                format!("http://127.0.0.1:{sandbox}/auth/o2/token"),
            )
            .env("LWA_SECRET", "sandbox-secret")
            .env("LWA_REFRESH", "Atzr|sandbox")
            .env(
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", sink.port),
            )
            .env("OMNIFLOW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(dir.0.join("runtime.log"))
                    .unwrap(),
            ))
            .spawn()
            .unwrap(),
    )
}

#[test]
fn amazon_orders_are_polled_once_each_across_pages_lookback_and_a_kill() {
    let dir = TempDir::new("poll-sandbox");
    let flow = dir.0.join("orders.flow");
    std::fs::write(
        &flow,
        r#"use std.connectors.{amazon_sp, http}
connection amazon = amazon_sp {
  region = "na"
  marketplace_id = "ATVPDKIKX0DER"
  seller_id = "A1SANDBOXSELLER"
  client_id = "amzn1.application-oa2-client.sandbox"
  client_secret = secret("LWA_SECRET")
  refresh_token = secret("LWA_REFRESH")
  endpoint = env("SANDBOX")
  token_endpoint = env("SANDBOX_TOKEN_URL")
}
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }
schema Placed {
  id: string
  items: int
}
flow orders {
  source polled = amazon.orders { every = 1s, cursor = watermark, lookback = 10m, page_size = 2 }
  map placed = polled -> Placed { id = $.AmazonOrderId, items = count($.OrderItems) }
  sink post = api.post(placed) { path = "/orders", idempotency_key = id, dead_letter = "orders" }
}
"#,
    )
    .unwrap();
    let sandbox_port = free_port();
    let _sandbox = support::process::sandbox(sandbox_port);
    let order = json!({"items": [{"sku": "TSHIRT-039-RED-M", "quantity": 1}, {"sku": "CBA_OTF_5", "quantity": 2}]}).to_string();
    for _ in 0..5 {
        control(sandbox_port, "/_sandbox/amazon/orders", &order);
    }
    let sink = Sink::start(Faults::default());
    let first = run(&dir, &flow, sandbox_port, &sink);
    wait_for("the first five orders", Duration::from_secs(60), || {
        sink.distinct() == 5
    });
    // Every completion committed (nothing in flight to repeat), then SIGKILL, more
    // orders, a restart: the cursor and the dedupe keys are durable.
    wait_for("an empty inbox", Duration::from_secs(30), || {
        inbox_len(&dir) == 0
    });
    drop(first);
    for _ in 0..3 {
        control(sandbox_port, "/_sandbox/amazon/orders", &order);
    }
    let _second = run(&dir, &flow, sandbox_port, &sink);
    wait_for("all eight orders", Duration::from_secs(60), || {
        sink.distinct() == 8
    });
    // A few more polls re-read the lookback window: nothing is posted again.
    std::thread::sleep(Duration::from_secs(3));
    let seen = sink.seen.lock().unwrap();
    assert_eq!(seen.effects.len(), 8);
    assert_eq!(
        seen.effects.values().sum::<u64>(),
        8,
        "no order posted twice: {:?}",
        seen.effects
    );
    assert_eq!(
        seen.requests, 8,
        "each order reached the sink once: the re-reads never left the source"
    );
}

#[test]
fn a_failing_poll_shows_on_health_and_clears_when_the_vendor_answers() {
    let dir = TempDir::new("poll-health");
    let flow = dir.0.join("orders.flow");
    std::fs::write(
        &flow,
        r#"use std.connectors.{shopify, http}
connection shop = shopify { shop = env("SHOP"), access_token = secret("SHOP_TOKEN") }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }
schema Placed { id: string }
flow orders {
  source polled = shop.orders { every = 1s, cursor = watermark }
  map placed = polled -> Placed { id = to_string($.id) }
  sink post = api.post(placed) { path = "/orders", idempotency_key = id, dead_letter = "orders" }
}
"#,
    )
    .unwrap();
    let (sandbox_port, ops) = (free_port(), free_port());
    let sink = Sink::start(Faults::default());
    // Nothing listens on the vendor's port yet.
    let _runtime = Killed(
        Command::new(BIN)
            .arg("run")
            .arg(&flow)
            .args(["--state", &dir.state(), "--webhook-addr", "127.0.0.1:0"])
            .args(["--ops-addr", &format!("127.0.0.1:{ops}")])
            .env("SHOP", format!("http://127.0.0.1:{sandbox_port}"))
            .env("SHOP_TOKEN", "shpat_sandbox")
            .env(
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", sink.port),
            )
            .env("OMNIFLOW_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("a failed poll on /health", Duration::from_secs(60), || {
        get(ops, "/health").1.contains("\"failures\"")
            && get(ops, "/health").1.contains("\"degraded\"")
    });
    let (status, body) = get(ops, "/health");
    assert_eq!(
        status, 200,
        "a failing source degrades, it does not fail: {body}"
    );
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    let source = &report["sources"][0];
    assert_eq!(source["source"], "polled");
    assert!(source["failures"].as_u64().unwrap() >= 1, "{report}");
    assert!(source["error"].as_str().unwrap_or("").len() > 5, "{report}");
    assert_eq!(report["state_writable"], true);
    let (_, metrics) = get(ops, "/metrics");
    assert!(
        metrics.contains("omniflow_source_errors_total{flow=\"orders\",node=\"polled\"}"),
        "{metrics}"
    );
    // The vendor comes up: the next poll clears the failure.
    let _sandbox = support::process::sandbox(sandbox_port);
    wait_for("/health ok again", Duration::from_secs(60), || {
        get(ops, "/health").1.contains("\"status\":\"ok\"")
    });
}
