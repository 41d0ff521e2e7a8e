//! Shopify Admin REST simulator: orders with `Link`/`page_info` paging, fulfillment orders
//! and fulfillments, inventory levels, products and variants (`products.rs`), webhook
//! subscriptions, and the 40-call leaky bucket leaking 2 per second.

mod graphql;
mod orders;
mod paging;
pub mod products;

use super::webhooks::{self, Delivery, Subscriber};
use super::{
    base_url, catalog, header, json_body, param, parse_ts, query_pairs, Sandbox, Shared, System,
};
use chrono::{DateTime, SecondsFormat, Utc};
use omniflow_http::server::{Req, Resp};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// Shop name (`sandbox-shop.myshopify.com`).
pub const SHOP: &str = "sandbox-shop";
/// Admin API access token accepted in `X-Shopify-Access-Token`.
pub const ACCESS_TOKEN: &str = "shpat_sandbox";
/// The API version of deliveries to a subscriber that named none (the version the bodies
/// are written to).
pub const WEBHOOK_VERSION: &str = "2025-07";
/// App secret that signs webhooks.
pub const WEBHOOK_SECRET: &str = "shopify-webhook-secret";
/// Bucket size (Standard plan).
pub const BUCKET_SIZE: f64 = 40.0;
/// Leak rate per second (Standard plan).
pub const LEAK_PER_SEC: f64 = 2.0;

const THROTTLE_MSG: &str =
    "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.";
const NOT_OPEN: &str = "The fulfillment order is not in an open state.";

struct Order {
    id: u64,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    closed: bool,
    cancelled: bool,
    json: Value,
}

struct FoLine {
    id: u64,
    line_item_id: u64,
    inventory_item_id: u64,
    variant_id: u64,
    quantity: i64,
    remaining: i64,
}

struct FulfillmentOrder {
    id: u64,
    order_id: u64,
    created_at: String,
    location_id: u64,
    status: &'static str,
    lines: Vec<FoLine>,
}

/// Shopify state.
pub struct State {
    orders: Vec<Order>,
    fulfillment_orders: Vec<FulfillmentOrder>,
    levels: BTreeMap<(u64, u64), (i64, String)>,
    next_id: u64,
    next_number: u64,
    next_fulfillment: u64,
    bucket_level: f64,
    bucket_at: Instant,
    /// The GraphQL Admin API's calculated-cost bucket.
    graphql: graphql::Bucket,
    /// Products and variants.
    pub catalogue: products::Catalogue,
}

impl State {
    /// Seeds stock levels; ids start from a seed-dependent base.
    pub fn new(rng: &mut super::Rng) -> State {
        let mut levels = BTreeMap::new();
        let ts = shop_ts(super::now());
        for idx in 0..catalog::ITEMS.len() {
            for (loc, _) in catalog::SHOPIFY_LOCATIONS {
                levels.insert(
                    (catalog::shopify_inventory_item_id(idx), loc),
                    (50, ts.clone()),
                );
            }
        }
        State {
            orders: Vec::new(),
            fulfillment_orders: Vec::new(),
            levels,
            next_id: 5_200_000_000_000 + rng.below(1000) * 1000 + 101,
            next_number: 1001,
            next_fulfillment: 4_100_000_000 + rng.below(1000) * 1000,
            bucket_level: 0.0,
            bucket_at: Instant::now(),
            graphql: graphql::Bucket::default(),
            catalogue: products::Catalogue::new(),
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }
}

fn shop_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn errors(status: u16, errors: Value) -> Resp {
    Resp::json(status, json!({ "errors": errors }))
}

fn bucket_header(sb: &Sandbox, level: f64) -> String {
    let cap = BUCKET_SIZE * sb.quota_scale(System::Shopify);
    format!("{}/{}", level.ceil() as u64, cap as u64)
}

/// The 429 answer of a full bucket.
fn throttled(sb: &Sandbox) -> Resp {
    let rate = LEAK_PER_SEC * sb.quota_scale(System::Shopify);
    let cap = BUCKET_SIZE * sb.quota_scale(System::Shopify);
    errors(429, json!(THROTTLE_MSG))
        .header("Retry-After", format!("{:.1}", (1.0 / rate).max(1.0)))
        .header("X-Shopify-Shop-Api-Call-Limit", bucket_header(sb, cap))
}

/// Shopify's answer for an injected status.
pub fn error_status(sb: &Sandbox, status: u16) -> Resp {
    if status == 429 {
        return throttled(sb);
    }
    let msg = match status {
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    errors(status, json!(msg))
}

/// Leaks the bucket and adds one call; `Err` with the 429 when full.
fn take_call(sb: &Sandbox) -> Result<f64, Resp> {
    let scale = sb.quota_scale(System::Shopify);
    let mut st = sb.shopify.borrow_mut();
    let now = Instant::now();
    let leaked = now.duration_since(st.bucket_at).as_secs_f64() * LEAK_PER_SEC * scale;
    st.bucket_at = now;
    st.bucket_level = (st.bucket_level - leaked).max(0.0);
    if st.bucket_level + 1.0 > BUCKET_SIZE * scale + 1e-9 {
        drop(st);
        sb.bump(System::Shopify, "throttled");
        return Err(throttled(sb));
    }
    st.bucket_level += 1.0;
    Ok(st.bucket_level)
}

/// `POST /_sandbox/shopify/graphql_bucket {"available": N}`: the points left in the GraphQL
/// cost bucket now (to rehearse a throttled query).
pub fn control_graphql_bucket(sb: &Shared, req: &Req) -> Resp {
    match json_body(req).and_then(|b| b["available"].as_f64()) {
        Some(points) if (0.0..=graphql::MAXIMUM_AVAILABLE).contains(&points) => {
            sb.shopify.borrow_mut().graphql.set(points);
            Resp::json(200, json!({ "available": points }))
        }
        _ => Resp::json(
            400,
            json!({"error": format!("give {{\"available\": N}} with N from 0 to {}", graphql::MAXIMUM_AVAILABLE)}),
        ),
    }
}

/// Serves `/admin/api/{version}/...`.
pub fn handle(sb: &Shared, req: &Req) -> Resp {
    let rest = req.path.trim_start_matches("/admin/api/");
    let Some((version, resource)) = rest.split_once('/') else {
        return errors(404, json!("Not Found"));
    };
    if !valid_version(version) {
        return errors(404, json!("Not Found"));
    }
    if header(req, "x-shopify-access-token") != Some(ACCESS_TOKEN) {
        return errors(
            401,
            json!("[API] Invalid API key or access token (unrecognized login or wrong password)"),
        );
    }
    // The GraphQL Admin API is limited by query cost, not by the REST call bucket.
    if resource == "graphql.json" {
        if super::routes::find(super::routes::SHOPIFY_GRAPHQL, &req.method, &req.path).is_none() {
            return errors(404, json!("Not Found"));
        }
        return graphql::serve(sb, req)
            .header("X-Shopify-API-Version", version)
            .header("X-Request-Id", sb.rng.borrow_mut().uuid());
    }
    let level = match take_call(sb) {
        Ok(level) => level,
        Err(resp) => return resp,
    };
    let resp = dispatch(sb, req, version, resource);
    resp.header("X-Shopify-Shop-Api-Call-Limit", bucket_header(sb, level))
        .header("X-Shopify-API-Version", version)
        .header("X-Request-Id", sb.rng.borrow_mut().uuid())
}

fn valid_version(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && matches!(
            &v[5..],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
}

fn dispatch(sb: &Shared, req: &Req, version: &str, resource: &str) -> Resp {
    if super::routes::find(super::routes::SHOPIFY, &req.method, &req.path).is_none() {
        return errors(404, json!("Not Found"));
    }
    let segs: Vec<&str> = resource.split('/').collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["orders.json"]) => list_orders(sb, req, version),
        ("GET", ["orders", file]) if file.ends_with(".json") => {
            let id = file.trim_end_matches(".json");
            let st = sb.shopify.borrow();
            match st.orders.iter().find(|o| o.id.to_string() == id) {
                Some(o) => Resp::json(200, json!({"order": o.json})),
                None => errors(404, json!("Not Found")),
            }
        }
        ("GET", ["orders", id, "fulfillment_orders.json"]) => {
            let st = sb.shopify.borrow();
            let fos: Vec<Value> = st
                .fulfillment_orders
                .iter()
                .filter(|f| f.order_id.to_string() == *id)
                .map(fo_json)
                .collect();
            if fos.is_empty() && !st.orders.iter().any(|o| o.id.to_string() == *id) {
                return errors(404, json!("Not Found"));
            }
            Resp::json(200, json!({ "fulfillment_orders": fos }))
        }
        ("POST", ["fulfillments.json"]) => create_fulfillment(sb, req),
        ("GET", ["inventory_levels.json"]) => list_levels(sb, req, version),
        ("POST", ["inventory_levels", "set.json"]) => change_level(sb, req, false),
        ("POST", ["inventory_levels", "adjust.json"]) => change_level(sb, req, true),
        ("GET", ["shop.json"]) => Resp::json(200, json!({ "shop": shop_json() })),
        ("GET", ["products.json"]) => products::list(sb, req, version),
        ("GET", ["products", file]) if file.ends_with(".json") => {
            products::get_product(sb, file.trim_end_matches(".json"))
        }
        ("PUT", ["products", file]) if file.ends_with(".json") => {
            products::put_product(sb, req, file.trim_end_matches(".json"))
        }
        ("GET", ["variants", file]) if file.ends_with(".json") => {
            products::get_variant(sb, file.trim_end_matches(".json"))
        }
        ("PUT", ["variants", file]) if file.ends_with(".json") => {
            products::put_variant(sb, req, file.trim_end_matches(".json"))
        }
        ("POST", ["webhooks.json"]) => subscribe(sb, req, version),
        _ => errors(404, json!("Not Found")),
    }
}

// ---- orders and paging ----

const FILTERS: [&str; 5] = [
    "status",
    "updated_at_min",
    "created_at_min",
    "since_id",
    "updated_at_max",
];

fn list_orders(sb: &Shared, req: &Req, version: &str) -> Resp {
    let pairs = query_pairs(&req.query);
    let limit = match page_limit(&pairs) {
        Ok(n) => n,
        Err(resp) => return resp,
    };
    // Filters: from the request, or frozen in the cursor with the page's side.
    let (filters, cursor) = match paging::filters_or_cursor::<u64>(&pairs, &FILTERS) {
        Ok(found) => found,
        Err(body) => return errors(400, body),
    };
    let status = filters["status"].as_str().unwrap_or("open");
    if !matches!(status, "open" | "closed" | "cancelled" | "any") {
        return errors(400, json!({"status": ["is invalid"]}));
    }
    let mut bounds = Vec::new();
    for key in ["updated_at_min", "created_at_min", "updated_at_max"] {
        match filters[key].as_str().map(parse_ts) {
            Some(None) => return errors(400, json!({ key: ["is invalid"] })),
            Some(Some(t)) => bounds.push((key, t)),
            None => {}
        }
    }
    let since_id: u64 = match filters["since_id"].as_str().map(str::parse) {
        Some(Ok(v)) => v,
        Some(Err(_)) => return errors(400, json!({"since_id": ["is invalid"]})),
        None => 0,
    };
    let st = sb.shopify.borrow();
    let matching: Vec<&Order> = st
        .orders
        .iter()
        .filter(|o| o.id > since_id)
        .filter(|o| match status {
            "open" => !o.closed && !o.cancelled,
            "closed" => o.closed,
            "cancelled" => o.cancelled,
            _ => true,
        })
        .filter(|o| {
            bounds.iter().all(|(key, t)| match *key {
                "updated_at_min" => o.updated >= *t,
                "created_at_min" => o.created >= *t,
                _ => o.updated <= *t,
            })
        })
        .collect();
    let ids: Vec<u64> = matching.iter().map(|o| o.id).collect();
    let (from, to) = paging::window(&ids, cursor.as_ref(), limit);
    let page: Vec<Value> = matching[from..to].iter().map(|o| o.json.clone()).collect();
    let link = paging::link(&ids, (from, to), |side| {
        format!(
            "{}/admin/api/{version}/orders.json?limit={limit}&page_info={}",
            base_url(req),
            paging::encode(&filters, side)
        )
    });
    with_link(Resp::json(200, json!({ "orders": page })), link)
}

/// A list's `limit` (default 50, at most 250), or Shopify's 400.
fn page_limit(pairs: &[(String, String)]) -> Result<usize, Resp> {
    match param(pairs, "limit").map(str::parse::<usize>) {
        None => Ok(50),
        Some(Ok(n)) if (1..=250).contains(&n) => Ok(n),
        Some(_) => Err(errors(400, json!({"limit": ["must be between 1 and 250"]}))),
    }
}

/// `resp` with a `Link` header when there is one.
fn with_link(resp: Resp, link: Option<String>) -> Resp {
    match link {
        Some(link) => resp.header("Link", link),
        None => resp,
    }
}

/// `POST /_sandbox/shopify/orders`: a storefront order, announced by `orders/create`.
pub fn control_create_order(sb: &Shared, req: &Req) -> Resp {
    let Some(body) = json_body(req) else {
        return errors(400, json!({"order": ["body must be a JSON object"]}));
    };
    let order = match orders::build(sb, &body) {
        Ok(o) => o,
        Err(msg) => return errors(422, json!({ "line_items": [msg] })),
    };
    sb.bump(System::Shopify, "orders_created");
    let duplicate = query_pairs(&req.query)
        .iter()
        .any(|(k, v)| k == "duplicate" && v == "true");
    notify(
        sb,
        "orders/create",
        &order,
        duplicate,
        webhooks::delay(&req.query),
    );
    Resp::json(201, json!({ "order": order }))
}

/// Delivers `topic` with `payload` to every Shopify subscriber (twice when `duplicate`),
/// after `delay`.
fn notify(sb: &Shared, topic: &str, payload: &Value, duplicate: bool, delay: std::time::Duration) {
    let body = payload.to_string();
    let signature = webhooks::hmac_b64(WEBHOOK_SECRET.as_bytes(), &[body.as_bytes()]);
    for sub in webhooks::subscribers(sb, System::Shopify, topic) {
        let (webhook_id, event_id) = {
            let mut rng = sb.rng.borrow_mut();
            (rng.uuid(), rng.uuid())
        };
        let headers = vec![
            ("X-Shopify-Topic".to_string(), topic.to_string()),
            ("X-Shopify-Hmac-Sha256".to_string(), signature.clone()),
            (
                "X-Shopify-Shop-Domain".to_string(),
                format!("{SHOP}.myshopify.com"),
            ),
            (
                "X-Shopify-API-Version".to_string(),
                sub.version
                    .clone()
                    .unwrap_or_else(|| WEBHOOK_VERSION.to_string()),
            ),
            ("X-Shopify-Webhook-Id".to_string(), webhook_id),
            ("X-Shopify-Event-Id".to_string(), event_id),
        ];
        let copies = if duplicate { 2 } else { 1 };
        for copy in 0..copies {
            if copy == 1 {
                sb.bump(System::Shopify, "webhook_duplicates_sent");
            }
            webhooks::send(
                sb,
                Delivery {
                    system: System::Shopify,
                    topic: topic.to_string(),
                    signing: webhooks::Signing::Fixed,
                    url: sub.url.clone(),
                    headers: headers.clone(),
                    body: body.clone(),
                    delay,
                    event_time: Some("X-Shopify-Triggered-At"),
                },
            );
        }
    }
}

fn subscribe(sb: &Shared, req: &Req, version: &str) -> Resp {
    let Some(body) = json_body(req) else {
        return errors(
            400,
            json!({"webhook": ["Required parameter missing or invalid"]}),
        );
    };
    let hook = &body["webhook"];
    let (Some(topic), Some(address)) = (hook["topic"].as_str(), hook["address"].as_str()) else {
        return errors(
            422,
            json!({"address": ["can't be blank"], "topic": ["can't be blank"]}),
        );
    };
    let id = sb.shopify.borrow_mut().id();
    webhooks::subscribe(
        sb,
        Subscriber {
            system: System::Shopify,
            topic: topic.to_string(),
            url: address.to_string(),
            secret: None,
            version: Some(version.to_string()),
        },
    );
    let ts = shop_ts(super::now());
    Resp::json(
        201,
        json!({"webhook": {"id": id, "address": address, "topic": topic,
            "format": hook["format"].as_str().unwrap_or("json"), "created_at": ts,
            "updated_at": ts, "api_version": version, "fields": [], "metafield_namespaces": [],
            "private_metafield_namespaces": []}}),
    )
}

// ---- fulfillment ----

/// `GET shop.json`: the sandbox shop, every field of the Shop resource.
fn shop_json() -> Value {
    let created = "2024-01-02T10:00:00-05:00";
    json!({
        "id": SHOP_ID, "name": "Sandbox Shop", "email": "owner@sandbox-shop.example",
        "domain": format!("{SHOP}.myshopify.com"), "province": "New York", "country": "US",
        "address1": "55 Water St", "zip": "10041", "city": "New York", "source": null,
        "phone": null, "latitude": 40.7033, "longitude": -74.0115, "primary_locale": "en",
        "address2": null, "created_at": created, "updated_at": created, "country_code": "US",
        "country_name": "United States", "currency": "USD",
        "customer_email": "support@sandbox-shop.example", "timezone": "(GMT-05:00) Eastern Time (US & Canada)",
        "iana_timezone": "America/New_York", "shop_owner": "Sandbox Owner",
        "money_format": "${{amount}}", "money_with_currency_format": "${{amount}} USD",
        "weight_unit": "kg", "province_code": "NY", "taxes_included": false,
        "auto_configure_tax_inclusivity": null, "tax_shipping": null, "county_taxes": true,
        "plan_display_name": "Basic", "plan_name": "basic", "has_discounts": false,
        "has_gift_cards": false, "myshopify_domain": format!("{SHOP}.myshopify.com"),
        "google_apps_domain": null, "google_apps_login_enabled": null,
        "money_in_emails_format": "${{amount}}",
        "money_with_currency_in_emails_format": "${{amount}} USD",
        "eligible_for_payments": true, "requires_extra_payments_agreement": false,
        "password_enabled": false, "has_storefront": true, "finances": true,
        "primary_location_id": catalog::SHOPIFY_LOCATIONS[0].0, "checkout_api_supported": true,
        "multi_location_enabled": true, "setup_required": false, "pre_launch_enabled": false,
        "enabled_presentment_currencies": ["USD"], "transactional_sms_disabled": false,
        "marketing_sms_consent_enabled_at_checkout": false, "force_ssl": true,
    })
}

/// The shop's id, also each fulfillment order's `shop_id`.
const SHOP_ID: u64 = 548_380_009;

fn fo_json(fo: &FulfillmentOrder) -> Value {
    let name = catalog::SHOPIFY_LOCATIONS
        .iter()
        .find(|(id, _)| *id == fo.location_id)
        .map_or("Warehouse", |(_, name)| name);
    json!({
        "id": fo.id, "shop_id": SHOP_ID, "order_id": fo.order_id,
        "assigned_location_id": fo.location_id,
        "assigned_location": {"address1": "55 Water St", "address2": null, "city": "New York",
            "country_code": "US", "location_id": fo.location_id, "name": name, "phone": null,
            "province": "New York", "zip": "10041"},
        "status": fo.status, "request_status": "unsubmitted",
        "supported_actions": if fo.status == "closed" { json!([]) } else { json!(["create_fulfillment"]) },
        "destination": Value::Null, "fulfill_at": null, "fulfill_by": null,
        "fulfillment_holds": [], "international_duties": null,
        "delivery_method": {"id": fo.id + 1, "method_type": "shipping", "min_delivery_date_time": null,
            "max_delivery_date_time": null},
        "created_at": fo.created_at, "updated_at": fo.created_at, "merchant_requests": [],
        "line_items": fo.lines.iter().map(|l| json!({
            "id": l.id, "shop_id": SHOP_ID, "fulfillment_order_id": fo.id, "line_item_id": l.line_item_id,
            "inventory_item_id": l.inventory_item_id, "variant_id": l.variant_id,
            "quantity": l.quantity, "fulfillable_quantity": l.remaining})).collect::<Vec<_>>(),
    })
}

/// What a fulfilment takes: each fulfillment order with its lines and quantities
/// (`None`: all that is left), as both APIs name them.
pub(crate) type Groups = Vec<(Option<u64>, Option<Vec<(Option<u64>, i64)>>)>;

/// Why a fulfilment was refused.
pub(crate) enum Refused {
    /// A fulfillment order the shop does not have.
    NotFound,
    /// A fulfillment order that is closed, or a line it cannot fulfil.
    NotOpen,
}

/// Fulfils the groups with the tracking (`number`, `company`, `url`), all or nothing, and
/// returns the fulfilment as REST shows it.
pub(crate) fn fulfil(sb: &Shared, groups: &Groups, tracking: &Value) -> Result<Value, Refused> {
    // Validate everything first, then apply: all or nothing.
    let mut plan: Vec<(usize, Vec<(usize, i64)>)> = Vec::new();
    {
        let st = sb.shopify.borrow();
        for (fo_id, lines) in groups {
            let Some(fo_idx) =
                fo_id.and_then(|id| st.fulfillment_orders.iter().position(|f| f.id == id))
            else {
                return Err(Refused::NotFound);
            };
            let fo = &st.fulfillment_orders[fo_idx];
            // A fulfillment order named twice would be fulfilled twice over.
            if fo.status == "closed"
                || fo.lines.iter().all(|l| l.remaining == 0)
                || plan.iter().any(|(i, _)| *i == fo_idx)
            {
                return Err(Refused::NotOpen);
            }
            let mut takes = Vec::new();
            match lines {
                None => {
                    for (i, l) in fo.lines.iter().enumerate() {
                        if l.remaining > 0 {
                            takes.push((i, l.remaining));
                        }
                    }
                }
                Some(lines) => {
                    for (id, qty) in lines {
                        let found = id.and_then(|id| fo.lines.iter().position(|l| l.id == id));
                        // A line named twice takes its quantities together.
                        let taken: i64 = takes
                            .iter()
                            .filter(|(t, _)| Some(*t) == found)
                            .map(|(_, q)| q)
                            .sum();
                        match found {
                            Some(i)
                                if *qty > 0
                                    && taken.saturating_add(*qty) <= fo.lines[i].remaining =>
                            {
                                takes.push((i, *qty))
                            }
                            _ => return Err(Refused::NotOpen),
                        }
                    }
                }
            }
            plan.push((fo_idx, takes));
        }
    }
    let now = super::now();
    let mut st = sb.shopify.borrow_mut();
    let fulfillment_id = st.next_fulfillment;
    st.next_fulfillment += 1;
    let mut order_id = 0;
    let mut location_id = 0;
    let mut lines_out = Vec::new();
    for (fo_idx, takes) in plan {
        let fo = &mut st.fulfillment_orders[fo_idx];
        order_id = fo.order_id;
        location_id = fo.location_id;
        for (i, qty) in takes {
            fo.lines[i].remaining -= qty;
            lines_out.push((fo.lines[i].line_item_id, qty));
        }
        fo.status = if fo.lines.iter().all(|l| l.remaining == 0) {
            "closed"
        } else {
            "in_progress"
        };
    }
    let all_done = st
        .fulfillment_orders
        .iter()
        .filter(|f| f.order_id == order_id)
        .all(|f| f.status == "closed");
    let Some(order) = st.orders.iter_mut().find(|o| o.id == order_id) else {
        return Err(Refused::NotFound);
    };
    let count = order.json["fulfillments"].as_array().map_or(0, Vec::len);
    let items: Vec<Value> = order.json["line_items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|li| {
            let (_, q) = lines_out
                .iter()
                .find(|(id, _)| li["id"].as_u64() == Some(*id))?;
            let mut li = li;
            li["quantity"] = json!(q);
            Some(li)
        })
        .collect();
    let fulfillment = json!({
        "id": fulfillment_id, "order_id": order_id, "status": "success",
        "admin_graphql_api_id": format!("gid://shopify/Fulfillment/{fulfillment_id}"),
        "origin_address": null, "receipt": {}, "service": "manual", "shipment_status": null,
        "created_at": shop_ts(now), "updated_at": shop_ts(now), "location_id": location_id,
        "name": format!("{}.{}", order.json["name"].as_str().unwrap_or("#0"), count + 1),
        "tracking_company": tracking["company"], "tracking_number": tracking["number"],
        "tracking_numbers": if tracking["number"].is_null() { json!([]) } else { json!([tracking["number"]]) },
        "tracking_url": tracking["url"],
        "tracking_urls": if tracking["url"].is_null() { json!([]) } else { json!([tracking["url"]]) },
        "line_items": items,
    });
    for li in order.json["line_items"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if let Some((_, q)) = lines_out
            .iter()
            .find(|(id, _)| li["id"].as_u64() == Some(*id))
        {
            let left = li["fulfillable_quantity"].as_i64().unwrap_or(0) - q;
            li["fulfillable_quantity"] = json!(left);
            li["fulfillment_status"] = json!(if left == 0 { "fulfilled" } else { "partial" });
        }
    }
    if let Some(list) = order.json["fulfillments"].as_array_mut() {
        list.push(fulfillment.clone());
    }
    order.json["fulfillment_status"] = json!(if all_done { "fulfilled" } else { "partial" });
    order.updated = now;
    order.json["updated_at"] = json!(shop_ts(now));
    drop(st);
    sb.bump(System::Shopify, "fulfillments");
    Ok(fulfillment)
}

fn create_fulfillment(sb: &Shared, req: &Req) -> Resp {
    let Some(body) = json_body(req) else {
        return errors(
            400,
            json!({"fulfillment": ["Required parameter missing or invalid"]}),
        );
    };
    let f = &body["fulfillment"];
    let Some(listed) = f["line_items_by_fulfillment_order"]
        .as_array()
        .filter(|g| !g.is_empty())
    else {
        return errors(
            400,
            json!({"line_items_by_fulfillment_order": ["Required parameter missing or invalid"]}),
        );
    };
    let groups: Groups = listed
        .iter()
        .map(|g| {
            let lines = g["fulfillment_order_line_items"].as_array().map(|lines| {
                lines
                    .iter()
                    .map(|l| (l["id"].as_u64(), l["quantity"].as_i64().unwrap_or(0)))
                    .collect()
            });
            (g["fulfillment_order_id"].as_u64(), lines)
        })
        .collect();
    match fulfil(sb, &groups, &f["tracking_info"]) {
        Ok(fulfillment) => Resp::json(201, json!({ "fulfillment": fulfillment })),
        Err(Refused::NotFound) => errors(404, json!("Not Found")),
        Err(Refused::NotOpen) => {
            sb.bump(System::Shopify, "fulfillment_rejections");
            errors(422, json!([NOT_OPEN]))
        }
    }
}

// ---- inventory ----

fn id_list(s: Option<&str>) -> Option<Vec<u64>> {
    s.map(|s| s.split(',').filter_map(|p| p.trim().parse().ok()).collect())
}

fn list_levels(sb: &Shared, req: &Req, version: &str) -> Resp {
    let pairs = query_pairs(&req.query);
    let limit = match page_limit(&pairs) {
        Ok(n) => n,
        Err(resp) => return resp,
    };
    let (filters, cursor) = match paging::filters_or_cursor::<(u64, u64)>(
        &pairs,
        &["inventory_item_ids", "location_ids"],
    ) {
        Ok(found) => found,
        Err(body) => return errors(400, body),
    };
    let items = id_list(filters["inventory_item_ids"].as_str());
    let locations = id_list(filters["location_ids"].as_str());
    if items.is_none() && locations.is_none() {
        return errors(
            422,
            json!("inventory_item_ids, location_ids, or both are required."),
        );
    }
    let st = sb.shopify.borrow();
    let matching: Vec<_> = st
        .levels
        .iter()
        .filter(|((i, l), _)| {
            items.as_ref().is_none_or(|v| v.contains(i))
                && locations.as_ref().is_none_or(|v| v.contains(l))
        })
        .collect();
    let keys: Vec<(u64, u64)> = matching.iter().map(|(k, _)| **k).collect();
    let (from, to) = paging::window(&keys, cursor.as_ref(), limit);
    let levels: Vec<Value> = matching[from..to]
        .iter()
        .map(|((i, l), (a, ts))| level_json(*i, *l, *a, ts))
        .collect();
    let link = paging::link(&keys, (from, to), |side| {
        format!(
            "{}/admin/api/{version}/inventory_levels.json?limit={limit}&page_info={}",
            base_url(req),
            paging::encode(&filters, side)
        )
    });
    with_link(Resp::json(200, json!({ "inventory_levels": levels })), link)
}

fn level_json(item: u64, location: u64, available: i64, ts: &str) -> Value {
    json!({"inventory_item_id": item, "location_id": location, "available": available,
        "updated_at": ts, "admin_graphql_api_id": format!("gid://shopify/InventoryLevel/{location}?inventory_item_id={item}")})
}

fn change_level(sb: &Shared, req: &Req, adjust: bool) -> Resp {
    let Some(body) = json_body(req) else {
        return errors(
            400,
            json!({"inventory_level": ["Required parameter missing or invalid"]}),
        );
    };
    let field = if adjust {
        "available_adjustment"
    } else {
        "available"
    };
    let (Some(item), Some(location), Some(value)) = (
        body["inventory_item_id"].as_u64(),
        body["location_id"].as_u64(),
        body[field].as_i64(),
    ) else {
        return errors(
            400,
            json!({ field: ["Required parameter missing or invalid"] }),
        );
    };
    if !(0..catalog::ITEMS.len()).any(|i| catalog::shopify_inventory_item_id(i) == item) {
        return errors(422, json!(["Inventory item does not exist"]));
    }
    if !catalog::SHOPIFY_LOCATIONS
        .iter()
        .any(|(l, _)| *l == location)
    {
        return errors(422, json!(["Location does not exist"]));
    }
    let ts = shop_ts(super::now());
    let mut st = sb.shopify.borrow_mut();
    let entry = st.levels.entry((item, location)).or_insert((0, ts.clone()));
    let Some(level) = (if adjust {
        entry.0.checked_add(value)
    } else {
        Some(value)
    }) else {
        drop(st);
        return errors(422, json!({ field: ["is out of range"] }));
    };
    entry.0 = level;
    entry.1 = ts;
    let out = level_json(item, location, entry.0, &entry.1);
    drop(st);
    sb.bump(System::Shopify, "inventory_updates");
    Resp::json(200, json!({ "inventory_level": out }))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{client, control, parts, with_sandbox};
    use super::super::SandboxConfig;
    use super::*;
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn get(base: &str, path: &str) -> reqwest::RequestBuilder {
        client()
            .get(format!("{base}/admin/api/2026-04/{path}"))
            .header("X-Shopify-Access-Token", ACCESS_TOKEN)
    }

    fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
        link(headers, "next")
    }

    /// The URL of the `rel` link in a `Link` header.
    fn link(headers: &reqwest::header::HeaderMap, rel: &str) -> Option<String> {
        let value = headers.get("link")?.to_str().ok()?;
        value.split(", ").find_map(|part| {
            let (url, attr) = part.split_once("; ")?;
            (attr == format!("rel=\"{rel}\""))
                .then(|| url.trim_matches(|c| c == '<' || c == '>').to_string())
        })
    }

    #[test]
    fn paging_follows_link_and_rejects_filters_with_page_info() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            for _ in 0..5 {
                control(
                    &base,
                    "shopify/orders",
                    json!({"line_items": [{"sku": "TSHIRT-039-RED-M", "quantity": 1}]}),
                )
                .await;
            }
            let (status, headers, body) = parts(
                get(&base, "orders.json?status=any&limit=2")
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(body["orders"].as_array().unwrap().len(), 2);
            let mut ids: Vec<u64> = body["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_u64().unwrap())
                .collect();
            let mut next = next_link(&headers);
            let mut pages = 1;
            while let Some(url) = next {
                let resp = client()
                    .get(&url)
                    .header("X-Shopify-Access-Token", ACCESS_TOKEN)
                    .send()
                    .await
                    .unwrap();
                let (status, headers, body) = parts(resp).await;
                assert_eq!(status, 200);
                ids.extend(
                    body["orders"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|o| o["id"].as_u64().unwrap()),
                );
                next = next_link(&headers);
                pages += 1;
                let ids_now: Vec<u64> = body["orders"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["id"].as_u64().unwrap())
                    .collect();
                // A later page links back to the one before it.
                let previous = link(&headers, "previous").expect("rel=previous");
                let resp = client()
                    .get(&previous)
                    .header("X-Shopify-Access-Token", ACCESS_TOKEN)
                    .send()
                    .await
                    .unwrap();
                let (_, back_headers, back) = parts(resp).await;
                let back_ids: Vec<u64> = back["orders"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["id"].as_u64().unwrap())
                    .collect();
                let before = ids.len() - ids_now.len();
                assert_eq!(back_ids, ids[before - 2..before], "the page before");
                assert_eq!(
                    link(&back_headers, "previous").is_some(),
                    pages > 2,
                    "the first page has no previous"
                );
                if pages == 2 {
                    let bad = format!("{url}&status=any");
                    let resp = client()
                        .get(&bad)
                        .header("X-Shopify-Access-Token", ACCESS_TOKEN)
                        .send()
                        .await
                        .unwrap();
                    let (status, _, body) = parts(resp).await;
                    assert_eq!(status, 400);
                    assert!(body["errors"]["page_info"][0]
                        .as_str()
                        .unwrap()
                        .contains("status"));
                }
            }
            assert_eq!(pages, 3);
            let mut sorted = ids.clone();
            sorted.dedup();
            assert_eq!(sorted.len(), 5);
            let order = &body_of_first(&base, ids[0]).await;
            assert_eq!(order["order"]["line_items"][0]["price"], "22.00");
        });
    }

    async fn body_of_first(base: &str, id: u64) -> Value {
        parts(
            get(base, &format!("orders/{id}.json"))
                .send()
                .await
                .unwrap(),
        )
        .await
        .2
    }

    #[test]
    fn leaky_bucket_answers_429_with_retry_after() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            let mut throttled = None;
            for _ in 0..45 {
                let resp = get(&base, "products.json").send().await.unwrap();
                assert!(resp.headers().contains_key("x-shopify-shop-api-call-limit"));
                if resp.status().as_u16() == 429 {
                    throttled = Some(parts(resp).await);
                    break;
                }
            }
            let (_, headers, body) = throttled.expect("a 429 after 40 rapid calls");
            let retry: f64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry > 0.0);
            assert_eq!(headers["x-shopify-shop-api-call-limit"], "40/40");
            assert!(body["errors"]
                .as_str()
                .unwrap()
                .starts_with("Exceeded 2 calls per second"));
        });
    }

    #[test]
    fn fulfilment_twice_is_rejected() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            let order = control(
                &base,
                "shopify/orders",
                json!({"line_items": [{"sku": "SOCK-014-GRY-M", "quantity": 2}], "tax_rate": 0.1}),
            )
            .await;
            assert_eq!(order["order"]["total_price"], "24.18");
            let id = order["order"]["id"].as_u64().unwrap();
            let fos = parts(
                get(&base, &format!("orders/{id}/fulfillment_orders.json"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
            .2;
            let fo_id = fos["fulfillment_orders"][0]["id"].as_u64().unwrap();
            let body = json!({"fulfillment": {"line_items_by_fulfillment_order": [{"fulfillment_order_id": fo_id}]}}).to_string();
            let post = || {
                client()
                    .post(format!("{base}/admin/api/2026-04/fulfillments.json"))
                    .header("X-Shopify-Access-Token", ACCESS_TOKEN)
                    .body(body.clone())
            };
            assert_eq!(post().send().await.unwrap().status().as_u16(), 201);
            let (status, _, err) = parts(post().send().await.unwrap()).await;
            assert_eq!(status, 422);
            assert_eq!(err["errors"][0], NOT_OPEN);
        });
    }

    #[test]
    fn webhook_carries_a_verifiable_hmac() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            control(
                &base,
                "webhooks",
                json!({"system": "shopify", "topic": "orders/create", "url": format!("http://127.0.0.1:{port}/hook")}),
            )
            .await;
            control(
                &base,
                "shopify/orders",
                json!({"line_items": [{"sku": "CAP-009-BLK-XL", "quantity": 1}]}),
            )
            .await;
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let (head, body) = loop {
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(pos) = text.find("\r\n\r\n") {
                    let head = text[..pos].to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    if buf.len() >= pos + 4 + len {
                        break (
                            text[..pos].to_string(),
                            buf[pos + 4..pos + 4 + len].to_vec(),
                        );
                    }
                }
            };
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            let sig = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.eq_ignore_ascii_case("x-shopify-hmac-sha256")).then(|| v.trim().to_string())
                })
                .expect("signature header");
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
            mac.update(&body);
            let expected =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            assert_eq!(sig, expected);
            assert!(head
                .to_lowercase()
                .contains("x-shopify-topic: orders/create"));
            let parsed: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(parsed["line_items"][0]["sku"], "CAP-009-BLK-XL");
        });
    }

    use hmac::{Hmac, Mac};
}
