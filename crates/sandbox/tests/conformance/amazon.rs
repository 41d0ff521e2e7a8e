//! Amazon SP-API: LWA grants, the Orders API v0, Listings Items 2021-08-01 and Reports
//! 2021-06-30 against Amazon's models.

use super::harness::{send, sweep, with_sandbox, Answer, Checker};
use super::schema::Doc;
use omniflow_sandbox::amazon::{
    CLIENT_ID, CLIENT_SECRET, MARKETPLACE_ID, REFRESH_TOKEN, SELLER_ID,
};
use omniflow_sandbox::routes;
use serde_json::{json, Value};

const ORDERS: &str = "/orders/v0/orders";
const ORDER: &str = "/orders/v0/orders/{orderId}";
const ITEMS: &str = "/orders/v0/orders/{orderId}/orderItems";
const CONFIRM: &str = "/orders/v0/orders/{orderId}/shipmentConfirmation";
const LISTING: &str = "/listings/2021-08-01/items/{sellerId}/{sku}";
const REPORTS: &str = "/reports/2021-06-30/reports";
const DOCUMENT: &str = "/reports/2021-06-30/documents/{reportDocumentId}";
const TOKEN: &str = "/auth/o2/token";

async fn token(base: &str, secret: &str) -> Answer {
    let form = format!(
        "grant_type=refresh_token&client_id={CLIENT_ID}&client_secret={secret}&refresh_token={}",
        REFRESH_TOKEN.replace('|', "%7C")
    );
    send(
        reqwest::Client::new()
            .post(format!("{base}{TOKEN}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form),
    )
    .await
}

#[test]
fn every_amazon_answer_is_in_amazons_models() {
    with_sandbox(|base| async move {
        let client = reqwest::Client::new();
        let mut lwa = Checker::new(Doc::load("amazon/lwa-token.json", &[]));
        let limit = "x-amzn-ratelimit-limit";
        let mut orders = Checker::new(Doc::load("amazon/ordersV0.json", &[]))
            .on_success(limit)
            .serves(&routes::AMAZON[..4]);
        let mut listings = Checker::new(Doc::load("amazon/listingsItems_2021-08-01.json", &[]))
            .on_success(limit)
            .serves(&routes::AMAZON[4..5]);
        let mut reports = Checker::new(Doc::load("amazon/reports_2021-06-30.json", &[]))
            .on_success(limit)
            .serves(&routes::AMAZON[5..]);

        lwa.check("POST", TOKEN, &token(&base, "wrong").await);
        // The client is right, the refresh token is not: RFC 6749's invalid_grant.
        let refused = send(
            client
                .post(format!("{base}{TOKEN}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "grant_type=refresh_token&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&refresh_token=Atzr%7Cwrong"
                )),
        )
        .await;
        assert_eq!(
            (refused.status, &refused.body["error"]),
            (400, &json!("invalid_grant"))
        );
        lwa.check("POST", TOKEN, &refused);
        let granted = token(&base, CLIENT_SECRET).await;
        lwa.check("POST", TOKEN, &granted);
        let access = granted.body["access_token"].as_str().unwrap().to_string();
        let get = |path: String| {
            client
                .get(format!("{base}{path}"))
                .header("x-amz-access-token", &access)
        };

        // Seven orders, one Pending (no OrderTotal), read two a page: four pages.
        for i in 0..7 {
            let status = if i == 0 { "Pending" } else { "Unshipped" };
            let body = json!({"status": status, "items": [{"sku": "CBA_OTF_5", "quantity": 2},
                {"sku": "TSHIRT-039-RED-M", "quantity": 1}]});
            let made = send(
                client
                    .post(format!("{base}/_sandbox/amazon/orders"))
                    .body(body.to_string()),
            )
            .await;
            assert!(made.status < 300, "{}", made.text);
        }
        let first = format!(
            "{ORDERS}?MarketplaceIds={MARKETPLACE_ID}&CreatedAfter=2020-01-01T00:00:00Z&MaxResultsPerPage=2"
        );
        let mut url = first.clone();
        let mut ids = Vec::new();
        let mut pages = 0;
        loop {
            let page = send(get(url.clone())).await;
            orders.check("GET", ORDERS, &page);
            pages += 1;
            let payload = &page.body["payload"];
            for o in payload["Orders"].as_array().into_iter().flatten() {
                ids.push(o["AmazonOrderId"].as_str().unwrap().to_string());
            }
            match payload["NextToken"].as_str() {
                Some(t) => url = format!("{first}&NextToken={}", omniflow_sandbox::pct_encode(t)),
                None => break,
            }
        }
        assert!(pages >= 3 && ids.len() == 7, "{pages} pages, {ids:?}");
        let both = format!(
            "{ORDERS}?MarketplaceIds={MARKETPLACE_ID}&CreatedAfter=2020-01-01T00:00:00Z&LastUpdatedAfter=2020-01-01T00:00:00Z"
        );
        orders.check("GET", ORDERS, &send(get(both)).await);

        let mut items = Value::Null;
        for id in &ids {
            orders.check("GET", ORDER, &send(get(format!("{ORDERS}/{id}"))).await);
            let answer = send(get(format!("{ORDERS}/{id}/orderItems"))).await;
            orders.check("GET", ITEMS, &answer);
            items = answer.body["payload"]["OrderItems"].clone();
        }
        orders.check(
            "GET",
            ORDER,
            &send(get(format!("{ORDERS}/111-0000000-0000000"))).await,
        );
        orders.check(
            "GET",
            ITEMS,
            &send(get(format!("{ORDERS}/111-0000000-0000000/orderItems"))).await,
        );

        let last = ids.last().unwrap();
        let confirm = |body: Value| {
            client
                .post(format!("{base}{ORDERS}/{last}/shipmentConfirmation"))
                .header("x-amz-access-token", &access)
                .header("content-type", "application/json")
                .body(body.to_string())
        };
        let package = json!({"marketplaceId": MARKETPLACE_ID, "packageDetail": {
            "packageReferenceId": "1", "carrierCode": "UPS", "trackingNumber": "1Z999",
            "shipDate": "2026-05-01T10:00:00Z",
            "orderItems": [{"orderItemId": items[0]["OrderItemId"], "quantity": 1}]}});
        let done = send(confirm(package.clone())).await;
        assert_eq!(done.status, 204, "{}", done.text);
        orders.check("POST", CONFIRM, &done);
        orders.check(
            "POST",
            CONFIRM,
            &send(confirm(json!({"packageDetail": {}}))).await,
        );
        // Read back: shipped counts are integers, the order partly shipped.
        let shipped = send(get(format!("{ORDERS}/{last}"))).await;
        orders.check("GET", ORDER, &shipped);
        assert_eq!(shipped.body["payload"]["NumberOfItemsShipped"], 1);

        let patch = |sku: &str, body: Value| {
            client
                .patch(format!(
                    "{base}/listings/2021-08-01/items/{SELLER_ID}/{sku}?marketplaceIds={MARKETPLACE_ID}"
                ))
                .header("x-amz-access-token", &access)
                .header("content-type", "application/json")
                .body(body.to_string())
        };
        let price = json!({"productType": "PRODUCT", "patches": [{"op": "replace",
            "path": "/attributes/purchasable_offer", "value": [{"marketplace_id": MARKETPLACE_ID,
            "currency": "USD", "our_price": [{"schedule": [{"value_with_tax": 9.5}]}]}]}]});
        listings.check("PATCH", LISTING, &send(patch("CBA_OTF_5", price)).await);
        listings.check(
            "PATCH",
            LISTING,
            &send(patch("CBA_OTF_5", json!({"patches": 1}))).await,
        );

        // Three settlements, one report a page.
        for n in 1..=3 {
            let body = json!({"settlement-id": format!("2200000000{n}"), "total-amount": "5.00",
                "currency": "USD", "rows": [{"transaction-type": "Order", "order-id": "302-1",
                "amount-type": "ItemPrice", "amount-description": "Principal", "amount": "5.00",
                "sku": "CBA_OTF_5"}]});
            let made = send(
                client
                    .post(format!("{base}/_sandbox/amazon/settlements"))
                    .body(body.to_string()),
            )
            .await;
            assert!(made.status < 300, "{}", made.text);
        }
        let mut url =
            format!("{REPORTS}?reportTypes=GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2&pageSize=1");
        let mut pages = 0;
        let mut document = String::new();
        loop {
            let page = send(get(url.clone())).await;
            reports.check("GET", REPORTS, &page);
            pages += 1;
            if let Some(d) = page.body["reports"][0]["reportDocumentId"].as_str() {
                document = d.to_string();
            }
            match page.body["nextToken"].as_str() {
                Some(t) => url = format!("{REPORTS}?nextToken={t}"),
                None => break,
            }
        }
        assert!(pages >= 3, "{pages} report pages");
        reports.check(
            "GET",
            REPORTS,
            &send(get(format!("{REPORTS}?pageSize=1"))).await,
        );
        reports.check(
            "GET",
            DOCUMENT,
            &send(get(format!("/reports/2021-06-30/documents/{document}"))).await,
        );
        reports.check(
            "GET",
            DOCUMENT,
            &send(get(
                "/reports/2021-06-30/documents/amzn1.spdoc.nothing".into()
            ))
            .await,
        );

        // getOrder's bucket (burst 30) runs dry: a documented 429.
        let mut throttled = None;
        for _ in 0..40 {
            let answer = send(get(format!("{ORDERS}/{last}"))).await;
            if answer.status == 429 {
                throttled = Some(answer);
                break;
            }
        }
        let throttled = throttled.expect("getOrder throttles");
        assert!(throttled.headers.contains_key("x-amzn-ratelimit-limit"));
        orders.check("GET", ORDER, &throttled);

        // No token, a wrong one, and one expired on every route: Amazon's 403 with its
        // error list.
        let ttl = json!({"expires_in": 0});
        send(
            client
                .post(format!("{base}/_sandbox/amazon/token_ttl"))
                .body(ttl.to_string()),
        )
        .await;
        sweep(
            &base,
            routes::AMAZON,
            &[
                ("orderId", last.as_str()),
                ("sellerId", SELLER_ID),
                ("sku", "CBA_OTF_5"),
                ("reportDocumentId", &document),
            ],
            &[
                None,
                Some(("x-amz-access-token", "Atza|wrong")),
                Some(("x-amz-access-token", &access)),
            ],
            &[],
            |route: &str| route.to_string(),
            |method, template, answer| {
                assert_eq!(answer.status, 403, "{method} {template}");
                assert!(answer.headers.contains_key("x-amzn-requestid"));
                let checker = if template.starts_with("/orders") {
                    &mut orders
                } else if template.starts_with("/listings") {
                    &mut listings
                } else {
                    &mut reports
                };
                checker.check(method, template, answer);
            },
        )
        .await;

        lwa.finish(3);
        orders.finish(10);
        listings.finish(3);
        reports.finish(6);
    });
}
