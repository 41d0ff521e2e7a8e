//! The ERP connectors against real servers started on 127.0.0.1: SAP CAP (OData v4) and
//! Tryton (JSON-RPC). Each test asserts on what the server holds afterwards, read back
//! with a client written here, independent of the connectors.

mod support;

use omniflow_connectors::{self as connectors, CallOutcome};
use omniflow_ir::Connection;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use support::peers::{self, TrytonRpc};

fn connection(connector: &str, settings: Value) -> Connection {
    support::connection("erp", connector, settings)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Calls a sink operation once with `message`.
async fn call(conn: &Connection, op: &str, key: &str, message: &Value) -> CallOutcome {
    support::call_sink(conn, op, key, message, Duration::from_secs(60)).await
}

fn money(minor: i64) -> Value {
    json!({"amount": minor, "currency": "USD"})
}

/// A canonical order of `lines` (sku, quantity, unit price in cents).
fn order(id: &str, lines: &[(&str, i64, i64)], email: &str) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (sku, q, price))| {
            json!({"line_id": i.to_string(), "sku": sku, "channel_sku": null, "title": format!("item {sku}"),
                   "quantity": q, "unit_price": money(*price), "discount": null, "tax": null,
                   "total": money(price * q), "fulfilment": "ship", "location": null})
        })
        .collect();
    json!({
        "id": id, "channel": "shopify", "external_id": id, "order_ref": "#1001",
        "placed_at": "2026-05-04T10:00:00Z", "status": "paid", "currency": "USD",
        "customer": {"id": "c1", "email": email, "name": "Ada Lovelace", "phone": null, "default_address": null},
        "ship_to": {"name": "Ada Lovelace", "company": null, "line1": "12 Analytical Row", "line2": null,
                    "city": "London", "region": null, "postal_code": "N1 9GU", "country": "GB", "phone": null},
        "bill_to": null, "lines": lines,
        "subtotal": money(0), "shipping": money(0), "tax": money(0), "discount": money(0), "total": money(0)
    })
}

fn shipment(order_id: &str) -> Value {
    json!({"id": format!("ship-{order_id}"), "order_id": order_id, "channel": "shopify", "location": "WH-MAIN",
           "carrier": "UPS", "tracking_number": "1Z999AA10123456784", "tracking_url": null,
           "shipped_at": "2026-05-05T09:00:00Z", "lines": []})
}

fn movement(id: &str, kind: &str, sku: &str, quantity: i64) -> Value {
    json!({"id": id, "kind": kind, "sku": sku, "location": "WH-MAIN", "quantity": quantity,
           "counterpart_location": null, "reference": "test", "occurred_at": "2026-05-05T09:00:00Z"})
}

/// A success naming the ERP's record of it; answers that name.
fn assert_ok(outcome: CallOutcome) -> String {
    match outcome {
        CallOutcome::Recorded { document } => document,
        other => panic!("expected a success naming the ERP's record, got {other:?}"),
    }
}

fn permanent(outcome: CallOutcome) -> String {
    match outcome {
        CallOutcome::Permanent { reason } => reason,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

// ---------------------------------------------------------------- OData (SAP CAP)

async fn odata_get(service: &str, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{service}/{path}"))
        .basic_auth("connector", Some("secret"))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

async fn orders_numbered(service: &str, number: &str) -> Vec<Value> {
    let found = odata_get(
        service,
        &format!("SalesOrders?$filter=orderNo%20eq%20'{number}'&$expand=items"),
    )
    .await;
    found["value"].as_array().cloned().unwrap()
}

#[test]
fn odata_sales_orders_on_a_real_cap_server() {
    let peer = peers::cap();
    let service = peers::cap_service(&peer);
    let erp = connection(
        "odata",
        json!({"service_url": service, "username": "connector", "password": "secret"}),
    );
    runtime().block_on(async {
        // A deep insert of the order with its items, once even when repeated.
        let sale = order(
            "shopify:1001",
            &[("ITM-110857", 2, 2200), ("ITM-102541", 1, 1099)],
            "ada@example.com",
        );
        let sale_document = assert_ok(call(&erp, "create_sale", "shopify:1001", &sale).await);
        assert_eq!(
            assert_ok(call(&erp, "create_sale", "shopify:1001", &sale).await),
            sale_document,
            "a retry names the same sale"
        );
        let held = orders_numbered(&service, "shopify:1001").await;
        assert_eq!(held.len(), 1, "one sales order per channel order: {held:?}");
        assert_eq!(held[0]["customer"], "Ada Lovelace");
        assert_eq!(held[0]["items"].as_array().unwrap().len(), 2);
        assert_eq!(held[0]["total"].as_f64(), Some(54.99), "{held:?}");

        // The service's own validation error becomes the permanent reason.
        let unknown = order("shopify:1002", &[("ITM-NOPE", 1, 100)], "ada@example.com");
        let reason = permanent(call(&erp, "create_sale", "shopify:1002", &unknown).await);
        assert!(reason.contains("Product ITM-NOPE not found"), "{reason}");
        assert!(orders_numbered(&service, "shopify:1002").await.is_empty());

        // A shipment PATCHes the order with its ETag.
        assert_ok(
            call(
                &erp,
                "record_shipment",
                "ship-1001",
                &shipment("shopify:1001"),
            )
            .await,
        );
        let held = orders_numbered(&service, "shopify:1001").await;
        assert_eq!(held[0]["status"], "SHIPPED");
        assert_eq!(held[0]["trackingNumber"], "1Z999AA10123456784");
        assert_eq!(held[0]["carrier"], "UPS");

        // A shipment of an order the ERP does not hold yet waits (transient).
        match call(&erp, "record_shipment", "ship-9", &shipment("shopify:9999")).await {
            CallOutcome::Transient { class, .. } => assert_eq!(class, "not_found"),
            other => panic!("{other:?}"),
        }

        // Stock movements: a return adds, a sale takes, read back from the product.
        assert_ok(
            call(
                &erp,
                "adjust_stock",
                "m1",
                &movement("m1", "return", "ITM-300711", 2),
            )
            .await,
        );
        assert_ok(
            call(
                &erp,
                "adjust_stock",
                "m2",
                &movement("m2", "sale", "ITM-300711", 5),
            )
            .await,
        );
        let product = odata_get(&service, "Products('ITM-300711')").await;
        assert_eq!(product["stock"], 97);
        let reason = permanent(
            call(
                &erp,
                "adjust_stock",
                "m3",
                &movement("m3", "sale", "ITM-300711", 500),
            )
            .await,
        );
        assert!(reason.contains("below zero"), "{reason}");
    });
    drop(peer);
}

#[test]
fn odata_entities_follow_relative_next_links_on_a_real_cap_server() {
    let peer = peers::cap();
    let service = peers::cap_service(&peer);
    let erp = connection(
        "odata",
        json!({"service_url": service, "username": "connector", "password": "secret"}),
    );
    runtime().block_on(async {
        for n in 0..25 {
            let id = format!("amazon:P{n:03}");
            assert_ok(
                call(
                    &erp,
                    "create_sale",
                    &id,
                    &order(&id, &[("ITM-104242", 1, 2400)], "p@example.com"),
                )
                .await,
            );
        }
        let ctx = connectors::Context::default();
        let settings = connectors::settings(&ctx, &erp).unwrap();
        let options: BTreeMap<String, Value> = [
            ("entity_set".to_string(), json!("SalesOrders")),
            ("select".to_string(), json!("ID,orderNo")),
            (
                "filter".to_string(),
                json!("startswith(orderNo,'amazon:P')"),
            ),
        ]
        .into_iter()
        .collect();
        let pager = connectors::pager(&ctx, "odata", "entities", &settings, &options).unwrap();
        let (mut rows, mut pages, mut position, mut first) = (Vec::new(), 0, None::<String>, true);
        loop {
            let page = pager.page(position.as_deref(), first).await.unwrap();
            first = false;
            pages += 1;
            rows.extend(
                page.items
                    .into_iter()
                    .map(|(payload, _)| serde_json::from_slice::<Value>(&payload).unwrap()),
            );
            position = page.position;
            if !page.more {
                break;
            }
        }
        assert_eq!(
            pages, 2,
            "CAP serves 20 rows a page: the second came from @odata.nextLink"
        );
        assert_eq!(rows.len(), 25);
        let mut numbers: Vec<&str> = rows
            .iter()
            .map(|r| r["orderNo"].as_str().unwrap())
            .collect();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), 25, "no row twice across pages");
    });
    drop(peer);
}

// ---------------------------------------------------------------- Tryton

#[test]
fn tryton_sales_shipments_and_stock_on_a_real_server() {
    let peer = peers::tryton();
    let url = peers::tryton_url(&peer);
    let erp = connection(
        "tryton",
        json!({"url": url, "database": "omniflow", "username": "admin", "password": "admin"}),
    );
    runtime().block_on(async {
        let rpc = TrytonRpc::login(&url).await;
        let before = rpc.quantity("ITM-110857").await;

        // A sale with its party, address and lines, quoted and confirmed, once.
        let sale = order(
            "amazon:113-0000001-0000001",
            &[("ITM-110857", 3, 2200), ("ITM-102541", 1, 1099)],
            "ada@example.com",
        );
        let sale_document =
            assert_ok(call(&erp, "create_sale", "amazon:113-0000001-0000001", &sale).await);
        assert_eq!(
            assert_ok(call(&erp, "create_sale", "amazon:113-0000001-0000001", &sale).await),
            sale_document,
            "a retry names the same sale"
        );
        let held = rpc.sales("amazon:113-0000001-0000001").await;
        assert_eq!(held.len(), 1, "one sale per channel order: {held:?}");
        assert_eq!(held[0]["state"], "processing", "{held:?}");
        assert_eq!(held[0]["lines"].as_array().unwrap().len(), 2);
        assert_eq!(held[0]["party."]["name"], "Ada Lovelace");

        // The session is renewed when the server forgets it (every session is dropped
        // from the server's database, as an idle timeout would).
        let db = rusqlite::Connection::open(peer.dir.join("omniflow.sqlite")).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        let dropped = db.execute("DELETE FROM ir_session", []).unwrap();
        assert!(dropped >= 1, "the connector held a session");
        drop(db);
        let rpc = TrytonRpc::login(&url).await;
        let second = order(
            "amazon:113-0000001-0000002",
            &[("ITM-104578", 1, 2950)],
            "ada@example.com",
        );
        assert_ok(call(&erp, "create_sale", "amazon:113-0000001-0000002", &second).await);
        assert_eq!(rpc.sales("amazon:113-0000001-0000002").await.len(), 1);

        // Refusals are permanent, with the server's words.
        let unknown = order(
            "amazon:113-0000001-0000003",
            &[("ITM-NOPE", 1, 100)],
            "ada@example.com",
        );
        let reason =
            permanent(call(&erp, "create_sale", "amazon:113-0000001-0000003", &unknown).await);
        assert!(
            reason.contains("product ITM-NOPE is not in Tryton"),
            "{reason}"
        );
        // A business rule of the ERP: a product withdrawn from sale cannot be sold.
        let product = rpc
            .model(
                "product.product",
                "search",
                vec![
                    json!([["code", "=", "ITM-108848"]]),
                    json!(0),
                    json!(1),
                    Value::Null,
                ],
            )
            .await;
        let template = rpc
            .model(
                "product.product",
                "read",
                vec![product, json!(["template"])],
            )
            .await;
        rpc.model(
            "product.template",
            "write",
            vec![json!([template[0]["template"]]), json!({"salable": false})],
        )
        .await;
        let withdrawn = order(
            "amazon:113-0000001-0000004",
            &[("ITM-108848", 1, 3500)],
            "ada@example.com",
        );
        let reason = permanent(
            call(
                &erp,
                "create_sale",
                "amazon:113-0000001-0000004",
                &withdrawn,
            )
            .await,
        );
        assert!(reason.starts_with("UserError:"), "{reason}");
        assert!(
            reason.contains("is not valid according to its domain"),
            "{reason}"
        );
        println!("Tryton's refusal: {reason}");

        // The shipment goes out: the sale is sent and stock drops by the 3 units.
        assert_ok(
            call(
                &erp,
                "record_shipment",
                "s1",
                &shipment("amazon:113-0000001-0000001"),
            )
            .await,
        );
        assert_eq!(
            rpc.sales("amazon:113-0000001-0000001").await[0]["shipment_state"],
            "sent"
        );
        assert_eq!(rpc.quantity("ITM-110857").await, before - 3.0);

        // A store return books the units back into storage.
        assert_ok(
            call(
                &erp,
                "adjust_stock",
                "r1",
                &movement("r1", "return", "ITM-110857", 2),
            )
            .await,
        );
        assert_eq!(rpc.quantity("ITM-110857").await, before - 1.0);
    });
    drop(peer);
}

#[test]
fn inventory_drift_compares_the_ledger_with_tryton_stock() {
    use omniflow_engine::ledger::book::{Book, Kind, Movement};
    use omniflow_engine::ledger::rules::Rules;
    use omniflow_state::{Backend, SqliteBackend};

    let peer = peers::tryton();
    let url = peers::tryton_url(&peer);
    let erp = connection(
        "tryton",
        json!({"url": url, "database": "omniflow", "username": "admin", "password": "admin", "warehouse": "WH"}),
    );
    let stock = runtime()
        .block_on(omniflow_engine::ledger::drift::erp_stock(&erp))
        .unwrap();
    assert!(stock.len() >= 3, "the seeded items: {stock:?}");

    // A ledger that agrees with the ERP except for two skus: one counted 4 too high, one
    // never counted.
    let dir = support::TempDir::new("drift");
    let db = dir.0.join("state.db");
    let declared = omniflow_ir::Ledger {
        name: "stock".into(),
        locations: vec!["WH-MAIN".into()],
        reservation_window_ms: 60_000,
        channels: Vec::new(),
    };
    let (high, missing) = (stock[0].0.clone(), stock[1].0.clone());
    {
        let mut backend = SqliteBackend::open(db.to_str().unwrap()).unwrap();
        backend.begin().unwrap();
        let mut journal = backend.journal("stock").unwrap();
        journal
            .save_rules(&serde_json::to_string(&declared).unwrap())
            .unwrap();
        let mut book = Book::new(Rules::new(&declared).unwrap());
        for (sku, quantity) in stock.iter().filter(|(s, _)| *s != missing) {
            let counted = if *sku == high {
                quantity + 4
            } else {
                *quantity
            };
            book.apply(
                journal.as_mut(),
                &Movement {
                    id: format!("count:{sku}"),
                    kind: Kind::CycleCount,
                    sku: sku.clone(),
                    location: "WH-MAIN".into(),
                    quantity: counted,
                    counterpart: None,
                    reference: None,
                    at: 0,
                },
            )
            .unwrap();
        }
        drop(journal);
        backend.commit().unwrap();
    }
    let flow = dir.0.join("erp.flow");
    std::fs::write(
        &flow,
        r#"use std.connectors.{tryton}
connection erp = tryton {
  url = env("TRYTON_URL")
  database = "omniflow"
  username = "admin"
  password = secret("TRYTON_PASSWORD")
  warehouse = "WH"
}
table locations: string -> string = { "tryton:WH": "WH-MAIN" }
"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_omniflow"))
        .args(["inventory", "drift", "--json", "--state"])
        .arg(format!("sqlite:{}", db.display()))
        .arg(&flow)
        .env("TRYTON_URL", &url)
        .env("TRYTON_PASSWORD", "admin")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "drift exits 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["location"], "WH-MAIN");
    assert_eq!(report["erp_skus"], stock.len());
    let quantity = |sku: &str| stock.iter().find(|(s, _)| s == sku).unwrap().1;
    let mut expect = vec![
        json!({"sku": high, "location": "WH-MAIN", "ledger": quantity(&high) + 4, "erp": quantity(&high)}),
        json!({"sku": missing, "location": "WH-MAIN", "ledger": 0, "erp": quantity(&missing)}),
    ];
    expect.retain(|row| row["ledger"] != row["erp"]);
    expect.sort_by_key(|row| row["sku"].as_str().unwrap().to_string());
    assert_eq!(report["drift"], Value::Array(expect), "{report}");
    drop(peer);
}

fn invoice(id: &str, order_id: &str, state: &str, issued_at: &str) -> Value {
    json!({"id": id, "order_id": order_id, "number": format!("INV-{id}"), "amount": money(5499),
           "tax": money(0), "state": state, "issued_at": issued_at})
}

#[test]
fn tryton_invoices_are_made_from_the_sale_once_per_reference() {
    let peer = peers::tryton();
    let url = peers::tryton_url(&peer);
    let erp = connection(
        "tryton",
        json!({"url": url, "database": "omniflow", "username": "admin", "password": "admin"}),
    );
    runtime().block_on(async {
        let rpc = TrytonRpc::login(&url).await;
        let year = 2026;
        rpc.prepare_invoicing(year).await;
        let issued = format!("{year}-05-12T06:00:00Z");
        let sale = order(
            "shopify:5001",
            &[("ITM-110857", 2, 2200), ("ITM-102541", 1, 1099)],
            "grace@example.com",
        );
        assert_ok(call(&erp, "create_sale", "shopify:5001", &sale).await);

        // Posted once: a retry finds the invoice by its reference.
        let posted = invoice("5001-1", "shopify:5001", "posted", &issued);
        let document = assert_ok(call(&erp, "record_invoice", "i1", &posted).await);
        assert!(document.starts_with("account.invoice "), "{document}");
        assert_eq!(
            assert_ok(call(&erp, "record_invoice", "i1", &posted).await),
            document
        );
        let held = rpc.invoices("5001-1").await;
        assert_eq!(held.len(), 1, "one invoice per reference: {held:?}");
        assert_eq!(held[0]["state"], "posted", "{held:?}");
        assert_eq!(held[0]["description"], "INV-5001-1");
        assert_eq!(held[0]["total_amount"]["decimal"], "54.99", "{held:?}");

        // An attempt whose answer was lost after Tryton made the invoice: the invoice of
        // the sale without a reference is taken over, not made a second time.
        let second = order(
            "shopify:5002",
            &[("ITM-104578", 1, 2950)],
            "grace@example.com",
        );
        assert_ok(call(&erp, "create_sale", "shopify:5002", &second).await);
        let sale_id = rpc
            .model(
                "sale.sale",
                "search",
                vec![
                    json!([["reference", "=", "shopify:5002"]]),
                    json!(0),
                    json!(1),
                    Value::Null,
                ],
            )
            .await;
        rpc.model("sale.sale", "manual_invoice", vec![sale_id.clone()])
            .await;
        assert_ok(
            call(
                &erp,
                "record_invoice",
                "i2",
                &invoice("5002-1", "shopify:5002", "validated", &issued),
            )
            .await,
        );
        let invoices = rpc
            .model("sale.sale", "read", vec![sale_id, json!(["invoices"])])
            .await;
        assert_eq!(
            invoices[0]["invoices"].as_array().unwrap().len(),
            1,
            "{invoices}"
        );
        assert_eq!(rpc.invoices("5002-1").await[0]["state"], "validated");

        // A sale Tryton does not hold yet is waited for; Tryton's own refusal (an invoice
        // dated in a year without a fiscal year cannot be posted) is permanent, with its words.
        match call(
            &erp,
            "record_invoice",
            "i3",
            &invoice("9-1", "shopify:9", "posted", &issued),
        )
        .await
        {
            CallOutcome::Transient { class, .. } => assert_eq!(class, "not_found"),
            other => panic!("{other:?}"),
        }
        let third = order(
            "shopify:5003",
            &[("ITM-112467", 1, 1800)],
            "grace@example.com",
        );
        assert_ok(call(&erp, "create_sale", "shopify:5003", &third).await);
        let late = invoice("5003-1", "shopify:5003", "posted", "2031-01-02T00:00:00Z");
        let reason = permanent(call(&erp, "record_invoice", "i4", &late).await);
        assert!(reason.starts_with("UserError:"), "{reason}");
        println!("Tryton's refusal: {reason}");
        let reason = permanent(
            call(
                &erp,
                "record_invoice",
                "i5",
                &invoice("5003-2", "shopify:5003", "refunded", &issued),
            )
            .await,
        );
        assert!(reason.contains("`refunded`"), "{reason}");
    });
    drop(peer);
}

/// Every InventoryPosition (with its dedupe key) an `odata.stock` pager reads from
/// `position` on.
async fn stock_positions(
    erp: &Connection,
    mut position: Option<String>,
) -> (Vec<(Value, String)>, Option<String>) {
    let ctx = connectors::Context::default();
    let settings = connectors::settings(&ctx, erp).unwrap();
    let pager = connectors::pager(&ctx, "odata", "stock", &settings, &BTreeMap::new()).unwrap();
    let (mut rows, mut first) = (Vec::new(), true);
    loop {
        let page = pager.page(position.as_deref(), first).await.unwrap();
        first = false;
        rows.extend(page.items.into_iter().map(|(payload, key)| {
            (
                serde_json::from_slice::<Value>(&payload).unwrap(),
                key.unwrap(),
            )
        }));
        position = page.position;
        if !page.more {
            return (rows, position);
        }
    }
}

#[test]
fn odata_stock_reads_positions_from_a_real_cap_server() {
    let peer = peers::cap();
    let service = peers::cap_service(&peer);
    let erp = connection(
        "odata",
        json!({"service_url": service, "username": "connector", "password": "secret", "warehouse": "WH-MAIN"}),
    );
    runtime().block_on(async {
        let products = odata_get(&service, "Products/$count").await;
        let (positions, watermark) = stock_positions(&erp, None).await;
        assert_eq!(
            json!(positions.len()),
            products,
            "every product, across CAP's pages"
        );
        let tee = &positions
            .iter()
            .find(|p| p.0["sku"] == "ITM-110857")
            .unwrap()
            .0;
        assert_eq!(tee["on_hand"], 100);
        assert_eq!(tee["location"], "WH-MAIN");
        assert!(watermark.is_some());

        // A count changes in the ERP: the next read from the watermark brings that product.
        let client = reqwest::Client::new();
        let current = client
            .get(format!("{service}/Products('ITM-110857')"))
            .basic_auth("connector", Some("secret"))
            .send()
            .await
            .unwrap();
        let etag = current.headers()["etag"].to_str().unwrap().to_string();
        let patched = client
            .patch(format!("{service}/Products('ITM-110857')"))
            .basic_auth("connector", Some("secret"))
            .header("if-match", etag)
            .header("content-type", "application/json")
            .body(r#"{"stock": 42}"#)
            .send()
            .await
            .unwrap();
        assert!(patched.status().is_success(), "{}", patched.status());
        // Rows stamped with the watermark itself are read again and skipped by their
        // dedupe key: only the changed product is new.
        let (again, _) = stock_positions(&erp, watermark).await;
        let new: Vec<&Value> = again
            .iter()
            .filter(|(_, key)| !positions.iter().any(|(_, seen)| seen == key))
            .map(|(p, _)| p)
            .collect();
        assert_eq!(new.len(), 1, "{new:?}");
        assert_eq!(new[0]["sku"], "ITM-110857");
        assert_eq!(new[0]["on_hand"], 42);
    });
    drop(peer);
}
