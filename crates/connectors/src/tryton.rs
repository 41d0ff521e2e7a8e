//! Tryton over JSON-RPC (`POST {url}/{database}/rpc/`). The connector logs in with
//! `common.db.login`, sends `Authorization: Session base64(login:uid:token)`, logs in again
//! once when a call answers 401 (sessions expire after idling), and passes the user's
//! preferences as the `context` argument every model call needs. Decimals travel as
//! `{"__class__": "Decimal", "decimal": "12.50"}` and dates as `{"__class__": "date", …}`.
//! A `UserError` is a business refusal (permanent, with its message); 429, 5xx and
//! timeouts are transient.
//!
//! `create_sale` is idempotent on the ERP side too: the sale's `reference` is the canonical
//! order id, so a retry finds the sale an earlier attempt created and only finishes its
//! workflow (quote, confirm).

mod invoice;

use super::client;
use super::{Call, CallFuture, CallOutcome, SinkConnector};
use base64::Engine;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

/// Attempts after a sequence collision (`… must be unique`).
const UNIQUE_RETRIES: u64 = 3;

/// The internal class of a `UserWarning` answer (its reason is the warning key).
const WARNING: &str = "tryton_warning";

/// A JSON-RPC session with one Tryton database.
pub struct Session {
    client: reqwest::Client,
    url: String,
    login: String,
    password: String,
    auth: RefCell<Option<String>>,
    uid: Cell<i64>,
    context: RefCell<Value>,
    next_id: Cell<u64>,
}

/// A Decimal for Tryton.
pub fn decimal(text: &str) -> Value {
    json!({"__class__": "Decimal", "decimal": text})
}

/// A date for Tryton from an RFC 3339 timestamp (or a plain date).
pub fn date(text: &str) -> Option<Value> {
    let day = text.get(..10)?;
    let parsed = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    use chrono::Datelike;
    Some(
        json!({"__class__": "date", "year": parsed.year(), "month": parsed.month(), "day": parsed.day()}),
    )
}

fn user_error(error: &Value) -> String {
    // ["UserError", ["message", "description", …]] or ["'KeyError'", ""].
    match error {
        Value::Array(parts) => {
            let kind = parts.first().and_then(Value::as_str).unwrap_or("error");
            let message = match parts.get(1) {
                Some(Value::Array(args)) => args
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            if message.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}: {message}")
            }
        }
        other => other.to_string(),
    }
}

impl Session {
    /// Reads `url`, `database`, `username`, `password`.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<Session, String> {
        let url = client::setting(settings, "url", "tryton")?.trim_end_matches('/');
        let database = client::setting(settings, "database", "tryton")?;
        Ok(Session {
            client: client::build()?,
            url: format!("{url}/{database}/rpc/"),
            login: client::setting(settings, "username", "tryton")?.to_string(),
            password: client::setting(settings, "password", "tryton")?.to_string(),
            auth: RefCell::new(None),
            uid: Cell::new(0),
            context: RefCell::new(json!({})),
            next_id: Cell::new(1),
        })
    }

    async fn raw(
        &self,
        method: &str,
        params: Value,
        auth: Option<&str>,
        timeout: Duration,
    ) -> Result<Value, CallOutcome> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json!({"id": id, "method": method, "params": params}).to_string());
        if let Some(auth) = auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        let reply = client::send(request, timeout).await?;
        if reply.status == 401 {
            return Err(CallOutcome::Transient {
                class: "unauthorized".into(),
                reason: "HTTP 401: session refused".into(),
                retry_after: None,
            });
        }
        if !reply.ok() {
            let wait = client::seconds_header(&reply.headers, "retry-after");
            return Err(client::outcome(
                &reply,
                wait,
                format!("HTTP {}: {} ({method})", reply.status, reply.excerpt()),
            ));
        }
        let body = reply.json();
        if let Some(error) = body.get("error").filter(|e| !e.is_null()) {
            // ["UserWarning", [key, message, description]]: the caller may accept it.
            if error[0] == "UserWarning" {
                if let Some(key) = error[1][0].as_str() {
                    return Err(CallOutcome::Transient {
                        class: WARNING.into(),
                        reason: key.to_string(),
                        retry_after: None,
                    });
                }
            }
            let reason = format!("{} ({method})", user_error(error));
            // A concurrent write or a busy database is worth another try.
            if reason.contains("ConcurrencyException") || reason.contains("database is locked") {
                return Err(CallOutcome::Transient {
                    class: "server_error".into(),
                    reason,
                    retry_after: None,
                });
            }
            return Err(CallOutcome::Permanent { reason });
        }
        Ok(body.get("result").cloned().unwrap_or(Value::Null))
    }

    async fn login(&self, timeout: Duration) -> Result<String, CallOutcome> {
        let result = self
            .raw(
                "common.db.login",
                json!([self.login, {"password": self.password}, "en"]),
                None,
                timeout,
            )
            .await
            .map_err(|e| match e {
                CallOutcome::Transient { class, .. } if class == "unauthorized" => {
                    CallOutcome::Permanent {
                        reason: format!("Tryton refused the login of `{}`", self.login),
                    }
                }
                other => other,
            })?;
        let (Some(uid), Some(token)) = (
            result.get(0).and_then(Value::as_i64),
            result.get(1).and_then(Value::as_str),
        ) else {
            return Err(CallOutcome::Permanent {
                reason: format!("unexpected login answer: {result}"),
            });
        };
        let auth = format!(
            "Session {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{uid}:{token}", self.login))
        );
        *self.auth.borrow_mut() = Some(auth.clone());
        self.uid.set(uid);
        let prefs = self
            .raw(
                "model.res.user.get_preferences",
                json!([true, {}]),
                Some(&auth),
                timeout,
            )
            .await?;
        let mut context = serde_json::Map::new();
        for key in ["company", "companies", "language", "currency"] {
            if let Some(v) = prefs.get(key) {
                context.insert(key.into(), v.clone());
            }
        }
        *self.context.borrow_mut() = Value::Object(context);
        Ok(auth)
    }

    /// Calls `model.<model>.<method>` with `args` and the session context appended; logs in
    /// when there is no session and once more after a 401. A `UserWarning` (say, stock
    /// coming back from a customer with no origin document) is acknowledged for this one
    /// call, as an operator would, and the call repeated once.
    pub async fn model(
        &self,
        model: &str,
        method: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<Value, CallOutcome> {
        let mut renewed = false;
        let mut warned = false;
        loop {
            let current = self.auth.borrow().clone();
            let auth = match current {
                Some(a) => a,
                None => {
                    renewed = true;
                    self.login(timeout).await?
                }
            };
            let mut params = args.clone();
            params.push(self.context.borrow().clone());
            match self
                .raw(
                    &format!("model.{model}.{method}"),
                    Value::Array(params),
                    Some(&auth),
                    timeout,
                )
                .await
            {
                Err(CallOutcome::Transient { class, .. })
                    if class == "unauthorized" && !renewed =>
                {
                    *self.auth.borrow_mut() = None;
                    renewed = true;
                }
                Err(CallOutcome::Transient { class, reason, .. }) if class == WARNING => {
                    if warned {
                        return Err(CallOutcome::Permanent {
                            reason: format!(
                                "UserWarning {reason} repeated (model.{model}.{method})"
                            ),
                        });
                    }
                    warned = true;
                    let warning =
                        json!([{"user": self.uid.get(), "name": reason, "always": false}]);
                    let context = self.context.borrow().clone();
                    self.raw(
                        "model.res.user.warning.create",
                        json!([warning, context]),
                        Some(&auth),
                        timeout,
                    )
                    .await?;
                }
                other => return other,
            }
        }
    }

    /// Like [`Session::model`] with `context` in place of the session's.
    pub async fn raw_model(
        &self,
        model: &str,
        method: &str,
        mut args: Vec<Value>,
        context: Value,
        timeout: Duration,
    ) -> Result<Value, CallOutcome> {
        if self.auth.borrow().is_none() {
            self.login(timeout).await?;
        }
        let auth = self.auth.borrow().clone();
        args.push(context);
        match self
            .raw(
                &format!("model.{model}.{method}"),
                Value::Array(args.clone()),
                auth.as_deref(),
                timeout,
            )
            .await
        {
            Err(CallOutcome::Transient { class, .. }) if class == "unauthorized" => {
                let auth = self.login(timeout).await?;
                self.raw(
                    &format!("model.{model}.{method}"),
                    Value::Array(args),
                    Some(&auth),
                    timeout,
                )
                .await
            }
            other => other,
        }
    }

    /// Ids matching a domain.
    pub async fn search(
        &self,
        model: &str,
        domain: Value,
        limit: Option<u64>,
        timeout: Duration,
    ) -> Result<Vec<i64>, CallOutcome> {
        let found = self
            .model(
                model,
                "search",
                vec![domain, json!(0), json!(limit), Value::Null],
                timeout,
            )
            .await?;
        Ok(found
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default())
    }

    /// The one record matching a domain; `missing` is the permanent reason when none does.
    pub async fn find_one(
        &self,
        model: &str,
        domain: Value,
        missing: String,
        timeout: Duration,
    ) -> Result<i64, CallOutcome> {
        self.search(model, domain, Some(1), timeout)
            .await?
            .first()
            .copied()
            .ok_or(CallOutcome::Permanent { reason: missing })
    }

    /// Reads fields of records.
    pub async fn read(
        &self,
        model: &str,
        ids: &[i64],
        fields: &[&str],
        timeout: Duration,
    ) -> Result<Vec<Value>, CallOutcome> {
        let found = self
            .model(model, "read", vec![json!(ids), json!(fields)], timeout)
            .await?;
        Ok(found.as_array().cloned().unwrap_or_default())
    }

    /// Creates one record; returns its id.
    pub async fn create(
        &self,
        model: &str,
        values: Value,
        timeout: Duration,
    ) -> Result<i64, CallOutcome> {
        let ids = self
            .model(model, "create", vec![json!([values])], timeout)
            .await?;
        ids.get(0)
            .and_then(Value::as_i64)
            .ok_or_else(|| CallOutcome::Permanent {
                reason: format!("{model}.create answered {ids}"),
            })
    }
}

/// What a Tryton sink does with its message.
#[derive(Clone, Copy)]
pub enum Operation {
    CreateSale,
    CreateParty,
    RecordShipment,
    RecordInvoice,
    AdjustStock,
}

/// A Tryton sink.
pub struct TrytonSink {
    session: Session,
    operation: Operation,
    /// Storage location code for stock movements.
    storage: String,
}

impl TrytonSink {
    /// A sink for `operation`.
    pub fn new(
        settings: &BTreeMap<String, Value>,
        operation: Operation,
    ) -> Result<TrytonSink, String> {
        Ok(TrytonSink {
            session: Session::new(settings)?,
            operation,
            storage: client::optional(settings, "storage_location")
                .unwrap_or("STO")
                .to_string(),
        })
    }

    async fn party(&self, order: &Value, timeout: Duration) -> Result<(i64, i64), CallOutcome> {
        let s = &self.session;
        let email = order["customer"]["email"]
            .as_str()
            .filter(|e| !e.is_empty());
        let name = order["customer"]["name"]
            .as_str()
            .filter(|n| !n.trim().is_empty())
            .or(order["ship_to"]["name"].as_str())
            .or(email)
            .unwrap_or("Walk-in customer")
            .to_string();
        let existing = match email {
            Some(email) => {
                s.search(
                    "party.party",
                    json!([["contact_mechanisms.value", "=", email]]),
                    Some(1),
                    timeout,
                )
                .await?
            }
            None => {
                s.search(
                    "party.party",
                    json!([["name", "=", name]]),
                    Some(1),
                    timeout,
                )
                .await?
            }
        };
        let party = match existing.first() {
            Some(id) => *id,
            None => {
                let mut values = json!({"name": name});
                if let Some(email) = email {
                    values["contact_mechanisms"] =
                        json!([["create", [{"type": "email", "value": email}]]]);
                }
                s.create("party.party", values, timeout).await?
            }
        };
        let to = &order["ship_to"];
        let street = [to["line1"].as_str(), to["line2"].as_str()]
            .into_iter()
            .flatten()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let addresses = s
            .search(
                "party.address",
                json!([
                    ["party", "=", party],
                    ["street", "=", street],
                    ["postal_code", "=", to["postal_code"]]
                ]),
                Some(1),
                timeout,
            )
            .await?;
        let address = match addresses.first() {
            Some(id) => *id,
            None => {
                s.create(
                    "party.address",
                    json!({"party": party, "street": street, "city": to["city"], "postal_code": to["postal_code"]}),
                    timeout,
                )
                .await?
            }
        };
        Ok((party, address))
    }

    /// The sale whose `reference` is the canonical order id.
    async fn sale(&self, reference: &str, timeout: Duration) -> Result<Option<i64>, CallOutcome> {
        let found = self
            .session
            .search(
                "sale.sale",
                json!([["reference", "=", reference]]),
                Some(1),
                timeout,
            )
            .await?;
        Ok(found.first().copied())
    }

    async fn create_sale(&self, order: &Value, timeout: Duration) -> Result<(), CallOutcome> {
        let s = &self.session;
        let reference = client::field(order, "id")?;
        let sale = match self.sale(reference, timeout).await? {
            Some(id) => id,
            None => {
                let (party, address) = self.party(order, timeout).await?;
                let mut lines = Vec::new();
                for line in order["lines"].as_array().cloned().unwrap_or_default() {
                    let sku = line["sku"].as_str().unwrap_or_default();
                    let product = s
                        .find_one(
                            "product.product",
                            json!([["code", "=", sku]]),
                            format!("product {sku} is not in Tryton"),
                            timeout,
                        )
                        .await?;
                    let unit = s
                        .read("product.product", &[product], &["default_uom"], timeout)
                        .await?;
                    let (Some(price), Some(quantity)) = (
                        client::money_text(&line["unit_price"]),
                        line["quantity"].as_f64(),
                    ) else {
                        return Err(CallOutcome::Permanent {
                            reason: format!("line {sku} has no quantity or unit price"),
                        });
                    };
                    lines.push(json!({
                        "type": "line", "product": product,
                        "quantity": quantity,
                        "unit": unit.first().map(|u| u["default_uom"].clone()).unwrap_or(Value::Null),
                        "unit_price": decimal(&price),
                        "description": line["title"].as_str().unwrap_or(sku),
                    }));
                }
                let mut values = json!({
                    "party": party, "invoice_address": address, "shipment_address": address,
                    "reference": reference, "description": order["order_ref"],
                    "invoice_method": "manual", "shipment_method": "order",
                    "lines": [["create", lines]],
                });
                if let Some(day) = order["placed_at"].as_str().and_then(date) {
                    values["sale_date"] = day;
                }
                if let Some(code) = order["currency"].as_str() {
                    if let Some(currency) = s
                        .search(
                            "currency.currency",
                            json!([["code", "=", code]]),
                            Some(1),
                            timeout,
                        )
                        .await?
                        .first()
                    {
                        values["currency"] = json!(currency);
                    }
                }
                s.create("sale.sale", values, timeout).await?
            }
        };
        // Finish the workflow from wherever an earlier attempt left it.
        let state = s.read("sale.sale", &[sale], &["state"], timeout).await?;
        let state = state
            .first()
            .and_then(|r| r["state"].as_str())
            .unwrap_or("draft")
            .to_string();
        if state == "draft" {
            s.model("sale.sale", "quote", vec![json!([sale])], timeout)
                .await?;
        }
        if state == "draft" || state == "quotation" {
            s.model("sale.sale", "confirm", vec![json!([sale])], timeout)
                .await?;
        }
        Ok(())
    }

    async fn record_shipment(
        &self,
        shipment: &Value,
        timeout: Duration,
    ) -> Result<(), CallOutcome> {
        let s = &self.session;
        let reference = client::field(shipment, "order_id")?;
        let Some(sale) = self.sale(reference, timeout).await? else {
            return Err(CallOutcome::Transient {
                class: "not_found".into(),
                reason: format!("sale {reference} is not in Tryton (yet)"),
                retry_after: None,
            });
        };
        let shipments = s
            .read("sale.sale", &[sale], &["shipments"], timeout)
            .await?;
        let ids: Vec<i64> = shipments
            .first()
            .and_then(|r| r["shipments"].as_array())
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        for id in ids {
            let state = s
                .read("stock.shipment.out", &[id], &["state"], timeout)
                .await?;
            let state = state
                .first()
                .and_then(|r| r["state"].as_str())
                .unwrap_or("")
                .to_string();
            let steps: &[&str] = match state.as_str() {
                "draft" | "waiting" => &["assign_try", "pick", "pack", "do"],
                "assigned" => &["pick", "pack", "do"],
                "picked" => &["pack", "do"],
                "packed" => &["do"],
                _ => &[],
            };
            for step in steps {
                s.model("stock.shipment.out", step, vec![json!([id])], timeout)
                    .await?;
            }
        }
        Ok(())
    }

    async fn adjust_stock(&self, movement: &Value, timeout: Duration) -> Result<(), CallOutcome> {
        let s = &self.session;
        let sku = client::field(movement, "sku")?;
        let product = s
            .find_one(
                "product.product",
                json!([["code", "=", sku]]),
                format!("product {sku} is not in Tryton"),
                timeout,
            )
            .await?;
        let quantity = movement["quantity"]
            .as_i64()
            .ok_or_else(|| CallOutcome::Permanent {
                reason: "the movement has no integer `quantity`".into(),
            })?;
        let kind = movement["kind"].as_str().unwrap_or("");
        if matches!(kind, "cycle_count" | "reservation" | "release") {
            return Err(CallOutcome::Permanent {
                reason: format!("a `{kind}` is not a stock move in Tryton (counts are booked by stock inventories, reservations by sales)"),
            });
        }
        let inbound = match kind {
            "sale" | "shipment" | "transfer_out" | "shrinkage" => false,
            "adjustment" => quantity >= 0,
            _ => true,
        };
        let outside = match kind {
            "return" | "sale" | "shipment" => "CUS",
            "receipt" => "SUP",
            _ => "LF",
        };
        let mut codes = BTreeMap::new();
        for code in [self.storage.as_str(), outside] {
            let id = s
                .find_one(
                    "stock.location",
                    json!([["code", "=", code]]),
                    format!("Tryton has no stock location `{code}`"),
                    timeout,
                )
                .await?;
            codes.insert(code, id);
        }
        let (from, to) = if inbound {
            (codes[outside], codes[self.storage.as_str()])
        } else {
            (codes[self.storage.as_str()], codes[outside])
        };
        let unit = s
            .read(
                "product.product",
                &[product],
                &["default_uom", "cost_price"],
                timeout,
            )
            .await?;
        let row = unit.first().cloned().unwrap_or(Value::Null);
        let mut values = json!({
            "product": product, "unit": row["default_uom"], "quantity": quantity.unsigned_abs() as f64,
            "from_location": from, "to_location": to,
            "unit_price": decimal("0"),
        });
        let company = self.session.context.borrow().get("company").cloned();
        if let Some(company) = company.and_then(|c| c.as_i64()) {
            values["company"] = json!(company);
            // A move with a unit price needs a currency: the company's.
            let row = s
                .read("company.company", &[company], &["currency"], timeout)
                .await?;
            if let Some(currency) = row.first().map(|r| r["currency"].clone()) {
                values["currency"] = currency;
            }
        }
        let id = s.create("stock.move", values, timeout).await?;
        s.model("stock.move", "do", vec![json!([id])], timeout)
            .await?;
        Ok(())
    }
}

impl SinkConnector for TrytonSink {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let message = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            // Tryton numbers parties and sales from sequences; two writers can draw the
            // same number and one is refused as not unique. The work resumes from what the
            // ERP holds, so trying again settles it.
            let mut attempt = 0;
            loop {
                let done = match self.operation {
                    Operation::CreateSale => self.create_sale(&message, call.timeout).await,
                    Operation::CreateParty => {
                        // A Customer: its name, email and default address.
                        let as_order =
                            json!({"customer": message, "ship_to": message["default_address"]});
                        self.party(&as_order, call.timeout).await.map(|_| ())
                    }
                    Operation::RecordShipment => self.record_shipment(&message, call.timeout).await,
                    Operation::RecordInvoice => invoice::record(self, &message, call.timeout).await,
                    Operation::AdjustStock => self.adjust_stock(&message, call.timeout).await,
                };
                match done {
                    Ok(()) => return CallOutcome::Ok,
                    Err(CallOutcome::Permanent { reason })
                        if reason.contains("must be unique") && attempt < UNIQUE_RETRIES =>
                    {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(150 * attempt)).await;
                    }
                    Err(e) => return e,
                }
            }
        })
    }
}

/// `tryton.stock_quantities`: the quantity and forecast of every goods product in the
/// connection's `warehouse` (a location code, default `WH`), as InventoryPosition
/// documents. A position is emitted when it differs from the last one this process
/// emitted for the product (all of them after a start).
pub struct StockPager {
    session: Session,
    warehouse: String,
    last: RefCell<BTreeMap<String, (i64, i64)>>,
    /// Positions of the page being committed; they become `last` once durable.
    pending: RefCell<BTreeMap<String, (i64, i64)>>,
}

impl StockPager {
    /// Reads the connection settings.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<StockPager, String> {
        Ok(StockPager {
            session: Session::new(settings)?,
            warehouse: client::optional(settings, "warehouse")
                .unwrap_or("WH")
                .to_string(),
            last: RefCell::new(BTreeMap::new()),
            pending: RefCell::new(BTreeMap::new()),
        })
    }

    async fn positions(&self) -> Result<Vec<(Vec<u8>, Option<String>)>, CallOutcome> {
        let s = &self.session;
        let timeout = Duration::from_secs(60);
        let warehouse = s
            .find_one(
                "stock.location",
                json!([["code", "=", self.warehouse]]),
                format!("Tryton has no location `{}`", self.warehouse),
                timeout,
            )
            .await?;
        let ids = s
            .search(
                "product.product",
                json!([["type", "=", "goods"], ["code", "!=", null]]),
                None,
                timeout,
            )
            .await?;
        let mut context = s.context.borrow().clone();
        context["locations"] = json!([warehouse]);
        let rows = s
            .raw_model(
                "product.product",
                "read",
                vec![json!(ids), json!(["code", "quantity", "forecast_quantity"])],
                context,
                timeout,
            )
            .await?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Ok(rows
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let on_hand = r["quantity"].as_f64().unwrap_or(0.0).round() as i64;
                let forecast = r["forecast_quantity"].as_f64().unwrap_or(0.0).round() as i64;
                let sku = r["code"].as_str().unwrap_or_default();
                let position = json!({
                    "sku": sku, "location": self.warehouse, "on_hand": on_hand,
                    "reserved": (on_hand - forecast).max(0), "in_transit": 0,
                    "available": forecast.max(0), "as_of": now,
                });
                (
                    sku.to_string(),
                    (on_hand, forecast),
                    position.to_string().into_bytes(),
                )
            })
            .filter(|(sku, now, _)| self.last.borrow().get(sku) != Some(now))
            .map(|(sku, now, payload)| {
                self.pending.borrow_mut().insert(sku, now);
                (payload, None)
            })
            .collect())
    }
}

impl crate::api::Pager for StockPager {
    fn committed(&self, _keys: &[String]) {
        let done = std::mem::take(&mut *self.pending.borrow_mut());
        self.last.borrow_mut().extend(done);
    }

    fn page<'a>(&'a self, _position: Option<&'a str>, _first: bool) -> crate::api::PageFuture<'a> {
        Box::pin(async move {
            let items = self.positions().await.map_err(client::reason)?;
            Ok(crate::api::Page {
                items,
                more: false,
                position: None,
            })
        })
    }
}

/// Registers Tryton's operations.
pub fn register(registry: &mut crate::api::Registry) {
    registry.sink("tryton", "create_sale", |_, s, _, _| {
        Ok(Box::new(TrytonSink::new(s, Operation::CreateSale)?))
    });
    registry.sink("tryton", "record_shipment", |_, s, _, _| {
        Ok(Box::new(TrytonSink::new(s, Operation::RecordShipment)?))
    });
    registry.sink("tryton", "record_invoice", |_, s, _, _| {
        Ok(Box::new(TrytonSink::new(s, Operation::RecordInvoice)?))
    });
    registry.sink("tryton", "create_party", |_, s, _, _| {
        Ok(Box::new(TrytonSink::new(s, Operation::CreateParty)?))
    });
    registry.sink("tryton", "adjust_stock", |_, s, _, _| {
        Ok(Box::new(TrytonSink::new(s, Operation::AdjustStock)?))
    });
    registry.pager("tryton", "stock_quantities", |_, s, _| {
        Ok(Box::new(StockPager::new(s)?))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_and_errors() {
        assert_eq!(
            decimal("12.50"),
            json!({"__class__": "Decimal", "decimal": "12.50"})
        );
        assert_eq!(
            date("2026-05-04T10:00:00Z"),
            Some(json!({"__class__": "date", "year": 2026, "month": 5, "day": 4}))
        );
        assert_eq!(date("garbage"), None);
        let e = json!([
            "UserError",
            [
                "To get a quote for sale \"(6)\" you must enter an invoice address.",
                "",
                null
            ]
        ]);
        assert_eq!(
            user_error(&e),
            "UserError: To get a quote for sale \"(6)\" you must enter an invoice address."
        );
        assert_eq!(
            user_error(&json!(["'no.such.model'", ""])),
            "'no.such.model'"
        );
    }
}
