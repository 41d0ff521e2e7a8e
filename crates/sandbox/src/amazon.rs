//! Amazon SP-API simulator: LWA token grants, getOrders with `NextToken` paging,
//! getOrderItems, confirmShipment, patchListingsItem, and per-operation token buckets.

use super::{
    catalog, cents_str, header, json_body, param, parse_ts, query_pairs, Sandbox, Shared, System,
    TokenBucket,
};
use base64::Engine;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use omniflow_http::server::{Req, Resp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// LWA client id.
pub const CLIENT_ID: &str = "amzn1.application-oa2-client.sandbox";
/// LWA client secret.
pub const CLIENT_SECRET: &str = "sandbox-secret";
/// LWA refresh token.
pub const REFRESH_TOKEN: &str = "Atzr|sandbox";
/// Seller id in listings paths.
pub const SELLER_ID: &str = "A1SANDBOXSELLER";
/// US marketplace id.
pub const MARKETPLACE_ID: &str = "ATVPDKIKX0DER";

/// (operation, rate per second, burst) from the usage plans.
const QUOTAS: [(&str, f64, f64); 5] = [
    ("getOrders", 0.0167, 20.0),
    ("getOrder", 0.5, 30.0),
    ("getOrderItems", 0.5, 30.0),
    ("confirmShipment", 2.0, 10.0),
    ("patchListingsItem", 5.0, 5.0),
];

struct Line {
    order_item_id: String,
    sku: String,
    asin: String,
    title: String,
    quantity: i64,
    unit_cents: i64,
    shipped: i64,
}

struct Order {
    id: String,
    purchase: DateTime<Utc>,
    updated: DateTime<Utc>,
    status: String,
    channel: String,
    buyer_email: Option<String>,
    address: Option<Value>,
    lines: Vec<Line>,
}

/// Amazon state.
#[derive(Default)]
pub struct State {
    tokens: HashMap<String, Instant>,
    token_ttl: u64,
    orders: Vec<Order>,
    confirmations: HashMap<(String, String), u32>,
    buckets: HashMap<&'static str, TokenBucket>,
    /// What listings were last set to: seller SKU -> (quantity, price in cents).
    pub listings: HashMap<String, (Option<i64>, Option<i64>)>,
}

impl State {
    /// Empty state with a 3600 s token lifetime.
    pub fn new() -> State {
        State {
            token_ttl: 3600,
            ..State::default()
        }
    }
}

fn err(status: u16, code: &str, message: &str) -> Resp {
    Resp::json(
        status,
        json!({"errors": [{"code": code, "message": message, "details": ""}]}),
    )
}

fn invalid(message: &str) -> Resp {
    err(400, "InvalidInput", message)
}

fn with_ids(sb: &Sandbox, resp: Resp) -> Resp {
    let id = sb.rng.borrow_mut().uuid();
    resp.header("x-amzn-RequestId", id)
}

/// Amazon's answer for an injected status to `method path`: every answer of an operation
/// carries its `x-amzn-RateLimit-Limit`, as the models document.
pub fn error_status(sb: &Sandbox, status: u16, method: &str, path: &str) -> Resp {
    let resp = match status {
        429 => err(
            429,
            "QuotaExceeded",
            "You exceeded your quota for the requested resource.",
        ),
        500 => err(
            500,
            "InternalFailure",
            "We encountered an internal error. Please try again.",
        ),
        503 => err(
            503,
            "ServiceUnavailable",
            "Service temporarily unavailable. Please try again.",
        ),
        s => err(s, "InternalFailure", "Request failed."),
    };
    let resp = match operation(method, &segments(path)) {
        Some((op, _)) => resp.header("x-amzn-RateLimit-Limit", format!("{}", quota(sb, op).0)),
        None => resp,
    };
    with_ids(sb, resp)
}

/// `POST /auth/o2/token` (form-encoded refresh-token grant).
pub fn token(sb: &Shared, req: &Req) -> Resp {
    let form = query_pairs(&String::from_utf8_lossy(&req.body));
    // RFC 6749 §5.2: the client is authenticated first (401), then the grant (400).
    let refused = if param(&form, "client_id") != Some(CLIENT_ID)
        || param(&form, "client_secret") != Some(CLIENT_SECRET)
    {
        Some((401, "invalid_client", "Client authentication failed"))
    } else if param(&form, "grant_type") != Some("refresh_token") {
        Some((
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported",
        ))
    } else if param(&form, "refresh_token") != Some(REFRESH_TOKEN) {
        Some((
            400,
            "invalid_grant",
            "The request has an invalid grant parameter : refresh_token",
        ))
    } else {
        None
    };
    if let Some((status, error, description)) = refused {
        sb.bump(System::AmazonSp, "auth_failures");
        return Resp::json(
            status,
            json!({"error": error, "error_description": description}),
        );
    }
    let token = {
        let raw: Vec<u8> = (0..24)
            .map(|_| sb.rng.borrow_mut().next_u64() as u8)
            .collect();
        format!(
            "Atza|{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        )
    };
    let ttl = {
        let mut st = sb.amazon.borrow_mut();
        st.tokens.insert(token.clone(), Instant::now());
        st.token_ttl
    };
    sb.bump(System::AmazonSp, "token_grants");
    Resp::json(
        200,
        json!({"access_token": token, "refresh_token": REFRESH_TOKEN, "token_type": "bearer", "expires_in": ttl}),
    )
}

/// `POST /_sandbox/amazon/token_ttl {"expires_in": N}`: lifetime of tokens (existing ones too).
pub fn control_token_ttl(sb: &Shared, req: &Req) -> Resp {
    match json_body(req).and_then(|b| b["expires_in"].as_u64()) {
        Some(ttl) => {
            sb.amazon.borrow_mut().token_ttl = ttl;
            Resp::json(200, json!({ "expires_in": ttl }))
        }
        None => Resp::json(400, json!({"error": "expires_in (seconds) is required"})),
    }
}

fn authorized(sb: &Sandbox, req: &Req) -> bool {
    let st = sb.amazon.borrow();
    header(req, "x-amz-access-token")
        .and_then(|t| st.tokens.get(t))
        .is_some_and(|issued| issued.elapsed() < Duration::from_secs(st.token_ttl))
}

/// An operation's rate per second and burst, scaled as the sandbox's quotas are.
fn quota(sb: &Sandbox, op: &str) -> (f64, f64) {
    let (_, rate, burst) = QUOTAS
        .iter()
        .chain(&super::amazon_reports::QUOTAS)
        .find(|(o, _, _)| *o == op)
        .copied()
        .unwrap_or((op, 1.0, 1.0));
    let scale = sb.quota_scale(System::AmazonSp);
    (rate * scale, (burst * scale).ceil().max(1.0))
}

/// Takes a token of `op`'s bucket: `Ok` with its `x-amzn-RateLimit-Limit`, or the 429.
fn take(sb: &Sandbox, op: &'static str) -> Result<String, Resp> {
    let (rate, burst) = quota(sb, op);
    let limit = format!("{rate}");
    let ok = sb
        .amazon
        .borrow_mut()
        .buckets
        .entry(op)
        .or_insert_with(|| TokenBucket::new(burst))
        .take(rate, burst);
    if ok {
        Ok(limit)
    } else {
        sb.bump(System::AmazonSp, "throttled");
        Err(err(
            429,
            "QuotaExceeded",
            "You exceeded your quota for the requested resource.",
        )
        .header("x-amzn-RateLimit-Limit", limit))
    }
}

type Operation = fn(&Shared, &Req, &[&str]) -> Resp;

/// Serves `/orders/v0/...` and `/listings/2021-08-01/...`.
pub fn handle(sb: &Shared, req: &Req) -> Resp {
    let resp = route(sb, req);
    with_ids(sb, resp)
}

/// The operation `method path` names, with its handler.
fn operation(method: &str, segs: &[&str]) -> Option<(&'static str, Operation)> {
    Some(match (method, segs) {
        ("GET", ["orders", "v0", "orders"]) => ("getOrders", get_orders),
        ("GET", ["orders", "v0", "orders", _, "orderItems"]) => ("getOrderItems", get_order_items),
        ("GET", ["orders", "v0", "orders", _]) => ("getOrder", get_order),
        ("POST", ["orders", "v0", "orders", _, "shipmentConfirmation"]) => {
            ("confirmShipment", confirm_shipment)
        }
        ("PATCH", ["listings", "2021-08-01", "items", _, _]) => {
            ("patchListingsItem", patch_listing)
        }
        ("GET", ["reports", "2021-06-30", "reports"]) => {
            ("getReports", super::amazon_reports::get_reports)
        }
        ("GET", ["reports", "2021-06-30", "documents", _]) => (
            "getReportDocument",
            super::amazon_reports::get_report_document,
        ),
        _ => return None,
    })
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('/').split('/').collect()
}

fn route(sb: &Shared, req: &Req) -> Resp {
    let segs = segments(&req.path);
    let served = super::routes::find(super::routes::AMAZON, &req.method, &req.path);
    let Some((op, f)) = served.and_then(|_| operation(&req.method, &segs)) else {
        return err(404, "NotFound", "Resource not found.");
    };
    if !authorized(sb, req) {
        sb.bump(System::AmazonSp, "access_denied");
        return err(
            403,
            "Unauthorized",
            "Access to requested resource is denied.",
        )
        .header("x-amzn-ErrorType", "AccessDeniedException");
    }
    match take(sb, op) {
        Ok(limit) => f(sb, req, &segs).header("x-amzn-RateLimit-Limit", limit),
        Err(resp) => resp,
    }
}

fn order_json(o: &Order) -> Value {
    let unshipped: i64 = o.lines.iter().map(|l| l.quantity - l.shipped).sum();
    let shipped: i64 = o.lines.iter().map(|l| l.shipped).sum();
    let mut v = json!({
        "AmazonOrderId": o.id, "PurchaseDate": super::ts_secs(o.purchase),
        "LastUpdateDate": super::ts_secs(o.updated), "OrderStatus": o.status,
        "FulfillmentChannel": o.channel, "SalesChannel": "Amazon.com", "MarketplaceId": MARKETPLACE_ID,
        "NumberOfItemsShipped": shipped, "NumberOfItemsUnshipped": unshipped,
        "OrderType": "StandardOrder", "LatestShipDate": super::ts_secs(o.purchase + ChronoDuration::days(2)),
        "IsPrime": false, "IsBusinessOrder": false,
    });
    if o.status != "Pending" {
        let total: i64 = o.lines.iter().map(|l| l.unit_cents * l.quantity).sum();
        v["OrderTotal"] = json!({"CurrencyCode": "USD", "Amount": cents_str(total)});
    }
    if let Some(email) = &o.buyer_email {
        v["BuyerInfo"] = json!({ "BuyerEmail": email });
    }
    if let Some(address) = &o.address {
        v["ShippingAddress"] = address.clone();
    }
    v
}

const FILTER_KEYS: [&str; 8] = [
    "MarketplaceIds",
    "CreatedAfter",
    "CreatedBefore",
    "LastUpdatedAfter",
    "LastUpdatedBefore",
    "OrderStatuses",
    "FulfillmentChannels",
    "AmazonOrderIds",
];

fn get_orders(sb: &Shared, req: &Req, _segs: &[&str]) -> Resp {
    let q = query_pairs(&req.query);
    let Some(markets) = param(&q, "MarketplaceIds").filter(|m| !m.is_empty()) else {
        return invalid("MarketplaceIds is required.");
    };
    if !markets.split(',').any(|m| m == MARKETPLACE_ID) {
        return invalid("Invalid MarketplaceIds.");
    }
    let (created, updated) = (param(&q, "CreatedAfter"), param(&q, "LastUpdatedAfter"));
    let by_update = match (created, updated) {
        (Some(_), None) => false,
        (None, Some(_)) => true,
        _ => return invalid("Exactly one of CreatedAfter and LastUpdatedAfter must be specified."),
    };
    if (by_update && param(&q, "CreatedBefore").is_some())
        || (!by_update && param(&q, "LastUpdatedBefore").is_some())
    {
        return invalid("CreatedBefore/LastUpdatedBefore cannot be mixed with the other family.");
    }
    let (after_key, before_key) = if by_update {
        ("LastUpdatedAfter", "LastUpdatedBefore")
    } else {
        ("CreatedAfter", "CreatedBefore")
    };
    let Some(after) = param(&q, after_key).and_then(parse_ts) else {
        return invalid(&format!("{after_key} is not a valid ISO 8601 date."));
    };
    let before = match param(&q, before_key).map(parse_ts) {
        Some(None) => return invalid(&format!("{before_key} is not a valid ISO 8601 date.")),
        Some(Some(b)) if b < after => {
            return invalid(&format!("{before_key} must be after {after_key}."))
        }
        Some(Some(b)) if b > super::now() - ChronoDuration::minutes(2) => {
            return invalid(&format!(
                "{before_key} must be at least 2 minutes before now."
            ))
        }
        other => other.flatten(),
    };
    let page = match param(&q, "MaxResultsPerPage").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return invalid("MaxResultsPerPage must be between 1 and 100."),
    };
    let fingerprint: String = FILTER_KEYS
        .iter()
        .map(|k| format!("{k}={};", param(&q, k).unwrap_or("")))
        .collect();
    let offset = match param(&q, "NextToken") {
        None => 0,
        Some(token) => match decode_token(token) {
            Some((fp, off)) if fp == fingerprint => off,
            _ => return invalid("Invalid NextToken."),
        },
    };
    let statuses: Option<Vec<&str>> = param(&q, "OrderStatuses").map(|s| s.split(',').collect());
    let channels: Option<Vec<&str>> =
        param(&q, "FulfillmentChannels").map(|s| s.split(',').collect());
    let ids: Option<Vec<&str>> = param(&q, "AmazonOrderIds").map(|s| s.split(',').collect());
    let st = sb.amazon.borrow();
    let mut matching: Vec<&Order> = st
        .orders
        .iter()
        .filter(|o| {
            let t = if by_update { o.updated } else { o.purchase };
            t >= after && before.is_none_or(|b| t <= b)
        })
        .filter(|o| {
            statuses
                .as_ref()
                .is_none_or(|s| s.contains(&o.status.as_str()))
        })
        .filter(|o| {
            channels
                .as_ref()
                .is_none_or(|c| c.contains(&o.channel.as_str()))
        })
        .filter(|o| ids.as_ref().is_none_or(|i| i.contains(&o.id.as_str())))
        .collect();
    matching.sort_by(|a, b| a.updated.cmp(&b.updated).then(a.id.cmp(&b.id)));
    let orders: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(page)
        .map(|o| order_json(o))
        .collect();
    let mut payload = json!({ "Orders": orders });
    if matching.len() > offset + page {
        payload["NextToken"] = json!(encode_token(&fingerprint, offset + page));
    }
    if let Some(b) = before {
        payload[before_key] = json!(super::ts_secs(b));
    }
    Resp::json(200, json!({ "payload": payload }))
}

fn encode_token(fingerprint: &str, offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{offset}|{fingerprint}"))
}

fn decode_token(token: &str) -> Option<(String, usize)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (off, fp) = text.split_once('|')?;
    Some((fp.to_string(), off.parse().ok()?))
}

fn get_order(sb: &Shared, _req: &Req, segs: &[&str]) -> Resp {
    let st = sb.amazon.borrow();
    match st.orders.iter().find(|o| o.id == segs[3]) {
        Some(o) => Resp::json(200, json!({ "payload": order_json(o) })),
        None => err(404, "NotFound", "Invalid AmazonOrderId."),
    }
}

fn get_order_items(sb: &Shared, _req: &Req, segs: &[&str]) -> Resp {
    let st = sb.amazon.borrow();
    let Some(o) = st.orders.iter().find(|o| o.id == segs[3]) else {
        return err(404, "NotFound", "Invalid AmazonOrderId.");
    };
    let items: Vec<Value> = o
        .lines
        .iter()
        .map(|l| {
            let mut v = json!({"ASIN": l.asin, "OrderItemId": l.order_item_id, "SellerSKU": l.sku,
                "Title": l.title, "QuantityOrdered": l.quantity, "QuantityShipped": l.shipped,
                "IsGift": "false"});
            if o.status != "Pending" {
                let money = |c: i64| json!({"CurrencyCode": "USD", "Amount": cents_str(c)});
                v["ItemPrice"] = money(l.unit_cents * l.quantity);
                v["ItemTax"] = money(0);
                v["ShippingPrice"] = money(0);
                v["PromotionDiscount"] = money(0);
            }
            v
        })
        .collect();
    Resp::json(
        200,
        json!({"payload": {"AmazonOrderId": o.id, "OrderItems": items}}),
    )
}

fn confirm_shipment(sb: &Shared, req: &Req, segs: &[&str]) -> Resp {
    let Some(body) = json_body(req) else {
        return invalid("Request body is not valid JSON.");
    };
    let pkg = &body["packageDetail"];
    let mut missing = Vec::new();
    if body["marketplaceId"].as_str().is_none() {
        missing.push("marketplaceId");
    }
    for key in [
        "packageReferenceId",
        "carrierCode",
        "trackingNumber",
        "shipDate",
    ] {
        if pkg[key].as_str().is_none_or(str::is_empty) {
            missing.push(key);
        }
    }
    if pkg["carrierCode"] == "Other" && pkg["carrierName"].as_str().is_none() {
        missing.push("carrierName");
    }
    let items = pkg["orderItems"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        missing.push("orderItems");
    }
    if !missing.is_empty() {
        return invalid(&format!("Missing required fields: {}", missing.join(", ")));
    }
    if pkg["shipDate"].as_str().and_then(parse_ts).is_none() {
        return invalid("shipDate is not a valid ISO 8601 date.");
    }
    let mut st = sb.amazon.borrow_mut();
    let Some(oi) = st.orders.iter().position(|o| o.id == segs[3]) else {
        return err(404, "NotFound", "Invalid AmazonOrderId.");
    };
    let mut takes = Vec::new();
    for it in &items {
        let (Some(id), Some(qty)) = (it["orderItemId"].as_str(), it["quantity"].as_i64()) else {
            return invalid("orderItems need orderItemId and quantity.");
        };
        let Some(li) = st.orders[oi]
            .lines
            .iter()
            .position(|l| l.order_item_id == id)
        else {
            return invalid(&format!("Invalid orderItemId {id}."));
        };
        takes.push((li, qty));
    }
    let key = (
        segs[3].to_string(),
        pkg["packageReferenceId"].as_str().unwrap_or("").to_string(),
    );
    let seen = st.confirmations.entry(key).or_insert(0);
    *seen += 1;
    let duplicate = *seen > 1;
    if !duplicate {
        let order = &mut st.orders[oi];
        for (li, qty) in takes {
            let l = &mut order.lines[li];
            l.shipped = (l.shipped + qty).min(l.quantity);
        }
        order.status = if order.lines.iter().all(|l| l.shipped >= l.quantity) {
            "Shipped".into()
        } else {
            "PartiallyShipped".into()
        };
        order.updated = super::now();
    }
    drop(st);
    sb.bump(System::AmazonSp, "shipment_confirmations");
    if duplicate {
        sb.bump(System::AmazonSp, "shipment_confirmation_duplicates");
    }
    Resp {
        status: 204,
        content_type: "application/json",
        body: String::new(),
        headers: Vec::new(),
    }
}

fn patch_listing(sb: &Shared, req: &Req, segs: &[&str]) -> Resp {
    let (seller, sku) = (segs[3], super::pct_decode(segs[4]));
    if seller != SELLER_ID {
        return err(
            403,
            "Unauthorized",
            "Access to requested resource is denied.",
        );
    }
    let q = query_pairs(&req.query);
    if param(&q, "marketplaceIds").is_none_or(|m| !m.split(',').any(|m| m == MARKETPLACE_ID)) {
        return invalid("marketplaceIds is required.");
    }
    let Some(body) = json_body(req) else {
        return invalid("Request body is not valid JSON.");
    };
    if body["productType"].as_str().is_none() || !body["patches"].is_array() {
        return invalid("productType and patches are required.");
    }
    let patches = body["patches"].as_array().cloned().unwrap_or_default();
    if let Some(bad) = patches.iter().find(|p| {
        !matches!(
            p["op"].as_str(),
            Some("add" | "replace" | "merge" | "delete")
        ) || !p["path"]
            .as_str()
            .is_some_and(|path| path.starts_with("/attributes/"))
    }) {
        return invalid(&format!("Invalid patch operation: {bad}"));
    }
    let submission = sb.rng.borrow_mut().alnum(32).to_lowercase();
    let refused = |code: &str, message: String, attribute: &str| {
        Resp::json(
            200,
            json!({"sku": sku, "status": "INVALID", "submissionId": submission, "issues": [{
                "code": code, "message": message, "severity": "ERROR",
                "attributeNames": [attribute], "categories": ["INVALID_ATTRIBUTE"]}]}),
        )
    };
    if catalog::by_sku(&sku).is_none() {
        return refused(
            "8541",
            format!("SKU {sku} does not match any listing for this seller."),
            "",
        );
    }
    let (mut quantity, mut price) = (None, None);
    for patch in &patches {
        let value = &patch["value"][0];
        match patch["path"].as_str().unwrap_or_default() {
            "/attributes/fulfillment_availability" => match value["quantity"].as_i64() {
                Some(q) if q >= 0 => quantity = Some(q),
                _ => {
                    return refused(
                        "90220",
                        "'quantity' must be a whole number of 0 or more.".into(),
                        "fulfillment_availability",
                    )
                }
            },
            "/attributes/purchasable_offer" => {
                if value["marketplace_id"] != MARKETPLACE_ID || value["currency"] != "USD" {
                    return refused(
                        "90220",
                        format!("The offer must be for marketplace {MARKETPLACE_ID} in USD."),
                        "purchasable_offer",
                    );
                }
                let amount = &value["our_price"][0]["schedule"][0]["value_with_tax"];
                match amount
                    .as_f64()
                    .and_then(|_| super::parse_cents(&amount.to_string()))
                {
                    Some(cents) if cents > 0 => price = Some(cents),
                    _ => {
                        return refused(
                            "90220",
                            "'our_price' must be a positive amount with at most 2 decimals.".into(),
                            "purchasable_offer",
                        )
                    }
                }
            }
            _ => {}
        }
    }
    {
        let mut st = sb.amazon.borrow_mut();
        let listing = st.listings.entry(sku.clone()).or_default();
        listing.0 = quantity.or(listing.0);
        listing.1 = price.or(listing.1);
    }
    sb.bump(System::AmazonSp, "listing_updates");
    if price.is_some() {
        sb.bump(System::AmazonSp, "price_updates");
    }
    Resp::json(
        200,
        json!({"sku": sku, "status": "ACCEPTED", "submissionId": submission, "issues": []}),
    )
}

/// `POST /_sandbox/amazon/orders`: an order visible to getOrders.
pub fn control_create_order(sb: &Shared, req: &Req) -> Resp {
    let Some(body) = json_body(req) else {
        return invalid("Request body is not valid JSON.");
    };
    let Some(items) = body["items"].as_array().filter(|i| !i.is_empty()) else {
        return invalid("items must be a non-empty array.");
    };
    let mut lines = Vec::new();
    for it in items {
        let (Some(sku), Some(qty)) = (
            it["sku"].as_str(),
            it["quantity"].as_i64().filter(|q| *q > 0),
        ) else {
            return invalid("each item needs sku and a positive quantity.");
        };
        let known = catalog::by_sku(sku);
        let unit = match (&it["price"], known) {
            (Value::Null, Some((_, item))) => item.price_cents,
            (Value::Null, None) => 1000,
            (v, _) => match super::number_cents(v) {
                Some(c) => c,
                None => return invalid("price is invalid."),
            },
        };
        let item_id = sb.rng.borrow_mut().digits(14);
        lines.push(Line {
            order_item_id: item_id,
            sku: sku.to_string(),
            asin: known.map_or_else(|| "B0SBXUNKNOWN".to_string(), |(i, _)| catalog::asin(i)),
            title: known.map_or(sku, |(_, i)| i.title).to_string(),
            quantity: qty,
            unit_cents: unit,
            shipped: 0,
        });
    }
    let id = {
        let mut rng = sb.rng.borrow_mut();
        format!("{}-{}-{}", rng.digits(3), rng.digits(7), rng.digits(7))
    };
    let now = super::now();
    let order = Order {
        id,
        purchase: now,
        updated: now,
        status: body["status"].as_str().unwrap_or("Unshipped").to_string(),
        channel: body["fulfillment_channel"]
            .as_str()
            .unwrap_or("MFN")
            .to_string(),
        buyer_email: body["buyer_email"].as_str().map(String::from),
        address: body.get("address").cloned(),
        lines,
    };
    let out = order_json(&order);
    sb.amazon.borrow_mut().orders.push(order);
    sb.bump(System::AmazonSp, "orders_created");
    Resp::json(201, out)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{client, control, parts, with_sandbox};
    use super::super::SandboxConfig;
    use super::*;

    async fn grant(base: &str) -> String {
        let form = format!(
            "grant_type=refresh_token&refresh_token={}&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}",
            super::super::pct_encode(REFRESH_TOKEN)
        );
        let resp = client()
            .post(format!("{base}/auth/o2/token"))
            .header(
                "content-type",
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body(form)
            .send()
            .await
            .unwrap();
        let (status, _, body) = parts(resp).await;
        assert_eq!(status, 200);
        assert_eq!(body["expires_in"], 3600);
        body["access_token"].as_str().unwrap().to_string()
    }

    #[test]
    fn get_order_and_get_order_items_draw_on_buckets_of_their_own() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            control(
                &base,
                "amazon/orders",
                json!({"items": [{"sku": "CBA_OTF_5", "quantity": 1}]}),
            )
            .await;
            let token = grant(&base).await;
            let url = format!(
                "{base}/orders/v0/orders?MarketplaceIds={MARKETPLACE_ID}&CreatedAfter=2020-01-01T00:00:00Z"
            );
            let (_, _, page) = parts(
                client()
                    .get(&url)
                    .header("x-amz-access-token", &token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            let id = page["payload"]["Orders"][0]["AmazonOrderId"]
                .as_str()
                .unwrap()
                .to_string();
            let call = |path: String| {
                let token = token.clone();
                async move {
                    let resp = client()
                        .get(path)
                        .header("x-amz-access-token", token)
                        .send()
                        .await
                        .unwrap();
                    resp.status().as_u16()
                }
            };
            // getOrderItems' burst of 30 spent, and one more throttled...
            for _ in 0..30 {
                assert_eq!(
                    call(format!("{base}/orders/v0/orders/{id}/orderItems")).await,
                    200
                );
            }
            assert_eq!(
                call(format!("{base}/orders/v0/orders/{id}/orderItems")).await,
                429
            );
            // ... while getOrder still has its own.
            assert_eq!(call(format!("{base}/orders/v0/orders/{id}")).await, 200);
        });
    }

    #[test]
    fn token_paging_and_filter_rules() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            for _ in 0..3 {
                control(
                    &base,
                    "amazon/orders",
                    json!({"items": [{"sku": "CBA_OTF_5", "quantity": 2}]}),
                )
                .await;
            }
            let token = grant(&base).await;
            assert!(token.starts_with("Atza|"));
            let url = format!(
                "{base}/orders/v0/orders?MarketplaceIds={MARKETPLACE_ID}&CreatedAfter=2020-01-01T00:00:00Z&MaxResultsPerPage=2"
            );
            let (status, headers, _) = parts(client().get(&url).send().await.unwrap()).await;
            assert_eq!(status, 403);
            assert!(headers.contains_key("x-amzn-requestid"));
            let (status, _, page1) = parts(
                client()
                    .get(&url)
                    .header("x-amz-access-token", &token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(page1["payload"]["Orders"].as_array().unwrap().len(), 2);
            let next = page1["payload"]["NextToken"].as_str().unwrap();
            let url2 = format!("{url}&NextToken={}", super::super::pct_encode(next));
            let (_, _, page2) = parts(
                client()
                    .get(&url2)
                    .header("x-amz-access-token", &token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(page2["payload"]["Orders"].as_array().unwrap().len(), 1);
            assert!(page2["payload"].get("NextToken").is_none());
            let order_id = page2["payload"]["Orders"][0]["AmazonOrderId"]
                .as_str()
                .unwrap();
            assert_eq!(order_id.len(), 19);
            let (_, _, items) = parts(
                client()
                    .get(format!("{base}/orders/v0/orders/{order_id}/orderItems"))
                    .header("x-amz-access-token", &token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(
                items["payload"]["OrderItems"][0]["ItemPrice"]["Amount"],
                "17.90"
            );
            let both = format!(
                "{base}/orders/v0/orders?MarketplaceIds={MARKETPLACE_ID}&CreatedAfter=2020-01-01T00:00:00Z&LastUpdatedAfter=2020-01-01T00:00:00Z"
            );
            let (status, _, body) = parts(
                client()
                    .get(&both)
                    .header("x-amz-access-token", &token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 400);
            assert_eq!(body["errors"][0]["code"], "InvalidInput");
            let neither = format!("{base}/orders/v0/orders?MarketplaceIds={MARKETPLACE_ID}");
            let (status, _, _) = parts(
                client()
                    .get(&neither)
                    .header("x-amz-access-token", &token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 400);
        });
    }
}
