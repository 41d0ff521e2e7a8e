//! Square. `Authorization: Bearer` and a `Square-Version` header on every call; orders are
//! searched by `updated_at` (the sort field must be the filtered timestamp) with the body
//! `cursor` sent back with the unchanged query; every write carries an `idempotency_key`
//! (the message's key, so a retry after a crash replays rather than repeats). Errors are
//! `{"errors":[{category, code, detail}]}`. Canonical SKUs and locations become catalog
//! variation ids and location ids through the `item_map` and `location_map` settings.

pub mod auth;
pub mod catalog;

use super::client::{self, Reply};
use super::{Call, CallFuture, CallOutcome, SinkConnector};
use crate::api::{Page, PageFuture, Pager};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// One Square seller connection.
pub struct Seller {
    client: reqwest::Client,
    base: String,
    token: String,
    version: String,
    locations: Vec<String>,
    location_map: BTreeMap<String, String>,
    item_map: BTreeMap<String, String>,
}

/// The `errors` of a Square error body, as text.
pub fn error_text(reply: &Reply) -> String {
    match reply.json().get("errors").and_then(Value::as_array) {
        Some(errors) if !errors.is_empty() => {
            format!("HTTP {}: ", reply.status)
                + &errors
                    .iter()
                    .map(|e| {
                        let mut text = format!(
                            "{}/{}",
                            e["category"].as_str().unwrap_or("?"),
                            e["code"].as_str().unwrap_or("?")
                        );
                        if let Some(detail) = e["detail"].as_str() {
                            text.push_str(": ");
                            text.push_str(detail);
                        }
                        if let Some(field) = e["field"].as_str() {
                            text.push_str(&format!(" (field {field})"));
                        }
                        text
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
        }
        _ => format!("HTTP {}: {}", reply.status, reply.excerpt()),
    }
}

impl Seller {
    /// Reads the connection settings.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<Seller, String> {
        Ok(Seller {
            client: client::build()?,
            base: client::optional(settings, "base_url")
                .unwrap_or("https://connect.squareup.com")
                .trim_end_matches('/')
                .to_string(),
            token: client::setting(settings, "access_token", "square")?.to_string(),
            version: client::optional(settings, "square_version")
                .unwrap_or("2025-08-20")
                .to_string(),
            locations: client::optional(settings, "location_ids")
                .unwrap_or("")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            location_map: client::pairs(client::optional(settings, "location_map")),
            item_map: client::pairs(client::optional(settings, "item_map")),
        })
    }

    async fn post(
        &self,
        path: &str,
        body: String,
        timeout: Duration,
    ) -> Result<Reply, CallOutcome> {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("Square-Version", &self.version)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let reply = client::send(request, timeout).await?;
        if reply.ok() {
            return Ok(reply);
        }
        let wait = client::seconds_header(&reply.headers, "retry-after");
        Err(client::outcome(&reply, wait, error_text(&reply)))
    }
}

/// `square.orders`: SearchOrders by `updated_at` since the watermark, ascending. The dedupe
/// key is the order id and its version.
pub struct OrdersPager {
    seller: Seller,
    limit: u64,
    lookback: Duration,
}

impl OrdersPager {
    /// Reads the settings and the `page_size` and `lookback` options.
    pub fn new(
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<OrdersPager, String> {
        let seller = Seller::new(settings)?;
        if seller.locations.is_empty() {
            return Err("square orders need `location_ids`".into());
        }
        Ok(OrdersPager {
            seller,
            limit: client::page_size(options, 500, 1000),
            lookback: client::lookback(options),
        })
    }
}

impl Pager for OrdersPager {
    /// The position is the watermark, or `watermark|start|cursor` while a search is paged
    /// (the cursor is only valid with the query that started it).
    fn page<'a>(&'a self, position: Option<&'a str>, _first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let parts: Vec<&str> = position
                .map(|p| p.splitn(3, '|').collect())
                .unwrap_or_default();
            let (watermark, start, cursor) = match parts.as_slice() {
                [w, s, c] => (Some(w.to_string()), s.to_string(), Some(c.to_string())),
                [w] => {
                    let start = chrono::DateTime::parse_from_rfc3339(w)
                        .map(|t| {
                            t.with_timezone(&chrono::Utc)
                                - chrono::Duration::from_std(self.lookback).unwrap_or_default()
                        })
                        .unwrap_or_else(|_| chrono::Utc::now() - chrono::Duration::days(30));
                    (Some(w.to_string()), start.to_rfc3339(), None)
                }
                _ => (
                    None,
                    (chrono::Utc::now() - chrono::Duration::days(30)).to_rfc3339(),
                    None,
                ),
            };
            let mut body = json!({
                "location_ids": self.seller.locations,
                "limit": self.limit,
                "query": {
                    "filter": {"date_time_filter": {"updated_at": {"start_at": start}}},
                    "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}
                }
            });
            if let Some(c) = &cursor {
                body["cursor"] = json!(c);
            }
            let reply = self
                .seller
                .post(
                    "/v2/orders/search",
                    body.to_string(),
                    Duration::from_secs(30),
                )
                .await
                .map_err(client::reason)?;
            let answer = reply.json();
            let orders = answer["orders"].as_array().cloned().unwrap_or_default();
            let mut newest = watermark.clone();
            let mut items = Vec::with_capacity(orders.len());
            for order in orders {
                let updated = order["updated_at"].as_str().unwrap_or_default().to_string();
                if newest.as_deref().is_none_or(|n| updated.as_str() > n) {
                    newest = Some(updated);
                }
                let key = format!(
                    "{}@{}",
                    order["id"].as_str().unwrap_or_default(),
                    order["version"]
                );
                items.push((serde_json::to_vec(&order).unwrap_or_default(), Some(key)));
            }
            let next = answer["cursor"].as_str().map(String::from);
            let position = match &next {
                Some(c) => Some(format!(
                    "{}|{start}|{c}",
                    newest.clone().unwrap_or_default()
                )),
                None => newest,
            };
            Ok(Page {
                items,
                more: next.is_some(),
                position,
            })
        })
    }
}

/// `square.adjust_inventory` (an ADJUSTMENT between states) and `square.set_inventory_count`
/// (a PHYSICAL_COUNT), through BatchChangeInventory.
pub struct ChangeInventory {
    seller: Seller,
    count: bool,
}

impl ChangeInventory {
    /// `count`: a physical count of an InventoryLevel rather than an adjustment.
    pub fn new(settings: &BTreeMap<String, Value>, count: bool) -> Result<ChangeInventory, String> {
        Ok(ChangeInventory {
            seller: Seller::new(settings)?,
            count,
        })
    }

    fn ids(&self, message: &Value) -> Result<(String, String), CallOutcome> {
        let sku = client::field(message, "sku")?;
        let location = client::field(message, "location")?;
        let item = self
            .seller
            .item_map
            .get(sku)
            .ok_or_else(|| CallOutcome::Permanent {
                reason: format!("SKU {sku} has no Square catalog variation in `item_map`"),
            })?;
        let place =
            self.seller
                .location_map
                .get(location)
                .ok_or_else(|| CallOutcome::Permanent {
                    reason: format!("location {location} has no Square location in `location_map`"),
                })?;
        Ok((item.clone(), place.clone()))
    }
}

/// The Square states a movement kind moves stock between.
fn states(kind: &str, quantity: i64) -> (&'static str, &'static str) {
    match kind {
        "reservation" => ("IN_STOCK", "RESERVED_FOR_SALE"),
        "release" => ("RESERVED_FOR_SALE", "IN_STOCK"),
        "sale" | "shipment" => ("IN_STOCK", "SOLD"),
        "return" => ("RETURNED_BY_CUSTOMER", "IN_STOCK"),
        "receipt" | "transfer_in" => ("NONE", "IN_STOCK"),
        "transfer_out" => ("IN_STOCK", "IN_TRANSIT"),
        "shrinkage" => ("IN_STOCK", "WASTE"),
        _ if quantity < 0 => ("IN_STOCK", "WASTE"),
        _ => ("NONE", "IN_STOCK"),
    }
}

impl SinkConnector for ChangeInventory {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let message = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let (item, location) = match self.ids(&message) {
                Ok(ids) => ids,
                Err(e) => return e,
            };
            let now = chrono::Utc::now().to_rfc3339();
            let field = if self.count { "available" } else { "quantity" };
            let Some(quantity) = message[field].as_i64() else {
                return CallOutcome::Permanent {
                    reason: format!("the message has no integer `{field}`"),
                };
            };
            // A cycle count is an absolute count at its time, not a move between states.
            let counted = !self.count && message["kind"] == "cycle_count";
            let change = if self.count || counted {
                json!({"type": "PHYSICAL_COUNT", "physical_count": {
                    "catalog_object_id": item, "location_id": location, "state": "IN_STOCK",
                    "quantity": quantity.max(0).to_string(),
                    "occurred_at": message["occurred_at"].as_str().unwrap_or(&now),
                }})
            } else {
                let (from, to) = states(message["kind"].as_str().unwrap_or(""), quantity);
                json!({"type": "ADJUSTMENT", "adjustment": {
                    "catalog_object_id": item, "location_id": location,
                    "from_state": from, "to_state": to,
                    "quantity": quantity.abs().to_string(),
                    "occurred_at": message["occurred_at"].as_str().unwrap_or(&now),
                    "reference_id": message["reference"],
                }})
            };
            // Square keys are at most 128 characters.
            let key: String = call.key.chars().take(128).collect();
            let body = json!({"idempotency_key": key, "changes": [change], "ignore_unchanged_counts": true});
            match self
                .seller
                .post(
                    "/v2/inventory/changes/batch-create",
                    body.to_string(),
                    call.timeout,
                )
                .await
            {
                // The key was used by an earlier attempt that Square applied (a retry
                // after a lost answer, with a fresh timestamp): already done.
                Err(CallOutcome::Permanent { reason })
                    if reason.contains("IDEMPOTENCY_KEY_REUSED") =>
                {
                    CallOutcome::Ok
                }
                Ok(reply) => match reply.json().get("errors").and_then(Value::as_array) {
                    Some(errors) if !errors.is_empty() => CallOutcome::Permanent {
                        reason: error_text(&reply),
                    },
                    _ => CallOutcome::Ok,
                },
                Err(e) => e,
            }
        })
    }
}

/// `square.inventory_counts`: BatchRetrieveInventoryCounts of the IN_STOCK state at the
/// connection's locations, `updated_after` the watermark (the newest `calculated_at`),
/// following the body cursor. The dedupe key is the variation, location and count time.
pub struct CountsPager {
    seller: Seller,
    limit: u64,
}

impl CountsPager {
    /// Reads the settings and `page_size`.
    pub fn new(
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<CountsPager, String> {
        Ok(CountsPager {
            seller: Seller::new(settings)?,
            limit: client::page_size(options, 1000, 1000),
        })
    }
}

impl Pager for CountsPager {
    /// The position is the watermark, or `watermark|cursor` while paging.
    fn page<'a>(&'a self, position: Option<&'a str>, _first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let (watermark, cursor) = match position.and_then(|p| p.split_once('|')) {
                Some((w, c)) => (
                    Some(w.to_string()).filter(|w| !w.is_empty()),
                    Some(c.to_string()),
                ),
                None => (position.map(String::from).filter(|w| !w.is_empty()), None),
            };
            let mut body = json!({"states": ["IN_STOCK"], "limit": self.limit});
            if !self.seller.locations.is_empty() {
                body["location_ids"] = json!(self.seller.locations);
            }
            if let Some(w) = &watermark {
                body["updated_after"] = json!(w);
            }
            if let Some(c) = &cursor {
                body["cursor"] = json!(c);
            }
            let reply = self
                .seller
                .post(
                    "/v2/inventory/counts/batch-retrieve",
                    body.to_string(),
                    Duration::from_secs(30),
                )
                .await
                .map_err(client::reason)?;
            let answer = reply.json();
            let mut newest = watermark.clone();
            let mut items = Vec::new();
            for count in answer["counts"].as_array().cloned().unwrap_or_default() {
                let at = count["calculated_at"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if newest.as_deref().is_none_or(|n| at.as_str() > n) {
                    newest = Some(at.clone());
                }
                let key = format!(
                    "{}@{}@{at}",
                    count["catalog_object_id"].as_str().unwrap_or_default(),
                    count["location_id"].as_str().unwrap_or_default()
                );
                items.push((serde_json::to_vec(&count).unwrap_or_default(), Some(key)));
            }
            let next = answer["cursor"].as_str().map(String::from);
            let position = match &next {
                Some(c) => Some(format!("{}|{c}", watermark.unwrap_or_default())),
                None => newest,
            };
            Ok(Page {
                items,
                more: next.is_some(),
                position,
            })
        })
    }
}

/// Registers Square's operations.
pub fn register(registry: &mut crate::api::Registry) {
    registry.sink("square", "adjust_inventory", |_, s, _, _| {
        Ok(Box::new(ChangeInventory::new(s, false)?))
    });
    registry.sink("square", "set_inventory_count", |_, s, _, _| {
        Ok(Box::new(ChangeInventory::new(s, true)?))
    });
    registry.sink("square", "update_price", |_, s, _, _| {
        Ok(Box::new(catalog::UpdatePrice::new(s)?))
    });
    registry.pager("square", "orders", |_, s, o| {
        Ok(Box::new(OrdersPager::new(s, o)?))
    });
    registry.pager("square", "inventory_counts", |_, s, o| {
        Ok(Box::new(CountsPager::new(s, o)?))
    });
    for operation in ["order_events", "payment_events", "inventory_events"] {
        registry.verifier("square", operation, |_, s| {
            let need = |name| crate::signatures::need(s, "square", name);
            Ok(Box::new(auth::SquareWebhooks {
                key: need("signature_key")?.into_bytes(),
                url: need("notification_url")?,
            }))
        });
    }
}
