//! Shopify's order and inventory writes. They take no idempotency key, so a fulfilment is
//! preceded by a read of the order's fulfillment orders: nothing left open means the
//! parcel was already fulfilled, which counts as done.

use super::Store;
use crate::api::ConnectorError;
use crate::client;
use crate::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// `shopify.create_fulfillment`: fulfils what is open on the order's fulfillment orders
/// with the shipment's tracking.
pub struct CreateFulfillment {
    store: Store,
    items: BTreeMap<String, String>,
}

impl CreateFulfillment {
    /// Reads the connection settings.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<CreateFulfillment, ConnectorError> {
        Ok(CreateFulfillment {
            store: Store::new(settings)?,
            items: client::pairs(client::optional(settings, "item_map")),
        })
    }
}

impl SinkConnector for CreateFulfillment {
    fn backoff(&self) -> Option<Duration> {
        self.store.backoff()
    }

    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let shipment = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let order_id = match client::field(&shipment, "order_id") {
                Ok(id) => id.strip_prefix("shopify:").unwrap_or(id).to_string(),
                Err(e) => return e,
            };
            let url = format!(
                "{}/orders/{order_id}/fulfillment_orders.json",
                self.store.base
            );
            let reply = match self
                .store
                .send(self.store.request(reqwest::Method::GET, &url), call.timeout)
                .await
            {
                Ok(r) => r,
                Err(e) => return e,
            };
            let listed = reply
                .document()
                .and_then(|body| client::list_at(&body, &["fulfillment_orders"], false));
            let orders = match listed {
                Ok(orders) => orders,
                Err(reason) => return client::unreadable(reason),
            };
            let (open, rest): (Vec<Value>, Vec<Value>) = orders
                .into_iter()
                .partition(|fo| fo["status"] == "open" || fo["status"] == "in_progress");
            if let Some(blocked) = rest
                .iter()
                .find(|fo| fo["status"] != "closed" && fo["status"] != "cancelled")
            {
                if open.is_empty() {
                    return CallOutcome::Permanent {
                        reason: format!(
                            "Shopify order {order_id}: fulfillment order {} is {}, nothing can be fulfilled",
                            blocked["id"], blocked["status"]
                        ),
                    };
                }
            }
            // A parcel fulfils the lines it carries when its SKUs map to inventory items
            // (`item_map`); otherwise everything still open.
            let lines = shipment["lines"].as_array().cloned().unwrap_or_default();
            let wanted: Vec<(String, i64)> = lines
                .iter()
                .filter_map(|l| {
                    Some((
                        self.items.get(l["sku"].as_str()?)?.clone(),
                        l["quantity"].as_i64()?,
                    ))
                })
                .collect();
            let by_order: Vec<Value> = if wanted.is_empty() || wanted.len() < lines.len() {
                open.iter()
                    .map(|fo| json!({"fulfillment_order_id": fo["id"]}))
                    .collect()
            } else {
                open.iter()
                    .filter_map(|fo| {
                        let picked: Vec<Value> = fo["line_items"]
                            .as_array()?
                            .iter()
                            .filter_map(|li| {
                                let (_, q) = {
                                    let id = li["inventory_item_id"].to_string();
                                    wanted.iter().find(|(item, _)| *item == id)?
                                };
                                let left = li["fulfillable_quantity"].as_i64().unwrap_or(0);
                                (left > 0).then(|| json!({"id": li["id"], "quantity": (*q).min(left)}))
                            })
                            .collect();
                        (!picked.is_empty()).then(|| json!({"fulfillment_order_id": fo["id"], "fulfillment_order_line_items": picked}))
                    })
                    .collect()
            };
            if by_order.is_empty() {
                // Nothing of this parcel is left open: an earlier attempt whose answer was
                // lost fulfilled it.
                return CallOutcome::Ok;
            }
            let body = json!({
                "fulfillment": {
                    "message": "shipped",
                    "notify_customer": true,
                    "tracking_info": {
                        "number": shipment["tracking_number"],
                        "company": shipment["carrier"],
                        "url": shipment["tracking_url"],
                    },
                    "line_items_by_fulfillment_order": by_order,
                }
            })
            .to_string();
            let url = format!("{}/fulfillments.json", self.store.base);
            let request = self
                .store
                .request(reqwest::Method::POST, &url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            match self.store.send(request, call.timeout).await {
                Ok(reply) => CallOutcome::done(
                    reply.json()["fulfillment"]["id"]
                        .as_u64()
                        .map(|id| format!("fulfillment {id}")),
                ),
                Err(e) => e,
            }
        })
    }
}

/// `shopify.set_inventory_level`: `inventory_levels/set.json` with the absolute quantity.
/// `location_map` pairs canonical locations with Shopify location ids and `item_map`
/// canonical SKUs with inventory item ids.
pub struct SetInventoryLevel {
    store: Store,
    locations: BTreeMap<String, String>,
    items: BTreeMap<String, String>,
}

impl SetInventoryLevel {
    /// Reads the connection settings.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<SetInventoryLevel, ConnectorError> {
        Ok(SetInventoryLevel {
            store: Store::new(settings)?,
            locations: client::pairs(client::optional(settings, "location_map")),
            items: client::pairs(client::optional(settings, "item_map")),
        })
    }
}

impl SinkConnector for SetInventoryLevel {
    fn backoff(&self) -> Option<Duration> {
        self.store.backoff()
    }

    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let level = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let (Some(sku), Some(location)) = (level["sku"].as_str(), level["location"].as_str())
            else {
                return CallOutcome::Permanent {
                    reason: "the level has no sku or location".into(),
                };
            };
            let Some(location_id) = self.locations.get(location) else {
                return CallOutcome::Permanent {
                    reason: format!(
                        "location {location} has no Shopify location id in `location_map`"
                    ),
                };
            };
            let Some(item_id) = self.items.get(sku) else {
                return CallOutcome::Permanent {
                    reason: format!("SKU {sku} has no Shopify inventory item in `item_map`"),
                };
            };
            let Some(available) = level["available"].as_i64() else {
                return CallOutcome::Permanent {
                    reason: "the level has no integer `available`".into(),
                };
            };
            let body = format!(
                r#"{{"location_id":{location_id},"inventory_item_id":{item_id},"available":{}}}"#,
                available
            );
            let url = format!("{}/inventory_levels/set.json", self.store.base);
            let request = self
                .store
                .request(reqwest::Method::POST, &url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            match self.store.send(request, call.timeout).await {
                Ok(_) => CallOutcome::Ok,
                Err(e) => e,
            }
        })
    }
}
