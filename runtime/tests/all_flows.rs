//! Lint equals run: every file of `flows/` (each checks clean) runs under the real
//! `omniflow run` against the real `omniflow sandbox` on an ephemeral port. None may be
//! refused at start; where the sandbox can produce a message for a file, one is driven
//! through, and a sink of the file must deliver without every message being dead-lettered.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, peers::repo, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

/// A process this test started, killed (by its PID) when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain HTTP exchange on 127.0.0.1 (status and body).
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> (u16, String) {
    support::block_on(async {
        let mut request = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .timeout(Duration::from_secs(10));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        match request.send().await {
            Ok(response) => (
                response.status().as_u16(),
                response.text().await.unwrap_or_default(),
            ),
            Err(_) => (0, String::new()),
        }
    })
}

fn post(url: &str, body: Value) -> Value {
    let (status, text) = http("POST", url, &[], Some(&body));
    assert!((200..300).contains(&status), "POST {url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Polls `done` until it holds or `limit` passes; false when it never held.
fn wait(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// `omniflow sandbox` on a free port.
fn sandbox() -> (Process, String) {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["sandbox", "--addr", &format!("127.0.0.1:{port}")])
        .env("OMNIFLOW_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let up = wait(Duration::from_secs(30), || {
        http("GET", &format!("{url}/_sandbox/stats"), &[], None).0 == 200
    });
    assert!(up, "the sandbox did not start");
    (Process(child), url)
}

/// The environment the connections of `flows/common.flow` and the scenario flows read.
fn environment(
    sandbox: &str,
    office: &str,
    webhooks: &str,
    dropzone: &Path,
) -> Vec<(String, String)> {
    let vars = [
        ("AMAZON_SP_REGION", "na".to_string()),
        ("AMAZON_MARKETPLACE_ID", "ATVPDKIKX0DER".into()),
        ("AMAZON_SELLER_ID", "A1SANDBOXSELLER".into()),
        (
            "AMAZON_LWA_CLIENT_ID",
            "amzn1.application-oa2-client.sandbox".into(),
        ),
        ("AMAZON_LWA_CLIENT_SECRET", "sandbox-secret".into()),
        ("AMAZON_LWA_REFRESH_TOKEN", "Atzr|sandbox".into()),
        ("AMAZON_SP_ENDPOINT", sandbox.into()),
        (
            "AMAZON_LWA_TOKEN_ENDPOINT",
            format!("{sandbox}/auth/o2/token"),
        ),
        ("SHOPIFY_SHOP", sandbox.into()),
        ("SHOPIFY_ADMIN_TOKEN", "shpat_sandbox".into()),
        ("SHOPIFY_WEBHOOK_SECRET", "shopify-webhook-secret".into()),
        ("SHOPIFY_LOCATION_MAP", "WH-MAIN=65544149101".into()),
        ("SQUARE_ACCESS_TOKEN", "sq-sandbox-token".into()),
        ("SQUARE_LOCATION_IDS", "FPYCBCHYMXFK1,LK3Z8WQ2M5R7B".into()),
        ("SQUARE_BASE_URL", sandbox.into()),
        (
            "SQUARE_WEBHOOK_SIGNATURE_KEY",
            "square-signature-key".into(),
        ),
        (
            "SQUARE_NOTIFICATION_URL",
            format!("{webhooks}/webhooks/square"),
        ),
        (
            "SQUARE_ITEM_MAP",
            "ITM-110857=W62UWFY35CWMYGVWK6TWJDNI,ITM-104578=QX7RZ2B4KJH6T3M5PLD8WCFA".into(),
        ),
        (
            "SQUARE_LOCATION_MAP",
            "STORE-NYC-SOHO=FPYCBCHYMXFK1,STORE-BKN-WBG=LK3Z8WQ2M5R7B".into(),
        ),
        ("SHIPBOB_TOKEN", "shipbob-sandbox-pat".into()),
        ("SHIPBOB_CHANNEL_ID", "100102".into()),
        ("SHIPBOB_BASE_URL", sandbox.into()),
        (
            "SHIPBOB_WEBHOOK_SECRET",
            "whsec_c2FuZGJveC1zaGlwYm9iLXdlYmhvb2sx".into(),
        ),
        ("SHIPBOB_API_URL", sandbox.into()),
        ("SHIPBOB_AUTH_HEADER", "Bearer shipbob-sandbox-pat".into()),
        (
            "PRODUCT_MASTER_ODATA_URL",
            format!("{sandbox}/odata/v4/sales"),
        ),
        ("PRODUCT_MASTER_USER", "connector".into()),
        ("PRODUCT_MASTER_PASSWORD", "secret".into()),
        ("RETAIL_BUS_URL", "embedded:".into()),
        ("RETAIL_BUS_CREDENTIALS", "none".into()),
        ("FINANCE_API_URL", format!("{office}/finance")),
        ("FINANCE_API_AUTH", "Bearer back-office".into()),
        ("ORDER_REVIEW_URL", format!("{office}/review-desk")),
        ("ORDER_REVIEW_AUTH", "Bearer back-office".into()),
        ("RETAIL_DROPZONE_DIR", dropzone.display().to_string()),
        (
            "RETAIL_DROPZONE_ARCHIVE_DIR",
            dropzone.join("archive").display().to_string(),
        ),
        // The ERP is the sandbox's OData service (deployment below); Tryton's settings
        // still have to resolve.
        ("TRYTON_URL", format!("{sandbox}/tryton")),
        ("TRYTON_DATABASE", "retail".into()),
        ("TRYTON_USER", "admin".into()),
        ("TRYTON_PASSWORD", "admin".into()),
        ("TRYTON_WAREHOUSE", "WH".into()),
    ];
    vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The deployment: the flows' ERP on the sandbox's OData service, the channels' ids.
fn deployment(dir: &Path, sandbox: &str) -> PathBuf {
    let path = dir.join("omniflow.yaml");
    std::fs::write(
        &path,
        format!(
            "connections:
  erp:
    connector: odata
    settings:
      service_url: {sandbox}/odata/v4/sales
      username: connector
      password: secret
  amazon:
    settings:
      token_endpoint: {sandbox}/auth/o2/token
      sku_map: ITM-110857=TSHIRT-039-RED-M,ITM-102541=SOCK-014-GRY-M
  shop:
    settings:
      item_map: ITM-110857=808950001,ITM-102541=808950006
"
        ),
    )
    .unwrap();
    path
}

/// One `omniflow run` of some flow files.
struct Run {
    _process: Process,
    ops: u16,
    log: PathBuf,
}

impl Run {
    /// Starts the runtime; `Err` with its log when it exits before it is ready.
    fn start(
        files: &[PathBuf],
        dir: &Path,
        env: &[(String, String)],
        webhook: u16,
    ) -> Result<Run, String> {
        let ops = free_port();
        let log = dir.join("runtime.log");
        let mut child = Command::new(BIN)
            .arg("run")
            .args(files)
            .arg("--config")
            .arg(dir.join("omniflow.yaml"))
            .arg("--state")
            .arg(format!("sqlite:{}", dir.join("state.db").display()))
            .arg("--ops-addr")
            .arg(format!("127.0.0.1:{ops}"))
            .arg("--webhook-addr")
            .arg(format!("127.0.0.1:{webhook}"))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("OMNIFLOW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            if http("GET", &format!("http://127.0.0.1:{ops}/ready"), &[], None).0 == 200 {
                return Ok(Run {
                    _process: Process(child),
                    ops,
                    log,
                });
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                return Err("not ready within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sums a counter of `/metrics` per (flow, node).
    fn counters(&self, name: &str) -> BTreeMap<(String, String), u64> {
        let (_, text) = http(
            "GET",
            &format!("http://127.0.0.1:{}/metrics", self.ops),
            &[],
            None,
        );
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(&format!("{name}{{flow=\"")) else {
                continue;
            };
            let Some((flow, rest)) = rest.split_once("\",node=\"") else {
                continue;
            };
            let Some((node, value)) = rest.split_once("\"} ") else {
                continue;
            };
            *out.entry((flow.to_string(), node.to_string())).or_default() +=
                value.trim().parse::<u64>().unwrap_or(0);
        }
        out
    }
}

/// The sink nodes of each flow the files define (from the compiler's graph).
fn sinks(files: &[PathBuf]) -> BTreeMap<String, Vec<String>> {
    let compiled = omniflow_compiler::compile_paths(files).unwrap();
    assert!(!compiled.has_errors(), "{files:?} must check clean");
    compiled
        .graph
        .flows
        .iter()
        .map(|flow| {
            let sinks = flow
                .nodes
                .iter()
                .filter(|n| matches!(n.kind, omniflow_ir::NodeKind::Sink { .. }))
                .map(|n| n.name.clone())
                .collect();
            (flow.name.clone(), sinks)
        })
        .collect()
}

/// What the sandbox (or the dropzone) is given for a file: before the runtime starts
/// (polled at start) and once it listens (webhooks).
fn drive_before(file: &str, sandbox: &str, dropzone: &Path) -> bool {
    match file {
        "marketplace_orders.flow" => {
            post(
                &format!("{sandbox}/_sandbox/amazon/orders"),
                json!({"items": [{"sku": "TSHIRT-039-RED-M", "quantity": 1}], "status": "Unshipped",
                       "fulfillment_channel": "MFN", "buyer_email": "buyer@example.com",
                       "address": {"Name": "Ada Buyer", "AddressLine1": "1 Market St", "City": "Springfield",
                                   "StateOrRegion": "IL", "PostalCode": "62701", "CountryCode": "US"}}),
            );
        }
        "pos_inventory.flow" | "inventory_ledger.flow" => {
            post(
                &format!("{sandbox}/_sandbox/square/orders"),
                json!({"location_id": "FPYCBCHYMXFK1", "state": "COMPLETED",
                       "line_items": [{"catalog_object_id": "W62UWFY35CWMYGVWK6TWJDNI", "quantity": "1",
                                       "base_price_money": {"amount": 2200, "currency": "USD"}}]}),
            );
        }
        "omnichannel_returns.flow" => {
            post(
                &format!("{sandbox}/_sandbox/square/orders"),
                json!({"location_id": "FPYCBCHYMXFK1", "state": "COMPLETED", "reference_id": "shopify:1001",
                       "line_items": [],
                       "returns": [{"uid": "ret-1", "return_line_items": [{
                           "uid": "rli-1", "name": "Classic Tee #036", "quantity": "1",
                           "catalog_object_id": "QX7RZ2B4KJH6T3M5PLD8WCFA", "note": "RESELL tags on",
                           "base_price_money": {"amount": 2950, "currency": "USD"},
                           "total_money": {"amount": 2950, "currency": "USD"}}]}],
                       "return_amounts": {"total_money": {"amount": 2950, "currency": "USD"}}}),
            );
        }
        "settlement_reconciliation.flow" => {
            let days = dropzone.join("finance/pos_day_close");
            std::fs::create_dir_all(&days).unwrap();
            std::fs::write(
                days.join("2026-05-06.csv"),
                "store,business_date,currency,pos_takings,erp_posted\nSTORE-NYC,2026-05-06,USD,1500.00,1500.00\n",
            )
            .unwrap();
        }
        // Polled at start: the product master's rows, ShipBob's inventory.
        "product_price_distribution.flow" | "stock_movements.flow" => {}
        "ecommerce_split_fulfilment.flow" | "shipment_confirmations.flow" => {}
        // Connections and reference data only.
        _ => return false,
    }
    true
}

fn drive_after(file: &str, sandbox: &str, webhooks: &str) {
    match file {
        "ecommerce_split_fulfilment.flow" => {
            post(
                &format!("{sandbox}/_sandbox/webhooks"),
                json!({"system": "shopify", "topic": "orders/create",
                       "url": format!("{webhooks}/webhooks/shopify/orders-create")}),
            );
            post(
                &format!("{sandbox}/_sandbox/shopify/orders"),
                json!({"line_items": [{"sku": "TSHIRT-036-BLK-XL", "quantity": 1}], "email": "sam@example.com",
                       "customer": {"first_name": "Sam", "last_name": "Shopper", "email": "sam@example.com"},
                       "shipping_address": {"name": "Sam Shopper", "address1": "9 Elm St", "city": "Brooklyn",
                                            "province_code": "NY", "zip": "11211", "country_code": "US"}}),
            );
        }
        "shipment_confirmations.flow" => {
            post(
                &format!("{sandbox}/_sandbox/webhooks"),
                json!({"system": "shipbob", "topic": "order.shipped",
                       "url": format!("{webhooks}/webhooks/shipbob/order-shipped")}),
            );
            let (status, text) = http(
                "POST",
                &format!("{sandbox}/2026-07/order"),
                &[
                    ("authorization", "Bearer shipbob-sandbox-pat"),
                    ("shipbob_channel_id", "100102"),
                ],
                Some(
                    &json!({"reference_id": "pos:R-77", "shipping_method": "Standard", "type": "DTC",
                    "recipient": {"name": "Sam Shopper", "address": {"address1": "9 Elm St", "city": "Brooklyn",
                                  "state": "NY", "zip_code": "11211", "country": "US"}},
                    "products": [{"reference_id": "ITM-104578", "name": "Classic Tee #036", "quantity": 1}]}),
                ),
            );
            assert!((200..300).contains(&status), "{status} {text}");
            let order: Value = serde_json::from_str(&text).unwrap();
            post(
                &format!("{sandbox}/_sandbox/shipbob/orders/{}/ship", order["id"]),
                json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
            );
        }
        _ => {}
    }
}

/// Runs one file (with `feeders`, files that publish what it subscribes to); `Err` says
/// what went wrong.
fn run_file(file: &Path, feeders: &[&str], sandbox: &str, office: &str) -> Result<String, String> {
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let dir = TempDir::new(&format!("all-flows-{}", name.trim_end_matches(".flow")));
    let dropzone = dir.0.join("dropzone");
    for sub in ["archive", "reconciliation"] {
        std::fs::create_dir_all(dropzone.join(sub)).unwrap();
    }
    let webhook = free_port();
    let webhooks = format!("http://127.0.0.1:{webhook}");
    let env = environment(sandbox, office, &webhooks, &dropzone);
    deployment(&dir.0, sandbox);
    let mut files = vec![file.to_path_buf()];
    files.extend(feeders.iter().map(|f| file.with_file_name(f)));
    let driven = drive_before(&name, sandbox, &dropzone);
    let run =
        Run::start(&files, &dir.0, &env, webhook).map_err(|e| format!("refused at start: {e}"))?;
    if !driven {
        return Ok("ready (nothing to drive)".into());
    }
    drive_after(&name, sandbox, &webhooks);
    // The flows this file defines (not its feeders').
    let own = sinks(std::slice::from_ref(&file.to_path_buf()));
    let delivered = |run: &Run| -> u64 {
        let out = run.counters("omniflow_messages_out_total");
        out.iter()
            .filter(|((flow, node), _)| own.get(flow).is_some_and(|s| s.contains(node)))
            .map(|(_, n)| *n)
            .sum()
    };
    wait(Duration::from_secs(90), || delivered(&run) > 0);
    let delivered = delivered(&run);
    let inbound = run.counters("omniflow_messages_in_total");
    let dead = run.counters("omniflow_dead_letters_total");
    let per_flow = |counts: &BTreeMap<(String, String), u64>, flow: &str| -> u64 {
        counts
            .iter()
            .filter(|((f, _), _)| f == flow)
            .map(|(_, n)| *n)
            .sum()
    };
    let log = std::fs::read_to_string(&run.log).unwrap_or_default();
    if delivered == 0 {
        return Err(format!("no sink of {name} delivered anything; log:\n{log}"));
    }
    for flow in own.keys() {
        let (received, lost) = (per_flow(&inbound, flow), per_flow(&dead, flow));
        if received > 0 && lost >= received {
            return Err(format!(
                "{flow} dead-lettered all {received} messages; log:\n{log}"
            ));
        }
    }
    Ok(format!("{delivered} sink deliveries"))
}

#[test]
fn every_reference_flow_runs_against_the_sandbox() {
    let (_sandbox, url) = sandbox();
    let office = Sink::start(support::Faults::default());
    let office_url = format!("http://127.0.0.1:{}", office.port);
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("flows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "flow"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "{files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        // The ledger flows subscribe to what the POS flow publishes on the bus.
        let feeders: &[&str] = match name.as_str() {
            "inventory_ledger.flow" => &["pos_inventory.flow"],
            _ => &[],
        };
        match run_file(file, feeders, &url, &office_url) {
            Ok(what) => eprintln!("{name}: {what}"),
            Err(why) => failures.push(format!("{name}: {why}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
