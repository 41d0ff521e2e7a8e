//! ShipBob: orders, shipments, inventory levels, webhook subscriptions and tracking uploads
//! against ShipBob's OpenAPI (2026-01).

use super::harness::{send, sweep, with_sandbox, Checker};
use super::schema::Doc;
use omniflow_sandbox::routes;
use omniflow_sandbox::shipbob::{ACCESS_TOKEN, CHANNEL_ID};
use serde_json::{json, Value};

const V: &str = "/2026-01";

#[test]
fn every_shipbob_answer_is_in_shipbobs_openapi() {
    with_sandbox(|base| async move {
        let client = reqwest::Client::new();
        let mut sb = Checker::new(Doc::load("shipbob/shipbob-2026-01.subset.json", &[]))
            .on_success("x-remaining-calls")
            .serves(routes::SHIPBOB);
        let call = |method: reqwest::Method, path: &str, body: Option<Value>, token: &str| {
            let mut r = client
                .request(method, format!("{base}{V}{path}"))
                .header("Authorization", format!("Bearer {token}"))
                .header("shipbob_channel_id", CHANNEL_ID);
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
        let t = |path: &str| format!("{V}{path}");

        let mut ids = Vec::new();
        for n in 0..7 {
            let order = json!({"reference_id": format!("erp-SO-{n}"), "shipping_method": "Standard",
                "type": "DTC", "order_number": format!("{n}"),
                "recipient": {"name": "Ana Lima", "address": {"address1": "55 Water St",
                    "city": "New York", "country": "US"}},
                "products": [{"reference_id": "ITM-110857", "name": "Classic Tee", "quantity": 1,
                    "unit_price": 22.0}]});
            let made = send(post("/order", order)).await;
            assert_eq!(made.status, 201, "{}", made.text);
            sb.check("POST", &t("/order"), &made);
            ids.push(made.body["id"].as_u64().unwrap());
        }
        let duplicate = json!({"reference_id": "erp-SO-0", "shipping_method": "Standard", "type": "DTC",
            "recipient": {"name": "Ana Lima", "address": {"address1": "55 Water St", "city": "New York", "country": "US"}},
            "products": [{"reference_id": "ITM-110857", "name": "Classic Tee", "quantity": 1}]});
        let refused = send(post("/order", duplicate)).await;
        assert_eq!(refused.status, 422);
        sb.check("POST", &t("/order"), &refused);
        sb.check(
            "POST",
            &t("/order"),
            &send(post("/order", json!({"type": "DTC"}))).await,
        );
        let unauthorized = send(call(reqwest::Method::GET, "/order", None, "wrong")).await;
        assert_eq!(unauthorized.status, 401);
        sb.check("GET", &t("/order"), &unauthorized);

        // Shipped, so shipments carry tracking.
        let shipped =
            send(client.post(format!("{base}/_sandbox/shipbob/orders/{}/ship", ids[0]))).await;
        assert_eq!(shipped.status, 200, "{}", shipped.text);
        let mut pages = 0;
        for page in 1.. {
            let answer = send(get(&format!("/order?Limit=2&Page={page}"))).await;
            sb.check("GET", &t("/order"), &answer);
            let n = answer.body.as_array().map_or(0, Vec::len);
            if n == 0 {
                break;
            }
            pages += 1;
        }
        assert!(pages >= 3, "{pages} pages");
        sb.check("GET", &t("/order"), &send(get("/order?Limit=0")).await);
        sb.check(
            "GET",
            &t("/order/{orderId}"),
            &send(get(&format!("/order/{}", ids[0]))).await,
        );
        sb.check(
            "GET",
            &t("/order/{orderId}"),
            &send(get("/order/999999999")).await,
        );
        sb.check(
            "GET",
            &t("/order/{orderId}/shipment"),
            &send(get(&format!("/order/{}/shipment", ids[0]))).await,
        );
        let shipment =
            send(get(&format!("/order/{}", ids[0]))).await.body["shipments"][0]["id"].clone();
        sb.check(
            "POST",
            &t("/shipment:batchUpdateTrackingUpload"),
            &send(post(
                "/shipment:batchUpdateTrackingUpload",
                json!({"shipment_ids": [shipment], "is_tracking_uploaded": true}),
            ))
            .await,
        );

        // Both inventory lists, two a page, by their `next` links.
        for list in ["/inventory-level", "/inventory-level/locations"] {
            let mut cursor = format!("{V}{list}?PageSize=2");
            let mut pages = 0;
            loop {
                let answer = send(
                    client
                        .get(format!("{base}{cursor}"))
                        .header("Authorization", format!("Bearer {ACCESS_TOKEN}")),
                )
                .await;
                sb.check("GET", &t(list), &answer);
                pages += 1;
                match answer.body["next"].as_str() {
                    Some(next) => cursor = next.trim_start_matches(&base).to_string(),
                    None => break,
                }
                assert!(pages < 100);
            }
            assert!(pages >= 3, "{pages} pages of {list}");
        }
        sb.check(
            "GET",
            &t("/inventory-level"),
            &send(get("/inventory-level?PageSize=0")).await,
        );

        let hook = json!({"topics": ["order.shipped"], "url": "http://127.0.0.1:9/hook",
            "description": "omniflow"});
        sb.check("POST", &t("/webhook"), &send(post("/webhook", hook)).await);
        sb.check(
            "POST",
            &t("/webhook"),
            &send(post("/webhook", json!({"topics": ["nope"]}))).await,
        );

        // No or a wrong token on every route: ShipBob's 401.
        let order = ids[0].to_string();
        sweep(
            &base,
            routes::SHIPBOB,
            &[("version", &V[1..]), ("orderId", &order)],
            &[None, Some(("Authorization", "Bearer expired"))],
            &[("shipbob_channel_id", CHANNEL_ID)],
            |route: &str| route.replace("{version}", &V[1..]),
            |method, template, answer| {
                assert_eq!(answer.status, 401, "{method} {template}");
                sb.check(method, template, answer);
            },
        )
        .await;

        // Negative control: an undocumented order field is caught.
        let mut wrong = send(get(&format!("/order/{}", ids[1]))).await.body;
        wrong["last_updated_date"] = json!("2026-05-01T10:00:00Z");
        assert!(sb.breaks("GET", &t("/order/{orderId}"), 200, &wrong));
        // The other versions served answer the 2026-01 shapes (the docs say so): orders,
        // one order, its shipments and the inventory lists, each checked as 2026-01.
        for version in omniflow_sandbox::shipbob::VERSIONS {
            for (path, template) in [
                ("/order?Limit=2".to_string(), "/order"),
                (format!("/order/{}", ids[0]), "/order/{orderId}"),
                (
                    format!("/order/{}/shipment", ids[0]),
                    "/order/{orderId}/shipment",
                ),
                (
                    "/inventory-level?PageSize=2".to_string(),
                    "/inventory-level",
                ),
                (
                    "/inventory-level/locations?PageSize=2".to_string(),
                    "/inventory-level/locations",
                ),
            ] {
                let answer = send(
                    client
                        .get(format!("{base}/{version}{path}"))
                        .header("Authorization", format!("Bearer {ACCESS_TOKEN}"))
                        .header("shipbob_channel_id", CHANNEL_ID),
                )
                .await;
                assert_eq!(answer.status, 200, "{version}{path}: {}", answer.text);
                sb.check("GET", &t(template), &answer);
            }
        }
        sb.finish(20);
    });
}
