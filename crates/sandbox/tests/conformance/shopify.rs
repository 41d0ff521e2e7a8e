//! Shopify: orders (list, read, `orders/create` bodies), fulfillment orders, fulfillments,
//! inventory levels, products, variants, the shop and webhooks, with their errors,
//! against the Admin REST resources as Shopify documents them (every field, closed).

use super::harness::{send, send_paced, sweep, with_sandbox, Checker};
use super::schema::Doc;
use omniflow_sandbox::routes;
use omniflow_sandbox::shopify::ACCESS_TOKEN;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;

const LIST: &str = "/admin/api/{version}/orders.json";
const ONE: &str = "/admin/api/{version}/orders/{order_id}.json";
const FOS: &str = "/admin/api/{version}/orders/{order_id}/fulfillment_orders.json";
const FULFILLMENTS: &str = "/admin/api/{version}/fulfillments.json";
const LEVELS: &str = "/admin/api/{version}/inventory_levels.json";
const SET: &str = "/admin/api/{version}/inventory_levels/set.json";
const ADJUST: &str = "/admin/api/{version}/inventory_levels/adjust.json";
const SHOP: &str = "/admin/api/{version}/shop.json";
const PRODUCTS: &str = "/admin/api/{version}/products.json";
const PRODUCT: &str = "/admin/api/{version}/products/{product_id}.json";
const VARIANT: &str = "/admin/api/{version}/variants/{variant_id}.json";
const WEBHOOKS: &str = "/admin/api/{version}/webhooks.json";

/// Reads a list from `url` by its `Link` headers of relation `rel` (`next` or `previous`),
/// checking each page as `template`: the pages' items under `key`, in the order read, and
/// the last page's link the other way.
async fn read_by(
    shop: &mut Checker,
    (template, key): (&str, &str),
    mut url: String,
    rel: &str,
) -> (Vec<Vec<Value>>, Option<String>) {
    let client = reqwest::Client::new();
    let mut pages = Vec::new();
    loop {
        let page = send_paced(
            client
                .get(&url)
                .header("X-Shopify-Access-Token", ACCESS_TOKEN),
        )
        .await;
        shop.check("GET", template, &page);
        pages.push(page.body[key].as_array().cloned().unwrap_or_default());
        assert!(pages.len() < 100, "{url} pages without end");
        let back = if rel == "next" { "previous" } else { "next" };
        match link(&page, rel) {
            Some(next) => url = next,
            None => return (pages, link(&page, back)),
        }
    }
}

/// Reads a list forwards by `next`, then back from its last page by `previous`, and checks
/// both ways give the same items: `(pages, items)`.
async fn read_all(shop: &mut Checker, list: (&str, &str), url: String) -> (usize, Vec<Value>) {
    let (pages, back) = read_by(shop, list, url, "next").await;
    let items: Vec<Value> = pages.concat();
    if pages.len() > 1 {
        let back = back.expect("a later page links its previous one");
        let (earlier, first) = read_by(shop, list, back, "previous").await;
        assert!(first.is_some(), "the first page links the next");
        let mut again: Vec<Value> = earlier.into_iter().rev().flatten().collect();
        again.extend(pages.last().cloned().unwrap_or_default());
        assert_eq!(
            again, items,
            "previous pages give the items next pages gave"
        );
    }
    (pages.len(), items)
}

/// The URL of an answer's `Link` header with relation `rel`.
fn link(answer: &super::harness::Answer, rel: &str) -> Option<String> {
    let wanted = format!("rel=\"{rel}\"");
    answer.headers.get("link").and_then(|l| {
        l.to_str().ok()?.split(", ").find_map(|part| {
            let (u, r) = part.split_once("; ")?;
            (r == wanted).then(|| u.trim_matches(['<', '>']).to_string())
        })
    })
}

#[test]
fn every_shopify_answer_is_the_documented_resource() {
    with_sandbox(|base| async move {
        let client = reqwest::Client::new();
        let mut shop = Checker::new(Doc::load("shopify/admin-rest-2025-07.json", &[]))
            .on_success("x-shopify-shop-api-call-limit")
            .serves(routes::SHOPIFY);
        let get = |path: &str| {
            client
                .get(format!("{base}/admin/api/2025-07{path}"))
                .header("X-Shopify-Access-Token", ACCESS_TOKEN)
        };

        // A subscriber keeps the orders/create bodies.
        let bodies: Rc<RefCell<Vec<Value>>> = Rc::default();
        let kept = bodies.clone();
        let handler: omniflow_http::server::Handler = Rc::new(move |req| {
            let kept = kept.clone();
            Box::pin(async move {
                kept.borrow_mut()
                    .push(serde_json::from_slice(&req.body).unwrap_or(Value::Null));
                omniflow_http::server::Resp::json(200, json!({}))
            })
        });
        let hook = omniflow_http::server::serve("127.0.0.1:0", handler)
            .await
            .unwrap();
        let sub = json!({"system": "shopify", "topic": "orders/create", "url": format!("http://{hook}/h")});
        send(
            client
                .post(format!("{base}/_sandbox/webhooks"))
                .body(sub.to_string()),
        )
        .await;

        let specs = [
            json!({"line_items": [{"sku": "TSHIRT-039-RED-M", "quantity": 2}]}),
            json!({"line_items": [{"sku": "CAP-009-BLK-XL", "quantity": 1}], "tax_rate": 0.08875,
                "total_discounts": "2.00", "discount_codes": [{"code": "TWO", "amount": "2.00", "type": "fixed_amount"}]}),
            json!({"line_items": [{"sku": "NOT-IN-CATALOGUE", "quantity": 1, "price": "9.99"}],
                "shipping_price": "4.95", "email": "ana@example.com",
                "shipping_address": {"name": "Ana Lima", "address1": "1 Rua A", "city": "Lisboa",
                    "country_code": "PT", "country": "Portugal", "province": null, "province_code": null}}),
            json!({"line_items": [{"sku": "CBA_OTF_5", "quantity": 3, "properties": [{"name": "gift", "value": "yes"}]}],
                "note_attributes": [{"name": "channel", "value": "pos"}], "tags": "vip"}),
        ];
        let mut made = 0;
        for spec in specs.iter().cycle().take(7) {
            let answer = send(
                client
                    .post(format!("{base}/_sandbox/shopify/orders"))
                    .body(spec.to_string()),
            )
            .await;
            assert_eq!(answer.status, 201, "{}", answer.text);
            made += 1;
        }

        let (pages, orders) = read_all(
            &mut shop,
            (LIST, "orders"),
            format!("{base}/admin/api/2025-07/orders.json?status=any&limit=2"),
        )
        .await;
        let ids: Vec<u64> = orders.iter().map(|o| o["id"].as_u64().unwrap()).collect();
        assert!(
            pages >= 3 && ids.len() == made,
            "{pages} pages, {} orders",
            ids.len()
        );
        for id in &ids {
            shop.check(
                "GET",
                ONE,
                &send_paced(get(&format!("/orders/{id}.json"))).await,
            );
        }
        shop.check("GET", ONE, &send_paced(get("/orders/1.json")).await);
        shop.check("GET", LIST, &send_paced(get("/orders.json?limit=0")).await);
        for (path, template) in [
            ("/orders.json".to_string(), LIST),
            (format!("/orders/{}.json", ids[0]), ONE),
        ] {
            let anonymous = send(client.get(format!("{base}/admin/api/2025-07{path}"))).await;
            assert_eq!(anonymous.status, 401);
            shop.check("GET", template, &anonymous);
        }
        let fault = json!({"route": "GET /admin/api/*/orders.json", "step": {"status": 429}});
        send(
            client
                .post(format!("{base}/_sandbox/faults"))
                .body(fault.to_string()),
        )
        .await;
        let limited = send(get("/orders.json")).await;
        assert_eq!(limited.status, 429);
        assert!(limited.headers.contains_key("retry-after"));
        shop.check("GET", LIST, &limited);

        // Fulfilment orders, a fulfilment, and a second one refused.
        let fos = send_paced(get(&format!("/orders/{}/fulfillment_orders.json", ids[0]))).await;
        shop.check("GET", FOS, &fos);
        shop.check(
            "GET",
            FOS,
            &send_paced(get("/orders/1/fulfillment_orders.json")).await,
        );
        let fo = fos.body["fulfillment_orders"][0]["id"].clone();
        let fulfil = json!({"fulfillment": {"line_items_by_fulfillment_order": [{"fulfillment_order_id": fo}],
            "tracking_info": {"company": "UPS", "number": "1Z999", "url": "https://ups.example/1Z999"}}});
        let post = |path: &str, body: &Value| {
            client
                .post(format!("{base}/admin/api/2025-07{path}"))
                .header("X-Shopify-Access-Token", ACCESS_TOKEN)
                .header("content-type", "application/json")
                .body(body.to_string())
        };
        let put = |path: &str, body: &Value| {
            client
                .put(format!("{base}/admin/api/2025-07{path}"))
                .header("X-Shopify-Access-Token", ACCESS_TOKEN)
                .header("content-type", "application/json")
                .body(body.to_string())
        };
        let done = send_paced(post("/fulfillments.json", &fulfil)).await;
        assert_eq!(done.status, 201, "{}", done.text);
        shop.check("POST", FULFILLMENTS, &done);
        shop.check(
            "POST",
            FULFILLMENTS,
            &send_paced(post("/fulfillments.json", &fulfil)).await,
        );
        shop.check(
            "POST",
            FULFILLMENTS,
            &send_paced(post("/fulfillments.json", &json!({}))).await,
        );
        // The order now carries its fulfilment.
        shop.check(
            "GET",
            ONE,
            &send_paced(get(&format!("/orders/{}.json", ids[0]))).await,
        );

        // Products over three pages or more, their variants, and writes.
        let (pages, products) = read_all(
            &mut shop,
            (PRODUCTS, "products"),
            format!("{base}/admin/api/2025-07/products.json?limit=2"),
        )
        .await;
        assert!(pages >= 3, "{pages} product pages");
        let product = &products[0];
        let (pid, vid) = (product["id"].clone(), product["variants"][0]["id"].clone());
        let item = product["variants"][0]["inventory_item_id"].clone();
        shop.check(
            "GET",
            PRODUCT,
            &send_paced(get(&format!("/products/{pid}.json"))).await,
        );
        shop.check("GET", PRODUCT, &send_paced(get("/products/1.json")).await);
        // Writes: accepted, refused field by field, and without their root object.
        let writes = [
            (
                PRODUCT,
                format!("/products/{pid}.json"),
                json!({"product": {"title": "Renamed"}}),
            ),
            (
                PRODUCT,
                format!("/products/{pid}.json"),
                json!({"product": {"title": ""}}),
            ),
            (PRODUCT, format!("/products/{pid}.json"), json!({})),
            (
                VARIANT,
                format!("/variants/{vid}.json"),
                json!({"variant": {"price": "19.99"}}),
            ),
            (
                VARIANT,
                format!("/variants/{vid}.json"),
                json!({"variant": {"price": "x"}}),
            ),
        ];
        for (template, path, body) in &writes {
            shop.check("PUT", template, &send_paced(put(path, body)).await);
        }
        shop.check(
            "GET",
            VARIANT,
            &send_paced(get(&format!("/variants/{vid}.json"))).await,
        );

        // Inventory levels: a location's levels over three pages or more, one item's, set,
        // adjust, refused.
        let location = omniflow_sandbox::catalog::SHOPIFY_LOCATIONS[0].0;
        let (pages, levels) = read_all(
            &mut shop,
            (LEVELS, "inventory_levels"),
            format!(
                "{base}/admin/api/2025-07/inventory_levels.json?location_ids={location}&limit=2"
            ),
        )
        .await;
        assert!(
            pages >= 3 && levels.len() == omniflow_sandbox::catalog::ITEMS.len(),
            "{pages} pages, {} levels",
            levels.len()
        );
        shop.check(
            "GET",
            LEVELS,
            &send_paced(get(&format!(
                "/inventory_levels.json?inventory_item_ids={item}&location_ids={location}"
            )))
            .await,
        );
        shop.check(
            "GET",
            LEVELS,
            &send_paced(get("/inventory_levels.json")).await,
        );
        let set = json!({"inventory_item_id": item, "location_id": location, "available": 12});
        shop.check(
            "POST",
            SET,
            &send_paced(post("/inventory_levels/set.json", &set)).await,
        );
        let adjust =
            json!({"inventory_item_id": item, "location_id": location, "available_adjustment": -2});
        shop.check(
            "POST",
            ADJUST,
            &send_paced(post("/inventory_levels/adjust.json", &adjust)).await,
        );
        shop.check(
            "POST",
            SET,
            &send_paced(post(
                "/inventory_levels/set.json",
                &json!({"inventory_item_id": 1, "location_id": location, "available": 1}),
            ))
            .await,
        );
        shop.check(
            "POST",
            SET,
            &send_paced(post("/inventory_levels/set.json", &json!({}))).await,
        );

        shop.check("GET", SHOP, &send_paced(get("/shop.json")).await);
        let hook = json!({"webhook": {"topic": "orders/updated", "address": "https://example.com/h", "format": "json"}});
        shop.check(
            "POST",
            WEBHOOKS,
            &send_paced(post("/webhooks.json", &hook)).await,
        );
        shop.check(
            "POST",
            WEBHOOKS,
            &send_paced(post("/webhooks.json", &json!({"webhook": {}}))).await,
        );

        // The webhook bodies are the same resource.
        for _ in 0..200 {
            if bodies.borrow().len() == made {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let bodies = bodies.borrow().clone();
        assert_eq!(bodies.len(), made);
        for body in &bodies {
            shop.check_schema("orders/create body", "Order", body);
        }
        // Negative control: a price as a number breaks the resource.
        let mut wrong = json!({"order": bodies[0]});
        wrong["order"]["line_items"][0]["price"] = json!(22.0);
        assert!(shop.breaks("GET", ONE, 200, &wrong));
        assert_eq!(
            bodies[0].as_object().unwrap().len(),
            92,
            "every documented field"
        );
        // No or a wrong token on every route: Shopify's 401.
        let (order, product, variant) = (ids[0].to_string(), pid.to_string(), vid.to_string());
        sweep(
            &base,
            routes::SHOPIFY,
            &[
                ("version", "2025-07"),
                ("order_id", &order),
                ("product_id", &product),
                ("variant_id", &variant),
            ],
            &[None, Some(("X-Shopify-Access-Token", "shpat_wrong"))],
            &[],
            |route: &str| route.to_string(),
            |method, template, answer| {
                assert_eq!(answer.status, 401, "{method} {template}");
                shop.check(method, template, answer);
            },
        )
        .await;
        shop.finish(30);
    });
}

/// The kept description holds every field Shopify's own SDK declares on the resources served
/// (`specs/shopify/sdk-fields-2025-07.json`, from `@shopify/shopify-api`), so the hand-written
/// description cannot drift from the SDK unnoticed. Fields the SDK sends but Shopify does not
/// answer with are named here.
#[test]
fn the_description_holds_every_field_the_sdk_declares() {
    const SENT_ONLY: [(&str, &str); 3] = [
        ("Fulfillment", "notify_customer"),
        ("Fulfillment", "variant_inventory_management"),
        ("Variant", "option"),
    ];
    let path = format!(
        "{}/specs/shopify/sdk-fields-2025-07.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let sdk: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let doc = Doc::load("shopify/admin-rest-2025-07.json", &[]);
    let mut missing = Vec::new();
    for (schema, fields) in sdk["fields"].as_object().unwrap() {
        let properties = &doc.schema(schema)["properties"];
        assert!(properties.is_object(), "no schema {schema}");
        for field in fields.as_array().unwrap() {
            let field = field.as_str().unwrap();
            if properties.get(field).is_none() && !SENT_ONLY.contains(&(schema.as_str(), field)) {
                missing.push(format!("{schema}.{field}"));
            }
        }
    }
    assert!(missing.is_empty(), "the SDK declares {missing:?}");
    assert!(sdk["fields"]["Order"].as_array().unwrap().len() >= 85);
}

#[test]
fn every_graphql_answer_is_in_the_description_and_pages_every_order() {
    with_sandbox(|base| async move {
        let client = reqwest::Client::new();
        let mut gql = Checker::new(Doc::load("shopify/admin-graphql-2025-07.json", &[]))
            .serves(routes::SHOPIFY_GRAPHQL);
        const ROUTE: &str = "/admin/api/{version}/graphql.json";
        for _ in 0..7 {
            send(client.post(format!("{base}/_sandbox/shopify/orders")).body(
                json!({"line_items": [{"sku": "TSHIRT-039-RED-M", "quantity": 2}]}).to_string(),
            ))
            .await;
        }
        let post = |body: Value| {
            client
                .post(format!("{base}/admin/api/2026-04/graphql.json"))
                .header("X-Shopify-Access-Token", ACCESS_TOKEN)
                .header("content-type", "application/json")
                .body(body.to_string())
        };
        let query = "query O($after: String) { orders(first: 3, after: $after, sortKey: UPDATED_AT) { edges { cursor node { id name updatedAt lineItems(first: 5) { nodes { sku quantity } } } } pageInfo { hasNextPage endCursor } } }";
        // Forwards by endCursor: every order once, in order.
        let (mut after, mut seen, mut pages) = (Value::Null, Vec::new(), 0);
        loop {
            let page = send(post(json!({"query": query, "variables": {"after": after}}))).await;
            gql.check("POST", ROUTE, &page);
            assert_eq!(page.status, 200, "{}", page.text);
            let orders = &page.body["data"]["orders"];
            for edge in orders["edges"].as_array().unwrap() {
                assert_eq!(edge["node"]["lineItems"]["nodes"][0]["quantity"], 2);
                seen.push(edge["node"]["id"].as_str().unwrap().to_string());
            }
            pages += 1;
            let cost = &page.body["extensions"]["cost"];
            assert!(
                cost["actualQueryCost"].as_f64().unwrap()
                    <= cost["requestedQueryCost"].as_f64().unwrap()
            );
            if orders["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = orders["pageInfo"]["endCursor"].clone();
        }
        assert_eq!((seen.len(), pages), (7, 3));
        let mut distinct = seen.clone();
        distinct.dedup();
        assert_eq!(distinct, seen);
        // GraphQL errors are answered 200 with `errors`.
        for (body, code) in [
            (
                json!({"query": "{ orders(first: 2) { nodes { idd } } }"}),
                "undefinedField",
            ),
            (
                json!({"query": "{ orders(first: 2) { nodes { id }"}),
                "parseError",
            ),
            (
                json!({"query": "{ orders { nodes { id } } }"}),
                "argumentLiteralsIncompatible",
            ),
            (
                json!({"query": "{ orders(first: 250) { nodes { id lineItems(first: 250) { nodes { sku } } } } }"}),
                "MAX_COST_EXCEEDED",
            ),
        ] {
            let answer = send(post(body)).await;
            gql.check("POST", ROUTE, &answer);
            assert_eq!(
                answer.body["errors"][0]["extensions"]["code"], code,
                "{}",
                answer.text
            );
        }
        // inventorySetQuantities: compare-and-set, userErrors, and a key's first result
        // replayed.
        let item = format!(
            "gid://shopify/InventoryItem/{}",
            omniflow_sandbox::catalog::shopify_inventory_item_id(0)
        );
        let location = format!(
            "gid://shopify/Location/{}",
            omniflow_sandbox::catalog::SHOPIFY_LOCATIONS[0].0
        );
        let set = "mutation S($input: InventorySetQuantitiesInput!, $key: String!) { inventorySetQuantities(input: $input) @idempotent(key: $key) { inventoryAdjustmentGroup { changes { name delta quantityAfterChange } } userErrors { code field message } } }";
        let input = |compare: i64, quantity: i64| {
            json!({"name": "available", "reason": "correction", "quantities": [
                {"inventoryItemId": item, "locationId": location, "quantity": quantity, "compareQuantity": compare}]})
        };
        let payload =
            |answer: &super::harness::Answer| answer.body["data"]["inventorySetQuantities"].clone();
        let stale = send(post(
            json!({"query": set, "variables": {"key": "k0", "input": input(49, 60)}}),
        ))
        .await;
        gql.check("POST", ROUTE, &stale);
        assert_eq!(
            payload(&stale)["userErrors"][0]["code"],
            "COMPARE_QUANTITY_STALE",
            "{}",
            stale.text
        );
        for _ in 0..2 {
            let done = send(post(
                json!({"query": set, "variables": {"key": "k1", "input": input(50, 60)}}),
            ))
            .await;
            gql.check("POST", ROUTE, &done);
            let change = &payload(&done)["inventoryAdjustmentGroup"]["changes"][0];
            assert_eq!(
                (
                    change["delta"].as_i64(),
                    change["quantityAfterChange"].as_i64()
                ),
                (Some(10), Some(60)),
                "{}",
                done.text
            );
        }
        let stats = send(client.get(format!("{base}/_sandbox/stats")))
            .await
            .body;
        assert_eq!(stats["shopify"]["idempotent_replays"], 1, "{stats}");
        // The key again with other arguments is refused, and changes nothing.
        let reused = send(post(
            json!({"query": set, "variables": {"key": "k1", "input": input(60, 70)}}),
        ))
        .await;
        gql.check("POST", ROUTE, &reused);
        assert_eq!(
            payload(&reused)["userErrors"][0]["code"],
            "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
            "{}",
            reused.text
        );
        let unknown = json!({"name": "available", "ignoreCompareQuantity": true, "quantities": [
            {"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": location, "quantity": 1}]});
        let refused = send(post(
            json!({"query": set, "variables": {"key": "k2", "input": unknown}}),
        ))
        .await;
        assert_eq!(
            payload(&refused)["userErrors"][0]["code"],
            "INVALID_INVENTORY_ITEM"
        );
        assert!(payload(&refused)["inventoryAdjustmentGroup"].is_null());
        // A key whose first attempt was refused stays refused.
        let again = send(post(
            json!({"query": set, "variables": {"key": "k2", "input": unknown}}),
        ))
        .await;
        gql.check("POST", ROUTE, &again);
        assert_eq!(
            payload(&again)["userErrors"][0]["code"],
            "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED",
            "{}",
            again.text
        );
        // Hostile queries get GraphQL errors, never a dropped connection or a change.
        let deep = format!("{{ shop {}name{} }}", "{ x ".repeat(40), " }".repeat(40));
        let many = format!(
            "{{ {} }}",
            (0..5000)
                .map(|i| format!("f{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for (body, code) in [
            (
                json!({"query": "{ ...F } fragment F on QueryRoot { shop { name } }"}),
                "undefinedField",
            ),
            (json!({"query": deep}), "MAX_DEPTH_EXCEEDED"),
            (
                json!({"query": "{ orders(first: 1, query: \"\"\"\n  a\n\u{3000}b\n\"\"\") { nodes { id } } }"}),
                "",
            ),
            (json!({"query": many}), "undefinedField"),
        ] {
            let answer = send(post(body)).await;
            gql.check("POST", ROUTE, &answer);
            assert_eq!(answer.status, 200, "{}", answer.text);
            if !code.is_empty() {
                assert_eq!(
                    answer.body["errors"][0]["extensions"]["code"], code,
                    "{}",
                    answer.text
                );
            }
            assert!(answer.body["errors"]
                .as_array()
                .is_none_or(|e| e.len() <= 50));
        }
        let get = |path: &str| {
            client
                .get(format!("{base}/admin/api/2025-07{path}"))
                .header("X-Shopify-Access-Token", ACCESS_TOKEN)
        };
        let level = || async {
            let levels = send(get(&format!(
                "/inventory_levels.json?inventory_item_ids={}&location_ids={}",
                omniflow_sandbox::catalog::shopify_inventory_item_id(0),
                omniflow_sandbox::catalog::SHOPIFY_LOCATIONS[0].0
            )))
            .await;
            levels.body["inventory_levels"][0]["available"].as_i64()
        };
        let before = level().await;
        let bogus = "mutation S($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) { bogus userErrors { code } } }";
        let wrong = send(post(
            json!({"query": bogus, "variables": {"input": input(60, 1)}}),
        ))
        .await;
        assert_eq!(
            wrong.body["errors"][0]["extensions"]["code"], "undefinedField",
            "{}",
            wrong.text
        );
        let huge = json!({"name": "available", "ignoreCompareQuantity": true, "quantities": [
            {"inventoryItemId": item, "locationId": location, "quantity": i64::MAX}]});
        let refused = send(post(
            json!({"query": set, "variables": {"key": "k3", "input": huge}}),
        ))
        .await;
        assert_eq!(
            payload(&refused)["userErrors"][0]["code"],
            "INVALID_QUANTITY",
            "{}",
            refused.text
        );
        assert_eq!(level().await, before, "a refused mutation changes nothing");
        // An empty bucket: THROTTLED, no data, and no actual cost.
        send(
            client
                .post(format!("{base}/_sandbox/shopify/graphql_bucket"))
                .body(r#"{"available": 0}"#),
        )
        .await;
        let throttled = send(post(json!({"query": query}))).await;
        gql.check("POST", ROUTE, &throttled);
        assert_eq!(
            throttled.body["errors"][0]["extensions"]["code"],
            "THROTTLED"
        );
        assert!(throttled.body["extensions"]["cost"]["actualQueryCost"].is_null());
        let missing = send(post(json!({"variables": {}}))).await;
        assert_eq!(missing.status, 400);
        gql.check("POST", ROUTE, &missing);
        sweep(
            &base,
            routes::SHOPIFY_GRAPHQL,
            &[("version", "2025-07")],
            &[None, Some(("X-Shopify-Access-Token", "shpat_wrong"))],
            &[],
            |route: &str| route.to_string(),
            |method, template, answer| {
                assert_eq!(answer.status, 401, "{method} {template}");
                gql.check(method, template, answer);
            },
        )
        .await;
        gql.finish(3);
    });
}

#[test]
fn graphql_fulfilment_and_catalogue_writes_are_all_or_nothing() {
    with_sandbox(|base| async move {
        let client = reqwest::Client::new();
        let mut gql = Checker::new(Doc::load("shopify/admin-graphql-2025-07.json", &[]))
            .serves(routes::SHOPIFY_GRAPHQL);
        const ROUTE: &str = "/admin/api/{version}/graphql.json";
        let created = send(client.post(format!("{base}/_sandbox/shopify/orders")).body(
            json!({"line_items": [{"sku": "TSHIRT-039-RED-M", "quantity": 2}, {"sku": "CAP-009-BLK-XL", "quantity": 1}]})
                .to_string(),
        ))
        .await;
        let order = format!("gid://shopify/Order/{}", created.body["order"]["id"]);
        let ask = |query: &str, variables: Value| {
            let request = client
                .post(format!("{base}/admin/api/2026-04/graphql.json"))
                .header("X-Shopify-Access-Token", ACCESS_TOKEN)
                .header("content-type", "application/json")
                .body(json!({"query": query, "variables": variables}).to_string());
            async move { send(request).await }
        };
        let read = "query O($id: ID!) { order(id: $id) { displayFulfillmentStatus fulfillments(first: 5) { trackingInfo { number } } fulfillmentOrders(first: 5) { nodes { id status lineItems(first: 10) { nodes { id sku remainingQuantity inventoryItemId } } } } } }";
        let before = ask(read, json!({"id": order})).await;
        gql.check("POST", ROUTE, &before);
        let fo = &before.body["data"]["order"]["fulfillmentOrders"]["nodes"][0];
        assert_eq!(fo["status"], "OPEN", "{}", before.text);
        assert_eq!(fo["lineItems"]["nodes"][0]["sku"], "TSHIRT-039-RED-M");
        assert_eq!(fo["lineItems"]["nodes"][0]["remainingQuantity"], 2);
        let fo_id = fo["id"].clone();
        let fulfil = "mutation F($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) { fulfillment { id status trackingInfo { number } } userErrors { field message } } }";
        // A document with a refused field changes nothing, its good field included.
        let mixed = ask(
            "mutation F($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) { fulfillment { id } } nope { id } }",
            json!({"f": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo_id}]}}),
        )
        .await;
        gql.check("POST", ROUTE, &mixed);
        assert_eq!(
            mixed.body["errors"][0]["extensions"]["code"],
            "undefinedField"
        );
        // The same fulfillment order twice would fulfil it twice over: refused.
        let twice = ask(
            fulfil,
            json!({"f": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo_id}, {"fulfillmentOrderId": fo_id}]}}),
        )
        .await;
        gql.check("POST", ROUTE, &twice);
        assert!(
            twice.body["data"]["fulfillmentCreate"]["userErrors"][0]["message"].is_string(),
            "{}",
            twice.text
        );
        let untouched = ask(read, json!({"id": order})).await;
        assert_eq!(
            untouched.body["data"]["order"]["displayFulfillmentStatus"],
            "UNFULFILLED"
        );
        let done = ask(
            fulfil,
            json!({"f": {"trackingInfo": {"number": "1Z1", "company": "UPS"},
                "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo_id}]}}),
        )
        .await;
        gql.check("POST", ROUTE, &done);
        assert_eq!(
            done.body["data"]["fulfillmentCreate"]["fulfillment"]["status"],
            "SUCCESS"
        );
        let after = ask(read, json!({"id": order})).await;
        gql.check("POST", ROUTE, &after);
        let o = &after.body["data"]["order"];
        assert_eq!(o["displayFulfillmentStatus"], "FULFILLED", "{}", after.text);
        assert_eq!(o["fulfillments"][0]["trackingInfo"][0]["number"], "1Z1");
        assert_eq!(o["fulfillmentOrders"]["nodes"][0]["status"], "CLOSED");
        // The catalogue: a variant by SKU, its price set, a bad price refused whole.
        let found = ask(
            "{ productVariants(first: 5, query: \"sku:\\\"TSHIRT-039-RED-M\\\"\") { nodes { id sku price product { id } } } }",
            json!({}),
        )
        .await;
        gql.check("POST", ROUTE, &found);
        let nodes = found.body["data"]["productVariants"]["nodes"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(nodes.len(), 1, "{}", found.text);
        let (variant, product) = (nodes[0]["id"].clone(), nodes[0]["product"]["id"].clone());
        let bulk = "mutation B($p: ID!, $v: [ProductVariantsBulkInput!]!) { productVariantsBulkUpdate(productId: $p, variants: $v) { productVariants { id price compareAtPrice } userErrors { code field message } } }";
        let refused = ask(
            bulk,
            json!({"p": product, "v": [{"id": variant, "price": "25.00"}, {"id": "gid://shopify/ProductVariant/1", "price": "1.00"}]}),
        )
        .await;
        gql.check("POST", ROUTE, &refused);
        let payload = &refused.body["data"]["productVariantsBulkUpdate"];
        assert_eq!(
            payload["userErrors"][0]["code"], "PRODUCT_VARIANT_DOES_NOT_EXIST",
            "{}",
            refused.text
        );
        let set = ask(bulk, json!({"p": product, "v": [{"id": variant, "price": "25.50", "compareAtPrice": "30.00"}]})).await;
        gql.check("POST", ROUTE, &set);
        let variants = &set.body["data"]["productVariantsBulkUpdate"]["productVariants"];
        assert_eq!(variants[0]["price"], "25.50", "{}", set.text);
        let renamed = ask(
            "mutation P($p: ProductUpdateInput!) { productUpdate(product: $p) { product { id title status } userErrors { field message } } }",
            json!({"p": {"id": product, "title": "Classic Tee", "status": "DRAFT"}}),
        )
        .await;
        gql.check("POST", ROUTE, &renamed);
        assert_eq!(
            renamed.body["data"]["productUpdate"]["product"]["status"], "DRAFT",
            "{}",
            renamed.text
        );
    });
}
