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
    let output = demo(&["--sandbox", &url, "--outage", "6"], &[]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("reconciliation holds"), "{out}");
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
    let output = demo(&["--with-erp", "tryton"], &env);
    let out = text(&output);
    assert!(output.status.success(), "{out}\n{}", peer.log());
    assert!(out.contains("reconciliation holds"), "{out}");

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
