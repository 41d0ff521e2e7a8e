//! End to end: the reference flows through `omniflow demo` against the sandbox (asserting
//! on what the simulated systems received), against a real Tryton and against a real SAP
//! CAP OData service (asserting on what those ERPs hold afterwards).

mod support;

use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, peers};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

fn demo(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("demo")
        .arg("--flows")
        .arg(peers::repo().join("flows"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A sandbox process, stopped when dropped.
struct Sandbox(std::process::Child, u16);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(url: &str) -> Value {
    support::block_on(async {
        let text = reqwest::Client::new()
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

/// A demo's kept state file, removed when dropped.
struct Kept(std::path::PathBuf);

impl Kept {
    fn new(name: &str) -> Kept {
        let path =
            std::env::temp_dir().join(format!("omniflow-demo-{name}-{}.db", std::process::id()));
        let kept = Kept(path);
        kept.remove();
        kept
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.remove();
    }
}

/// `omniflow test --from-recording` of a recording against `flows`: its exit code and
/// output.
fn replay(recording: &Kept, flows: &std::path::Path) -> (Option<i32>, String) {
    let output = Command::new(BIN)
        .arg("test")
        .arg(flows)
        .arg("--from-recording")
        .arg(&recording.0)
        .output()
        .unwrap();
    (output.status.code(), text(&output))
}

/// The day's recording: masked, the same outcomes from the same flows, and exactly the
/// marketplace orders reported once the marketplace mapping's id rule changes.
fn replays_the_recording(recording: &Kept) {
    let recorded = std::fs::read_to_string(&recording.0).unwrap();
    let lines: Vec<Value> = recorded
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages = |flow: &str| {
        lines
            .iter()
            .filter(|l| l["kind"] == "message" && (flow.is_empty() || l["flow"] == flow))
            .count()
    };
    assert!(messages("") > 20, "{recorded}");
    assert!(lines
        .iter()
        .any(|l| l["kind"] == "answer" && l["step"] == "delivered"));
    // No customer's email survives anywhere, inside free text too: every address is a
    // pseudonym.
    let mut emails = 0;
    for (at, _) in recorded.match_indices('@') {
        let mut local: Vec<char> = recorded[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || "._%+-".contains(*c))
            .collect();
        local.reverse();
        let local: String = local.into_iter().collect();
        let domain: String = recorded[at + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
            .collect();
        let top = domain.rsplit('.').next().unwrap_or("");
        if local.is_empty()
            || !domain.contains('.')
            || top.len() < 2
            || !top.chars().all(|c| c.is_ascii_alphabetic())
        {
            continue;
        }
        emails += 1;
        assert_eq!(
            domain, "example.invalid",
            "an address in the recording: {local:?}@{domain}"
        );
    }
    assert!(emails > 0, "the day's orders carry emails");
    assert!(recorded.contains("masked-"));

    let (code, out) = replay(recording, &peers::repo().join("flows"));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("replayed {} messages", messages(""))),
        "{out}"
    );
    assert!(out.contains(": 0 differ"), "{out}");

    // One changed rule: the marketplace orders that reached a sink differ, nothing else.
    let changed = std::env::temp_dir().join(format!("omniflow-demo-flows-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&changed);
    copy_tree(&peers::repo().join("flows"), &changed);
    let file = changed.join("marketplace_orders.flow");
    let text = std::fs::read_to_string(&file).unwrap();
    let rule = "id = \"amazon:\" + amazon_id";
    assert!(text.contains(rule));
    std::fs::write(&file, text.replace(rule, "id = \"amzn:\" + amazon_id")).unwrap();
    let (code, out) = replay(recording, &changed);
    let _ = std::fs::remove_dir_all(&changed);
    assert_eq!(code, Some(1), "{out}");
    let reached = lines
        .iter()
        .filter(|l| l["kind"] == "message" && l["flow"] == "marketplace_orders")
        .filter(|l| {
            l["outcome"]["deliveries"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
        })
        .count();
    assert!(reached >= 3, "{recorded}");
    let differing: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("DIFFERS "))
        .collect();
    assert_eq!(differing.len(), reached, "{out}");
    assert!(
        differing
            .iter()
            .all(|c| c.starts_with("marketplace_orders#")),
        "{out}"
    );
    assert!(out.contains("$.id: \"amazon:"), "{out}");
}

/// Copies a directory with everything below it.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The storefront order the warehouse shipped during the day, as the demo said.
fn shipped_order(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split("warehouse ships ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the demo names the shipped order: {out}"))
        .to_string()
}

/// `omniflow trace TERM` on a kept state: its output (it must find something).
fn trace(state: &Kept, term: &str) -> String {
    let output = Command::new(BIN)
        .args([
            "trace",
            "--state",
            &format!("sqlite:{}", state.path()),
            term,
        ])
        .output()
        .unwrap();
    let shown = text(&output);
    assert!(output.status.success(), "{term}: {shown}");
    shown
}

#[test]
fn the_retail_day_against_the_sandbox_reconciles() {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["sandbox", "--addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sandbox = Sandbox(child, port);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sandbox did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{}", sandbox.1);
    let state = Kept::new("sandbox");
    let recording = Kept::new("recording");
    let output = demo(
        &[
            "--sandbox",
            &url,
            "--outage",
            "6",
            "--state",
            &state.path(),
            "--record",
            &recording.path(),
        ],
        &[],
    );
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("reconciliation holds"), "{out}");
    replays_the_recording(&recording);

    // The shipped storefront order, traced: the order into the ERP and the warehouse, the
    // shipment back into the ERP and onto the storefront, each with the target's record.
    let shipped = shipped_order(&out);
    let shown = trace(&state, &shipped);
    for hop in [
        "ecommerce_split_fulfilment/created",
        &format!("erp_sale key {shipped} -> SalesOrders("),
        &format!("wms key {shipped} -> ShipBob order "),
        "shipment_confirmations/shipped",
        "shopify_fulfil key shipbob:",
        "-> fulfillment ",
        "erp_shipment key shipbob:",
    ] {
        assert!(shown.contains(hop), "{hop}: {shown}");
    }
    // The ERP's document finds the same order.
    let document = shown
        .split("-> ")
        .find(|d| d.starts_with("SalesOrders("))
        .and_then(|d| d.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(
        trace(&state, &document).contains(&format!("erp_sale key {shipped}")),
        "{document}"
    );
    assert!(
        out.contains("dead letter: unknown SKU MUG-DISCONTINUED-01"),
        "{out}"
    );
    assert!(out.contains("held at the review desk"), "{out}");
    // The flash sale: the free units held, the rest refused, the channels told 0.
    for check in [
        "yes  flash sale: exactly the free units are held, the other orders refused",
        "yes  flash sale: every publishing channel was last told 0",
        "yes  no SKU oversold",
        // The product master's price change, on every channel (Amazon with its uplift).
        "yes  the price change reached the storefront, Amazon (+10%) and the stores",
    ] {
        assert!(out.contains(check), "{check}: {out}");
    }

    let stats = get(&format!("{url}/_sandbox/stats"));
    // The ledger told the storefront and Amazon the flash item's quantities.
    assert!(
        stats["shopify"]["inventory_updates"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    assert!(
        stats["amazon_sp"]["listing_updates"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    // Eight channel orders reached the ERP, each once, through an outage.
    assert_eq!(stats["odata"]["sales_orders_created"], 8, "{stats}");
    assert_eq!(stats["odata"]["duplicates_received"], 0, "{stats}");
    assert!(
        stats["odata"]["faults_injected"].as_u64().unwrap() > 0,
        "the outage was felt: {stats}"
    );
    // Storefront orders with lines to ship went to the warehouse once each.
    assert_eq!(stats["shipbob"]["orders_created"], 5, "{stats}");
    assert_eq!(stats["shipbob"]["duplicates_received"], 0, "{stats}");
    // The shipment was confirmed on the storefront once, though its webhook came twice.
    assert_eq!(stats["shopify"]["fulfillments"], 1, "{stats}");
    // The storefront's writes go through the GraphQL Admin API.
    assert!(
        stats["shopify"]["graphql_queries"].as_u64() >= Some(3),
        "{stats}"
    );
    assert!(
        out.contains("yes  the storefront was written through Shopify's GraphQL Admin API"),
        "{out}"
    );
    assert_eq!(stats["shopify"]["webhook_duplicates_sent"], 2, "{stats}");
    // The store pickup line reserved stock in the store's POS.
    assert_eq!(stats["square"]["inventory_changes"], 1, "{stats}");
    // The LWA token was fetched once and reused.
    assert_eq!(stats["amazon_sp"]["token_grants"], 1, "{stats}");
    assert_eq!(stats["amazon_sp"]["auth_failures"], 0, "{stats}");
    let orders = get(&format!("{url}/_sandbox/odata/sales_orders"));
    let mut numbers: Vec<&str> = orders
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["orderNo"].as_str())
        .collect();
    numbers.sort();
    let before = numbers.len();
    numbers.dedup();
    assert_eq!(before, numbers.len(), "no sales order twice: {numbers:?}");
}

#[test]
fn the_retail_day_books_into_a_real_tryton() {
    let peer = peers::tryton();
    let url = peers::tryton_url(&peer);
    let env = [
        ("TRYTON_URL", url.clone()),
        ("TRYTON_DATABASE", "omniflow".to_string()),
        ("TRYTON_USER", "admin".to_string()),
        ("TRYTON_PASSWORD", "admin".to_string()),
    ];
    let state = Kept::new("tryton");
    let output = demo(&["--with-erp", "tryton", "--state", &state.path()], &env);
    let out = text(&output);
    assert!(output.status.success(), "{out}\n{}", peer.log());
    assert!(out.contains("reconciliation holds"), "{out}");
    // The shipped order's sale, as Tryton numbered it, and its shipment.
    let shipped = shipped_order(&out);
    let shown = trace(&state, &shipped);
    assert!(
        shown.contains(&format!("erp_sale key {shipped} -> sale.sale ")),
        "{shown}"
    );
    assert!(shown.contains("-> stock.shipment.out "), "{shown}");

    // What Tryton holds: the eight channel orders, each once, confirmed; the shipped one sent.
    let sales = support::block_on(async {
        let rpc = peers::TrytonRpc::login(&url).await;
        let found = rpc
            .model(
                "sale.sale",
                "search_read",
                vec![
                    json!([["reference", "!=", null]]),
                    json!(0),
                    Value::Null,
                    Value::Null,
                    json!(["reference", "state", "shipment_state"]),
                ],
            )
            .await;
        found.as_array().cloned().unwrap()
    });
    let mut references: Vec<&str> = sales
        .iter()
        .map(|s| s["reference"].as_str().unwrap())
        .collect();
    references.sort();
    let all = references.len();
    references.dedup();
    assert_eq!(all, 8, "{sales:?}");
    assert_eq!(references.len(), 8, "each order once: {sales:?}");
    assert!(
        sales.iter().all(|s| s["state"] == "processing"),
        "{sales:?}"
    );
    assert_eq!(
        sales
            .iter()
            .filter(|s| s["shipment_state"] == "sent")
            .count(),
        1,
        "{sales:?}"
    );
    drop(peer);
}

#[test]
fn the_retail_day_books_into_a_real_cap_odata_service() {
    let peer = peers::cap();
    let service = peers::cap_service(&peer);
    let env = [
        ("ODATA_SERVICE_URL", service.clone()),
        ("ODATA_USER", "connector".to_string()),
        ("ODATA_PASSWORD", "secret".to_string()),
    ];
    let output = demo(&["--with-erp", "odata"], &env);
    let out = text(&output);
    assert!(output.status.success(), "{out}\n{}", peer.log());
    assert!(out.contains("reconciliation holds"), "{out}");

    let orders: Vec<Value> = support::block_on(async {
        let text = reqwest::Client::new()
            .get(format!(
                "{service}/SalesOrders?$select=orderNo,status,trackingNumber&$top=50"
            ))
            .basic_auth("connector", Some("secret"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["value"]
            .as_array()
            .cloned()
            .unwrap()
    });
    let mut numbers: Vec<&str> = orders
        .iter()
        .map(|o| o["orderNo"].as_str().unwrap())
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(orders.len(), 8, "{orders:?}");
    assert_eq!(numbers.len(), 8, "each order once: {orders:?}");
    assert_eq!(
        orders.iter().filter(|o| o["status"] == "SHIPPED").count(),
        1,
        "{orders:?}"
    );
    drop(peer);
}
