//! Shopify's order and inventory writes. They take no idempotency key, so a fulfilment is
//! preceded by a read of the order's fulfillment orders: nothing left open means the
//! parcel was already fulfilled, which counts as done.

use super::{graphql, Store};
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

/// A fulfillment order as either API shows it: ids as the API writes them, the status in
/// REST's lower case, the inventory item by its REST id.
struct Fo {
    id: Value,
    status: String,
    lines: Vec<FoLine>,
}

struct FoLine {
    id: Value,
    inventory_item_id: String,
    remaining: i64,
}

/// What to fulfil: each fulfillment order with its lines and quantities (`None`: all that
/// is left).
type Plan = Vec<(Value, Option<Vec<(Value, i64)>>)>;

/// An order's fulfillment orders over GraphQL: five at most, fifty lines each, which keeps
/// the query's cost within a throttled bucket.
const OPEN_QUERY: &str = "query FulfillmentOrders($id: ID!) {
  order(id: $id) {
    fulfillmentOrders(first: 5) {
      nodes { id status lineItems(first: 50) { nodes { id inventoryItemId remainingQuantity } } }
    }
  }
}";

const FULFIL_MUTATION: &str = "mutation Fulfil($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status }
    userErrors { field message }
  }
}";

impl CreateFulfillment {
    /// The order's fulfillment orders over REST.
    async fn orders_rest(&self, order_id: &str, timeout: Duration) -> Result<Vec<Fo>, CallOutcome> {
        let url = format!(
            "{}/orders/{order_id}/fulfillment_orders.json",
            self.store.base
        );
        let reply = self
            .store
            .send(self.store.request(reqwest::Method::GET, &url), timeout)
            .await?;
        let listed = reply
            .document()
            .and_then(|body| client::list_at(&body, &["fulfillment_orders"], false))
            .map_err(client::unreadable)?;
        Ok(listed
            .iter()
            .map(|fo| Fo {
                id: fo["id"].clone(),
                status: fo["status"].as_str().unwrap_or("").to_string(),
                lines: fo["line_items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|li| FoLine {
                        id: li["id"].clone(),
                        inventory_item_id: li["inventory_item_id"].to_string(),
                        remaining: li["fulfillable_quantity"].as_i64().unwrap_or(0),
                    })
                    .collect(),
            })
            .collect())
    }

    /// The order's fulfillment orders over GraphQL.
    async fn orders_graphql(
        &self,
        order_id: &str,
        timeout: Duration,
    ) -> Result<Vec<Fo>, CallOutcome> {
        let id = graphql::gid("Order", order_id);
        let data = self
            .store
            .graphql(OPEN_QUERY, json!({ "id": id }), timeout)
            .await?;
        if data["order"].is_null() {
            return Err(CallOutcome::Permanent {
                reason: format!("Shopify has no order {id}"),
            });
        }
        let nodes = |v: &Value| v["nodes"].as_array().cloned().unwrap_or_default();
        Ok(nodes(&data["order"]["fulfillmentOrders"])
            .iter()
            .map(|fo| Fo {
                id: fo["id"].clone(),
                status: fo["status"].as_str().unwrap_or("").to_ascii_lowercase(),
                lines: nodes(&fo["lineItems"])
                    .iter()
                    .map(|li| FoLine {
                        id: li["id"].clone(),
                        inventory_item_id: graphql::legacy(
                            li["inventoryItemId"].as_str().unwrap_or(""),
                        )
                        .to_string(),
                        remaining: li["remainingQuantity"].as_i64().unwrap_or(0),
                    })
                    .collect(),
            })
            .collect())
    }

    /// What of the order is left to fulfil for this parcel: `None` when nothing is (an
    /// earlier attempt whose answer was lost fulfilled it).
    fn plan(
        &self,
        orders: Vec<Fo>,
        shipment: &Value,
        order_id: &str,
    ) -> Result<Option<Plan>, CallOutcome> {
        let (open, rest): (Vec<Fo>, Vec<Fo>) = orders
            .into_iter()
            .partition(|fo| fo.status == "open" || fo.status == "in_progress");
        if let Some(blocked) = rest
            .iter()
            .find(|fo| fo.status != "closed" && fo.status != "cancelled")
        {
            if open.is_empty() {
                return Err(CallOutcome::Permanent {
                    reason: format!(
                        "Shopify order {order_id}: fulfillment order {} is {}, nothing can be fulfilled",
                        blocked.id.as_str().map_or_else(|| blocked.id.to_string(), String::from),
                        blocked.status
                    ),
                });
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
        let plan: Plan = if wanted.is_empty() || wanted.len() < lines.len() {
            open.into_iter()
                .filter(|fo| fo.lines.iter().any(|l| l.remaining > 0))
                .map(|fo| (fo.id, None))
                .collect()
        } else {
            open.into_iter()
                .filter_map(|fo| {
                    let picked: Vec<(Value, i64)> = fo
                        .lines
                        .iter()
                        .filter_map(|li| {
                            let (_, q) = wanted
                                .iter()
                                .find(|(item, _)| *item == li.inventory_item_id)?;
                            (li.remaining > 0).then(|| (li.id.clone(), (*q).min(li.remaining)))
                        })
                        .collect();
                    (!picked.is_empty()).then_some((fo.id, Some(picked)))
                })
                .collect()
        };
        Ok((!plan.is_empty()).then_some(plan))
    }

    /// `POST fulfillments.json`.
    async fn fulfil_rest(&self, plan: Plan, shipment: &Value, timeout: Duration) -> CallOutcome {
        let by_order: Vec<Value> = plan
            .into_iter()
            .map(|(fo, lines)| match lines {
                None => json!({"fulfillment_order_id": fo}),
                Some(lines) => json!({"fulfillment_order_id": fo,
                    "fulfillment_order_line_items": lines.into_iter()
                        .map(|(id, quantity)| json!({"id": id, "quantity": quantity}))
                        .collect::<Vec<_>>()}),
            })
            .collect();
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
        match self.store.send(request, timeout).await {
            Ok(reply) => CallOutcome::done(
                reply.json()["fulfillment"]["id"]
                    .as_u64()
                    .map(|id| format!("fulfillment {id}")),
            ),
            Err(e) => e,
        }
    }

    /// `fulfillmentCreate`.
    async fn fulfil_graphql(
        &self,
        plan: Plan,
        shipment: &Value,
        timeout: Duration,
    ) -> Result<CallOutcome, CallOutcome> {
        let by_order: Vec<Value> = plan
            .into_iter()
            .map(|(fo, lines)| match lines {
                None => json!({"fulfillmentOrderId": fo}),
                Some(lines) => json!({"fulfillmentOrderId": fo,
                    "fulfillmentOrderLineItems": lines.into_iter()
                        .map(|(id, quantity)| json!({"id": id, "quantity": quantity}))
                        .collect::<Vec<_>>()}),
            })
            .collect();
        let fulfillment = json!({
            "notifyCustomer": true,
            "trackingInfo": {
                "number": shipment["tracking_number"],
                "company": shipment["carrier"],
                "url": shipment["tracking_url"],
            },
            "lineItemsByFulfillmentOrder": by_order,
        });
        let data = self
            .store
            .graphql(
                FULFIL_MUTATION,
                json!({ "fulfillment": fulfillment }),
                timeout,
            )
            .await?;
        let payload = graphql::payload(&data, "fulfillmentCreate")?;
        graphql::refused(payload, "the fulfillment")?;
        Ok(CallOutcome::done(
            payload["fulfillment"]["id"]
                .as_str()
                .map(|id| format!("fulfillment {}", graphql::legacy(id))),
        ))
    }

    async fn fulfil(
        &self,
        shipment: &Value,
        timeout: Duration,
    ) -> Result<CallOutcome, CallOutcome> {
        let order_id = client::field(shipment, "order_id")?;
        let order_id = order_id.strip_prefix("shopify:").unwrap_or(order_id);
        let orders = if self.store.graphql {
            self.orders_graphql(order_id, timeout).await?
        } else {
            self.orders_rest(order_id, timeout).await?
        };
        let Some(plan) = self.plan(orders, shipment, order_id)? else {
            return Ok(CallOutcome::Ok);
        };
        if self.store.graphql {
            self.fulfil_graphql(plan, shipment, timeout).await
        } else {
            Ok(self.fulfil_rest(plan, shipment, timeout).await)
        }
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
            self.fulfil(&shipment, call.timeout)
                .await
                .unwrap_or_else(|e| e)
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

const SET_MUTATION: &str = "mutation Set($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { createdAt }
    userErrors { code field message }
  }
}";

impl SetInventoryLevel {
    /// `inventorySetQuantities` with the message key as its `@idempotent` key, setting the
    /// quantity whatever it was: `changeFromQuantity: null` from 2026-04,
    /// `ignoreCompareQuantity` before.
    async fn set_graphql(
        &self,
        item_id: &str,
        location_id: &str,
        available: i64,
        call: &Call<'_>,
    ) -> Result<CallOutcome, CallOutcome> {
        let Ok(quantity) = i32::try_from(available) else {
            return Err(CallOutcome::Permanent {
                reason: format!("Shopify quantities are 32-bit; {available} is not"),
            });
        };
        let mut line = json!({
            "inventoryItemId": graphql::gid("InventoryItem", item_id),
            "locationId": graphql::gid("Location", location_id),
            "quantity": quantity,
        });
        let mut input = json!({"name": "available", "reason": "correction", "quantities": []});
        if self.store.version.as_str() >= "2026-04" {
            line["changeFromQuantity"] = Value::Null;
        } else {
            input["ignoreCompareQuantity"] = json!(true);
        }
        input["quantities"] = json!([line]);
        let variables = json!({"input": input, "key": graphql::idempotency_key(call.key)});
        let data = self
            .store
            .graphql(SET_MUTATION, variables, call.timeout)
            .await?;
        let payload = graphql::payload(&data, "inventorySetQuantities")?;
        graphql::refused(payload, "the quantity")?;
        Ok(CallOutcome::Ok)
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
            if self.store.graphql {
                return self
                    .set_graphql(item_id, location_id, available, &call)
                    .await
                    .unwrap_or_else(|e| e);
            }
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
