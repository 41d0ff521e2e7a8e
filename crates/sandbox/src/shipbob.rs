//! ShipBob simulator: order creation with unique `reference_id`, order listing with
//! `Page`/`Limit` and a `next-page` header, shipments, inventory levels with a cursor body,
//! webhook subscriptions signed per Standard Webhooks, tracking-upload flags, and the
//! 150-per-minute sliding window.

use super::webhooks::{self, Delivery, Subscriber};
use super::{base_url, catalog, header, json_body, param, query_pairs, Shared, System};
use omniflow_http::server::{Req, Resp};
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Accepted API versions (path prefix).
pub const VERSIONS: [&str; 4] = ["2026-07", "2026-01", "2025-07", "1.0"];
/// Personal access token accepted as `Authorization: Bearer`.
pub const ACCESS_TOKEN: &str = "shipbob-sandbox-pat";
/// Channel id required in the `shipbob_channel_id` header on `POST order`.
pub const CHANNEL_ID: &str = "100102";
/// Default webhook secret (`whsec_` + 32 base64 characters).
pub const WEBHOOK_SECRET: &str = "whsec_c2FuZGJveC1zaGlwYm9iLXdlYmhvb2sx";
/// Requests allowed per sliding 60 s window.
pub const REQUESTS_PER_MINUTE: usize = 150;

/// ShipBob state.
pub struct State {
    orders: Vec<Value>,
    next_order: u64,
    next_shipment: u64,
    next_product: u64,
    window: VecDeque<Instant>,
}

impl State {
    /// Empty, with seed-dependent id bases.
    pub fn new(rng: &mut super::Rng) -> State {
        State {
            orders: Vec::new(),
            next_order: 123_000 + rng.below(400) * 10,
            next_shipment: 100_810_000 + rng.below(1000) * 10,
            next_product: 600 + rng.below(100),
            window: VecDeque::new(),
        }
    }
}

fn msg(status: u16, message: &str) -> Resp {
    Resp::json(status, json!({"statusCode": status, "message": message}))
}

/// The inventory API's RFC 7807 `ProblemDetails`.
fn problem(status: u16, title: &str, instance: &str) -> Resp {
    Resp::json(
        status,
        json!({"type": format!("https://httpstatuses.io/{status}"), "title": title,
            "status": status, "detail": Value::Null, "instance": instance}),
    )
}

fn throttled(retry: u64) -> Resp {
    msg(
        429,
        &format!("Rate limit is exceeded. Try again in {retry} seconds."),
    )
    .header("x-retry-after", retry.to_string())
    .header("x-remaining-calls", "0")
}

/// ShipBob's answer for an injected status.
pub fn error_status(status: u16) -> Resp {
    match status {
        429 => throttled(25),
        503 => msg(503, "Service Unavailable"),
        502 => msg(502, "Bad Gateway"),
        s => msg(s, "Internal Server Error"),
    }
}

fn valid_secret(s: &str) -> bool {
    s.strip_prefix("whsec_").is_some_and(|rest| {
        rest.len() == 32
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    })
}

/// Serves `/{version}/...`.
pub fn handle(sb: &Shared, req: &Req) -> Resp {
    if header(req, "authorization") != Some(format!("Bearer {ACCESS_TOKEN}").as_str()) {
        if req.path.contains("/inventory-level") {
            return problem(401, "Unauthorized", &req.path);
        }
        return msg(401, "Unauthorized");
    }
    let limit = ((REQUESTS_PER_MINUTE as f64 * sb.quota_scale(System::Shipbob)) as usize).max(1);
    let remaining = {
        let mut st = sb.shipbob.borrow_mut();
        let now = Instant::now();
        while st
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            st.window.pop_front();
        }
        if st.window.len() >= limit {
            let oldest = st.window.front().copied().unwrap_or(now);
            let wait = 60u64
                .saturating_sub(now.duration_since(oldest).as_secs())
                .max(1);
            drop(st);
            sb.bump(System::Shipbob, "throttled");
            return throttled(wait);
        }
        st.window.push_back(now);
        limit - st.window.len()
    };
    let path = req.path.trim_start_matches('/');
    let (version, rest) = path.split_once('/').unwrap_or((path, ""));
    let segs: Vec<&str> = rest.split('/').collect();
    let served = super::routes::find(super::routes::SHIPBOB, &req.method, &req.path).is_some();
    let resp = match (req.method.as_str(), segs.as_slice()) {
        _ if !served => msg(404, "Not Found"),
        ("POST", ["order"]) => create_order(sb, req),
        ("GET", ["order"]) => list_orders(sb, req, version),
        ("GET", ["order", id]) => with_order(sb, id, |o| Resp::json(200, o.clone())),
        ("GET", ["order", id, "shipment"]) => {
            with_order(sb, id, |o| Resp::json(200, o["shipments"].clone()))
        }
        ("GET", ["inventory-level"]) => inventory(req, version, false),
        ("GET", ["inventory-level", "locations"]) => inventory(req, version, true),
        ("POST", ["webhook"]) => subscribe(sb, req),
        ("POST", ["shipment:batchUpdateTrackingUpload"]) => tracking_upload(sb, req),
        _ => msg(404, "Not Found"),
    };
    resp.header("x-remaining-calls", remaining.to_string())
}

fn with_order(sb: &Shared, id: &str, f: impl FnOnce(&Value) -> Resp) -> Resp {
    let st = sb.shipbob.borrow();
    match st
        .orders
        .iter()
        .find(|o| o["id"].as_u64().is_some_and(|v| v.to_string() == id))
    {
        Some(o) => f(o),
        None => msg(404, "Order not found"),
    }
}

fn field_errors(errors: Map<String, Value>) -> Resp {
    Resp::json(400, Value::Object(errors))
}

fn create_order(sb: &Shared, req: &Req) -> Resp {
    match header(req, "shipbob_channel_id") {
        None => {
            return field_errors(
                [(
                    "shipbob_channel_id".to_string(),
                    json!(["The shipbob_channel_id header is required."]),
                )]
                .into_iter()
                .collect(),
            )
        }
        Some(c) if c != CHANNEL_ID => return msg(403, "Channel not found or not authorized."),
        Some(_) => {}
    }
    let Some(body) = json_body(req) else {
        return field_errors(
            [(
                "body".to_string(),
                json!(["A valid JSON object is required."]),
            )]
            .into_iter()
            .collect(),
        );
    };
    let mut errors = Map::new();
    let mut need = |key: &str, ok: bool, text: &str| {
        if !ok {
            errors.insert(key.to_string(), json!([text]));
        }
    };
    let reference = body["reference_id"].as_str().unwrap_or("");
    need(
        "ReferenceId",
        (1..=300).contains(&reference.len()),
        "The ReferenceId field is required.",
    );
    need(
        "ShippingMethod",
        body["shipping_method"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "The ShippingMethod field is required.",
    );
    let r = &body["recipient"];
    need(
        "Recipient.Name",
        r["name"].as_str().is_some_and(|s| !s.is_empty()),
        "The Name field is required.",
    );
    for (key, field) in [
        ("Recipient.Address.Address1", "address1"),
        ("Recipient.Address.City", "city"),
        ("Recipient.Address.Country", "country"),
    ] {
        need(
            key,
            r["address"][field].as_str().is_some_and(|s| !s.is_empty()),
            &format!("The {} field is required.", &key[18..]),
        );
    }
    need(
        "Type",
        matches!(body["type"].as_str(), Some("DTC" | "DropShip" | "B2B")),
        "The Type field must be DTC, DropShip or B2B.",
    );
    let products = body["products"].as_array().cloned().unwrap_or_default();
    need(
        "Products",
        !products.is_empty(),
        "At least one product is required.",
    );
    for (i, p) in products.iter().enumerate() {
        let by_ref = p["reference_id"].as_str().is_some() && p["name"].as_str().is_some();
        need(
            &format!("Products[{i}]"),
            by_ref || p["id"].as_u64().is_some(),
            "Give reference_id and name, or id.",
        );
        need(
            &format!("Products[{i}].Quantity"),
            p["quantity"].as_i64().is_some_and(|q| q > 0),
            "Quantity must be positive.",
        );
    }
    if !errors.is_empty() {
        return field_errors(errors);
    }
    if sb
        .shipbob
        .borrow()
        .orders
        .iter()
        .any(|o| o["reference_id"] == reference)
    {
        sb.bump(System::Shipbob, "duplicates_received");
        return Resp::json(
            422,
            json!({"reference_id": [format!("An order with reference_id '{reference}' already exists.")]}),
        );
    }
    let now = super::ts_secs(super::now());
    let mut st = sb.shipbob.borrow_mut();
    let (id, shipment_id) = (st.next_order, st.next_shipment);
    st.next_order += 1;
    st.next_shipment += 1;
    let mut lines = Vec::new();
    for p in &products {
        let pid = p["id"].as_u64().unwrap_or_else(|| {
            st.next_product += 1;
            st.next_product
        });
        let sku = p["reference_id"].as_str().unwrap_or("");
        // The order's product (ProductInfoViewModel) has no name; its shipment's does.
        lines.push((
            json!({"id": pid, "reference_id": sku, "sku": sku,
            "quantity": p["quantity"], "unit_price": p["unit_price"]}),
            p["name"].clone(),
        ));
    }
    let (loc_id, loc_name) = catalog::SHIPBOB_LOCATIONS[0];
    let order = json!({
        "id": id, "reference_id": reference, "order_number": body["order_number"], "status": "Processing",
        "type": body["type"], "created_date": now, "purchase_date": body["purchase_date"],
        "channel": {"id": 100102, "name": "API"}, "shipping_method": body["shipping_method"],
        "recipient": body["recipient"],
        "products": lines.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(), "tags": body.get("tags").cloned().unwrap_or(json!([])),
        "financials": body.get("financials").cloned().unwrap_or(json!({})),
        "shipments": [{"id": shipment_id, "order_id": id, "reference_id": reference, "status": "Processing",
            "location": {"id": loc_id, "name": loc_name}, "created_date": now, "last_update_at": now,
            "actual_fulfillment_date": Value::Null, "delivery_date": Value::Null,
            "is_tracking_uploaded": false,
            "products": lines.iter().map(|(l, name)| json!({"id": l["id"], "reference_id": l["reference_id"],
                "sku": l["sku"], "name": name, "inventory_items": [{"id": l["id"], "name": name,
                "quantity": l["quantity"]}]})).collect::<Vec<_>>()}],
    });
    st.orders.push(order.clone());
    drop(st);
    sb.bump(System::Shipbob, "orders_created");
    Resp::json(201, order)
}

fn list_orders(sb: &Shared, req: &Req, version: &str) -> Resp {
    let q = query_pairs(&req.query);
    let page = match param(&q, "Page").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        Some(_) => {
            return field_errors(
                [("Page".to_string(), json!(["Page must be at least 1."]))]
                    .into_iter()
                    .collect(),
            )
        }
    };
    let limit = match param(&q, "Limit").map(str::parse::<usize>) {
        None => 50,
        Some(Ok(l)) if (1..=250).contains(&l) => l,
        Some(_) => {
            return field_errors(
                [(
                    "Limit".to_string(),
                    json!(["Limit must be between 1 and 250."]),
                )]
                .into_iter()
                .collect(),
            )
        }
    };
    let refs: Option<Vec<&str>> = param(&q, "ReferenceIds").map(|s| s.split(',').collect());
    let ids: Option<Vec<&str>> = param(&q, "IDs").map(|s| s.split(',').collect());
    let has_tracking = param(&q, "HasTracking").map(|v| v == "true");
    let uploaded = param(&q, "IsTrackingUploaded").map(|v| v == "true");
    let st = sb.shipbob.borrow();
    let matching: Vec<&Value> = st
        .orders
        .iter()
        .filter(|o| {
            refs.as_ref()
                .is_none_or(|r| r.contains(&o["reference_id"].as_str().unwrap_or("")))
        })
        .filter(|o| {
            ids.as_ref()
                .is_none_or(|i| i.contains(&o["id"].to_string().as_str()))
        })
        .filter(|o| {
            let ships = o["shipments"].as_array().cloned().unwrap_or_default();
            let tracked = ships.iter().any(|s| !s["tracking"].is_null());
            let up = ships.iter().all(|s| s["is_tracking_uploaded"] == true);
            has_tracking.is_none_or(|h| h == tracked) && uploaded.is_none_or(|u| u == up)
        })
        .collect();
    let start = (page - 1) * limit;
    let out: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|o| (*o).clone())
        .collect();
    let mut resp = Resp::json(200, json!(out)).header("total-count", matching.len().to_string());
    if matching.len() > start + limit {
        let others: String = q
            .iter()
            .filter(|(k, _)| k != "Page" && k != "Limit")
            .map(|(k, v)| format!("&{k}={}", super::pct_encode(v)))
            .collect();
        resp = resp.header(
            "next-page",
            format!(
                "{}/{version}/order?Page={}&Limit={limit}{others}",
                base_url(req),
                page + 1
            ),
        );
    }
    resp
}

/// Network totals, or with `per_location` the rows per fulfilment centre.
fn inventory(req: &Req, version: &str, per_location: bool) -> Resp {
    let q = query_pairs(&req.query);
    let size = param(&q, "PageSize")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 250);
    let cursor = param(&q, "Cursor")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let ids: Option<Vec<u64>> =
        param(&q, "InventoryIds").map(|s| s.split(',').filter_map(|p| p.parse().ok()).collect());
    let items: Vec<Value> = catalog::ITEMS
        .iter()
        .enumerate()
        .filter(|(i, _)| ids.as_ref().is_none_or(|v| v.contains(&catalog::shipbob_inventory_id(*i))))
        .map(|(i, item)| {
            let on_hand = 140 + 62;
            if per_location {
                return json!({"inventory_id": catalog::shipbob_inventory_id(i), "sku": item.item_code, "name": item.title,
                    "locations": [
                        {"location_id": 1, "name": "Cicero (IL)", "on_hand_quantity": 140, "fulfillable_quantity": 131,
                         "committed_quantity": 9, "awaiting_quantity": 48, "internal_transfer_quantity": 0},
                        {"location_id": 23, "name": "Moreno Valley (CA)", "on_hand_quantity": 62, "fulfillable_quantity": 60,
                         "committed_quantity": 2, "awaiting_quantity": 0, "internal_transfer_quantity": 12}]});
            }
            json!({"inventory_id": catalog::shipbob_inventory_id(i), "sku": item.item_code, "name": item.title,
                "total_on_hand_quantity": on_hand, "total_fulfillable_quantity": on_hand - 11,
                "total_committed_quantity": 11, "total_sellable_quantity": on_hand - 11 + 48,
                "total_awaiting_quantity": 48, "total_backordered_quantity": 0, "total_exception_quantity": 0,
                "total_internal_transfer_quantity": 12})
        })
        .collect();
    let link = |c: usize| {
        json!(format!(
            "{}/{version}/inventory-level{}?PageSize={size}&Cursor={c}",
            base_url(req),
            if per_location { "/locations" } else { "" }
        ))
    };
    let page: Vec<Value> = items.iter().skip(cursor).take(size).cloned().collect();
    Resp::json(
        200,
        json!({"items": page, "first": link(0),
        "prev": if cursor > 0 { link(cursor.saturating_sub(size)) } else { Value::Null },
        "next": if items.len() > cursor + size { link(cursor + size) } else { Value::Null },
        "last": link(items.len().saturating_sub(1) / size * size)}),
    )
}

/// The webhooks API's 422: ASP.NET's `UnprocessableEntityObjectResult` serialised, the
/// field errors in its `value`.
fn unprocessable(errors: Value) -> Resp {
    Resp::json(
        422,
        json!({"$type": "UnprocessableEntityObjectResult", "value": errors, "formatters": [],
            "content_types": [], "declared_type": null, "status_code": 422}),
    )
}

fn subscribe(sb: &Shared, req: &Req) -> Resp {
    let Some(body) = json_body(req) else {
        return unprocessable(json!({"body": ["A valid JSON object is required."]}));
    };
    let (Some(url), Some(topics)) = (body["url"].as_str(), body["topics"].as_array()) else {
        return unprocessable(json!({"url": ["url and topics are required."]}));
    };
    let secret = match body["secret"].as_str() {
        None => WEBHOOK_SECRET.to_string(),
        Some(s) if valid_secret(s) => s.to_string(),
        Some(_) => {
            return unprocessable(
                json!({"secret": ["The secret must match ^whsec_[a-zA-Z0-9+/]{32}$."]}),
            )
        }
    };
    for t in topics.iter().filter_map(Value::as_str) {
        webhooks::subscribe(
            sb,
            Subscriber {
                system: System::Shipbob,
                topic: t.into(),
                url: url.into(),
                secret: Some(secret.clone()),
                version: None,
            },
        );
    }
    let id = sb.rng.borrow_mut().digits(6);
    Resp::json(
        200,
        json!({"id": id, "url": url, "topics": topics, "description": body["description"],
        "created_at": super::ts_secs(super::now()), "secret": secret}),
    )
}

/// `POST /{v}/shipment:batchUpdateTrackingUpload`: a result per shipment id and a summary
/// (`BulkUpdateResponseModel`); a malformed request is answered 400 with a bare string.
fn tracking_upload(sb: &Shared, req: &Req) -> Resp {
    let body = json_body(req).unwrap_or(Value::Null);
    let (Some(ids), Some(flag)) = (
        body["shipment_ids"].as_array(),
        body["is_tracking_uploaded"].as_bool(),
    ) else {
        return Resp::json(
            400,
            json!("shipment_ids and is_tracking_uploaded are required."),
        );
    };
    let mut st = sb.shipbob.borrow_mut();
    let mut results = Vec::new();
    for id in ids {
        let shipment = st
            .orders
            .iter_mut()
            .flat_map(|o| o["shipments"].as_array_mut().into_iter().flatten())
            .find(|s| s["id"] == *id);
        results.push(match shipment {
            Some(s) => {
                s["is_tracking_uploaded"] = json!(flag);
                json!({"shipmentId": id, "isSuccess": true})
            }
            None => json!({"shipmentId": id, "isSuccess": false,
                "error": {"code": "NotFound", "message": "Shipment not found."}}),
        });
    }
    let ok = results.iter().filter(|r| r["isSuccess"] == true).count();
    Resp::json(
        200,
        json!({"results": results, "summary": {"total": results.len(), "successful": ok,
            "failed": results.len() - ok}}),
    )
}

/// `POST /_sandbox/shipbob/orders/{id}/ship`: completes the shipments and sends `order.shipped`.
pub fn control_ship(sb: &Shared, id: &str, req: &Req) -> Resp {
    let body = json_body(req).unwrap_or(json!({}));
    let carrier = body["carrier"].as_str().unwrap_or("UPS").to_string();
    let tracking = match body["tracking_number"].as_str() {
        Some(t) => t.to_string(),
        None => format!("1Z{}", sb.rng.borrow_mut().alnum(16)),
    };
    let now = super::ts_secs(super::now());
    let order = {
        let mut st = sb.shipbob.borrow_mut();
        let Some(o) = st
            .orders
            .iter_mut()
            .find(|o| o["id"].as_u64().is_some_and(|v| v.to_string() == id))
        else {
            return msg(404, "Order not found");
        };
        for s in o["shipments"].as_array_mut().into_iter().flatten() {
            s["status"] = json!("Completed");
            s["actual_fulfillment_date"] = json!(now);
            s["last_update_at"] = json!(now);
            s["tracking"] = json!({"carrier": carrier, "carrier_service": "Ground", "tracking_number": tracking,
                "tracking_url": format!("https://track.example.com/{tracking}"), "shipping_date": now});
        }
        o["status"] = json!("Fulfilled");
        o.clone()
    };
    let duplicate = query_pairs(&req.query)
        .iter()
        .any(|(k, v)| k == "duplicate" && v == "true");
    let body = order.to_string();
    let delay = webhooks::delay(&req.query);
    for sub in webhooks::subscribers(sb, System::Shipbob, "order.shipped") {
        let msg_id = format!("msg_{}", sb.rng.borrow_mut().alnum(24));
        let secret = sub.secret.as_deref().unwrap_or(WEBHOOK_SECRET);
        let headers = vec![("x-webhook-topic".to_string(), "order.shipped".to_string())];
        for copy in 0..if duplicate { 2 } else { 1 } {
            if copy == 1 {
                sb.bump(System::Shipbob, "webhook_duplicates_sent");
            }
            webhooks::send(
                sb,
                Delivery {
                    system: System::Shipbob,
                    topic: "order.shipped".to_string(),
                    signing: webhooks::Signing::Standard {
                        secret: secret.to_string(),
                        id: msg_id.clone(),
                    },
                    url: sub.url.clone(),
                    headers: headers.clone(),
                    body: body.clone(),
                    delay,
                    event_time: None,
                },
            );
        }
    }
    Resp::json(200, order)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{client, parts, with_sandbox};
    use super::super::SandboxConfig;
    use super::*;

    #[test]
    fn duplicate_reference_gets_422_and_channel_is_required() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            assert!(valid_secret(WEBHOOK_SECRET));
            let body = json!({"reference_id": "erp-SO-1", "shipping_method": "Standard", "type": "DTC",
                "recipient": {"name": "Ana", "address": {"address1": "55 Water St", "city": "New York", "country": "US"}},
                "products": [{"reference_id": "ITM-110857", "name": "Tee", "quantity": 1, "unit_price": 22.0}]});
            let post = |channel: bool| {
                let mut r = client()
                    .post(format!("{base}/2026-07/order"))
                    .header("Authorization", format!("Bearer {ACCESS_TOKEN}"))
                    .body(body.to_string());
                if channel {
                    r = r.header("shipbob_channel_id", CHANNEL_ID);
                }
                r
            };
            assert_eq!(post(false).send().await.unwrap().status().as_u16(), 400);
            let (status, _, created) = parts(post(true).send().await.unwrap()).await;
            assert_eq!(status, 201);
            assert_eq!(created["status"], "Processing");
            let (status, _, dup) = parts(post(true).send().await.unwrap()).await;
            assert_eq!(status, 422);
            assert!(dup["reference_id"][0].is_string());
            let (status, headers, list) = parts(
                client()
                    .get(format!("{base}/2026-07/order?ReferenceIds=erp-SO-1"))
                    .header("Authorization", format!("Bearer {ACCESS_TOKEN}"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(list.as_array().unwrap().len(), 1);
            assert!(headers.contains_key("x-remaining-calls"));
            let stats = crate::testutil::stats(&base).await;
            assert_eq!(stats["shipbob"]["duplicates_received"], 1);
        });
    }

    #[test]
    fn standard_webhook_signature_uses_the_decoded_secret() {
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let sig = webhooks::standard_signature(WEBHOOK_SECRET, "msg_1", 1700000000, "{}");
        let key = base64::engine::general_purpose::STANDARD
            .decode(&WEBHOOK_SECRET[6..])
            .unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(b"msg_1.1700000000.{}");
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sig, format!("v1,{expected}"));
    }
}
