//! The SaaS connectors against the sandbox's simulators: paging, rate limits, auth,
//! idempotent writes and error mapping. The simulators are written from the vendors'
//! documentation and share no code with the connectors.

mod support;

use omniflow_connectors::{self as connectors, Call, CallOutcome};
use omniflow_ir::Connection;
use omniflow_sandbox::{self as sandbox, SandboxConfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

fn connection(connector: &str, settings: Value) -> Connection {
    support::connection("c", connector, settings)
}

/// Runs `body` with a sandbox on a free port (its base URL as argument).
fn with_sandbox<F: std::future::Future<Output = ()>>(body: impl FnOnce(String) -> F) {
    support::block_on(async {
        let addr = sandbox::serve("127.0.0.1:0", SandboxConfig::default())
            .await
            .unwrap();
        body(format!("http://{addr}")).await;
    });
}

async fn control(base: &str, path: &str, body: Value) -> Value {
    let text = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn stats(base: &str) -> Value {
    let text = reqwest::Client::new()
        .get(format!("{base}/_sandbox/stats"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn call(conn: &Connection, op: &str, key: &str, message: &Value) -> CallOutcome {
    support::call_sink(conn, op, key, message, Duration::from_secs(10)).await
}

/// Reads every page of a poll source from an empty cursor.
async fn read_all(
    conn: &Connection,
    op: &str,
    options: Value,
) -> Result<(Vec<Value>, usize), String> {
    let ctx = connectors::Context::default();
    let settings = connectors::settings(&ctx, conn).unwrap();
    let options: BTreeMap<String, Value> =
        options.as_object().unwrap().clone().into_iter().collect();
    let pager = connectors::pager(&ctx, &conn.connector, op, &settings, &options).unwrap();
    let (mut items, mut pages, mut position, mut first) = (Vec::new(), 0, None::<String>, true);
    loop {
        let page = pager.page(position.as_deref(), first).await?;
        first = false;
        pages += 1;
        items.extend(
            page.items
                .into_iter()
                .map(|(p, _)| serde_json::from_slice::<Value>(&p).unwrap()),
        );
        position = page.position;
        if !page.more {
            return Ok((items, pages));
        }
    }
}

fn shipment(order_id: &str) -> Value {
    json!({"id": "shipbob:1", "order_id": order_id, "channel": "x", "location": "WH", "carrier": "UPS",
           "tracking_number": "1Z1", "tracking_url": null, "shipped_at": "2026-05-05T09:00:00Z", "lines": []})
}

fn money(minor: i64) -> Value {
    json!({"amount": minor, "currency": "USD"})
}

fn order(id: &str, ship_to: bool) -> Value {
    json!({
        "id": id, "channel": "shopify", "external_id": id, "order_ref": "#1", "placed_at": "2026-05-04T10:00:00Z",
        "status": "paid", "currency": "USD",
        "customer": {"id": "c", "email": "a@example.com", "name": "Ada", "phone": null, "default_address": null},
        "ship_to": if ship_to { json!({"name": "Ada", "company": null, "line1": "1 Main St", "line2": null, "city": "Chicago",
                                       "region": "IL", "postal_code": "60607", "country": "US", "phone": null}) } else { Value::Null },
        "bill_to": null,
        "lines": [{"line_id": "1", "sku": "ITM-110857", "channel_sku": null, "title": "Tee", "quantity": 1,
                   "unit_price": money(2200), "discount": null, "tax": null, "total": money(2200), "fulfilment": "ship", "location": null}],
        "subtotal": money(2200), "shipping": money(0), "tax": money(0), "discount": money(0), "total": money(2200)
    })
}

fn amazon(base: &str) -> Connection {
    connection(
        "amazon_sp",
        json!({"region": "na", "marketplace_id": sandbox::amazon::MARKETPLACE_ID, "seller_id": sandbox::amazon::SELLER_ID,
               "client_id": sandbox::amazon::CLIENT_ID, "client_secret": sandbox::amazon::CLIENT_SECRET,
               "refresh_token": sandbox::amazon::REFRESH_TOKEN, "endpoint": base, "token_endpoint": format!("{base}/auth/o2/token"),
               "sku_map": "ITM-110857=TSHIRT-039-RED-M"}),
    )
}

#[test]
fn amazon_orders_page_with_next_token_and_items_and_tokens_refresh_before_expiry() {
    with_sandbox(|base| async move {
        for n in 0..5 {
            control(
                &base,
                "/_sandbox/amazon/orders",
                json!({"items": [{"sku": "TSHIRT-039-RED-M", "quantity": n + 1}]}),
            )
            .await;
        }
        // Tokens live 62 s here: the connector refreshes a minute early, so each read
        // after a second asks for a new one instead of being refused.
        control(
            &base,
            "/_sandbox/amazon/token_ttl",
            json!({"expires_in": 62}),
        )
        .await;
        let conn = amazon(&base);
        // With a lookback: the NextToken pages must repeat the very LastUpdatedAfter.
        let (orders, pages) = read_all(
            &conn,
            "orders",
            json!({"page_size": 2, "lookback": 600_000}),
        )
        .await
        .unwrap();
        assert_eq!(orders.len(), 5);
        assert_eq!(pages, 3, "two orders a page, NextToken to the next");
        assert!(
            orders
                .iter()
                .all(|o| o["OrderItems"].as_array().is_some_and(|i| i.len() == 1)),
            "{orders:?}"
        );
        let grants = stats(&base).await["amazon_sp"]["token_grants"]
            .as_u64()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        read_all(&conn, "orders", json!({"page_size": 100}))
            .await
            .unwrap();
        let s = stats(&base).await;
        assert!(
            s["amazon_sp"]["token_grants"].as_u64().unwrap() > grants,
            "{s}"
        );
        assert_eq!(s["amazon_sp"]["auth_failures"], 0, "{s}");
    });
}

#[test]
fn amazon_writes_map_errors_and_throttling() {
    with_sandbox(|base| async move {
        let created = control(
            &base,
            "/_sandbox/amazon/orders",
            json!({"items": [{"sku": "TSHIRT-039-RED-M", "quantity": 2}]}),
        )
        .await;
        let id = created["AmazonOrderId"].as_str().unwrap().to_string();
        let conn = amazon(&base);
        assert_eq!(
            call(
                &conn,
                "confirm_shipment",
                "s1",
                &shipment(&format!("amazon:{id}"))
            )
            .await,
            CallOutcome::Ok
        );
        assert_eq!(stats(&base).await["amazon_sp"]["shipment_confirmations"], 1);
        // An order Amazon does not know: a permanent failure with its error list.
        match call(
            &conn,
            "confirm_shipment",
            "s2",
            &shipment("amazon:999-0000000-0000000"),
        )
        .await
        {
            CallOutcome::Permanent { reason } => assert!(reason.contains(':'), "{reason}"),
            other => panic!("{other:?}"),
        }
        // A listing Amazon refuses (HTTP 200 with status INVALID).
        let level =
            json!({"sku": "NO-SUCH-SKU", "location": "WH", "available": 3, "channel": "amazon"});
        match call(&conn, "update_listing_quantity", "l1", &level).await {
            CallOutcome::Permanent { reason } => assert!(reason.contains("refused"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let level =
            json!({"sku": "ITM-110857", "location": "WH", "available": 3, "channel": "amazon"});
        assert_eq!(
            call(&conn, "update_listing_quantity", "l2", &level).await,
            CallOutcome::Ok
        );
        // patchListingsItem allows a burst of 5: a rush is throttled with a wait derived
        // from the published rate (Amazon sends no Retry-After).
        let mut throttled = None;
        for n in 0..12 {
            if let CallOutcome::Transient {
                class, retry_after, ..
            } = call(&conn, "update_listing_quantity", &format!("r{n}"), &level).await
            {
                throttled = Some((class, retry_after));
                break;
            }
        }
        let (class, retry_after) = throttled.expect("a burst beyond the quota is throttled");
        assert_eq!(class, "rate_limited");
        assert_eq!(retry_after, Some(Duration::from_millis(200)));
    });
}

fn shopify(base: &str, token: &str) -> Connection {
    connection(
        "shopify",
        json!({"shop": base, "access_token": token, "api_version": "2026-04"}),
    )
}

#[test]
fn shopify_orders_follow_link_headers_and_fulfilments_happen_once() {
    with_sandbox(|base| async move {
        let mut ids = Vec::new();
        for _ in 0..5 {
            let order = control(
                &base,
                "/_sandbox/shopify/orders",
                json!({"line_items": [{"sku": "TSHIRT-039-RED-M", "quantity": 1}]}),
            )
            .await;
            ids.push(if order["order"].is_object() {
                order["order"]["id"].clone()
            } else {
                order["id"].clone()
            });
        }
        let conn = shopify(&base, sandbox::shopify::ACCESS_TOKEN);
        let (orders, pages) = read_all(&conn, "orders", json!({"page_size": 2}))
            .await
            .unwrap();
        assert_eq!(orders.len(), 5, "{orders:?}");
        assert_eq!(pages, 3, "rel=\"next\" links followed");
        let id = ids[0].to_string();
        let first = call(
            &conn,
            "create_fulfillment",
            "f1",
            &shipment(&format!("shopify:{id}")),
        )
        .await;
        assert!(
            matches!(&first, CallOutcome::Recorded { document } if document.starts_with("fulfillment ")),
            "the fulfilment's id is the document: {first:?}"
        );
        // A retry after a lost answer finds nothing left open: done, not fulfilled twice.
        assert_eq!(
            call(
                &conn,
                "create_fulfillment",
                "f1",
                &shipment(&format!("shopify:{id}"))
            )
            .await,
            CallOutcome::Ok
        );
        let s = stats(&base).await;
        assert_eq!(s["shopify"]["fulfillments"], 1, "{s}");
        assert_eq!(s["shopify"]["fulfillment_rejections"], 0, "{s}");
        // A wrong token is refused for good.
        let wrong = shopify(&base, "shpat_wrong");
        match call(
            &wrong,
            "create_fulfillment",
            "f2",
            &shipment(&format!("shopify:{}", ids[1])),
        )
        .await
        {
            CallOutcome::Permanent { reason } => {
                assert!(reason.starts_with("HTTP 401"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // The leaky bucket (40, leaking 2/s): a rush ends in 429 with Retry-After.
        let mut limited = None;
        for n in 0..60 {
            if let CallOutcome::Transient {
                class,
                retry_after,
                reason,
            } = call(
                &conn,
                "create_fulfillment",
                &format!("b{n}"),
                &shipment(&format!("shopify:{}", ids[1])),
            )
            .await
            {
                limited = Some((class, retry_after, reason));
                break;
            }
        }
        let (class, retry_after, reason) = limited.expect("the bucket overflows");
        assert_eq!(class, "rate_limited", "{reason}");
        assert!(
            retry_after.is_some_and(|d| d >= Duration::from_millis(500)),
            "{retry_after:?}"
        );
        assert!(reason.contains("Exceeded"), "{reason}");
    });
}

fn square(base: &str, token: &str) -> Connection {
    connection(
        "square",
        json!({"access_token": token, "base_url": base, "location_ids": "FPYCBCHYMXFK1",
               "item_map": "ITM-110857=W62UWFY35CWMYGVWK6TWJDNI", "location_map": "STORE-NYC-SOHO=FPYCBCHYMXFK1"}),
    )
}

#[test]
fn square_searches_with_cursors_and_replays_idempotent_writes() {
    with_sandbox(|base| async move {
        for _ in 0..5 {
            control(
                &base,
                "/_sandbox/square/orders",
                json!({"location_id": "FPYCBCHYMXFK1", "state": "COMPLETED",
                       "line_items": [{"catalog_object_id": "W62UWFY35CWMYGVWK6TWJDNI", "quantity": "1"}]}),
            )
            .await;
        }
        let conn = square(&base, sandbox::square::ACCESS_TOKEN);
        let (orders, pages) = read_all(&conn, "orders", json!({"page_size": 2}))
            .await
            .unwrap();
        assert_eq!(orders.len(), 5);
        assert_eq!(pages, 3, "the body cursor is sent back with the same query");
        let reservation = json!({"id": "m1", "kind": "reservation", "sku": "ITM-110857", "location": "STORE-NYC-SOHO",
                                 "quantity": 2, "counterpart_location": null, "reference": "o1", "occurred_at": "2026-05-04T10:00:00Z"});
        assert_eq!(
            call(&conn, "adjust_inventory", "m1", &reservation).await,
            CallOutcome::Ok
        );
        assert_eq!(
            call(&conn, "adjust_inventory", "m1", &reservation).await,
            CallOutcome::Ok
        );
        let s = stats(&base).await;
        assert_eq!(
            s["square"]["inventory_changes"], 1,
            "the same idempotency key is applied once: {s}"
        );
        assert_eq!(s["square"]["idempotent_replays"], 1, "{s}");
        let unknown = json!({"id": "m2", "kind": "sale", "sku": "ITM-NOPE", "location": "STORE-NYC-SOHO", "quantity": 1,
                             "counterpart_location": null, "reference": null, "occurred_at": "2026-05-04T10:00:00Z"});
        match call(&conn, "adjust_inventory", "m2", &unknown).await {
            CallOutcome::Permanent { reason } => assert!(reason.contains("ITM-NOPE"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // Counts since a watermark, newest calculation first, paged by the body cursor.
        let (counts, _) = read_all(&conn, "inventory_counts", json!({"page_size": 1}))
            .await
            .unwrap();
        assert!(
            counts
                .iter()
                .any(|c| c["catalog_object_id"] == "W62UWFY35CWMYGVWK6TWJDNI"),
            "{counts:?}"
        );
        assert!(
            counts.iter().all(|c| c["state"] == "IN_STOCK"),
            "{counts:?}"
        );
        match call(
            &square(&base, "wrong"),
            "adjust_inventory",
            "m3",
            &reservation,
        )
        .await
        {
            CallOutcome::Permanent { reason } => assert!(
                reason.contains("UNAUTHORIZED") || reason.contains("AUTHENTICATION"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn shipbob_orders_are_created_once_per_reference() {
    with_sandbox(|base| async move {
        let conn = connection(
            "shipbob",
            json!({"token": sandbox::shipbob::ACCESS_TOKEN, "channel_id": sandbox::shipbob::CHANNEL_ID, "base_url": base}),
        );
        let created = call(&conn, "create_order", "o1", &order("shopify:1", true)).await;
        assert!(
            matches!(&created, CallOutcome::Recorded { document } if document.starts_with("ShipBob order ")),
            "{created:?}"
        );
        // A retry gets 422 (the reference exists); the lookup confirms it: done, and
        // names the same order.
        assert_eq!(
            call(&conn, "create_order", "o1", &order("shopify:1", true)).await,
            created
        );
        let s = stats(&base).await;
        assert_eq!(s["shipbob"]["orders_created"], 1, "{s}");
        assert_eq!(s["shipbob"]["duplicates_received"], 1, "{s}");
        match call(&conn, "create_order", "o2", &order("shopify:2", false)).await {
            CallOutcome::Permanent { reason } => assert!(reason.contains("ship_to"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // Inventory per fulfilment centre, paged by the cursor body's next URL.
        let (items, pages) = read_all(&conn, "inventory", json!({"page_size": 4}))
            .await
            .unwrap();
        assert_eq!(items.len(), 9, "{items:?}");
        assert_eq!(pages, 3);
        assert!(
            items
                .iter()
                .all(|i| i["locations"].as_array().is_some_and(|l| l.len() == 2)),
            "{items:?}"
        );
        // A shipped order with tracking not yet uploaded is read by the shipments poll.
        let found = reqwest::Client::new()
            .get(format!("{base}/2026-07/order?ReferenceIds=shopify:1"))
            .bearer_auth(sandbox::shipbob::ACCESS_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let id = serde_json::from_str::<Value>(&found).unwrap()[0]["id"].clone();
        control(
            &base,
            &format!("/_sandbox/shipbob/orders/{id}/ship"),
            json!({"carrier": "UPS", "tracking_number": "1Z2"}),
        )
        .await;
        let (shipped, _) = read_all(&conn, "shipments", json!({})).await.unwrap();
        assert_eq!(shipped.len(), 1, "{shipped:?}");
        assert_eq!(shipped[0]["reference_id"], "shopify:1");
        // 150 requests a minute: beyond that, 429 with x-retry-after.
        let mut limited = None;
        for n in 0..200 {
            if let CallOutcome::Transient {
                class, retry_after, ..
            } = call(
                &conn,
                "create_order",
                &format!("r{n}"),
                &order(&format!("shopify:r{n}"), true),
            )
            .await
            {
                limited = Some((class, retry_after));
                break;
            }
        }
        let (class, retry_after) = limited.expect("the window fills");
        assert_eq!(class, "rate_limited");
        assert!(
            retry_after.is_some_and(|d| d >= Duration::from_secs(1)),
            "{retry_after:?}"
        );
    });
}

#[test]
fn odata_writes_fetch_a_csrf_token_when_the_service_asks() {
    with_sandbox(|base| async move {
        control(&base, "/_sandbox/odata/csrf", json!({"required": true})).await;
        let conn = connection(
            "odata",
            json!({"service_url": format!("{base}/odata/v4/sales"), "username": "connector", "password": "secret"}),
        );
        let created = call(&conn, "create_sale", "o1", &order("shopify:77", true)).await;
        assert!(
            matches!(&created, CallOutcome::Recorded { document } if document.starts_with("SalesOrders(")),
            "the sales order's key is the document: {created:?}"
        );
        // Found by its number the second time: the same sales order.
        assert_eq!(
            call(&conn, "create_sale", "o1", &order("shopify:77", true)).await,
            created
        );
        let s = stats(&base).await;
        assert_eq!(s["odata"]["sales_orders_created"], 1, "{s}");
        let wrong = connection(
            "odata",
            json!({"service_url": format!("{base}/odata/v4/sales"), "username": "connector", "password": "nope"}),
        );
        match call(&wrong, "create_sale", "o2", &order("shopify:78", true)).await {
            CallOutcome::Permanent { reason } => assert!(reason.contains("401"), "{reason}"),
            other => panic!("{other:?}"),
        }
    });
}

/// A warehouse parcel of `quantity` units of `sku` for the Shopify order `id`.
fn parcel(id: &Value, tracking: &str, sku: &str, quantity: i64) -> Value {
    json!({"id": format!("shipbob:{tracking}"), "order_id": format!("shopify:{id}"), "channel": "shopify",
           "location": "WH", "carrier": "UPS", "tracking_number": tracking, "tracking_url": null,
           "shipped_at": "2026-05-05T09:00:00Z", "lines": [{"line_id": null, "sku": sku, "quantity": quantity}]})
}

/// Ships the tee and the cap of order `id` as two parcels, each fulfilled and named, then
/// sends the first again as after a lost answer: done, not fulfilled twice.
async fn two_parcels_and_a_retry(conn: &Connection, id: &Value) {
    let (tee, cap) = (
        parcel(id, "1ZA", "ITM-110857", 1),
        parcel(id, "1ZB", "ITM-112467", 1),
    );
    let first = call(conn, "create_fulfillment", "p1", &tee).await;
    let second = call(conn, "create_fulfillment", "p2", &cap).await;
    assert!(
        matches!(&first, CallOutcome::Recorded { document } if document.starts_with("fulfillment ")),
        "{first:?}"
    );
    assert!(second.succeeded() && first != second, "{second:?}");
    assert_eq!(
        call(conn, "create_fulfillment", "p1", &tee).await,
        CallOutcome::Ok
    );
}

/// The inventory item id Shopify gives a variant SKU (read from `products.json`).
async fn inventory_item(base: &str, sku: &str) -> String {
    let text = reqwest::Client::new()
        .get(format!("{base}/admin/api/2026-04/products.json"))
        .header("X-Shopify-Access-Token", sandbox::shopify::ACCESS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let products: Value = serde_json::from_str(&text).unwrap();
    products["products"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["variants"].as_array().unwrap().iter())
        .find(|v| v["sku"] == sku)
        .map(|v| v["inventory_item_id"].to_string())
        .unwrap()
}

#[test]
fn shopify_split_parcels_fulfil_their_own_lines() {
    with_sandbox(|base| async move {
        let created = control(
            &base,
            "/_sandbox/shopify/orders",
            json!({"line_items": [{"sku": "TSHIRT-039-RED-M", "quantity": 1}, {"sku": "CAP-009-BLK-XL", "quantity": 1}]}),
        )
        .await;
        let id = created["order"]["id"].clone();
        let map = format!(
            "ITM-110857={},ITM-112467={}",
            inventory_item(&base, "TSHIRT-039-RED-M").await,
            inventory_item(&base, "CAP-009-BLK-XL").await
        );
        let conn = connection(
            "shopify",
            json!({"shop": base, "access_token": sandbox::shopify::ACCESS_TOKEN, "item_map": map}),
        );
        two_parcels_and_a_retry(&conn, &id).await;
        let s = stats(&base).await;
        assert_eq!(
            s["shopify"]["fulfillments"], 2,
            "one fulfilment per parcel, each with its tracking: {s}"
        );
        assert_eq!(s["shopify"]["fulfillment_rejections"], 0, "{s}");
    });
}

#[test]
fn square_counts_are_physical_counts_and_a_replayed_key_is_done() {
    with_sandbox(|base| async move {
        let conn = square(&base, sandbox::square::ACCESS_TOKEN);
        let level = |n: i64| json!({"sku": "ITM-110857", "location": "STORE-NYC-SOHO", "available": n, "channel": null});
        assert_eq!(
            call(&conn, "set_inventory_count", "c1", &level(7)).await,
            CallOutcome::Ok
        );
        // The same key with another body (a retry stamped later): Square refuses the
        // reuse, which means the first attempt was applied.
        assert_eq!(
            call(&conn, "set_inventory_count", "c1", &level(7)).await,
            CallOutcome::Ok
        );
        let s = stats(&base).await;
        assert_eq!(s["square"]["inventory_changes"], 1, "{s}");
        let missing = json!({"sku": "ITM-110857", "location": "STORE-NYC-SOHO", "channel": null});
        match call(&conn, "set_inventory_count", "c2", &missing).await {
            CallOutcome::Permanent { reason } => assert!(reason.contains("available"), "{reason}"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn shopify_call_limit_header_asks_callers_to_hold_back() {
    with_sandbox(|base| async move {
        let created = control(
            &base,
            "/_sandbox/shopify/orders",
            json!({"line_items": [{"sku": "TSHIRT-039-RED-M", "quantity": 1}]}),
        )
        .await;
        let id = created["order"]["id"].clone();
        let conn = shopify(&base, sandbox::shopify::ACCESS_TOKEN);
        let sink = connectors::sink(
            &connectors::Context::default(),
            &conn,
            "create_fulfillment",
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(sink.backoff(), None);
        let body = shipment(&format!("shopify:{id}")).to_string();
        let requests = || async { stats(&base).await["shopify"]["requests"].as_u64().unwrap() };
        let before = requests().await;
        let mut calls = 0;
        while sink.backoff().is_none() {
            let outcome = sink
                .call(Call {
                    key: "k",
                    correlation_id: "k",
                    body: body.as_bytes(),
                    timeout: Duration::from_secs(10),
                })
                .await;
            assert!(outcome.succeeded(), "held back before any 429: {outcome:?}");
            calls += 1;
            assert!(
                calls < 40,
                "the bucket's fill is reported before it overflows"
            );
        }
        // 80% of Shopify's 40-call bucket (a fulfilment reads the order before it
        // writes): the connector asks the runtime to slow down.
        let used = requests().await - before;
        assert!((30..40).contains(&used), "{used} requests in {calls} calls");
        assert_eq!(stats(&base).await["shopify"]["throttled"], 0);
    });
}

fn price(sku: &str, minor: i64, compare_at: Option<i64>) -> Value {
    json!({"sku": sku, "channel": null, "amount": money(minor),
           "compare_at": compare_at.map(money), "valid_from": "2026-05-12T06:00:00Z"})
}

async fn prices(base: &str, sku: &str) -> Value {
    let text = reqwest::Client::new()
        .get(format!("{base}/_sandbox/prices"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["sku"] == sku || i["item_code"] == sku)
        .cloned()
        .unwrap()
}

/// Makes the sandbox answer `status` for `system` for a while (or stop, with 0 ms).
async fn outage(base: &str, system: &str, status: u16, for_ms: u64) {
    control(
        base,
        "/_sandbox/faults",
        json!({"system": system, "status": status, "for_ms": for_ms}),
    )
    .await;
}

fn permanent(outcome: CallOutcome) -> String {
    match outcome {
        CallOutcome::Permanent { reason } => reason,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

fn transient(outcome: CallOutcome) -> String {
    match outcome {
        CallOutcome::Transient { class, .. } => class,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

/// Refusals of either Shopify API: a SKU no variant carries, a price in another currency.
async fn prices_shopify_cannot_take(conn: &Connection, tee: &str) {
    let unknown = price("NO-SUCH-SKU", 100, None);
    let reason = permanent(call(conn, "update_price", "unknown", &unknown).await);
    assert!(
        reason.contains("no Shopify variant has the SKU NO-SUCH-SKU"),
        "{reason}"
    );
    let mut euros = price(tee, 2450, None);
    euros["amount"]["currency"] = json!("EUR");
    let reason = permanent(call(conn, "update_price", "euros", &euros).await);
    assert!(
        reason.contains("the shop sells in USD; the price is in EUR"),
        "{reason}"
    );
}

/// The canonical product of the tee `tee`, with a barcode and a weight.
fn tee_product(tee: &str, status: &str) -> Value {
    json!({"id": "ITM-110857", "title": "Classic Tee #039", "brand": "Omniflow",
        "description": "<p>Heavy cotton</p>", "status": status, "updated_at": "2026-05-12T06:00:00Z",
        "skus": [{"code": tee, "product_id": "ITM-110857", "title": "Red / M", "barcode": "0123456789012",
                  "option_values": null, "weight_grams": 180}]})
}

#[test]
fn shopify_prices_and_products_reach_the_variant_with_the_sku() {
    with_sandbox(|base| async move {
        let conn = shopify(&base, sandbox::shopify::ACCESS_TOKEN);
        let tee = "TSHIRT-039-RED-M";
        let p = price(tee, 2450, Some(2900));
        assert_eq!(call(&conn, "update_price", "p1", &p).await, CallOutcome::Ok);
        // A retry after a lost answer writes the same price again.
        assert_eq!(call(&conn, "update_price", "p1", &p).await, CallOutcome::Ok);
        assert_eq!(prices(&base, tee).await["shopify"], 2450);
        let text = reqwest::Client::new()
            .get(format!(
                "{base}/admin/api/2026-04/variants/39072856001.json"
            ))
            .header("X-Shopify-Access-Token", sandbox::shopify::ACCESS_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let variant: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(variant["variant"]["price"], "24.50");
        assert_eq!(variant["variant"]["compare_at_price"], "29.00");
        // Shopify's own refusal (422 with field errors) is permanent, with its message.
        let reason = permanent(call(&conn, "update_price", "p2", &price(tee, -100, None)).await);
        assert!(
            reason.contains("HTTP 422")
                && reason.contains("price must be greater than or equal to 0"),
            "{reason}"
        );
        prices_shopify_cannot_take(&conn, tee).await;
        // The product: found through its SKU, then its own fields written.
        let product = tee_product(tee, "active");
        assert_eq!(
            call(&conn, "update_product", "u1", &product).await,
            CallOutcome::Ok
        );
        assert_eq!(
            prices(&base, tee).await["shopify_title"],
            "Classic Tee #039"
        );
        let mut blank = product.clone();
        blank["title"] = json!(" ");
        let reason = permanent(call(&conn, "update_product", "u2", &blank).await);
        assert!(
            reason.contains("HTTP 422") && reason.contains("title can't be blank"),
            "{reason}"
        );
        let mut retired = product.clone();
        retired["status"] = json!("retired");
        let reason = permanent(call(&conn, "update_product", "u3", &retired).await);
        assert!(reason.contains("active, archived and draft"), "{reason}");
        let stats = stats(&base).await;
        assert_eq!(stats["shopify"]["product_updates"], 1);
        assert_eq!(stats["shopify"]["price_updates"], 2);
        // 503 and 429 are worth retrying.
        outage(&base, "shopify", 503, 60_000).await;
        assert_eq!(
            transient(call(&conn, "update_price", "p4", &p).await),
            "server_error"
        );
        assert_eq!(
            transient(call(&conn, "update_product", "u4", &product).await),
            "server_error"
        );
        outage(&base, "shopify", 429, 60_000).await;
        assert_eq!(
            transient(call(&conn, "update_price", "p5", &p).await),
            "rate_limited"
        );
    });
}

#[test]
fn square_prices_upsert_the_whole_variation_at_its_version_once() {
    with_sandbox(|base| async move {
        let conn = square(&base, sandbox::square::ACCESS_TOKEN);
        let variation = "W62UWFY35CWMYGVWK6TWJDNI";
        let p = price(variation, 2400, None);
        assert_eq!(call(&conn, "update_price", "q1", &p).await, CallOutcome::Ok);
        // The retry reads the price the first attempt set and writes nothing.
        assert_eq!(call(&conn, "update_price", "q1", &p).await, CallOutcome::Ok);
        assert_eq!(prices(&base, "ITM-110857").await["square"], 2400);
        assert_eq!(stats(&base).await["square"]["catalog_upserts"], 1);
        // A canonical SKU goes through `item_map`; the second write reads the new version.
        assert_eq!(
            call(
                &conn,
                "update_price",
                "q2",
                &price("ITM-110857", 2500, None)
            )
            .await,
            CallOutcome::Ok
        );
        assert_eq!(prices(&base, "ITM-110857").await["square"], 2500);
        assert_eq!(stats(&base).await["square"]["catalog_upserts"], 2);
        let mut euros = price(variation, 2600, None);
        euros["amount"]["currency"] = json!("EUR");
        let reason = permanent(call(&conn, "update_price", "q3", &euros).await);
        assert!(
            reason.contains("HTTP 400") && reason.contains("CURRENCY_MISMATCH"),
            "{reason}"
        );
        let reason = permanent(call(&conn, "update_price", "q4", &price("NOPE", 100, None)).await);
        assert!(
            reason.contains("HTTP 404") && reason.contains("NOT_FOUND"),
            "{reason}"
        );
        outage(&base, "square", 503, 60_000).await;
        assert_eq!(
            transient(call(&conn, "update_price", "q5", &p).await),
            "server_error"
        );
        outage(&base, "square", 429, 60_000).await;
        assert_eq!(
            transient(call(&conn, "update_price", "q6", &p).await),
            "rate_limited"
        );
    });
}

#[test]
fn amazon_listing_prices_merge_the_offer_price() {
    with_sandbox(|base| async move {
        let conn = amazon(&base);
        // `sku_map` turns the canonical code into the seller SKU.
        let p = price("ITM-110857", 2420, None);
        assert_eq!(
            call(&conn, "update_listing_price", "a1", &p).await,
            CallOutcome::Ok
        );
        assert_eq!(prices(&base, "TSHIRT-039-RED-M").await["amazon"], 2420);
        assert_eq!(stats(&base).await["amazon_sp"]["price_updates"], 1);
        // Refusals arrive as INVALID inside a 200, with Amazon's issues.
        let reason = permanent(
            call(
                &conn,
                "update_listing_price",
                "a2",
                &price("NO-SUCH-SKU", 100, None),
            )
            .await,
        );
        assert!(reason.contains("8541"), "{reason}");
        let mut euros = price("ITM-110857", 2420, None);
        euros["amount"]["currency"] = json!("EUR");
        let reason = permanent(call(&conn, "update_listing_price", "a3", &euros).await);
        assert!(
            reason.contains("90220") && reason.contains("marketplace"),
            "{reason}"
        );
        // A 400 is permanent with Amazon's error list; 503 and 429 are transient.
        outage(&base, "amazon_sp", 400, 60_000).await;
        let reason = permanent(call(&conn, "update_listing_price", "a4", &p).await);
        assert!(reason.contains("HTTP 400"), "{reason}");
        outage(&base, "amazon_sp", 503, 60_000).await;
        assert_eq!(
            transient(call(&conn, "update_listing_price", "a5", &p).await),
            "server_error"
        );
        outage(&base, "amazon_sp", 429, 60_000).await;
        assert_eq!(
            transient(call(&conn, "update_listing_price", "a6", &p).await),
            "rate_limited"
        );
    });
}

#[test]
fn odata_stock_reads_inventory_positions_from_products() {
    with_sandbox(|base| async move {
        let conn = connection(
            "odata",
            json!({"service_url": format!("{base}/odata/v4/sales"), "username": "connector",
                   "password": "secret", "warehouse": "WH-MAIN"}),
        );
        let (positions, _) = read_all(&conn, "stock", json!({})).await.unwrap();
        assert_eq!(positions.len(), 9, "{positions:?}");
        let tee = positions.iter().find(|p| p["sku"] == "ITM-110857").unwrap();
        assert_eq!(tee["location"], "WH-MAIN");
        assert_eq!(tee["on_hand"], 100);
        assert_eq!(tee["available"], 100);
        assert!(
            tee["as_of"].as_str().is_some_and(|t| t.starts_with("20")),
            "{tee}"
        );
        // A count changes: the read from the watermark (a DateTimeOffset literal in
        // `$filter`) brings it.
        let ctx = connectors::Context::default();
        let settings = connectors::settings(&ctx, &conn).unwrap();
        let pager = connectors::pager(&ctx, "odata", "stock", &settings, &BTreeMap::new()).unwrap();
        let first = pager.page(None, true).await.unwrap();
        let patched = reqwest::Client::new()
            .patch(format!("{base}/odata/v4/sales/Products('ITM-110857')"))
            .basic_auth("connector", Some("secret"))
            .header("if-match", "*")
            .header("content-type", "application/json")
            .body(r#"{"stock": 37}"#)
            .send()
            .await
            .unwrap();
        assert!(patched.status().is_success());
        let again = pager.page(first.position.as_deref(), true).await.unwrap();
        let changed: Vec<Value> = again
            .items
            .iter()
            .map(|(p, _)| serde_json::from_slice(p).unwrap())
            .collect();
        // Besides the row stamped at the watermark itself (skipped by its dedupe key).
        assert_eq!(changed.len(), 2, "{changed:?}");
        let tee = changed.iter().find(|p| p["sku"] == "ITM-110857").unwrap();
        assert_eq!(tee["on_hand"], 37);
        // An entity set the service does not have: the poll fails with the service's error.
        let err = read_all(&conn, "stock", json!({"entity_set": "Stocks"}))
            .await
            .unwrap_err();
        assert!(err.contains("HTTP 404"), "{err}");
        outage(&base, "odata", 503, 60_000).await;
        let err = read_all(&conn, "stock", json!({})).await.unwrap_err();
        assert!(err.contains("503"), "{err}");
    });
}

/// Scripts `steps` on `route` of the sandbox.
async fn script(base: &str, route: &str, steps: Value) {
    let set = control(
        base,
        "/_sandbox/faults",
        json!({"route": route, "script": steps}),
    )
    .await;
    assert!(set["steps"].as_u64().is_some(), "{set}");
}

#[test]
fn spoiled_answers_fail_the_read_or_write_with_a_reason_and_lose_nothing() {
    with_sandbox(|base| async move {
        for _ in 0..3 {
            control(
                &base,
                "/_sandbox/shopify/orders",
                json!({"line_items": [{"sku": "TSHIRT-039-RED-M", "quantity": 1}]}),
            )
            .await;
            control(
                &base,
                "/_sandbox/square/orders",
                json!({"location_id": "FPYCBCHYMXFK1", "state": "COMPLETED",
                       "line_items": [{"catalog_object_id": "W62UWFY35CWMYGVWK6TWJDNI", "quantity": "1"}]}),
            )
            .await;
            control(
                &base,
                "/_sandbox/amazon/orders",
                json!({"status": "Unshipped", "items": [{"sku": "CBA_OTF_5", "quantity": 1}]}),
            )
            .await;
        }
        // Each a 2xx answer: cut off, with trailing garbage, and a proxy's HTML page.
        let spoiled = json!([{"body": "truncated"}, {"body": "malformed"}, {"body": "html"}]);
        let shipbob = connection(
            "shipbob",
            json!({"token": sandbox::shipbob::ACCESS_TOKEN, "channel_id": sandbox::shipbob::CHANNEL_ID, "base_url": base}),
        );
        let reads = [
            (
                shopify(&base, sandbox::shopify::ACCESS_TOKEN),
                "orders",
                "GET /admin/api/*/orders.json",
                3,
            ),
            (
                square(&base, sandbox::square::ACCESS_TOKEN),
                "orders",
                "POST /v2/orders/search",
                3,
            ),
            (amazon(&base), "orders", "GET /orders/v0/orders", 3),
            (shipbob, "inventory", "GET /*/inventory-level/locations", 9),
        ];
        for (conn, op, route, count) in &reads {
            script(&base, route, spoiled.clone()).await;
            // Each spoiled page fails the poll with its reason; nothing is read from it.
            for _ in 0..3 {
                let failed = read_all(conn, op, json!({"page_size": 2})).await;
                let reason = failed.expect_err("a spoiled page is not a page");
                assert!(reason.contains("not JSON"), "{route}: {reason}");
            }
            // A later page spoiled fails the poll too (its cursor must not move past it).
            script(&base, route, json!([{}, {"body": "truncated"}])).await;
            let reason = read_all(conn, op, json!({"page_size": 2}))
                .await
                .expect_err("a spoiled second page is not a page");
            assert!(reason.contains("not JSON"), "{route}: {reason}");
            // The script spent, the same poll reads everything.
            let (items, _) = read_all(conn, op, json!({"page_size": 2})).await.unwrap();
            assert_eq!(items.len(), *count, "{route}");
        }

        // A create whose success answer arrives cut off is done (its status says so); sent
        // again, ShipBob refuses the reference and the lookup that would confirm it arrives
        // cut off too: not done, not a dead letter, but worth trying again, which confirms it.
        let conn = connection(
            "shipbob",
            json!({"token": sandbox::shipbob::ACCESS_TOKEN, "channel_id": sandbox::shipbob::CHANNEL_ID, "base_url": base}),
        );
        script(&base, "POST /*/order", json!([{"body": "truncated"}])).await;
        let first = call(&conn, "create_order", "o9", &order("shopify:9", true)).await;
        assert!(matches!(first, CallOutcome::Ok), "{first:?}");
        script(&base, "GET /*/order", json!([{"body": "malformed"}])).await;
        let unsure = call(&conn, "create_order", "o9", &order("shopify:9", true)).await;
        assert_eq!(transient(unsure), "unreadable_answer");
        let again = call(&conn, "create_order", "o9", &order("shopify:9", true)).await;
        assert!(matches!(again, CallOutcome::Recorded { .. }), "{again:?}");

        // The ERP's lookup before a create arrives spoiled: no proof of absence, so no
        // second sales order; tried again, the lookup finds the first.
        let erp = connection(
            "odata",
            json!({"service_url": format!("{base}/odata/v4/sales"), "username": "connector", "password": "secret"}),
        );
        let created = call(&erp, "create_sale", "e1", &order("shopify:90", true)).await;
        assert!(
            matches!(created, CallOutcome::Recorded { .. }),
            "{created:?}"
        );
        for spoiled in ["truncated", "malformed", "html"] {
            script(
                &base,
                "GET /odata/v4/sales/SalesOrders",
                json!([{"body": spoiled}]),
            )
            .await;
            let unsure = call(&erp, "create_sale", "e1", &order("shopify:90", true)).await;
            assert_eq!(transient(unsure), "unreadable_answer", "{spoiled}");
        }
        assert_eq!(
            call(&erp, "create_sale", "e1", &order("shopify:90", true)).await,
            created
        );
        let s = stats(&base).await;
        assert_eq!(s["odata"]["sales_orders_created"], 1, "{s}");
        let s = stats(&base).await;
        assert_eq!(s["shipbob"]["orders_created"], 1, "{s}");
    });
}

/// A GET of the sandbox's Shopify REST API, as JSON.
async fn shopify_get(base: &str, path: &str) -> Value {
    let text = reqwest::Client::new()
        .get(format!("{base}/admin/api/2026-04/{path}"))
        .header("X-Shopify-Access-Token", sandbox::shopify::ACCESS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn shopify_sinks_write_through_graphql_with_the_same_outcomes() {
    with_sandbox(|base| async move {
        let (tee, cap) = ("TSHIRT-039-RED-M", "CAP-009-BLK-XL");
        let (tee_item, cap_item) = (
            inventory_item(&base, tee).await,
            inventory_item(&base, cap).await,
        );
        let location = sandbox::catalog::SHOPIFY_LOCATIONS[0].0;
        let conn = connection(
            "shopify",
            json!({"shop": base, "access_token": sandbox::shopify::ACCESS_TOKEN, "api": "graphql",
                   "item_map": format!("ITM-110857={tee_item},ITM-112467={cap_item},ITM-GONE=999"),
                   "location_map": format!("WH-MAIN={location}")}),
        );
        // Fulfilment: each parcel its own lines, found on the order's fulfillment orders.
        let created = control(
            &base,
            "/_sandbox/shopify/orders",
            json!({"line_items": [{"sku": tee, "quantity": 1}, {"sku": cap, "quantity": 1}]}),
        )
        .await;
        let id = created["order"]["id"].clone();
        two_parcels_and_a_retry(&conn, &id).await;
        let order = shopify_get(&base, &format!("orders/{id}.json")).await;
        assert_eq!(order["order"]["fulfillment_status"], "fulfilled", "{order}");
        assert_eq!(order["order"]["fulfillments"][0]["tracking_number"], "1ZA");
        let missing =
            permanent(call(&conn, "create_fulfillment", "p3", &shipment("shopify:42")).await);
        assert!(
            missing.contains("no order gid://shopify/Order/42"),
            "{missing}"
        );
        // Stock: set once per key (`@idempotent`), refusals with Shopify's code.
        let level = |sku: &str, n: i64| json!({"sku": sku, "location": "WH-MAIN", "available": n, "channel": "web"});
        assert_eq!(
            call(&conn, "set_inventory_level", "s1", &level("ITM-110857", 7)).await,
            CallOutcome::Ok
        );
        assert_eq!(
            call(&conn, "set_inventory_level", "s1", &level("ITM-110857", 7)).await,
            CallOutcome::Ok
        );
        let levels = shopify_get(
            &base,
            &format!("inventory_levels.json?inventory_item_ids={tee_item}&location_ids={location}"),
        )
        .await;
        assert_eq!(levels["inventory_levels"][0]["available"], 7, "{levels}");
        let reason =
            permanent(call(&conn, "set_inventory_level", "s2", &level("ITM-GONE", 1)).await);
        assert!(reason.contains("INVALID_INVENTORY_ITEM"), "{reason}");
        let reason = permanent(
            call(
                &conn,
                "set_inventory_level",
                "s3",
                &level("ITM-110857", 1 << 40),
            )
            .await,
        );
        assert!(reason.contains("32-bit"), "{reason}");
        // Prices and products, found by SKU.
        let p = price(tee, 2450, Some(2900));
        assert_eq!(call(&conn, "update_price", "q1", &p).await, CallOutcome::Ok);
        let variant = shopify_get(&base, "variants/39072856001.json").await;
        assert_eq!(variant["variant"]["price"], "24.50");
        assert_eq!(variant["variant"]["compare_at_price"], "29.00");
        let reason = permanent(call(&conn, "update_price", "q2", &price(tee, -100, None)).await);
        assert!(
            reason.contains("INVALID_INPUT") && reason.contains("price"),
            "{reason}"
        );
        prices_shopify_cannot_take(&conn, tee).await;
        let product = tee_product(tee, "draft");
        assert_eq!(
            call(&conn, "update_product", "u1", &product).await,
            CallOutcome::Ok
        );
        let variant = shopify_get(&base, "variants/39072856001.json").await;
        assert_eq!(variant["variant"]["barcode"], "0123456789012");
        assert_eq!(variant["variant"]["grams"], 180);
        let written = shopify_get(
            &base,
            &format!("products/{}.json", variant["variant"]["product_id"]),
        )
        .await;
        assert_eq!(written["product"]["title"], "Classic Tee #039");
        assert_eq!(written["product"]["status"], "draft");
        assert_eq!(written["product"]["vendor"], "Omniflow");
        let mut blank = product.clone();
        blank["title"] = json!(" ");
        let reason = permanent(call(&conn, "update_product", "u2", &blank).await);
        assert!(reason.contains("title can't be blank"), "{reason}");
        let s = stats(&base).await;
        assert_eq!(s["shopify"]["fulfillments"], 2, "{s}");
        assert_eq!(s["shopify"]["inventory_updates"], 1, "{s}");
        assert_eq!(s["shopify"]["idempotent_replays"], 1, "{s}");
        assert_eq!(s["shopify"]["price_updates"], 1, "{s}");
        assert_eq!(s["shopify"]["product_updates"], 1, "{s}");
        assert!(s["shopify"]["graphql_queries"].as_u64() > Some(10), "{s}");
        // An empty cost bucket: THROTTLED, waited out as its cost report says.
        control(
            &base,
            "/_sandbox/shopify/graphql_bucket",
            json!({"available": 0}),
        )
        .await;
        match call(&conn, "set_inventory_level", "s4", &level("ITM-110857", 8)).await {
            CallOutcome::Transient {
                class, retry_after, ..
            } => {
                assert_eq!(class, "rate_limited");
                assert!(
                    retry_after.is_some_and(|d| d > Duration::ZERO && d <= Duration::from_secs(1)),
                    "{retry_after:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn shopify_graphql_fulfilments_read_long_orders_whole_and_know_their_parcels() {
    with_sandbox(|base| async move {
        let tee = "TSHIRT-039-RED-M";
        let tee_item = inventory_item(&base, tee).await;
        // `item_map` may name inventory items by global id.
        let conn = connection(
            "shopify",
            json!({"shop": base, "access_token": sandbox::shopify::ACCESS_TOKEN, "api": "graphql",
                   "item_map": format!("ITM-110857=gid://shopify/InventoryItem/{tee_item},ITM-GONE=999")}),
        );
        // 52 lines of one tee: past the first page of a fulfillment order's lines.
        let lines: Vec<Value> = (0..52)
            .map(|_| json!({"sku": tee, "quantity": 1}))
            .collect();
        let long = control(
            &base,
            "/_sandbox/shopify/orders",
            json!({ "line_items": lines }),
        )
        .await;
        let long_id = long["order"]["id"].clone();
        let whole = call(
            &conn,
            "create_fulfillment",
            "l1",
            &parcel(&long_id, "1ZL", "ITM-110857", 52),
        )
        .await;
        assert!(whole.succeeded(), "{whole:?}");
        let order = shopify_get(&base, &format!("orders/{long_id}.json")).await;
        assert_eq!(
            order["order"]["fulfillment_status"], "fulfilled",
            "all 52 lines"
        );
        // Two of three units shipped; the answer is lost and the parcel sent again: its
        // tracking number is on the order, so nothing more is fulfilled.
        let three = control(
            &base,
            "/_sandbox/shopify/orders",
            json!({"line_items": [{"sku": tee, "quantity": 3}]}),
        )
        .await;
        let three_id = three["order"]["id"].clone();
        let two = parcel(&three_id, "1ZP", "ITM-110857", 2);
        assert!(call(&conn, "create_fulfillment", "t1", &two)
            .await
            .succeeded());
        assert_eq!(
            call(&conn, "create_fulfillment", "t1", &two).await,
            CallOutcome::Ok
        );
        let order = shopify_get(&base, &format!("orders/{three_id}.json")).await;
        assert_eq!(
            order["order"]["line_items"][0]["fulfillable_quantity"], 1,
            "{order}"
        );
        assert_eq!(
            order["order"]["fulfillments"].as_array().map(Vec::len),
            Some(1)
        );
        // An item the order does not have is refused, not taken for done.
        let reason = permanent(
            call(
                &conn,
                "create_fulfillment",
                "t2",
                &parcel(&three_id, "1ZQ", "ITM-GONE", 1),
            )
            .await,
        );
        assert!(
            reason.contains("has no line of inventory item 999"),
            "{reason}"
        );
        let s = stats(&base).await;
        assert_eq!(s["shopify"]["fulfillments"], 2, "{s}");
        assert_eq!(s["shopify"]["fulfillment_rejections"], 0, "{s}");
    });
}

#[test]
fn shopify_graphql_sinks_speak_the_connections_api_version() {
    with_sandbox(|base| async move {
        let tee = "TSHIRT-039-RED-M";
        let tee_item = inventory_item(&base, tee).await;
        let location = sandbox::catalog::SHOPIFY_LOCATIONS[0].0;
        let at = |version: &str| {
            connection(
                "shopify",
                json!({"shop": base, "access_token": sandbox::shopify::ACCESS_TOKEN, "api": "graphql",
                       "api_version": version, "item_map": format!("ITM-110857={tee_item}"),
                       "location_map": format!("WH-MAIN={location}")}),
            )
        };
        let level =
            json!({"sku": "ITM-110857", "location": "WH-MAIN", "available": 9, "channel": "web"});
        // Before 2026-01 there is no `@idempotent`: the absolute quantity is set without it.
        assert_eq!(
            call(&at("2025-10"), "set_inventory_level", "v1", &level).await,
            CallOutcome::Ok
        );
        // Before 2024-10 `productUpdate` takes `input:`.
        assert_eq!(
            call(
                &at("2024-07"),
                "update_product",
                "v2",
                &tee_product(tee, "active")
            )
            .await,
            CallOutcome::Ok
        );
        let s = stats(&base).await;
        assert_eq!(s["shopify"]["inventory_updates"], 1, "{s}");
        assert_eq!(s["shopify"]["product_updates"], 1, "{s}");
    });
}
