//! OData V4 ERP simulator shaped like the CAP `SalesService` peer: `Products` and
//! `SalesOrders` (with `items`), query options, server-driven paging with a relative
//! `@odata.nextLink`, ETags with `If-Match`, deep insert, the bound `confirm` action, basic
//! auth, and an optional CSRF token requirement.

mod collection;
mod filter;

use super::{catalog, cents_number, header, json_body, number_cents, pct_decode, Shared, System};
use base64::Engine;
use omniflow_http::server::{Req, Resp};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Basic-auth user.
pub const USER: &str = "connector";
/// Basic-auth password.
pub const PASSWORD: &str = "secret";
/// Service root path.
pub const ROOT: &str = "/odata/v4/sales";

const STATUSES: [&str; 4] = ["NEW", "CONFIRMED", "SHIPPED", "CANCELLED"];

struct Product {
    id: String,
    name: String,
    price_cents: i64,
    currency: String,
    stock: i64,
    modified_at: String,
}

struct Item {
    id: String,
    product_id: String,
    quantity: i64,
    price_cents: i64,
}

struct SalesOrder {
    id: String,
    order_no: Option<String>,
    customer: String,
    status: String,
    currency: String,
    /// Delivery: carrier, tracking number and ship time (set when the order ships).
    carrier: Option<String>,
    tracking_number: Option<String>,
    shipped_at: Option<String>,
    created_at: String,
    modified_at: String,
    items: Vec<Item>,
}

impl SalesOrder {
    fn total(&self) -> i64 {
        self.items.iter().map(|i| i.price_cents * i.quantity).sum()
    }
}

/// OData ERP state.
pub struct State {
    products: BTreeMap<String, Product>,
    orders: Vec<SalesOrder>,
    csrf_required: bool,
    csrf_tokens: Vec<String>,
    last_ts: String,
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

impl State {
    /// The catalogue's items as products with 100 in stock.
    pub fn new() -> State {
        let mut st = State {
            products: BTreeMap::new(),
            orders: Vec::new(),
            csrf_required: false,
            csrf_tokens: Vec::new(),
            last_ts: String::new(),
        };
        for item in catalog::ITEMS {
            let ts = st.stamp();
            st.products.insert(
                item.item_code.to_string(),
                Product {
                    id: item.item_code.to_string(),
                    name: item.title.to_string(),
                    price_cents: item.price_cents,
                    currency: "USD".into(),
                    stock: 100,
                    modified_at: ts,
                },
            );
        }
        st
    }

    /// A timestamp strictly later than the previous one (so ETags always change).
    fn stamp(&mut self) -> String {
        let mut t = super::now();
        loop {
            let s = super::ts_millis(t);
            if s > self.last_ts {
                self.last_ts = s.clone();
                return s;
            }
            t += chrono::Duration::milliseconds(1);
        }
    }
}

fn error(status: u16, code: &str, message: &str, target: Option<&str>) -> Resp {
    let mut e = json!({"code": code, "message": message, "@Common.numericSeverity": 4});
    if let Some(t) = target {
        e["target"] = json!(t);
    }
    Resp::json(status, json!({ "error": e }))
}

/// The OData answer for an injected status.
pub fn error_status(status: u16) -> Resp {
    let msg = match status {
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let resp = error(status, &status.to_string(), msg, None);
    if status == 429 {
        resp.header("Retry-After", "1")
    } else {
        resp
    }
}

fn etag(ts: &str) -> String {
    format!("W/\"{ts}\"")
}

fn product_json(p: &Product) -> Value {
    json!({"ID": p.id, "name": p.name, "price": cents_number(p.price_cents), "currency": p.currency,
        "stock": p.stock, "modifiedAt": p.modified_at, "@odata.etag": etag(&p.modified_at)})
}

fn item_json(o: &SalesOrder, i: &Item) -> Value {
    json!({"ID": i.id, "parent_ID": o.id, "product_ID": i.product_id, "quantity": i.quantity,
        "price": cents_number(i.price_cents)})
}

fn order_json(o: &SalesOrder, items: bool) -> Value {
    let mut v = json!({"ID": o.id, "orderNo": o.order_no, "customer": o.customer, "status": o.status,
        "total": cents_number(o.total()), "currency": o.currency, "carrier": o.carrier,
        "trackingNumber": o.tracking_number, "shippedAt": o.shipped_at, "createdAt": o.created_at,
        "modifiedAt": o.modified_at, "@odata.etag": etag(&o.modified_at)});
    if items {
        v["items"] = json!(o.items.iter().map(|i| item_json(o, i)).collect::<Vec<_>>());
    }
    v
}

/// Serves `/odata/v4/sales/...`.
pub fn handle(sb: &Shared, req: &Req) -> Resp {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    if header(req, "authorization") != Some(expected.as_str()) {
        return error(401, "401", "Unauthorized", None)
            .header("WWW-Authenticate", "Basic realm=\"Users\"");
    }
    let fetch = header(req, "x-csrf-token").is_some_and(|t| t.eq_ignore_ascii_case("fetch"));
    if req.method != "GET" {
        let st = sb.odata.borrow();
        let valid =
            header(req, "x-csrf-token").is_some_and(|t| st.csrf_tokens.iter().any(|k| k == t));
        if st.csrf_required && !valid {
            return error(403, "403", "CSRF token validation failed", None)
                .header("x-csrf-token", "Required");
        }
    }
    let rest = req.path[ROOT.len()..].trim_start_matches('/');
    let resp = route(sb, req, rest);
    if fetch && req.method == "GET" {
        let token = sb.rng.borrow_mut().alnum(24);
        sb.odata.borrow_mut().csrf_tokens.push(token.clone());
        return resp.header("x-csrf-token", token);
    }
    resp
}

fn route(sb: &Shared, req: &Req, rest: &str) -> Resp {
    let rest = pct_decode(rest);
    let (entity_part, action) = match rest.split_once('/') {
        Some((e, a)) => (e.to_string(), Some(a.to_string())),
        None => (rest.clone(), None),
    };
    let (set, key) = match entity_part.split_once('(') {
        Some((s, k)) => (s.to_string(), Some(k.trim_end_matches(')').to_string())),
        None => (entity_part.clone(), None),
    };
    let key = key.map(|k| {
        let k = k.strip_prefix("ID=").unwrap_or(&k).to_string();
        k.trim_matches('\'').to_string()
    });
    let method = req.method.as_str();
    match (method, set.as_str(), key, action.as_deref()) {
        ("GET", "", None, None) => Resp::json(
            200,
            json!({"@odata.context": "$metadata", "value": [
                {"name": "Products", "url": "Products"}, {"name": "SalesOrders", "url": "SalesOrders"},
                {"name": "SalesOrderItems", "url": "SalesOrderItems"}]}),
        ),
        ("GET", "Products" | "SalesOrders", None, None) => collection::read(sb, req, &set, false),
        ("GET", "Products" | "SalesOrders", None, Some("$count")) => {
            collection::read(sb, req, &set, true)
        }
        ("GET", "Products", Some(k), None) => {
            let st = sb.odata.borrow();
            match st.products.get(&k) {
                Some(p) => entity_resp(200, "Products", product_json(p), &p.modified_at),
                None => not_found(),
            }
        }
        ("GET", "SalesOrders", Some(k), None) => {
            let expand = query(req).contains_key("$expand");
            let st = sb.odata.borrow();
            match st.orders.iter().find(|o| o.id == k) {
                Some(o) => entity_resp(200, "SalesOrders", order_json(o, expand), &o.modified_at),
                None => not_found(),
            }
        }
        ("POST", "SalesOrders", None, None) => create_order(sb, req),
        ("PATCH", "SalesOrders" | "Products", Some(k), None) => patch(sb, req, &set, &k),
        ("POST", "SalesOrders", Some(k), Some("SalesService.confirm" | "confirm")) => {
            confirm(sb, req, &k)
        }
        _ => not_found(),
    }
}

fn not_found() -> Resp {
    error(404, "404", "Not Found", None)
}

fn entity_resp(status: u16, set: &str, mut body: Value, ts: &str) -> Resp {
    body["@odata.context"] = json!(format!("$metadata#{set}/$entity"));
    Resp::json(status, body).header("ETag", etag(ts))
}

fn query(req: &Req) -> BTreeMap<String, String> {
    // Split on '&' before decoding so encoded ampersands inside values survive.
    req.query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (pct_decode(k), pct_decode(v)),
            None => (pct_decode(p), String::new()),
        })
        .collect()
}

// ---- $filter ----

fn bad_request(msg: &str) -> Resp {
    error(400, "400", msg, None)
}

fn validation(errors: Vec<(String, String, String)>) -> Resp {
    if errors.len() == 1 {
        let (code, target, message) = &errors[0];
        return error(400, code, message, Some(target));
    }
    let details: Vec<Value> = errors
        .into_iter()
        .map(|(code, target, message)| {
            json!({"code": code, "message": message, "target": target, "@Common.numericSeverity": 4})
        })
        .collect();
    Resp::json(
        400,
        json!({"error": {"code": "MULTIPLE_ERRORS", "message": "Multiple errors occurred, see details below.",
            "details": details}}),
    )
}

fn create_order(sb: &Shared, req: &Req) -> Resp {
    let Some(body) = json_body(req) else {
        return bad_request("Invalid JSON body");
    };
    let mut errors: Vec<(String, String, String)> = Vec::new();
    let customer = body["customer"].as_str().filter(|c| !c.trim().is_empty());
    if customer.is_none() {
        errors.push((
            "ASSERT_MANDATORY".into(),
            "customer".into(),
            "Provide the missing value.".into(),
        ));
    }
    let status = body["status"].as_str().unwrap_or("NEW");
    if !STATUSES.contains(&status) {
        errors.push((
            "ASSERT_ENUM".into(),
            "status".into(),
            format!("Value \"{status}\" is invalid according to enum declaration {{\"NEW\", \"CONFIRMED\", \"CANCELLED\"}}"),
        ));
    }
    let raw_items = match &body["items"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a.clone(),
        _ => return bad_request("items must be an array"),
    };
    for (i, it) in raw_items.iter().enumerate() {
        if it["product_ID"].as_str().is_none() {
            errors.push((
                "ASSERT_MANDATORY".into(),
                format!("items[{i}]/product_ID"),
                "Provide the missing value.".into(),
            ));
        }
        match it["quantity"].as_i64() {
            None => errors.push((
                "ASSERT_MANDATORY".into(),
                format!("items[{i}]/quantity"),
                "Provide the missing value.".into(),
            )),
            Some(q) if !(1..=10_000).contains(&q) => errors.push((
                "ASSERT_RANGE".into(),
                format!("items[{i}]/quantity"),
                format!("Value {q} is not in specified range [1, 10000]"),
            )),
            Some(_) => {}
        }
    }
    if !errors.is_empty() {
        return validation(errors);
    }
    let mut st = sb.odata.borrow_mut();
    let mut items = Vec::new();
    for it in &raw_items {
        let pid = it["product_ID"].as_str().unwrap_or_default();
        let Some(p) = st.products.get(pid) else {
            return error(
                400,
                "400",
                &format!("Product {pid} not found"),
                Some("items/product_ID"),
            );
        };
        let price = match &it["price"] {
            Value::Null => p.price_cents,
            v => match number_cents(v) {
                Some(c) => c,
                None => return error(400, "400", "Invalid price", Some("items/price")),
            },
        };
        let id = sb.rng.borrow_mut().uuid();
        items.push(Item {
            id,
            product_id: pid.to_string(),
            quantity: it["quantity"].as_i64().unwrap_or(1),
            price_cents: price,
        });
    }
    let order_no = body["orderNo"].as_str().map(String::from);
    let duplicate = order_no
        .as_ref()
        .is_some_and(|n| st.orders.iter().any(|o| o.order_no.as_ref() == Some(n)));
    let ts = st.stamp();
    let order = SalesOrder {
        id: sb.rng.borrow_mut().uuid(),
        order_no,
        customer: customer.unwrap_or_default().to_string(),
        status: status.to_string(),
        currency: body["currency"].as_str().unwrap_or("USD").to_string(),
        carrier: None,
        tracking_number: None,
        shipped_at: None,
        created_at: ts.clone(),
        modified_at: ts,
        items,
    };
    let out = order_json(&order, true);
    let (id, ts) = (order.id.clone(), order.modified_at.clone());
    st.orders.push(order);
    drop(st);
    sb.bump(System::Odata, "sales_orders_created");
    if duplicate {
        sb.bump(System::Odata, "duplicates_received");
    }
    entity_resp(201, "SalesOrders", out, &ts).header("Location", format!("SalesOrders({id})"))
}

/// Checks `If-Match` against the current ETag.
fn precondition(sb: &Shared, req: &Req, current: &str) -> Option<Resp> {
    match header(req, "if-match") {
        None => {
            sb.bump(System::Odata, "precondition_failures");
            Some(error(428, "428", "Precondition Required", None))
        }
        Some("*") => None,
        Some(tag) if tag == etag(current) || tag == current => None,
        Some(_) => {
            sb.bump(System::Odata, "precondition_failures");
            Some(error(412, "412", "Precondition Failed", None))
        }
    }
}

fn patch(sb: &Shared, req: &Req, set: &str, key: &str) -> Resp {
    let Some(body) = json_body(req) else {
        return bad_request("Invalid JSON body");
    };
    let current = {
        let st = sb.odata.borrow();
        if set == "Products" {
            st.products.get(key).map(|p| p.modified_at.clone())
        } else {
            st.orders
                .iter()
                .find(|o| o.id == key)
                .map(|o| o.modified_at.clone())
        }
    };
    let Some(current) = current else {
        return not_found();
    };
    if let Some(resp) = precondition(sb, req, &current) {
        return resp;
    }
    let mut st = sb.odata.borrow_mut();
    let ts = st.stamp();
    let out = if set == "Products" {
        let Some(p) = st.products.get_mut(key) else {
            return not_found();
        };
        if let Some(stock) = body.get("stock") {
            match stock.as_i64() {
                Some(s) if (0..=1_000_000).contains(&s) => p.stock = s,
                _ => {
                    return error(
                        400,
                        "ASSERT_RANGE",
                        "Value is not in specified range [0, 1000000]",
                        Some("stock"),
                    )
                }
            }
        }
        if let Some(price) = body.get("price") {
            match number_cents(price) {
                Some(c) if c >= 0 => p.price_cents = c,
                _ => return error(400, "400", "Invalid price", Some("price")),
            }
        }
        if let Some(name) = body["name"].as_str() {
            p.name = name.to_string();
        }
        if let Some(c) = body["currency"].as_str() {
            p.currency = c.to_string();
        }
        p.modified_at = ts.clone();
        product_json(p)
    } else {
        let Some(o) = st.orders.iter_mut().find(|o| o.id == key) else {
            return not_found();
        };
        if let Some(status) = body.get("status") {
            match status.as_str().filter(|s| STATUSES.contains(s)) {
                Some(s) => o.status = s.to_string(),
                None => return error(400, "ASSERT_ENUM", "Invalid status", Some("status")),
            }
        }
        if let Some(c) = body.get("customer") {
            match c.as_str().filter(|c| !c.trim().is_empty()) {
                Some(c) => o.customer = c.to_string(),
                None => {
                    return error(
                        400,
                        "ASSERT_MANDATORY",
                        "Provide the missing value.",
                        Some("customer"),
                    )
                }
            }
        }
        if let Some(n) = body["orderNo"].as_str() {
            o.order_no = Some(n.to_string());
        }
        if let Some(c) = body["currency"].as_str() {
            o.currency = c.to_string();
        }
        for (field, slot) in [
            ("carrier", &mut o.carrier),
            ("trackingNumber", &mut o.tracking_number),
            ("shippedAt", &mut o.shipped_at),
        ] {
            if let Some(v) = body.get(field) {
                *slot = v.as_str().map(String::from);
            }
        }
        o.modified_at = ts.clone();
        order_json(o, false)
    };
    drop(st);
    sb.bump(System::Odata, "updates");
    entity_resp(200, set, out, &ts)
}

fn confirm(sb: &Shared, req: &Req, key: &str) -> Resp {
    let current = sb
        .odata
        .borrow()
        .orders
        .iter()
        .find(|o| o.id == key)
        .map(|o| o.modified_at.clone());
    let Some(current) = current else {
        return error(404, "404", &format!("Order {key} not found"), None);
    };
    if let Some(resp) = precondition(sb, req, &current) {
        return resp;
    }
    let mut st = sb.odata.borrow_mut();
    let ts = st.stamp();
    let State {
        orders, products, ..
    } = &mut *st;
    let Some(order) = orders.iter_mut().find(|o| o.id == key) else {
        return not_found();
    };
    if order.status != "NEW" {
        return error(
            409,
            "409",
            &format!("Order {key} is {}", order.status),
            None,
        );
    }
    for it in &order.items {
        let needed: i64 = order
            .items
            .iter()
            .filter(|i| i.product_id == it.product_id)
            .map(|i| i.quantity)
            .sum();
        if products
            .get(&it.product_id)
            .is_none_or(|p| p.stock < needed)
        {
            return error(
                409,
                "409",
                &format!("Insufficient stock for product {}", it.product_id),
                None,
            );
        }
    }
    for it in &order.items {
        if let Some(p) = products.get_mut(&it.product_id) {
            p.stock -= it.quantity;
            p.modified_at = ts.clone();
        }
    }
    order.status = "CONFIRMED".into();
    order.modified_at = ts.clone();
    let out = order_json(order, false);
    drop(st);
    sb.bump(System::Odata, "confirmations");
    entity_resp(200, "SalesOrders", out, &ts)
}

/// `GET /_sandbox/odata/sales_orders`: every ERP sales order, for reconciliation.
pub fn control_sales_orders(sb: &Shared) -> Resp {
    let st = sb.odata.borrow();
    let orders: Vec<Value> = st
        .orders
        .iter()
        .map(|o| {
            json!({"ID": o.id, "orderNo": o.order_no, "customer": o.customer, "status": o.status,
                "total": cents_number(o.total()), "currency": o.currency, "carrier": o.carrier,
                "trackingNumber": o.tracking_number, "shippedAt": o.shipped_at,
                "items": o.items.iter().map(|i| json!({"product_ID": i.product_id,
                    "quantity": i.quantity, "price": cents_number(i.price_cents)})).collect::<Vec<_>>()})
        })
        .collect();
    Resp::json(200, json!(orders))
}

/// `POST /_sandbox/odata/csrf {"required": bool}`.
pub fn control_csrf(sb: &Shared, req: &Req) -> Resp {
    match json_body(req).and_then(|b| b["required"].as_bool()) {
        Some(required) => {
            sb.odata.borrow_mut().csrf_required = required;
            Resp::json(200, json!({ "required": required }))
        }
        None => Resp::json(400, json!({"error": "required (boolean) is needed"})),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{client, control, parts, with_sandbox};
    use super::super::SandboxConfig;
    use super::*;

    fn req(method: reqwest::Method, base: &str, path: &str) -> reqwest::RequestBuilder {
        client()
            .request(method, format!("{base}{ROOT}/{path}"))
            .basic_auth(USER, Some(PASSWORD))
    }

    async fn post_order(base: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        parts(
            req(reqwest::Method::POST, base, "SalesOrders")
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    #[test]
    fn deep_insert_paging_and_preconditions() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            let (status, headers, body) = post_order(
                &base,
                json!({"orderNo": "SO-1", "customer": "ACME", "items": [{"product_ID": "ITM-110857", "quantity": 3}]}),
            )
            .await;
            assert_eq!(status, 201);
            assert!(headers["location"]
                .to_str()
                .unwrap()
                .starts_with("SalesOrders("));
            assert_eq!(body["total"], json!(66));
            assert_eq!(body["items"][0]["price"], json!(22));
            let id = body["ID"].as_str().unwrap().to_string();
            let tag = headers["etag"].to_str().unwrap().to_string();

            let (status, _, err) = post_order(
                &base,
                json!({"items": [{"product_ID": "ITM-110857", "quantity": 0}]}),
            )
            .await;
            assert_eq!(status, 400);
            assert_eq!(err["error"]["code"], "MULTIPLE_ERRORS");
            let (status, _, err) = post_order(
                &base,
                json!({"items": [{"product_ID": "ITM-110857", "quantity": 1}]}),
            )
            .await;
            assert_eq!(
                (status, err["error"]["code"].as_str()),
                (400, Some("ASSERT_MANDATORY"))
            );
            let (status, _, _) = post_order(
                &base,
                json!({"customer": "X", "items": [{"product_ID": "NOPE", "quantity": 1}]}),
            )
            .await;
            assert_eq!(status, 400);

            for n in 0..24 {
                post_order(
                    &base,
                    json!({"orderNo": format!("SO-P{n}"), "customer": "Bulk", "items": []}),
                )
                .await;
            }
            let (_, _, page1) = parts(
                req(
                    reqwest::Method::GET,
                    &base,
                    "SalesOrders?$filter=customer%20eq%20'Bulk'&$count=true",
                )
                .send()
                .await
                .unwrap(),
            )
            .await;
            assert_eq!(page1["@odata.count"], 24);
            assert_eq!(page1["value"].as_array().unwrap().len(), 20);
            let next = page1["@odata.nextLink"].as_str().unwrap();
            assert!(next.starts_with("SalesOrders?") && next.contains("$skiptoken=20"));
            let (_, _, page2) =
                parts(req(reqwest::Method::GET, &base, next).send().await.unwrap()).await;
            assert_eq!(page2["value"].as_array().unwrap().len(), 4);
            assert!(page2.get("@odata.nextLink").is_none());
            // Paging options at the edge of usize are an empty page, not an overflow.
            let edge = format!(
                "SalesOrders?$skip={}&$skiptoken=20&$top={}",
                usize::MAX,
                usize::MAX
            );
            let (status, _, empty) = parts(
                req(reqwest::Method::GET, &base, &edge)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(
                (status, empty["value"].as_array().map(Vec::len)),
                (200, Some(0))
            );
            assert!(empty.get("@odata.nextLink").is_none());

            let patch = |if_match: Option<&str>| {
                let mut r = req(reqwest::Method::PATCH, &base, &format!("SalesOrders({id})"))
                    .body(json!({"customer": "ACME Corp"}).to_string());
                if let Some(m) = if_match {
                    r = r.header("If-Match", m);
                }
                r
            };
            assert_eq!(patch(None).send().await.unwrap().status().as_u16(), 428);
            assert_eq!(
                patch(Some("W/\"2000-01-01T00:00:00.000Z\""))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
                412
            );
            let ok = patch(Some(&tag)).send().await.unwrap();
            assert_eq!(ok.status().as_u16(), 200);
            let new_tag = ok.headers()["etag"].to_str().unwrap().to_string();
            assert_ne!(new_tag, tag);
            let confirm = req(
                reqwest::Method::POST,
                &base,
                &format!("SalesOrders({id})/SalesService.confirm"),
            )
            .header("If-Match", &new_tag)
            .send()
            .await
            .unwrap();
            assert_eq!(confirm.status().as_u16(), 200);
            let (_, _, product) = parts(
                req(reqwest::Method::GET, &base, "Products('ITM-110857')")
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(product["stock"], 97);
            let stats = crate::testutil::stats(&base).await;
            assert_eq!(stats["odata"]["precondition_failures"], 2);
        });
    }

    #[test]
    fn csrf_mode_and_outage() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            control(&base, "odata/csrf", json!({"required": true})).await;
            let body = json!({"customer": "C", "items": []});
            let (status, headers, _) = post_order(&base, body.clone()).await;
            assert_eq!(status, 403);
            assert_eq!(headers["x-csrf-token"], "Required");
            let fetched = req(reqwest::Method::GET, &base, "")
                .header("x-csrf-token", "Fetch")
                .send()
                .await
                .unwrap();
            let token = fetched.headers()["x-csrf-token"]
                .to_str()
                .unwrap()
                .to_string();
            let resp = req(reqwest::Method::POST, &base, "SalesOrders")
                .header("x-csrf-token", &token)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 201);

            let unauth = client()
                .get(format!("{base}{ROOT}/Products"))
                .send()
                .await
                .unwrap();
            assert_eq!(unauth.status().as_u16(), 401);
            assert!(unauth.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("Users"));

            control(
                &base,
                "faults",
                json!({"system": "odata", "status": 503, "for_ms": 60_000}),
            )
            .await;
            let (status, _, body) = parts(
                req(reqwest::Method::GET, &base, "Products")
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 503);
            assert!(body["error"]["message"].is_string());
            let stats = crate::testutil::stats(&base).await;
            assert_eq!(stats["odata"]["faults_injected"], 1);
            control(
                &base,
                "faults",
                json!({"system": "odata", "status": 503, "for_ms": 0}),
            )
            .await;
            let (status, _, _) = parts(
                req(reqwest::Method::GET, &base, "Products")
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200);
        });
    }
}
