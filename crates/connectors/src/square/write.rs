//! Square's inventory writes through BatchChangeInventory, each under the message's
//! `idempotency_key` (a retry after a crash replays rather than repeats).

use super::{error_text, Seller};
use crate::api::{ConnectorError, Map};
use crate::client;
use crate::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::{json, Value};

/// `square.adjust_inventory` (an ADJUSTMENT between states) and `square.set_inventory_count`
/// (a PHYSICAL_COUNT), through BatchChangeInventory.
pub struct ChangeInventory {
    seller: Seller,
    count: bool,
}

impl ChangeInventory {
    /// `count`: a physical count of an InventoryLevel rather than an adjustment.
    pub fn new(settings: &Map, count: bool) -> Result<ChangeInventory, ConnectorError> {
        Ok(ChangeInventory {
            seller: Seller::new(settings)?,
            count,
        })
    }

    fn ids(&self, message: &Value) -> Result<(String, String), CallOutcome> {
        let sku = client::field(message, "sku")?;
        let location = client::field(message, "location")?;
        let item =
            self.seller
                .settings
                .item_map
                .get(sku)
                .ok_or_else(|| CallOutcome::Permanent {
                    reason: format!("SKU {sku} has no Square catalog variation in `item_map`"),
                })?;
        let place = self
            .seller
            .settings
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
