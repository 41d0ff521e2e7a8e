//! OData v4 (and v2) ERP services, shaped like a SAP CAP or S/4HANA sales-order API:
//! - `create_sale`: a deep insert of the sales order with its items, once per order: the
//!   order number (`orderNo` = the canonical order id) is looked up first, so a retry
//!   after a lost answer finds the order instead of posting it twice;
//! - `record_shipment`, `adjust_stock`, `update_entity`: read the entity for its ETag,
//!   then PATCH with `If-Match` (412, a concurrent change, is retried; 428 means the
//!   service wants the ETag, which is always sent);
//! - a CSRF token is fetched (`x-csrf-token: Fetch`) when the connection says `csrf = true`
//!   or a write is refused with `x-csrf-token: Required`, and sent on writes;
//! - V4 (`{"error":{code, message, details}}`) and V2 (`message.value`, `innererror`)
//!   error bodies become the dead-letter reason.

use super::client::{self, Reply};
use super::{Call, CallFuture, CallOutcome, SinkConnector};
use base64::Engine;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// One OData service connection.
pub struct Service {
    client: reqwest::Client,
    root: String,
    auth: Option<String>,
    csrf: bool,
    token: RefCell<Option<String>>,
    sales_orders: String,
}

/// The error of an OData answer (V4 or V2 shape) as text.
pub fn error_text(reply: &Reply) -> String {
    let body = reply.json();
    let Some(error) = body.get("error") else {
        return format!("HTTP {}: {}", reply.status, reply.excerpt());
    };
    let message = match &error["message"] {
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    };
    let mut text = format!(
        "HTTP {} {}: {message}",
        reply.status,
        error["code"].as_str().unwrap_or("")
    );
    let details = error["details"]
        .as_array()
        .or_else(|| error["innererror"]["errordetails"].as_array());
    if let Some(details) = details {
        let parts: Vec<String> = details
            .iter()
            .map(|d| {
                let message = d["message"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| d["message"]["value"].as_str().unwrap_or("").to_string());
                match d["target"].as_str() {
                    Some(target) => format!("{target}: {message}"),
                    None => message,
                }
            })
            .collect();
        if !parts.is_empty() {
            text.push_str(&format!(" ({})", parts.join("; ")));
        }
    }
    text
}

/// Quotes a string for a `$filter` literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Service {
    /// Reads `service_url`, `username`/`password` or `token`, `csrf`, `sales_order_set`.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<Service, String> {
        let auth = match (
            client::optional(settings, "username"),
            client::optional(settings, "password"),
            client::optional(settings, "token"),
        ) {
            (_, _, Some(token)) => Some(format!("Bearer {token}")),
            (Some(user), Some(password), None) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            _ => None,
        };
        Ok(Service {
            client: client::build_with_cookies()?,
            root: format!(
                "{}/",
                client::setting(settings, "service_url", "odata")?.trim_end_matches('/')
            ),
            auth,
            csrf: settings
                .get("csrf")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            token: RefCell::new(None),
            sales_orders: client::optional(settings, "sales_order_set")
                .unwrap_or("SalesOrders")
                .to_string(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.root, path.trim_start_matches('/'))
        };
        let mut request = self
            .client
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(auth) = &self.auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        request
    }

    async fn fetch_token(&self, timeout: Duration) -> Result<(), CallOutcome> {
        let reply = client::send(
            self.request(reqwest::Method::GET, "")
                .header("x-csrf-token", "Fetch"),
            timeout,
        )
        .await?;
        match reply.header("x-csrf-token") {
            Some(token) if reply.ok() => {
                *self.token.borrow_mut() = Some(token.to_string());
                Ok(())
            }
            _ => Err(client::outcome(
                &reply,
                None,
                format!("CSRF token fetch: {}", error_text(&reply)),
            )),
        }
    }

    /// Reads a resource (a GET).
    pub async fn get(&self, path: &str, timeout: Duration) -> Result<Reply, CallOutcome> {
        let reply = client::send(self.request(reqwest::Method::GET, path), timeout).await?;
        if reply.ok() || reply.status == 404 {
            Ok(reply)
        } else {
            Err(client::outcome(
                &reply,
                client::seconds_header(&reply.headers, "retry-after"),
                error_text(&reply),
            ))
        }
    }

    /// Sends a write with the CSRF token (fetched once more when the service asks).
    async fn write(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        if_match: Option<&str>,
        timeout: Duration,
    ) -> Result<Reply, CallOutcome> {
        if self.csrf && self.token.borrow().is_none() {
            self.fetch_token(timeout).await?;
        }
        let mut fetched = false;
        loop {
            let mut request = self
                .request(method.clone(), path)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
            if let Some(token) = self.token.borrow().as_deref() {
                request = request.header("x-csrf-token", token);
            }
            if let Some(etag) = if_match {
                request = request.header(reqwest::header::IF_MATCH, etag);
            }
            let reply = client::send(request, timeout).await?;
            let wants_token = reply.status == 403
                && reply
                    .header("x-csrf-token")
                    .is_some_and(|v| v.eq_ignore_ascii_case("required"));
            if wants_token && !fetched {
                self.fetch_token(timeout).await?;
                fetched = true;
                continue;
            }
            if reply.ok() {
                return Ok(reply);
            }
            return Err(match reply.status {
                // A concurrent change moved the ETag: read again and retry.
                412 => CallOutcome::Transient {
                    class: "etag_conflict".into(),
                    reason: error_text(&reply),
                    retry_after: Some(Duration::from_millis(200)),
                },
                _ => client::outcome(
                    &reply,
                    client::seconds_header(&reply.headers, "retry-after"),
                    error_text(&reply),
                ),
            });
        }
    }

    /// The first entity of `set` whose `field` equals `value`.
    async fn find(
        &self,
        set: &str,
        field: &str,
        value: &str,
        timeout: Duration,
    ) -> Result<Option<Value>, CallOutcome> {
        let path = format!(
            "{set}?$filter={field}%20eq%20{}&$top=1",
            urlencode(&literal(value))
        );
        let reply = self.get(&path, timeout).await?;
        Ok(reply.json()["value"]
            .as_array()
            .and_then(|v| v.first().cloned()))
    }

    /// Reads an entity and its ETag (header, else `@odata.etag`).
    async fn read_with_etag(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<Option<(Value, String)>, CallOutcome> {
        let reply = self.get(path, timeout).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let body = reply.json();
        let etag = reply
            .header("etag")
            .map(String::from)
            .or_else(|| body["@odata.etag"].as_str().map(String::from))
            .unwrap_or_else(|| "*".into());
        Ok(Some((body, etag)))
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'\'' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The key segment of an entity: `('text')` or `(uuid)`.
fn key_segment(id: &Value) -> String {
    match id.as_str() {
        Some(s) if s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4 => {
            format!("({s})")
        }
        Some(s) => format!("({})", urlencode(&literal(s))),
        None => format!("({id})"),
    }
}

/// What an OData sink does with its message.
#[derive(Clone, Copy)]
pub enum Operation {
    CreateSale,
    RecordShipment,
    RecordInvoice,
    AdjustStock,
    UpdateEntity,
}

/// An OData sink.
pub struct ODataSink {
    service: Rc<Service>,
    operation: Operation,
    path: Option<String>,
}

impl ODataSink {
    /// A sink for `operation`; `update_entity` takes the entity path as the `path` option
    /// (a template over the message).
    pub fn new(
        settings: &BTreeMap<String, Value>,
        operation: Operation,
        options: &BTreeMap<String, Value>,
    ) -> Result<ODataSink, String> {
        let path = options
            .get("path")
            .and_then(Value::as_str)
            .map(String::from);
        if matches!(operation, Operation::UpdateEntity) && path.is_none() {
            return Err(
                "`odata.update_entity` needs the `path` option (e.g. \"Products('{{ id }}')\")"
                    .into(),
            );
        }
        Ok(ODataSink {
            service: Rc::new(Service::new(settings)?),
            operation,
            path,
        })
    }

    async fn create_sale(&self, order: &Value, timeout: Duration) -> CallOutcome {
        let service = &self.service;
        let number = match client::field(order, "id") {
            Ok(id) => id,
            Err(e) => return e,
        };
        match service
            .find(&service.sales_orders, "orderNo", number, timeout)
            .await
        {
            Ok(Some(_)) => return CallOutcome::Ok,
            Ok(None) => {}
            Err(e) => return e,
        }
        if let Some(reason) = client::inexact_price(order) {
            return CallOutcome::Permanent { reason };
        }
        let items: Vec<Value> = order["lines"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .map(|l| {
                        json!({
                            "product_ID": l["sku"],
                            "quantity": l["quantity"],
                            "price": client::money_number(&l["unit_price"]),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let customer = order["customer"]["name"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .or(order["customer"]["email"].as_str())
            .or(order["ship_to"]["name"].as_str())
            .unwrap_or("Walk-in customer");
        let body = json!({
            "orderNo": number,
            "customer": customer,
            "currency": order["currency"],
            "items": items,
        });
        match service
            .write(
                reqwest::Method::POST,
                &service.sales_orders,
                &body,
                None,
                timeout,
            )
            .await
        {
            Ok(_) => CallOutcome::Ok,
            Err(e) => e,
        }
    }

    /// Reads the sales order a message names, for its key and ETag.
    async fn sales_order(
        &self,
        number: &str,
        timeout: Duration,
    ) -> Result<(String, String), CallOutcome> {
        let service = &self.service;
        let Some(found) = service
            .find(&service.sales_orders, "orderNo", number, timeout)
            .await?
        else {
            // The sale may still be on its way to the ERP (an outage, a retry): wait for it.
            return Err(CallOutcome::Transient {
                class: "not_found".into(),
                reason: format!("sales order {number} is not in the ERP (yet)"),
                retry_after: None,
            });
        };
        let path = format!("{}{}", service.sales_orders, key_segment(&found["ID"]));
        let (_, etag) = service
            .read_with_etag(&path, timeout)
            .await?
            .ok_or_else(|| CallOutcome::Transient {
                class: "not_found".into(),
                reason: format!("sales order {number} vanished while being read"),
                retry_after: None,
            })?;
        Ok((path, etag))
    }

    async fn patch_order(&self, number: &str, values: Value, timeout: Duration) -> CallOutcome {
        let (path, etag) = match self.sales_order(number, timeout).await {
            Ok(found) => found,
            Err(e) => return e,
        };
        match self
            .service
            .write(reqwest::Method::PATCH, &path, &values, Some(&etag), timeout)
            .await
        {
            Ok(_) => CallOutcome::Ok,
            Err(e) => e,
        }
    }

    async fn adjust_stock(&self, movement: &Value, timeout: Duration) -> CallOutcome {
        let sku = match client::field(movement, "sku") {
            Ok(s) => s,
            Err(e) => return e,
        };
        let path = format!("Products{}", key_segment(&json!(sku)));
        let (product, etag) = match self.service.read_with_etag(&path, timeout).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                return CallOutcome::Permanent {
                    reason: format!("product {sku} is not in the ERP"),
                }
            }
            Err(e) => return e,
        };
        let Some(quantity) = movement["quantity"].as_i64() else {
            return CallOutcome::Permanent {
                reason: "the movement has no integer `quantity`".into(),
            };
        };
        if matches!(movement["kind"].as_str(), Some("reservation" | "release")) {
            return CallOutcome::Permanent {
                reason: "a reservation does not change the product's stock in the ERP".into(),
            };
        }
        let stock = product["stock"].as_i64().unwrap_or(0);
        let new = match movement["kind"].as_str().unwrap_or("") {
            "cycle_count" => quantity,
            "sale" | "shipment" | "transfer_out" | "shrinkage" => stock - quantity.abs(),
            "adjustment" => stock + quantity,
            _ => stock + quantity.abs(),
        };
        if new < 0 {
            return CallOutcome::Permanent {
                reason: format!("stock of {sku} would fall below zero ({stock} -> {new})"),
            };
        }
        match self
            .service
            .write(
                reqwest::Method::PATCH,
                &path,
                &json!({"stock": new}),
                Some(&etag),
                timeout,
            )
            .await
        {
            Ok(_) => CallOutcome::Ok,
            Err(e) => e,
        }
    }

    async fn update_entity(&self, message: &Value, timeout: Duration) -> CallOutcome {
        let template = self.path.as_deref().unwrap_or_default();
        let path = match minijinja::Environment::new().render_str(template, message) {
            Ok(p) => p,
            Err(e) => {
                return CallOutcome::Permanent {
                    reason: format!("path template: {e}"),
                }
            }
        };
        let etag = match self.service.read_with_etag(&path, timeout).await {
            Ok(Some((_, etag))) => etag,
            Ok(None) => {
                return CallOutcome::Permanent {
                    reason: format!("{path} does not exist"),
                }
            }
            Err(e) => return e,
        };
        match self
            .service
            .write(reqwest::Method::PATCH, &path, message, Some(&etag), timeout)
            .await
        {
            Ok(_) => CallOutcome::Ok,
            Err(e) => e,
        }
    }
}

impl SinkConnector for ODataSink {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let message = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            match self.operation {
                Operation::CreateSale => self.create_sale(&message, call.timeout).await,
                Operation::RecordShipment => {
                    let number = message["order_id"].as_str().unwrap_or_default();
                    let values = json!({
                        "status": "SHIPPED",
                        "carrier": message["carrier"],
                        "trackingNumber": message["tracking_number"],
                        "shippedAt": message["shipped_at"],
                    });
                    self.patch_order(number, values, call.timeout).await
                }
                Operation::RecordInvoice => {
                    let number = message["order_id"].as_str().unwrap_or_default();
                    let values = json!({"invoiceNo": message["number"].as_str().or(message["id"].as_str()), "invoiceState": message["state"]});
                    self.patch_order(number, values, call.timeout).await
                }
                Operation::AdjustStock => self.adjust_stock(&message, call.timeout).await,
                Operation::UpdateEntity => self.update_entity(&message, call.timeout).await,
            }
        })
    }
}

/// `odata.entities`: reads an entity set (`entity_set`, required) with
/// `$filter`/`$select`/`$expand` and follows
/// `@odata.nextLink` (V4, relative to the service root) or `d.__next` (V2). With
/// `cursor = watermark`, only rows whose `watermark` field (default `modifiedAt`) is
/// later than the stored one are read, oldest first; the dedupe key is the row's key and
/// watermark value. `page_size` asks for pages of that size (`Prefer: odata.maxpagesize`).
pub struct EntitiesPager {
    service: Service,
    entity_set: String,
    filter: Option<String>,
    select: Option<String>,
    expand: Option<String>,
    watermark: Option<String>,
    page_size: Option<u64>,
}

impl EntitiesPager {
    /// Reads the settings and the `entity_set`, `filter`, `select`, `expand`, `cursor`,
    /// `watermark` and `page_size` options.
    pub fn new(
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<EntitiesPager, String> {
        let text = |k: &str| options.get(k).and_then(Value::as_str).map(String::from);
        let watermark = match text("cursor").as_deref() {
            Some("watermark") => Some(text("watermark").unwrap_or_else(|| "modifiedAt".into())),
            _ => None,
        };
        Ok(EntitiesPager {
            service: Service::new(settings)?,
            // `check` requires it (E0211); `odata.stock` names `Products` when its source
            // names no set.
            entity_set: text("entity_set").ok_or("an odata poll source needs `entity_set`")?,
            filter: text("filter"),
            select: text("select"),
            expand: text("expand"),
            watermark,
            page_size: options.get("page_size").and_then(Value::as_u64),
        })
    }

    fn first_url(&self, since: Option<&str>) -> String {
        let mut filters: Vec<String> = self.filter.iter().map(|f| format!("({f})")).collect();
        if let (Some(field), Some(since)) = (&self.watermark, since) {
            let looks_like_time =
                since.len() >= 10 && since.as_bytes()[4] == b'-' && since.as_bytes()[7] == b'-';
            let value = if looks_like_time {
                since.to_string()
            } else {
                literal(since)
            };
            // `ge`: rows stamped in the same instant as the last one are read again and
            // skipped by their dedupe key, rather than missed.
            filters.push(format!("{field} ge {value}"));
        }
        let mut query = Vec::new();
        if !filters.is_empty() {
            query.push(format!("$filter={}", urlencode(&filters.join(" and "))));
        }
        if let Some(select) = &self.select {
            query.push(format!("$select={}", urlencode(select)));
        }
        if let Some(expand) = &self.expand {
            query.push(format!("$expand={}", urlencode(expand)));
        }
        if let Some(field) = &self.watermark {
            query.push(format!("$orderby={}", urlencode(&format!("{field} asc"))));
        }
        if query.is_empty() {
            self.entity_set.clone()
        } else {
            format!("{}?{}", self.entity_set, query.join("&"))
        }
    }
}

impl crate::api::Pager for EntitiesPager {
    /// The position is the watermark, or `watermark|next link` while a read is paged.
    fn page<'a>(&'a self, position: Option<&'a str>, _first: bool) -> crate::api::PageFuture<'a> {
        Box::pin(async move {
            let (watermark, next) = match position.and_then(|p| p.split_once('|')) {
                Some((w, n)) => (
                    Some(w.to_string()).filter(|w| !w.is_empty()),
                    Some(n.to_string()),
                ),
                None => (position.map(String::from).filter(|w| !w.is_empty()), None),
            };
            let path = next.unwrap_or_else(|| self.first_url(watermark.as_deref()));
            let mut request = self.service.request(reqwest::Method::GET, &path);
            if let Some(size) = self.page_size {
                request = request.header("Prefer", format!("odata.maxpagesize={size}"));
            }
            let reply = client::send(request, Duration::from_secs(60))
                .await
                .map_err(client::reason)?;
            if !reply.ok() {
                return Err(error_text(&reply));
            }
            let body = reply.json();
            let rows = body["value"]
                .as_array()
                .or_else(|| body["d"]["results"].as_array())
                .cloned()
                .unwrap_or_default();
            let mut newest = watermark.clone();
            let mut items = Vec::with_capacity(rows.len());
            for row in rows {
                let key = match &self.watermark {
                    Some(field) => {
                        let stamp = row[field.as_str()]
                            .as_str()
                            .map(String::from)
                            .unwrap_or_else(|| row[field.as_str()].to_string());
                        if newest.as_deref().is_none_or(|n| stamp.as_str() > n) {
                            newest = Some(stamp.clone());
                        }
                        let id = row
                            .get("ID")
                            .or_else(|| row.get("@odata.id"))
                            .map(|v| v.to_string())
                            .unwrap_or_default();
                        Some(format!("{id}@{stamp}"))
                    }
                    None => None,
                };
                items.push((serde_json::to_vec(&row).unwrap_or_default(), key));
            }
            let next = body["@odata.nextLink"]
                .as_str()
                .or(body["d"]["__next"].as_str())
                .map(String::from);
            // Paging keeps the watermark the read started from; the last page commits the
            // newest value seen.
            let position = match &next {
                Some(n) => Some(format!("{}|{n}", watermark.unwrap_or_default())),
                None => newest,
            };
            Ok(crate::api::Page {
                items,
                more: next.is_some(),
                position,
            })
        })
    }
}

/// `odata.stock`: stock positions read from an entity set (`entity_set`, default
/// `Products`), one InventoryPosition per row: the key `ID` is the SKU, `stock` the
/// quantity on hand (and available), `modifiedAt` the time of the count, and the row's
/// `location` (else the connection's `warehouse`, default `WH`) the location. Paging,
/// `$filter` and the watermark (`modifiedAt` unless `cursor = none`) are those of
/// [`EntitiesPager`].
pub struct StockPager {
    rows: EntitiesPager,
    warehouse: String,
}

impl StockPager {
    /// Reads the settings and the source's options.
    pub fn new(
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<StockPager, String> {
        let mut options = options.clone();
        options
            .entry("entity_set".into())
            .or_insert_with(|| json!("Products"));
        options
            .entry("cursor".into())
            .or_insert_with(|| json!("watermark"));
        Ok(StockPager {
            rows: EntitiesPager::new(settings, &options)?,
            warehouse: client::optional(settings, "warehouse")
                .unwrap_or("WH")
                .to_string(),
        })
    }

    /// The InventoryPosition of one row; `None` when the row is not a JSON object.
    fn position(&self, row: &[u8]) -> Option<Vec<u8>> {
        let row: Value = serde_json::from_slice(row).ok()?;
        let sku = match &row["ID"] {
            Value::String(s) => Value::String(s.clone()),
            Value::Null => Value::Null,
            other => Value::String(other.to_string()),
        };
        let location = row["location"]
            .as_str()
            .unwrap_or(&self.warehouse)
            .to_string();
        let as_of = row["modifiedAt"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| {
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            });
        let position = json!({
            "sku": sku, "location": location, "on_hand": row["stock"],
            "reserved": 0, "in_transit": 0, "available": row["stock"], "as_of": as_of,
        });
        serde_json::to_vec(&position).ok()
    }
}

impl crate::api::Pager for StockPager {
    fn page<'a>(&'a self, position: Option<&'a str>, first: bool) -> crate::api::PageFuture<'a> {
        Box::pin(async move {
            let mut page = crate::api::Pager::page(&self.rows, position, first).await?;
            for (payload, _) in &mut page.items {
                if let Some(converted) = self.position(payload) {
                    *payload = converted;
                }
            }
            Ok(page)
        })
    }
}

/// Registers the OData connector's operations.
pub fn register(registry: &mut crate::api::Registry) {
    registry.sink("odata", "create_sale", |_, s, _, o| {
        Ok(Box::new(ODataSink::new(s, Operation::CreateSale, o)?))
    });
    registry.sink("odata", "record_shipment", |_, s, _, o| {
        Ok(Box::new(ODataSink::new(s, Operation::RecordShipment, o)?))
    });
    registry.sink("odata", "record_invoice", |_, s, _, o| {
        Ok(Box::new(ODataSink::new(s, Operation::RecordInvoice, o)?))
    });
    registry.sink("odata", "adjust_stock", |_, s, _, o| {
        Ok(Box::new(ODataSink::new(s, Operation::AdjustStock, o)?))
    });
    registry.sink("odata", "update_entity", |_, s, _, o| {
        Ok(Box::new(ODataSink::new(s, Operation::UpdateEntity, o)?))
    });
    registry.pager("odata", "entities", |_, s, o| {
        Ok(Box::new(EntitiesPager::new(s, o)?))
    });
    registry.pager("odata", "stock", |_, s, o| {
        Ok(Box::new(StockPager::new(s, o)?))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn v4_and_v2_errors() {
        let v4 = reply(
            400,
            r#"{"error":{"code":"MULTIPLE_ERRORS","message":"Multiple errors occurred","details":[{"code":"ASSERT_MANDATORY","target":"customer","message":"Provide the missing value."}]}}"#,
        );
        assert_eq!(error_text(&v4), "HTTP 400 MULTIPLE_ERRORS: Multiple errors occurred (customer: Provide the missing value.)");
        let v2 = reply(
            400,
            r#"{"error":{"code":"SD/123","message":{"lang":"en","value":"Material unknown"},"innererror":{"errordetails":[{"code":"X","message":"Material ITM-9 not found"}]}}}"#,
        );
        assert_eq!(
            error_text(&v2),
            "HTTP 400 SD/123: Material unknown (Material ITM-9 not found)"
        );
    }

    #[test]
    fn keys_and_literals() {
        assert_eq!(key_segment(&json!("ITM-1")), "('ITM-1')");
        assert_eq!(
            key_segment(&json!("0b5c1f0e-2c7d-4f7a-9a55-3c3c2f1d9e10")),
            "(0b5c1f0e-2c7d-4f7a-9a55-3c3c2f1d9e10)"
        );
        assert_eq!(literal("O'Brien"), "'O''Brien'");
    }
}
