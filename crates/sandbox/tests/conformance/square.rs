//! Square: Locations, Orders, Inventory and Catalog answers against Square's OpenAPI
//! (errors come in the operation's own response object, under `errors`).

use super::harness::{send, send_paced, sweep, with_sandbox, Answer, Checker};
use super::schema::Doc;
use omniflow_sandbox::routes;
use omniflow_sandbox::square::ACCESS_TOKEN;
use serde_json::{json, Value};

const LOCATION: &str = "FPYCBCHYMXFK1";
const VARIATION: &str = "W62UWFY35CWMYGVWK6TWJDNI";

#[test]
fn every_square_answer_is_in_squares_openapi() {
    with_sandbox(|base| async move {
        let client = reqwest::Client::new();
        let mut sq = Checker::new(Doc::load("square/square-connect-v2.subset.json", &[]))
            .serves(routes::SQUARE);
        let call = |method: reqwest::Method, path: &str, body: Option<Value>, token: &str| {
            let mut r = client
                .request(method, format!("{base}{path}"))
                .header("Authorization", format!("Bearer {token}"))
                .header("Square-Version", "2025-10-16");
            if let Some(b) = body {
                r = r
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            r
        };
        let get = |path: &str| call(reqwest::Method::GET, path, None, ACCESS_TOKEN);
        let post =
            |path: &str, body: Value| call(reqwest::Method::POST, path, Some(body), ACCESS_TOKEN);
        let check = |sq: &mut Checker, template: &str, method: &str, answer: Answer| {
            sq.check_as(method, template, 200, &answer);
            answer
        };

        check(
            &mut sq,
            "/v2/locations",
            "GET",
            send_paced(get("/v2/locations")).await,
        );
        check(
            &mut sq,
            "/v2/locations/{location_id}",
            "GET",
            send_paced(get(&format!("/v2/locations/{LOCATION}"))).await,
        );
        check(
            &mut sq,
            "/v2/locations/{location_id}",
            "GET",
            send_paced(get("/v2/locations/NOPE")).await,
        );
        let unauthorized = send(call(reqwest::Method::GET, "/v2/locations", None, "wrong")).await;
        assert_eq!(unauthorized.status, 401);
        check(&mut sq, "/v2/locations", "GET", unauthorized);

        // Seven POS sales, searched two a page.
        for _ in 0..7 {
            let sale = json!({"location_id": LOCATION,
                "line_items": [{"catalog_object_id": VARIATION, "quantity": "1"}]});
            let made = send(
                client
                    .post(format!("{base}/_sandbox/square/orders"))
                    .body(sale.to_string()),
            )
            .await;
            assert_eq!(made.status, 200, "{}", made.text);
        }
        let created = check(&mut sq, "/v2/orders", "POST", send_paced(post("/v2/orders", json!({"idempotency_key": "c-1",
            "order": {"location_id": LOCATION, "line_items": [{"catalog_object_id": VARIATION, "quantity": "2"}]}}))).await);
        check(
            &mut sq,
            "/v2/orders",
            "POST",
            send_paced(post("/v2/orders", json!({"idempotency_key": "c-2"}))).await,
        );
        let query = json!({"location_ids": [LOCATION], "limit": 2, "query": {
            "filter": {"date_time_filter": {"updated_at": {"start_at": "2020-01-01T00:00:00Z"}}},
            "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}}});
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut q = query.clone();
            if let Some(c) = &cursor {
                q["cursor"] = json!(c);
            }
            let page = check(
                &mut sq,
                "/v2/orders/search",
                "POST",
                send_paced(post("/v2/orders/search", q)).await,
            );
            pages += 1;
            cursor = page.body["cursor"].as_str().map(String::from);
            if cursor.is_none() {
                break;
            }
        }
        assert!(pages >= 3, "{pages} pages");
        check(
            &mut sq,
            "/v2/orders/search",
            "POST",
            send_paced(post("/v2/orders/search", json!({"limit": 2}))).await,
        );
        let id = created.body["order"]["id"].as_str().unwrap().to_string();
        check(
            &mut sq,
            "/v2/orders/{order_id}",
            "GET",
            send_paced(get(&format!("/v2/orders/{id}"))).await,
        );
        check(
            &mut sq,
            "/v2/orders/{order_id}",
            "GET",
            send_paced(get("/v2/orders/NOPE")).await,
        );

        let change = json!({"idempotency_key": "i-1", "changes": [{"type": "PHYSICAL_COUNT",
            "physical_count": {"catalog_object_id": VARIATION, "location_id": LOCATION,
            "state": "IN_STOCK", "quantity": "40", "occurred_at": "2026-05-01T10:05:00Z"}}]});
        check(
            &mut sq,
            "/v2/inventory/changes/batch-create",
            "POST",
            send_paced(post("/v2/inventory/changes/batch-create", change)).await,
        );
        check(
            &mut sq,
            "/v2/inventory/changes/batch-create",
            "POST",
            send_paced(post(
                "/v2/inventory/changes/batch-create",
                json!({"changes": "x"}),
            ))
            .await,
        );
        check(
            &mut sq,
            "/v2/inventory/counts/batch-retrieve",
            "POST",
            send_paced(post(
                "/v2/inventory/counts/batch-retrieve",
                json!({"catalog_object_ids": [VARIATION]}),
            ))
            .await,
        );
        // Every count, two a page.
        let mut cursor: Option<String> = None;
        let (mut pages, mut counts) = (0, 0);
        loop {
            let mut q = json!({"limit": 2});
            if let Some(c) = &cursor {
                q["cursor"] = json!(c);
            }
            let page = check(
                &mut sq,
                "/v2/inventory/counts/batch-retrieve",
                "POST",
                send_paced(post("/v2/inventory/counts/batch-retrieve", q)).await,
            );
            pages += 1;
            counts += page.body["counts"].as_array().map_or(0, Vec::len);
            cursor = page.body["cursor"].as_str().map(String::from);
            if cursor.is_none() {
                break;
            }
        }
        assert!(pages >= 3 && counts >= 5, "{pages} pages, {counts} counts");
        check(
            &mut sq,
            "/v2/inventory/{catalog_object_id}",
            "GET",
            send_paced(get(&format!("/v2/inventory/{VARIATION}"))).await,
        );

        let read = check(
            &mut sq,
            "/v2/catalog/object/{object_id}",
            "GET",
            send_paced(get(&format!("/v2/catalog/object/{VARIATION}"))).await,
        );
        check(
            &mut sq,
            "/v2/catalog/object/{object_id}",
            "GET",
            send_paced(get("/v2/catalog/object/NOPE")).await,
        );
        let mut object = read.body["object"].clone();
        object["item_variation_data"]["price_money"]["amount"] = json!(2500);
        check(
            &mut sq,
            "/v2/catalog/object",
            "POST",
            send_paced(post(
                "/v2/catalog/object",
                json!({"idempotency_key": "u-1", "object": object}),
            ))
            .await,
        );
        check(
            &mut sq,
            "/v2/catalog/object",
            "POST",
            send_paced(post(
                "/v2/catalog/object",
                json!({"idempotency_key": "u-2"}),
            ))
            .await,
        );

        // Rate limited: Square's 429 `RATE_LIMITED` body.
        let fault = json!({"route": "GET /v2/locations", "step": {"status": 429}});
        send(
            client
                .post(format!("{base}/_sandbox/faults"))
                .body(fault.to_string()),
        )
        .await;
        let limited = send(get("/v2/locations")).await;
        assert_eq!(limited.status, 429);
        assert_eq!(limited.body["errors"][0]["code"], "RATE_LIMITED");
        check(&mut sq, "/v2/locations", "GET", limited);

        // Webhook subscriptions: made, and refused without a URL.
        let hook = json!({"idempotency_key": "w-1", "subscription": {"name": "orders",
            "event_types": ["order.updated"], "notification_url": "https://example.com/h"}});
        check(
            &mut sq,
            "/v2/webhooks/subscriptions",
            "POST",
            send_paced(post("/v2/webhooks/subscriptions", hook)).await,
        );
        check(
            &mut sq,
            "/v2/webhooks/subscriptions",
            "POST",
            send_paced(post(
                "/v2/webhooks/subscriptions",
                json!({"idempotency_key": "w-2", "subscription": {}}),
            ))
            .await,
        );

        // No or a wrong token on every route: Square's 401 `UNAUTHORIZED` in the
        // operation's own answer.
        let values = [
            ("location_id", LOCATION),
            ("order_id", id.as_str()),
            ("catalog_object_id", VARIATION),
            ("object_id", VARIATION),
        ];
        sweep(
            &base,
            routes::SQUARE,
            &values,
            &[None, Some(("Authorization", "Bearer expired"))],
            &[("Square-Version", "2025-10-16")],
            |route: &str| route.to_string(),
            |method, template, answer| {
                assert_eq!(answer.body["errors"][0]["category"], "AUTHENTICATION_ERROR");
                sq.check_as(method, template, 200, answer);
            },
        )
        .await;

        // Negative control: a money amount as a decimal string breaks Money.
        let mut wrong = created.body.clone();
        wrong["order"]["total_money"]["amount"] = json!("12.50");
        assert!(sq.breaks("POST", "/v2/orders", 200, &wrong));
        sq.finish(19);
    });
}
