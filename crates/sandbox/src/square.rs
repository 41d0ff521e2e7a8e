//! Square simulator: SearchOrders with a query-bound cursor, RetrieveOrder, idempotent
//! BatchChangeInventory applied by `occurred_at`, inventory count retrieval, webhook
//! subscriptions, catalog item variations (`objects.rs`), and POS sales and store returns
//! created over the control API.

pub mod objects;

use super::webhooks::{self, Delivery, Subscriber};
use super::{catalog, header, json_body, parse_ts, Sandbox, Shared, System, TokenBucket};
use base64::Engine;
use chrono::{DateTime, Utc};
use omniflow_http::server::{Req, Resp};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// Access token accepted as `Authorization: Bearer`.
pub const ACCESS_TOKEN: &str = "sq-sandbox-token";
/// Signature key of every webhook subscription.
pub const SIGNATURE_KEY: &str = "square-signature-key";
/// Merchant id in webhook envelopes.
pub const MERCHANT_ID: &str = "SANDBOXMERCHANT";

/// Quantities are kept in units of 1e-5.
const SCALE: i64 = 100_000;
/// Requests per second and burst of the (undocumented) throttle.
const RATE: f64 = 10.0;
const BURST: f64 = 20.0;

struct Order {
    id: String,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    location: String,
    state: String,
    json: Value,
}

/// One inventory event touching counts.
struct Event {
    occurred: DateTime<Utc>,
    seq: u64,
    object: String,
    location: String,
    kind: EventKind,
}

enum EventKind {
    Count { state: String, qty: i64 },
    Move { from: String, to: String, qty: i64 },
}

/// Square state.
pub struct State {
    orders: Vec<Order>,
    events: Vec<Event>,
    counts: BTreeMap<(String, String, String), (i64, DateTime<Utc>)>,
    idempotency: HashMap<(String, String), (String, u16, String)>,
    bucket: Option<TokenBucket>,
    seq: u64,
    /// Catalog item variations.
    pub objects: objects::Objects,
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

impl State {
    /// 25 in stock of every variation at both locations.
    pub fn new() -> State {
        let mut st = State {
            orders: Vec::new(),
            events: Vec::new(),
            counts: BTreeMap::new(),
            idempotency: HashMap::new(),
            bucket: None,
            seq: 0,
            objects: objects::Objects::new(),
        };
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        for item in catalog::ITEMS {
            if let Some(var) = item.square_variation {
                for loc in catalog::SQUARE_LOCATIONS {
                    st.push(
                        epoch,
                        var,
                        loc,
                        EventKind::Count {
                            state: "IN_STOCK".into(),
                            qty: 25 * SCALE,
                        },
                    );
                }
            }
        }
        st.recompute();
        st
    }

    fn push(&mut self, occurred: DateTime<Utc>, object: &str, location: &str, kind: EventKind) {
        self.seq += 1;
        self.events.push(Event {
            occurred,
            seq: self.seq,
            object: object.into(),
            location: location.into(),
            kind,
        });
    }

    /// Replays every event in `occurred_at` order.
    fn recompute(&mut self) {
        self.events
            .sort_by(|a, b| a.occurred.cmp(&b.occurred).then(a.seq.cmp(&b.seq)));
        let now = super::now();
        let mut counts: BTreeMap<(String, String, String), (i64, DateTime<Utc>)> = BTreeMap::new();
        for e in &self.events {
            let key = |s: &str| (e.object.clone(), e.location.clone(), s.to_string());
            match &e.kind {
                EventKind::Count { state, qty } => {
                    counts.insert(key(state), (*qty, now));
                }
                EventKind::Move { from, to, qty } => {
                    for (state, delta) in [(from, -qty), (to, *qty)] {
                        if tracked(state) {
                            let c = counts.entry(key(state)).or_insert((0, now));
                            c.0 += delta;
                        }
                    }
                }
            }
        }
        for (k, v) in counts.iter_mut() {
            if self.counts.get(k).is_some_and(|old| old.0 == v.0) {
                v.1 = self.counts[k].1;
            }
        }
        self.counts = counts;
    }
}

fn tracked(state: &str) -> bool {
    !matches!(state, "NONE" | "SOLD" | "UNLINKED_RETURN")
}

fn qty_str(q: i64) -> String {
    let sign = if q < 0 { "-" } else { "" };
    let (w, f) = (q.abs() / SCALE, q.abs() % SCALE);
    if f == 0 {
        format!("{sign}{w}")
    } else {
        format!("{sign}{w}.{}", format!("{f:05}").trim_end_matches('0'))
    }
}

fn parse_qty(s: &str) -> Option<i64> {
    let (w, f) = s.split_once('.').unwrap_or((s, ""));
    if w.is_empty()
        || f.len() > 5
        || !w.bytes().all(|b| b.is_ascii_digit())
        || !f.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = w.parse().ok()?;
    let frac: i64 = if f.is_empty() {
        0
    } else {
        format!("{f:0<5}").parse().ok()?
    };
    whole.checked_mul(SCALE)?.checked_add(frac)
}

fn err(status: u16, category: &str, code: &str, detail: &str) -> Resp {
    Resp::json(
        status,
        json!({"errors": [{"category": category, "code": code, "detail": detail}]}),
    )
}

fn not_found() -> Resp {
    err(
        404,
        "INVALID_REQUEST_ERROR",
        "NOT_FOUND",
        "Resource not found.",
    )
}

fn bad(code: &str, detail: &str) -> Resp {
    err(400, "INVALID_REQUEST_ERROR", code, detail)
}

/// Square's answer for an injected status.
pub fn error_status(status: u16) -> Resp {
    match status {
        429 => err(429, "RATE_LIMIT_ERROR", "RATE_LIMITED", "Rate limited."),
        500 => err(
            500,
            "API_ERROR",
            "INTERNAL_SERVER_ERROR",
            "Internal server error.",
        ),
        502 => err(502, "API_ERROR", "BAD_GATEWAY", "Bad gateway."),
        503 => err(
            503,
            "API_ERROR",
            "SERVICE_UNAVAILABLE",
            "Service unavailable.",
        ),
        504 => err(504, "API_ERROR", "GATEWAY_TIMEOUT", "Gateway timeout."),
        s => err(s, "API_ERROR", "INTERNAL_SERVER_ERROR", "Request failed."),
    }
}

fn valid_version(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Serves `/v2/...`.
pub fn handle(sb: &Shared, req: &Req) -> Resp {
    if header(req, "authorization") != Some(format!("Bearer {ACCESS_TOKEN}").as_str()) {
        return err(
            401,
            "AUTHENTICATION_ERROR",
            "UNAUTHORIZED",
            "This request could not be authorized.",
        );
    }
    if !header(req, "square-version").is_some_and(valid_version) {
        return bad(
            "INVALID_SQUARE_VERSION_FORMAT",
            "Square-Version must be given as YYYY-MM-DD.",
        );
    }
    let scale = sb.quota_scale(System::Square);
    let allowed = {
        let mut st = sb.square.borrow_mut();
        st.bucket
            .get_or_insert_with(|| TokenBucket::new(BURST * scale))
            .take(RATE * scale, (BURST * scale).max(1.0))
    };
    if !allowed {
        sb.bump(System::Square, "throttled");
        return error_status(429);
    }
    let path = req.path.trim_start_matches("/v2/");
    let segs: Vec<&str> = path.split('/').collect();
    let needs_body = req.method == "POST";
    let body = json_body(req);
    if needs_body && body.is_none() {
        return bad(
            "INVALID_JSON",
            "The request body is not a valid JSON object.",
        );
    }
    let body = body.unwrap_or(Value::Null);
    if super::routes::find(super::routes::SQUARE, &req.method, &req.path).is_none() {
        return not_found();
    }
    match (req.method.as_str(), segs.as_slice()) {
        ("POST", ["orders", "search"]) => search_orders(sb, &body),
        ("POST", ["orders"]) => idempotent(sb, "orders", &body, create_order),
        ("GET", ["orders", id]) => {
            let st = sb.square.borrow();
            match st.orders.iter().find(|o| o.id == *id) {
                Some(o) => Resp::json(200, json!({"order": o.json})),
                None => err(
                    404,
                    "INVALID_REQUEST_ERROR",
                    "NOT_FOUND",
                    &format!("Order `{id}` not found."),
                ),
            }
        }
        ("POST", ["inventory", "changes", "batch-create"]) => {
            idempotent(sb, "batch-create", &body, batch_change)
        }
        ("POST", ["inventory", "counts", "batch-retrieve"]) => retrieve_counts(sb, &body),
        ("GET", ["inventory", object]) => {
            // RetrieveInventoryCount: one variation's counts, at the locations asked for.
            let locations: Option<Vec<String>> = super::query_pairs(&req.query)
                .into_iter()
                .find(|(k, _)| k == "location_ids")
                .map(|(_, v)| v.split(',').map(String::from).collect());
            let mut asked = json!({ "catalog_object_ids": [object] });
            if let Some(locations) = locations {
                asked["location_ids"] = json!(locations);
            }
            retrieve_counts(sb, &asked)
        }
        ("GET", ["locations"]) => Resp::json(
            200,
            json!({ "locations": catalog::SQUARE_LOCATIONS.iter().map(|id| location(id)).collect::<Vec<_>>() }),
        ),
        ("GET", ["locations", id]) => match catalog::SQUARE_LOCATIONS.contains(id) {
            true => Resp::json(200, json!({ "location": location(id) })),
            false => err(
                404,
                "INVALID_REQUEST_ERROR",
                "NOT_FOUND",
                &format!("Location `{id}` not found."),
            ),
        },
        ("GET", ["catalog", "object", id]) => objects::retrieve(sb, id),
        ("POST", ["catalog", "object"]) => idempotent(sb, "catalog-object", &body, objects::upsert),
        ("POST", ["webhooks", "subscriptions"]) => {
            idempotent(sb, "subscriptions", &body, subscribe)
        }
        _ => not_found(),
    }
}

/// A Location object as ListLocations and RetrieveLocation answer it.
fn location(id: &str) -> Value {
    let (name, line, city, state, zip) = match id {
        "FPYCBCHYMXFK1" => ("Flagship", "500 Electric Ave", "New York", "NY", "10003"),
        _ => ("Outlet", "1455 Market St", "San Francisco", "CA", "94103"),
    };
    json!({
        "id": id,
        "name": name,
        "address": {
            "address_line_1": line,
            "locality": city,
            "administrative_district_level_1": state,
            "postal_code": zip,
            "country": "US",
        },
        "timezone": "America/New_York",
        "capabilities": ["CREDIT_CARD_PROCESSING"],
        "status": "ACTIVE",
        "created_at": "2024-01-15T10:00:00.000Z",
        "merchant_id": "ML0SANDBOXMERCH",
        "country": "US",
        "language_code": "en-US",
        "currency": "USD",
        "business_name": "omniflow retail",
        "type": "PHYSICAL",
        "business_hours": {},
        "mcc": "5651",
    })
}

fn idempotent(sb: &Shared, endpoint: &str, body: &Value, f: fn(&Shared, &Value) -> Resp) -> Resp {
    let Some(key) = body["idempotency_key"].as_str().filter(|k| !k.is_empty()) else {
        return bad(
            "MISSING_REQUIRED_PARAMETER",
            "Field must be set: idempotency_key",
        );
    };
    if key.len() > 128 {
        return bad(
            "VALUE_TOO_LONG",
            "idempotency_key must be at most 128 characters.",
        );
    }
    let fingerprint = body.to_string();
    let slot = (endpoint.to_string(), key.to_string());
    if let Some((fp, status, resp)) = sb.square.borrow().idempotency.get(&slot) {
        if *fp != fingerprint {
            return bad(
                "IDEMPOTENCY_KEY_REUSED",
                "The idempotency key was used with a different request.",
            );
        }
        sb.bump(System::Square, "idempotent_replays");
        return Resp {
            status: *status,
            content_type: "application/json",
            body: resp.clone(),
            headers: Vec::new(),
        };
    }
    let resp = f(sb, body);
    if resp.status < 300 {
        sb.square
            .borrow_mut()
            .idempotency
            .insert(slot, (fingerprint, resp.status, resp.body.clone()));
    }
    resp
}

fn encode_cursor(query: &Value, offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"q": query, "o": offset}).to_string())
}

fn decode_cursor(cursor: &str, query: &Value) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    (v["q"] == *query).then(|| v["o"].as_u64().map(|o| o as usize))?
}

/// (timestamp field, start, end) of a date-time filter.
type Window<'a> = (&'a str, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn search_orders(sb: &Shared, body: &Value) -> Resp {
    let Some(locations) = body["location_ids"].as_array().filter(|l| !l.is_empty()) else {
        return bad(
            "MISSING_REQUIRED_PARAMETER",
            "Field must be set: location_ids",
        );
    };
    if locations.len() > 10 {
        return bad(
            "ARRAY_LENGTH_TOO_LONG",
            "location_ids may hold at most 10 ids.",
        );
    }
    let locations: Vec<&str> = locations.iter().filter_map(Value::as_str).collect();
    let limit = match &body["limit"] {
        Value::Null => 500,
        v => match v.as_u64().filter(|l| (1..=1000).contains(l)) {
            Some(l) => l as usize,
            None => return bad("INVALID_VALUE", "limit must be between 1 and 1000."),
        },
    };
    let filter = &body["query"]["filter"];
    let sort = &body["query"]["sort"];
    let sort_field = sort["sort_field"].as_str().unwrap_or("CREATED_AT");
    let desc = match sort["sort_order"].as_str() {
        None | Some("DESC") => true,
        Some("ASC") => false,
        Some(_) => return bad("INVALID_ENUM_VALUE", "sort_order must be ASC or DESC."),
    };
    let mut window: Option<Window> = None;
    if let Some(dt) = filter["date_time_filter"].as_object() {
        for (field, sort_name) in [
            ("created_at", "CREATED_AT"),
            ("updated_at", "UPDATED_AT"),
            ("closed_at", "CLOSED_AT"),
        ] {
            if let Some(range) = dt.get(field) {
                if sort_field != sort_name {
                    return bad(
                        "INVALID_VALUE",
                        &format!(
                            "When filtering by {field}, query.sort.sort_field must be {sort_name}."
                        ),
                    );
                }
                let parse = |k: &str| range[k].as_str().map(parse_ts);
                let (start, end) = (parse("start_at"), parse("end_at"));
                if matches!(start, Some(None)) || matches!(end, Some(None)) {
                    return bad(
                        "INVALID_TIME",
                        "start_at and end_at must be RFC 3339 timestamps.",
                    );
                }
                window = Some((field, start.flatten(), end.flatten()));
            }
        }
    }
    let states: Option<Vec<String>> = filter["state_filter"]["states"].as_array().map(|s| {
        s.iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    });
    let mut query = body.clone();
    if let Some(obj) = query.as_object_mut() {
        obj.remove("cursor");
        obj.remove("limit");
    }
    let offset = match body["cursor"].as_str() {
        None => 0,
        Some(c) => match decode_cursor(c, &query) {
            Some(o) => o,
            None => {
                return bad(
                    "INVALID_CURSOR",
                    "The cursor is invalid or was issued for another query.",
                )
            }
        },
    };
    let st = sb.square.borrow();
    let stamp = |o: &Order, field: &str| -> Option<DateTime<Utc>> {
        match field {
            "created_at" | "CREATED_AT" => Some(o.created),
            "updated_at" | "UPDATED_AT" => Some(o.updated),
            _ => o.json["closed_at"].as_str().and_then(parse_ts),
        }
    };
    let mut matching: Vec<&Order> = st
        .orders
        .iter()
        .filter(|o| locations.contains(&o.location.as_str()))
        .filter(|o| states.as_ref().is_none_or(|s| s.contains(&o.state)))
        .filter(|o| match window {
            None => true,
            Some((field, start, end)) => stamp(o, field)
                .is_some_and(|t| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e)),
        })
        .collect();
    matching.sort_by(|a, b| {
        let o = stamp(a, sort_field)
            .cmp(&stamp(b, sort_field))
            .then(a.id.cmp(&b.id));
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    let orders: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|o| o.json.clone())
        .collect();
    let mut out = json!({ "orders": orders });
    if matching.len() > offset + limit {
        out["cursor"] = json!(encode_cursor(&query, offset + limit));
    }
    Resp::json(200, out)
}

fn batch_change(sb: &Shared, body: &Value) -> Resp {
    let changes = body["changes"].as_array().cloned().unwrap_or_default();
    if changes.len() > 100 {
        return bad(
            "ARRAY_LENGTH_TOO_LONG",
            "changes may hold at most 100 entries.",
        );
    }
    let now = super::now();
    let mut parsed = Vec::new();
    for (i, ch) in changes.iter().enumerate() {
        let (sub, kind) = match ch["type"].as_str() {
            Some("ADJUSTMENT") => (&ch["adjustment"], "ADJUSTMENT"),
            Some("PHYSICAL_COUNT") => (&ch["physical_count"], "PHYSICAL_COUNT"),
            _ => {
                return bad(
                    "INVALID_ENUM_VALUE",
                    &format!("changes[{i}].type must be ADJUSTMENT or PHYSICAL_COUNT."),
                )
            }
        };
        let (Some(object), Some(location), Some(qty)) = (
            sub["catalog_object_id"].as_str(),
            sub["location_id"].as_str(),
            sub["quantity"].as_str().and_then(parse_qty),
        ) else {
            return bad(
                "MISSING_REQUIRED_PARAMETER",
                &format!(
                    "changes[{i}] needs catalog_object_id, location_id and a decimal quantity."
                ),
            );
        };
        if catalog::by_square_variation(object).is_none() {
            return err(
                404,
                "INVALID_REQUEST_ERROR",
                "NOT_FOUND",
                &format!("Catalog object `{object}` not found."),
            );
        }
        if !catalog::SQUARE_LOCATIONS.contains(&location) {
            return err(
                404,
                "INVALID_REQUEST_ERROR",
                "NOT_FOUND",
                &format!("Location `{location}` not found."),
            );
        }
        let occurred = match sub["occurred_at"].as_str().map(parse_ts) {
            Some(Some(t)) => t,
            Some(None) => {
                return bad(
                    "INVALID_TIME",
                    &format!("changes[{i}] occurred_at is not RFC 3339."),
                )
            }
            None => now,
        };
        let event = if kind == "ADJUSTMENT" {
            let (Some(from), Some(to)) = (sub["from_state"].as_str(), sub["to_state"].as_str())
            else {
                return bad(
                    "MISSING_REQUIRED_PARAMETER",
                    &format!("changes[{i}] needs from_state and to_state."),
                );
            };
            EventKind::Move {
                from: from.into(),
                to: to.into(),
                qty,
            }
        } else {
            EventKind::Count {
                state: sub["state"].as_str().unwrap_or("IN_STOCK").into(),
                qty,
            }
        };
        parsed.push((
            occurred,
            object.to_string(),
            location.to_string(),
            event,
            ch.clone(),
        ));
    }
    let mut st = sb.square.borrow_mut();
    let mut touched = Vec::new();
    let mut out_changes = Vec::new();
    for (occurred, object, location, event, mut raw) in parsed {
        touched.push((object.clone(), location.clone()));
        st.push(occurred, &object, &location, event);
        let id = sb.rng.borrow_mut().alnum(26);
        for sub in ["adjustment", "physical_count"] {
            if let Some(o) = raw.get_mut(sub).and_then(Value::as_object_mut) {
                o.insert("id".into(), json!(id));
                o.insert("created_at".into(), json!(super::ts_millis(now)));
            }
        }
        out_changes.push(raw);
    }
    st.recompute();
    let counts: Vec<Value> = st
        .counts
        .iter()
        .filter(|((o, l, _), _)| touched.contains(&(o.clone(), l.clone())))
        .map(count_json)
        .collect();
    drop(st);
    sb.stats.borrow_mut().add(
        System::Square,
        "inventory_changes",
        out_changes.len() as u64,
    );
    Resp::json(200, json!({"counts": counts, "changes": out_changes}))
}

fn count_json(
    ((object, location, state), (qty, at)): (&(String, String, String), &(i64, DateTime<Utc>)),
) -> Value {
    json!({"catalog_object_id": object, "catalog_object_type": "ITEM_VARIATION", "state": state,
        "location_id": location, "quantity": qty_str(*qty), "calculated_at": super::ts_millis(*at)})
}

fn retrieve_counts(sb: &Shared, body: &Value) -> Resp {
    let list = |k: &str| -> Option<Vec<String>> {
        body[k].as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
    };
    let (objects, locations, states) = (
        list("catalog_object_ids"),
        list("location_ids"),
        list("states"),
    );
    let after = match body["updated_after"].as_str().map(parse_ts) {
        Some(None) => return bad("INVALID_TIME", "updated_after is not RFC 3339."),
        other => other.flatten(),
    };
    let limit = match &body["limit"] {
        Value::Null => 1000,
        v => match v.as_u64().filter(|l| (1..=1000).contains(l)) {
            Some(l) => l as usize,
            None => return bad("INVALID_VALUE", "limit must be between 1 and 1000."),
        },
    };
    let mut query = body.clone();
    if let Some(obj) = query.as_object_mut() {
        obj.remove("cursor");
        obj.remove("limit");
    }
    let offset = match body["cursor"].as_str() {
        None => 0,
        Some(c) => match decode_cursor(c, &query) {
            Some(o) => o,
            None => {
                return bad(
                    "INVALID_CURSOR",
                    "The cursor is invalid or was issued for another query.",
                )
            }
        },
    };
    let st = sb.square.borrow();
    let mut rows: Vec<_> = st
        .counts
        .iter()
        .filter(|((o, l, s), (_, at))| {
            objects.as_ref().is_none_or(|v| v.contains(o))
                && locations.as_ref().is_none_or(|v| v.contains(l))
                && states.as_ref().map_or(s == "IN_STOCK", |v| v.contains(s))
                && after.is_none_or(|a| *at > a)
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1 .1));
    let counts: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| count_json(*r))
        .collect();
    let mut out = json!({ "counts": counts });
    if rows.len() > offset + limit {
        out["cursor"] = json!(encode_cursor(&query, offset + limit));
    }
    Resp::json(200, out)
}

fn subscribe(sb: &Shared, body: &Value) -> Resp {
    let sub = &body["subscription"];
    let (Some(url), Some(types)) = (
        sub["notification_url"].as_str(),
        sub["event_types"].as_array(),
    ) else {
        return bad(
            "MISSING_REQUIRED_PARAMETER",
            "subscription.notification_url and event_types are required.",
        );
    };
    for t in types.iter().filter_map(Value::as_str) {
        webhooks::subscribe(
            sb,
            Subscriber {
                system: System::Square,
                topic: t.into(),
                url: url.into(),
                secret: Some(SIGNATURE_KEY.into()),
                version: None,
            },
        );
    }
    let id = format!("wbhk_{}", sb.rng.borrow_mut().alnum(22).to_lowercase());
    let ts = super::ts_millis(super::now());
    let mut made = json!({"id": id, "enabled": true,
        "event_types": types, "notification_url": url,
        "api_version": sub["api_version"].as_str().unwrap_or("2025-08-20"),
        "signature_key": SIGNATURE_KEY, "created_at": ts, "updated_at": ts});
    if let Some(name) = sub["name"].as_str() {
        made["name"] = json!(name);
    }
    Resp::json(200, json!({ "subscription": made }))
}

fn money(amount: i64) -> Value {
    json!({"amount": amount, "currency": "USD"})
}

/// `POST /_sandbox/square/orders`: a POS sale or store return, announced by `order.updated`.
pub fn control_create_order(sb: &Shared, req: &Req) -> Resp {
    let Some(body) = json_body(req) else {
        return bad(
            "INVALID_JSON",
            "The request body is not a valid JSON object.",
        );
    };
    match new_order(sb, &body, "COMPLETED", "Square Point of Sale") {
        Ok(order) => {
            notify(sb, "order.updated", &order);
            Resp::json(200, json!({ "order": order }))
        }
        Err(refused) => refused,
    }
}

/// `POST /v2/orders` (CreateOrder, behind its idempotency key): an order of the app, OPEN
/// unless it says otherwise, announced by `order.created`.
fn create_order(sb: &Shared, body: &Value) -> Resp {
    let spec = &body["order"];
    if !spec.is_object() {
        return bad("MISSING_REQUIRED_PARAMETER", "Field must be set: order");
    }
    if spec["location_id"].as_str().is_none() {
        return bad(
            "MISSING_REQUIRED_PARAMETER",
            "Field must be set: order.location_id",
        );
    }
    match new_order(sb, spec, "OPEN", "omniflow") {
        Ok(order) => {
            notify(sb, "order.created", &order);
            Resp::json(200, json!({ "order": order }))
        }
        Err(refused) => refused,
    }
}

/// Makes and keeps an order from `body` (location, lines, returns, state, reference); a
/// COMPLETED one moves its lines' stock to SOLD.
fn new_order(sb: &Shared, body: &Value, default_state: &str, source: &str) -> Result<Value, Resp> {
    let location = body["location_id"]
        .as_str()
        .unwrap_or(catalog::SQUARE_LOCATIONS[0]);
    if !catalog::SQUARE_LOCATIONS.contains(&location) {
        return Err(bad(
            "NOT_FOUND",
            &format!("Location `{location}` not found."),
        ));
    }
    let tax_bp = body["tax_rate"]
        .as_f64()
        .map(|r| (r * 10_000.0).round() as i64)
        .unwrap_or(0);
    let mut uid = 0;
    let mut line = |l: &Value, returning: bool| {
        uid += 1;
        order_line(l, returning, uid, tax_bp)
    };
    let mut lines = Vec::new();
    let (mut total, mut tax_total) = (0, 0);
    let mut sold = Vec::new();
    for l in body["line_items"].as_array().into_iter().flatten() {
        match line(l, false) {
            Ok((v, t, tx, q)) => {
                if let Some(id) = v["catalog_object_id"].as_str() {
                    sold.push((id.to_string(), q));
                }
                lines.push(v);
                total += t;
                tax_total += tx;
            }
            Err(e) => return Err(bad("INVALID_VALUE", &e)),
        }
    }
    let mut returns = Vec::new();
    let (mut ret_total, mut ret_tax) = (0, 0);
    for r in body["returns"].as_array().into_iter().flatten() {
        let mut rlines = Vec::new();
        for l in r["return_line_items"].as_array().into_iter().flatten() {
            match line(l, true) {
                Ok((v, t, tx, _)) => {
                    rlines.push(v);
                    ret_total += t;
                    ret_tax += tx;
                }
                Err(e) => return Err(bad("INVALID_VALUE", &e)),
            }
        }
        returns.push(
            json!({"uid": format!("ret-{}", returns.len() + 1), "return_line_items": rlines}),
        );
    }
    if lines.is_empty() && returns.is_empty() {
        return Err(bad(
            "MISSING_REQUIRED_PARAMETER",
            "line_items or returns must be given.",
        ));
    }
    let state = body["state"].as_str().unwrap_or(default_state).to_string();
    let now = super::now();
    let ts = super::ts_millis(now);
    let id = sb.rng.borrow_mut().string(
        25,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    );
    let tender = sb.rng.borrow_mut().alnum(6);
    let mut order = json!({"id": id, "location_id": location, "source": {"name": source},
        "state": state, "version": 1, "created_at": ts, "updated_at": ts,
        "line_items": lines, "total_money": money(total), "total_tax_money": money(tax_total),
        "total_discount_money": money(0), "tenders": if total > 0 {
            json!([{"id": format!("tnd-{tender}"), "type": "CARD", "amount_money": money(total)}]) } else { json!([]) }});
    if state == "COMPLETED" {
        order["closed_at"] = json!(ts);
    }
    if let Some(r) = body["reference_id"].as_str() {
        order["reference_id"] = json!(r);
    }
    if !returns.is_empty() {
        order["returns"] = json!(returns);
        order["return_amounts"] = json!({"total_money": money(ret_total), "tax_money": money(ret_tax),
            "discount_money": money(0), "tip_money": money(0), "service_charge_money": money(0)});
        order["refunds"] = json!([]);
    }
    {
        let mut st = sb.square.borrow_mut();
        if state == "COMPLETED" {
            for (obj, q) in &sold {
                st.push(
                    now,
                    obj,
                    location,
                    EventKind::Move {
                        from: "IN_STOCK".into(),
                        to: "SOLD".into(),
                        qty: q * SCALE,
                    },
                );
            }
            st.recompute();
        }
        st.orders.push(Order {
            id: id.clone(),
            created: now,
            updated: now,
            location: location.into(),
            state: state.clone(),
            json: order.clone(),
        });
    }
    sb.bump(System::Square, "orders_created");
    Ok(order)
}

/// One line (or return line) of a created order: its JSON, total with tax, tax and quantity.
fn order_line(
    l: &Value,
    returning: bool,
    uid: u32,
    tax_bp: i64,
) -> Result<(Value, i64, i64, i64), String> {
    let id = l["catalog_object_id"].as_str();
    let qty = match &l["quantity"] {
        Value::String(s) => s.parse::<i64>().ok(),
        v => v.as_i64(),
    }
    .filter(|q| *q > 0)
    .ok_or("quantity must be a positive integer")?;
    let known = id.and_then(catalog::by_square_variation);
    let base = match (&l["base_price_money"]["amount"], known) {
        (Value::Null, Some((_, item))) => item.price_cents,
        (Value::Null, None) => return Err("base_price_money is required for unknown items".into()),
        (v, _) => v
            .as_i64()
            .ok_or("base_price_money.amount must be an integer")?,
    };
    let (name, variation) = known
        .map(|(_, i)| {
            let mut p = i.title.splitn(2, " - ");
            (
                p.next().unwrap_or(i.title).to_string(),
                p.next().unwrap_or("").to_string(),
            )
        })
        .unwrap_or_else(|| {
            (
                l["name"].as_str().unwrap_or("Custom amount").to_string(),
                String::new(),
            )
        });
    let gross = base * qty;
    let tax = (gross * tax_bp + 5_000) / 10_000;
    let mut v = json!({"uid": format!("{}{uid}", if returning { "rli-" } else { "li-" }), "name": name,
        "quantity": qty.to_string(), "variation_name": variation,
        "base_price_money": money(base), "total_tax_money": money(tax),
        "total_discount_money": money(0), "total_money": money(gross + tax)});
    if let Some(id) = id {
        v["catalog_object_id"] = json!(id);
        v["catalog_version"] = json!(1_714_990_000_000u64);
    }
    if let Some(note) = l["note"].as_str() {
        v["note"] = json!(note);
    }
    v[if returning {
        "gross_return_money"
    } else {
        "gross_sales_money"
    }] = money(gross);
    Ok((v, gross + tax, tax, qty))
}

/// Announces `order.created` or `order.updated` to the subscribers of that topic.
fn notify(sb: &Shared, topic: &str, order: &Value) {
    // `order.created` → `order_created`: the data type and the object's key.
    let kind = topic.replace('.', "_");
    for sub in webhooks::subscribers(sb, System::Square, topic) {
        let event_id = sb.rng.borrow_mut().uuid();
        let mut object = json!({"order_id": order["id"], "version": order["version"],
            "location_id": order["location_id"], "state": order["state"],
            "created_at": order["created_at"]});
        if topic == "order.updated" {
            object["updated_at"] = order["updated_at"].clone();
        }
        let body = json!({"merchant_id": MERCHANT_ID, "type": topic, "event_id": event_id,
            "created_at": super::ts_millis(super::now()), "data": {"type": kind, "id": order["id"],
            "object": { kind.as_str(): object }}})
        .to_string();
        let key = sub.secret.as_deref().unwrap_or(SIGNATURE_KEY);
        let sig = webhooks::hmac_b64(key.as_bytes(), &[sub.url.as_bytes(), body.as_bytes()]);
        webhooks::send(
            sb,
            Delivery {
                system: System::Square,
                topic: topic.to_string(),
                signing: webhooks::Signing::Fixed,
                url: sub.url.clone(),
                headers: vec![
                    ("x-square-hmacsha256-signature".into(), sig),
                    ("square-environment".into(), "Sandbox".into()),
                ],
                body,
                delay: std::time::Duration::ZERO,
                event_time: None,
            },
        );
    }
}

/// Current count helper for tests and the control API.
pub fn count(sb: &Sandbox, object: &str, location: &str, state: &str) -> Option<String> {
    sb.square
        .borrow()
        .counts
        .get(&(object.to_string(), location.to_string(), state.to_string()))
        .map(|(q, _)| qty_str(*q))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{client, parts, with_sandbox};
    use super::super::SandboxConfig;
    use super::*;

    fn post(base: &str, path: &str, body: &Value) -> reqwest::RequestBuilder {
        client()
            .post(format!("{base}/v2/{path}"))
            .header("Authorization", format!("Bearer {ACCESS_TOKEN}"))
            .header("Square-Version", "2025-08-20")
            .body(body.to_string())
    }

    fn get(base: &str, path: &str) -> reqwest::RequestBuilder {
        client()
            .get(format!("{base}/v2/{path}"))
            .header("Authorization", format!("Bearer {ACCESS_TOKEN}"))
            .header("Square-Version", "2025-08-20")
    }

    #[test]
    fn locations_and_one_variations_counts_are_read_as_square_answers_them() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            let (status, _, listed) = parts(get(&base, "locations").send().await.unwrap()).await;
            assert_eq!(status, 200);
            let ids: Vec<&str> = listed["locations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, catalog::SQUARE_LOCATIONS);
            for field in ["name", "status", "currency", "timezone", "type"] {
                assert!(listed["locations"][0][field].is_string(), "{field}");
            }
            let (status, _, one) =
                parts(get(&base, "locations/LK3Z8WQ2M5R7B").send().await.unwrap()).await;
            assert_eq!(
                (status, one["location"]["id"].as_str()),
                (200, Some("LK3Z8WQ2M5R7B"))
            );
            let (status, _, missing) =
                parts(get(&base, "locations/NOPE").send().await.unwrap()).await;
            assert_eq!(
                (status, missing["errors"][0]["code"].as_str()),
                (404, Some("NOT_FOUND"))
            );
            // One variation's counts: both locations, or the one asked for.
            let var = "W62UWFY35CWMYGVWK6TWJDNI";
            let (status, _, both) = parts(
                get(&base, &format!("inventory/{var}"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            let counts = both["counts"].as_array().unwrap();
            assert_eq!(counts.len(), 2, "{both}");
            assert!(counts
                .iter()
                .all(|c| c["catalog_object_id"] == var && c["quantity"].is_string()));
            let (_, _, one) = parts(
                get(
                    &base,
                    &format!("inventory/{var}?location_ids=FPYCBCHYMXFK1"),
                )
                .send()
                .await
                .unwrap(),
            )
            .await;
            assert_eq!(one["counts"].as_array().unwrap().len(), 1);
            assert_eq!(one["counts"][0]["location_id"], "FPYCBCHYMXFK1");
        });
    }

    #[test]
    fn create_order_keeps_an_open_order_once_per_key_and_announces_order_created() {
        use std::io::{BufRead, Read, Write};
        // A subscriber that answers 200 and passes each delivery's body on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let (mut len, mut line) = (0, String::new());
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
            }
        });
        with_sandbox(SandboxConfig::default(), move |base| async move {
            let subscription = json!({"idempotency_key": "s-1", "subscription": {"name": "app",
                "event_types": ["order.created"], "notification_url": format!("http://127.0.0.1:{port}/hook")}});
            let (status, _, _) = parts(
                post(&base, "webhooks/subscriptions", &subscription)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            let var = "W62UWFY35CWMYGVWK6TWJDNI";
            let body = json!({"idempotency_key": "o-1", "order": {"location_id": "FPYCBCHYMXFK1",
                "reference_id": "web-1001", "line_items": [{"catalog_object_id": var, "quantity": "2"}]}});
            let (status, _, first) =
                parts(post(&base, "orders", &body).send().await.unwrap()).await;
            assert_eq!(status, 200, "{first}");
            let order = &first["order"];
            assert_eq!(order["state"], "OPEN");
            assert_eq!(order["reference_id"], "web-1001");
            assert_eq!(order["line_items"][0]["quantity"], "2");
            assert!(order["total_money"]["amount"].is_i64());
            let (_, _, replay) = parts(post(&base, "orders", &body).send().await.unwrap()).await;
            assert_eq!(
                replay["order"]["id"], order["id"],
                "the same key is the same order"
            );
            let id = order["id"].as_str().unwrap();
            let (status, _, read) =
                parts(get(&base, &format!("orders/{id}")).send().await.unwrap()).await;
            assert_eq!((status, &read["order"]["id"]), (200, &order["id"]));
            let no_location = json!({"idempotency_key": "o-2", "order": {"line_items": [{"catalog_object_id": var, "quantity": "1"}]}});
            let (status, _, refused) =
                parts(post(&base, "orders", &no_location).send().await.unwrap()).await;
            assert_eq!(
                (status, refused["errors"][0]["code"].as_str()),
                (400, Some("MISSING_REQUIRED_PARAMETER"))
            );
            // One order.created for the one order.
            let mut delivered = None;
            for _ in 0..100 {
                if let Ok(body) = rx.try_recv() {
                    delivered = Some(body);
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let event: Value =
                serde_json::from_str(&delivered.expect("an order.created delivery")).unwrap();
            assert_eq!(event["type"], "order.created");
            assert_eq!(event["data"]["type"], "order_created");
            assert_eq!(
                event["data"]["object"]["order_created"]["order_id"],
                order["id"]
            );
            assert_eq!(event["data"]["object"]["order_created"]["state"], "OPEN");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            assert!(
                rx.try_recv().is_err(),
                "the replay announced the order again"
            );
        });
    }

    #[test]
    fn idempotent_replay_and_key_reuse() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            let var = "W62UWFY35CWMYGVWK6TWJDNI";
            let body = json!({"idempotency_key": "k-1", "changes": [
                {"type": "PHYSICAL_COUNT", "physical_count": {"catalog_object_id": var, "location_id": "FPYCBCHYMXFK1",
                    "state": "IN_STOCK", "quantity": "40", "occurred_at": "2026-05-01T10:05:00Z"}},
                {"type": "ADJUSTMENT", "adjustment": {"catalog_object_id": var, "location_id": "FPYCBCHYMXFK1",
                    "from_state": "IN_STOCK", "to_state": "SOLD", "quantity": "1", "occurred_at": "2026-05-01T10:00:00Z"}}]});
            let (status, _, first) = parts(
                post(&base, "inventory/changes/batch-create", &body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            // The older adjustment is superseded by the later physical count.
            let in_stock: Vec<&Value> = first["counts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["state"] == "IN_STOCK" && c["location_id"] == "FPYCBCHYMXFK1")
                .collect();
            assert_eq!(in_stock[0]["quantity"], "40");
            let (status, _, replay) = parts(
                post(&base, "inventory/changes/batch-create", &body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(replay, first);
            let mut other = body.clone();
            other["changes"][0]["physical_count"]["quantity"] = json!("41");
            let (status, _, err) = parts(
                post(&base, "inventory/changes/batch-create", &other)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 400);
            assert_eq!(err["errors"][0]["code"], "IDEMPOTENCY_KEY_REUSED");
            let stats = crate::testutil::stats(&base).await;
            assert_eq!(stats["square"]["idempotent_replays"], 1);
            assert_eq!(stats["square"]["inventory_changes"], 2);
            let (status, _, err) = parts(
                client()
                    .post(format!("{base}/v2/orders/search"))
                    .header("Authorization", format!("Bearer {ACCESS_TOKEN}"))
                    .header("Square-Version", "20250820")
                    .body("{}")
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 400);
            assert_eq!(err["errors"][0]["code"], "INVALID_SQUARE_VERSION_FORMAT");
        });
    }

    #[test]
    fn search_orders_pages_with_a_bound_cursor() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            for _ in 0..3 {
                super::super::testutil::control(&base, "square/orders", json!({"location_id": "FPYCBCHYMXFK1",
                    "line_items": [{"catalog_object_id": "T9KC4M2ZQ8RW6BXN3HJ7VFLD", "quantity": "1"}]})).await;
            }
            let q = json!({"location_ids": ["FPYCBCHYMXFK1"], "limit": 2, "query": {
                "filter": {"date_time_filter": {"updated_at": {"start_at": "2020-01-01T00:00:00Z"}}},
                "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}}});
            let (_, _, p1) = parts(post(&base, "orders/search", &q).send().await.unwrap()).await;
            assert_eq!(p1["orders"].as_array().unwrap().len(), 2);
            assert_eq!(
                p1["orders"][0]["line_items"][0]["base_price_money"]["amount"],
                1099
            );
            let mut q2 = q.clone();
            q2["cursor"] = p1["cursor"].clone();
            let (_, _, p2) = parts(post(&base, "orders/search", &q2).send().await.unwrap()).await;
            assert_eq!(p2["orders"].as_array().unwrap().len(), 1);
            q2["location_ids"] = json!(["LK3Z8WQ2M5R7B"]);
            let (status, _, _) =
                parts(post(&base, "orders/search", &q2).send().await.unwrap()).await;
            assert_eq!(status, 400);
            let mut bad_sort = q.clone();
            bad_sort["query"]["sort"]["sort_field"] = json!("CREATED_AT");
            let (status, _, _) = parts(
                post(&base, "orders/search", &bad_sort)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 400);
        });
    }
}
