//! Cron sources end to end with the real binary, the sandbox's Amazon Reports API and a
//! clock the test sets (`OMNIFLOW_SCHEDULE_CLOCK_FILE`): one run per tick across SIGKILL and
//! restarts (counted at the sandbox), a tick in the spring-forward gap, one catch-up run
//! after days down, and `flows/settlement_reconciliation.flow` taking each settlement once;
//! and an every-second schedule on the system clock killed between ticks.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{free_port, wait_for, Recorder, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");
const LIMIT: Duration = Duration::from_secs(60);

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(port: u16, method: &str, path: &str, body: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn sandbox() -> (Killed, u16) {
    let port = free_port();
    let child = Killed(
        Command::new(BIN)
            .args(["sandbox", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the sandbox", LIMIT, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (child, port)
}

/// getReports listings the sandbox answered.
fn listings(sandbox: u16) -> u64 {
    let answer = http(sandbox, "GET", "/_sandbox/stats", "").unwrap();
    let stats: Value = serde_json::from_str(body(&answer)).unwrap();
    stats["amazon_sp"]["report_listings"].as_u64().unwrap_or(0)
}

/// The value of a metric line (`name{labels}`) on the ops endpoint.
fn metric(ops: u16, line: &str) -> Option<i64> {
    let answer = http(ops, "GET", "/metrics", "")?;
    body(&answer)
        .lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
}

fn seconds(instant: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(instant)
        .unwrap()
        .timestamp()
}

/// Waits until the source has decided at the clock's current time: its next tick is known.
/// Panics with the runtime's log when it does not come.
fn wait_next_tick(run: &Run, ops: u16, flow: &str, source: &str, expected: &str) {
    let line = format!("omniflow_schedule_next_tick_seconds{{flow=\"{flow}\",node=\"{source}\"}}");
    let started = std::time::Instant::now();
    while metric(ops, &line) != Some(seconds(expected)) {
        if started.elapsed() > LIMIT {
            let log = std::fs::read_to_string(run.dir.0.join("runtime.log")).unwrap_or_default();
            panic!("timed out waiting for next tick {expected}; the runtime's log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stored_tick(dir: &TempDir, flow: &str) -> Option<String> {
    rusqlite::Connection::open(dir.0.join("state.db"))
        .ok()?
        .query_row(
            "SELECT value FROM cursors WHERE flow = ?1 AND key = 'tick'",
            [flow],
            |row| row.get(0),
        )
        .ok()
}

struct Run<'a> {
    dir: &'a TempDir,
    flow: PathBuf,
    config: Option<PathBuf>,
    clock: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Run<'_> {
    /// Starts the runtime with its ops endpoint on a fresh port.
    fn start(&self) -> (Killed, u16) {
        let ops = free_port();
        let mut command = Command::new(BIN);
        command
            .arg("run")
            .arg(&self.flow)
            .arg("--state")
            .arg(self.dir.state())
            .arg("--webhook-addr")
            .arg("127.0.0.1:0")
            .arg("--ops-addr")
            .arg(format!("127.0.0.1:{ops}"))
            .env("OMNIFLOW_SCHEDULE_CLOCK_FILE", &self.clock)
            .env("OMNIFLOW_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(self.dir.0.join("runtime.log"))
                    .unwrap(),
            ));
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        (Killed(command.spawn().unwrap()), ops)
    }

    fn set_clock(&self, instant: &str) {
        let temp = self.clock.with_extension("new");
        std::fs::write(&temp, instant).unwrap();
        std::fs::rename(&temp, &self.clock).unwrap();
    }
}

fn amazon_env(sandbox: u16) -> Vec<(&'static str, String)> {
    let base = format!("http://127.0.0.1:{sandbox}");
    vec![
        ("AMAZON_SP_REGION", "na".into()),
        ("AMAZON_MARKETPLACE_ID", "ATVPDKIKX0DER".into()),
        ("AMAZON_SELLER_ID", "A1SANDBOXSELLER".into()),
        (
            "AMAZON_LWA_CLIENT_ID",
            "amzn1.application-oa2-client.sandbox".into(),
        ),
        ("AMAZON_LWA_CLIENT_SECRET", "sandbox-secret".into()),
        ("AMAZON_LWA_REFRESH_TOKEN", "Atzr|sandbox".into()),
        ("AMAZON_SP_ENDPOINT", base.clone()),
        ("AMAZON_LWA_TOKEN_ENDPOINT", format!("{base}/auth/o2/token")),
    ]
}

fn add_settlement(sandbox: u16, id: &str) {
    let settlement = json!({
        "settlement-id": id,
        "total-amount": "20.00",
        "rows": [{"transaction-type": "Order", "order-id": "902-7000000-0000001",
                  "amount-type": "ItemPrice", "amount-description": "Principal", "amount": "20.00"}]
    });
    let answer = http(
        sandbox,
        "POST",
        "/_sandbox/amazon/settlements",
        &settlement.to_string(),
    )
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// The distinct values of `field` in the bodies posted to `path`: a delivery cut off by
/// SIGKILL before its outcome was stored is sent again with the same idempotency key, so a
/// receiver sees a body more than once; what was taken is the distinct set.
fn distinct(recorder: &Recorder, path: &str, field: &str) -> Vec<String> {
    let mut values: Vec<String> = recorder
        .on(path)
        .iter()
        .filter_map(|b| b[field].as_str().map(String::from))
        .collect();
    values.sort();
    values.dedup();
    values
}

#[test]
fn a_cron_source_runs_once_per_tick_across_kills_gaps_and_downtime() {
    let dir = TempDir::new("schedule-ticks");
    let (_sandbox, sandbox_port) = sandbox();
    let recorder = Recorder::start();
    let flow = dir.0.join("settlements.flow");
    std::fs::write(
        &flow,
        r#"use std.connectors.{amazon_sp, http}
connection amazon = amazon_sp {
  region = "na"
  marketplace_id = env("AMAZON_MARKETPLACE_ID")
  seller_id = env("AMAZON_SELLER_ID")
  client_id = env("AMAZON_LWA_CLIENT_ID")
  client_secret = secret("AMAZON_LWA_CLIENT_SECRET")
  refresh_token = secret("AMAZON_LWA_REFRESH_TOKEN")
  endpoint = env("AMAZON_SP_ENDPOINT")
  token_endpoint = env("AMAZON_LWA_TOKEN_ENDPOINT")
}
connection api = http { base_url = env("RECORDER") }
flow nightly {
  source reports = amazon.settlements { cron = "30 2 * * *", tz = "Europe/Berlin" }
  sink post = api.post(reports) {
    path = "/settlements"
    idempotency_key = $['settlement-id']
    dead_letter = "settlements"
  }
}
"#,
    )
    .unwrap();
    let mut env = amazon_env(sandbox_port);
    env.push(("RECORDER", format!("http://127.0.0.1:{}", recorder.port)));
    let run = Run {
        dir: &dir,
        flow,
        config: None,
        clock: dir.0.join("clock"),
        env,
    };
    // Never ran: the latest tick (02:30 CET on 28 March) runs at the first start.
    run.set_clock("2026-03-28T12:00:00Z");
    let (first, ops) = run.start();
    // The next tick is 02:30 of 29 March, which the clock skips: it falls on 03:00 CEST.
    wait_next_tick(&run, ops, "nightly", "reports", "2026-03-29T01:00:00Z");
    assert_eq!(listings(sandbox_port), 1);
    assert_eq!(
        stored_tick(&dir, "nightly").as_deref(),
        Some("2026-03-28T01:30:00Z")
    );
    drop(first);

    // Killed and restarted within the same tick: no second run.
    let (second, ops) = run.start();
    wait_next_tick(&run, ops, "nightly", "reports", "2026-03-29T01:00:00Z");
    assert_eq!(listings(sandbox_port), 1);

    // The gap's tick runs once, and takes the settlement published since.
    add_settlement(sandbox_port, "11795325200");
    run.set_clock("2026-03-29T01:00:00Z");
    wait_next_tick(&run, ops, "nightly", "reports", "2026-03-30T00:30:00Z");
    assert_eq!(listings(sandbox_port), 2);
    assert_eq!(
        stored_tick(&dir, "nightly").as_deref(),
        Some("2026-03-29T01:00:00Z")
    );
    drop(second);

    // Down for four ticks: one run catches up, as the latest of them.
    run.set_clock("2026-04-02T12:00:00Z");
    let (third, ops) = run.start();
    wait_next_tick(&run, ops, "nightly", "reports", "2026-04-03T00:30:00Z");
    assert_eq!(listings(sandbox_port), 3);
    assert_eq!(
        stored_tick(&dir, "nightly").as_deref(),
        Some("2026-04-02T00:30:00Z")
    );

    // The autumn overlap: the first 02:30 runs; the next tick is the next day's, not the
    // repeated 02:30 an hour later.
    run.set_clock("2026-10-25T00:30:00Z");
    wait_next_tick(&run, ops, "nightly", "reports", "2026-10-26T01:30:00Z");
    assert_eq!(listings(sandbox_port), 4);
    drop(third);

    // Every settlement reached the sink, each under its own key, whatever the restarts.
    let posted = || distinct(&recorder, "/settlements", "settlement-id");
    wait_for("the settlements posted", LIMIT, || posted().len() >= 3);
    assert_eq!(posted(), ["11795325101", "11795325102", "11795325200"]);
}

/// The ticks the runtime logged as complete runs, in order.
fn logged_ticks(dir: &TempDir) -> Vec<String> {
    std::fs::read_to_string(dir.0.join("runtime.log"))
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("scheduled run complete"))
        .filter_map(|line| line.split("tick=").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn every_second_on_the_system_clock_no_tick_runs_twice_across_a_kill() {
    let dir = TempDir::new("schedule-seconds");
    let (_sandbox, sandbox_port) = sandbox();
    let recorder = Recorder::start();
    let flow = dir.0.join("seconds.flow");
    std::fs::write(
        &flow,
        r#"use std.connectors.{amazon_sp, http}
connection amazon = amazon_sp {
  region = "na"
  marketplace_id = env("AMAZON_MARKETPLACE_ID")
  seller_id = env("AMAZON_SELLER_ID")
  client_id = env("AMAZON_LWA_CLIENT_ID")
  client_secret = secret("AMAZON_LWA_CLIENT_SECRET")
  refresh_token = secret("AMAZON_LWA_REFRESH_TOKEN")
  endpoint = env("AMAZON_SP_ENDPOINT")
  token_endpoint = env("AMAZON_LWA_TOKEN_ENDPOINT")
}
connection api = http { base_url = env("RECORDER") }
flow seconds {
  source reports = amazon.settlements { cron = "* * * * * *" }
  sink post = api.post(reports) {
    path = "/settlements"
    idempotency_key = $['settlement-id']
    dead_letter = "settlements"
  }
}
"#,
    )
    .unwrap();
    let mut env = amazon_env(sandbox_port);
    env.push(("RECORDER", format!("http://127.0.0.1:{}", recorder.port)));
    let runs = "omniflow_schedule_runs_total{flow=\"seconds\",node=\"reports\"}";
    let start = |env: Vec<(&'static str, String)>| {
        let ops = free_port();
        let child = Command::new(BIN)
            .arg("run")
            .arg(&flow)
            .arg("--state")
            .arg(dir.state())
            .arg("--webhook-addr")
            .arg("127.0.0.1:0")
            .arg("--ops-addr")
            .arg(format!("127.0.0.1:{ops}"))
            .env_remove("OMNIFLOW_SCHEDULE_CLOCK_FILE")
            .env("OMNIFLOW_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(dir.0.join("runtime.log"))
                    .unwrap(),
            ))
            .spawn()
            .unwrap();
        (Killed(child), ops)
    };
    for _ in 0..2 {
        let (child, ops) = start(env.clone());
        // Two runs each: getReports allows a burst of ten, then one call a minute.
        wait_for("two runs", LIMIT, || metric(ops, runs) >= Some(2));
        drop(child);
    }
    let ticks = logged_ticks(&dir);
    assert!(ticks.len() >= 4, "{ticks:?}");
    // Ticks are whole seconds, each run once, in order across the kill.
    let mut sorted = ticks.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ticks);
    assert!(ticks
        .iter()
        .all(|t| chrono::DateTime::parse_from_rfc3339(t)
            .is_ok_and(|t| t.timestamp_subsec_nanos() == 0)));
    // Every listing the sandbox answered belongs to a logged run, but for a run each kill
    // may have cut short before its tick was stored.
    let listings = listings(sandbox_port) as usize;
    assert!(
        (ticks.len()..=ticks.len() + 2).contains(&listings),
        "{listings} listings for {} runs",
        ticks.len()
    );
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn settlement_reconciliation_books_balanced_settlements_and_reports_the_others_once() {
    let dir = TempDir::new("schedule-settlements");
    let (_sandbox, sandbox_port) = sandbox();
    let recorder = Recorder::start();
    let dropzone = dir.0.join("dropzone");
    std::fs::create_dir_all(dropzone.join("reconciliation")).unwrap();
    std::fs::create_dir_all(dropzone.join("archive")).unwrap();
    let config = dir.0.join("omniflow.yaml");
    std::fs::write(
        &config,
        "connections:\n  amazon:\n    settings:\n      token_endpoint: { env: AMAZON_LWA_TOKEN_ENDPOINT }\n",
    )
    .unwrap();
    let mut env = amazon_env(sandbox_port);
    let finance = format!("http://127.0.0.1:{}/finance", recorder.port);
    let sandbox = format!("http://127.0.0.1:{sandbox_port}");
    for (name, value) in [
        ("FINANCE_API_URL", finance),
        ("FINANCE_API_AUTH", "Bearer back-office".to_string()),
        ("RETAIL_DROPZONE_DIR", dropzone.display().to_string()),
        (
            "RETAIL_DROPZONE_ARCHIVE_DIR",
            dropzone.join("archive").display().to_string(),
        ),
        ("SQUARE_ACCESS_TOKEN", "sq-sandbox-token".to_string()),
        ("SQUARE_LOCATION_IDS", "FPYCBCHYMXFK1".to_string()),
        ("SQUARE_BASE_URL", sandbox.clone()),
        (
            "SQUARE_WEBHOOK_SIGNATURE_KEY",
            "square-signature-key".to_string(),
        ),
        (
            "SQUARE_NOTIFICATION_URL",
            "http://127.0.0.1:1/webhooks/square".to_string(),
        ),
        ("SQUARE_ITEM_MAP", String::new()),
        ("SQUARE_LOCATION_MAP", String::new()),
        // The other connections of flows/common.flow, which this file's flows do not call.
        ("SHOPIFY_SHOP", sandbox.clone()),
        ("SHOPIFY_ADMIN_TOKEN", "shpat_sandbox".to_string()),
        (
            "SHOPIFY_WEBHOOK_SECRET",
            "shopify-webhook-secret".to_string(),
        ),
        ("SHOPIFY_LOCATION_MAP", String::new()),
        ("SHIPBOB_TOKEN", "shipbob-sandbox-pat".to_string()),
        ("SHIPBOB_CHANNEL_ID", "100102".to_string()),
        ("SHIPBOB_BASE_URL", sandbox.clone()),
        ("SHIPBOB_WEBHOOK_SECRET", "shipbob-secret".to_string()),
        ("TRYTON_URL", "http://127.0.0.1:1/".to_string()),
        ("TRYTON_DATABASE", "retail".to_string()),
        ("TRYTON_USER", "admin".to_string()),
        ("TRYTON_PASSWORD", "admin".to_string()),
        ("TRYTON_WAREHOUSE", "WH".to_string()),
        (
            "PRODUCT_MASTER_ODATA_URL",
            format!("{sandbox}/odata/v4/sales"),
        ),
        ("PRODUCT_MASTER_USER", "connector".to_string()),
        ("PRODUCT_MASTER_PASSWORD", "secret".to_string()),
        ("RETAIL_BUS_URL", "embedded:".to_string()),
        ("RETAIL_BUS_CREDENTIALS", "none".to_string()),
    ] {
        env.push((name, value));
    }
    let run = Run {
        dir: &dir,
        flow: workspace_root().join("flows/settlement_reconciliation.flow"),
        config: Some(config),
        clock: dir.0.join("clock"),
        env,
    };
    run.set_clock("2026-05-14T09:00:00Z");
    let (first, ops) = run.start();
    wait_next_tick(
        &run,
        ops,
        "amazon_settlements",
        "settlements",
        "2026-05-15T07:00:00Z",
    );
    wait_for("the settlements handled", LIMIT, || {
        !recorder.on("/finance/settlements/amazon").is_empty()
            && !recorder
                .on("/finance/reconciliation/discrepancies")
                .is_empty()
    });
    // The balanced settlement is booked exactly as the flow's own test expects it.
    let expected: Value =
        serde_json::from_str(
            &std::fs::read_to_string(workspace_root().join(
                "flows/fixtures/settlement_reconciliation/settlement_balanced.settlement.json",
            ))
            .unwrap(),
        )
        .unwrap();
    assert_eq!(recorder.on("/finance/settlements/amazon")[0], expected);
    let case = &recorder.on("/finance/reconciliation/discrepancies")[0];
    assert_eq!(case["key"], "amazon-settlement:11795325102");
    assert_eq!(case["expected"], json!({"amount": 1251, "currency": "USD"}));
    assert_eq!(case["actual"], json!({"amount": 1451, "currency": "USD"}));
    let report = dropzone.join("reconciliation/discrepancies.jsonl");
    wait_for("the discrepancy file", LIMIT, || {
        std::fs::read_to_string(&report).is_ok_and(|t| t.lines().count() >= 1)
    });
    drop(first);

    // Restarted the same morning: nothing runs again. The next morning takes only the
    // settlement published since (its rows add up: it is booked).
    let (second, ops) = run.start();
    wait_next_tick(
        &run,
        ops,
        "amazon_settlements",
        "settlements",
        "2026-05-15T07:00:00Z",
    );
    assert_eq!(listings(sandbox_port), 1);
    add_settlement(sandbox_port, "11795325300");
    run.set_clock("2026-05-15T07:00:00Z");
    wait_next_tick(
        &run,
        ops,
        "amazon_settlements",
        "settlements",
        "2026-05-16T07:00:00Z",
    );
    let booked = || distinct(&recorder, "/finance/settlements/amazon", "id");
    wait_for("the new settlement booked", LIMIT, || booked().len() == 2);
    drop(second);
    assert_eq!(listings(sandbox_port), 2);
    assert_eq!(
        booked(),
        [
            "amazon-settlement:11795325101",
            "amazon-settlement:11795325300"
        ]
    );
    assert_eq!(
        distinct(&recorder, "/finance/reconciliation/discrepancies", "key"),
        ["amazon-settlement:11795325102"]
    );
}
