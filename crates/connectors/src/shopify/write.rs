//! Shopify's order and inventory writes. A fulfilment takes no idempotency key, so it is
//! preceded by a read of the order: a fulfilment with the parcel's tracking number, or
//! nothing of its lines left open, means an earlier attempt fulfilled it, which counts as
//! done.

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

/// True for a fulfilment that stands (not cancelled, and not failed), in either API's case.
fn live(status: Option<&str>) -> bool {
    !status.is_some_and(|s| {
        ["cancelled", "error", "failure"]
            .iter()
            .any(|dead| s.eq_ignore_ascii_case(dead))
    })
}

/// What to fulfil: each fulfillment order with its lines and quantities (`None`: all that
/// is left).
type Plan = Vec<(Value, Option<Vec<(Value, i64)>>)>;

/// An order's fulfilments' tracking numbers and its fulfillment orders over GraphQL, five
/// a page with fifty lines each (which keeps a query's cost within a throttled bucket).
const OPEN_QUERY: &str = "query FulfillmentOrders($id: ID!, $after: String) {
  order(id: $id) {
    fulfillments(first: 50) { status trackingInfo { number } }
    fulfillmentOrders(first: 5, after: $after) {
      edges {
        cursor
        node {
          id status
          lineItems(first: 50) {
            nodes { id inventoryItemId remainingQuantity }
            pageInfo { hasNextPage endCursor }
          }
        }
      }
      pageInfo { hasNextPage }
    }
  }
}";

/// More lines of the fulfillment order that follows the cursor `fo`.
const LINES_QUERY: &str = "query FulfillmentOrderLines($id: ID!, $fo: String, $after: String) {
  order(id: $id) {
    fulfillmentOrders(first: 1, after: $fo) {
      nodes {
        id
        lineItems(first: 50, after: $after) {
          nodes { id inventoryItemId remainingQuantity }
          pageInfo { hasNextPage endCursor }
        }
      }
    }
  }
}";

/// The most pages read of one order's fulfillment orders or of one's lines.
const MOST_PAGES: usize = 100;

const FULFIL_MUTATION: &str = "mutation Fulfil($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status }
    userErrors { field message }
  }
}";

impl CreateFulfillment {
    /// The tracking numbers of the order's live fulfilments over REST.
    async fn tracking_rest(
        &self,
        order_id: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, CallOutcome> {
        let url = format!(
            "{}/orders/{order_id}.json?fields=fulfillments",
            self.store.base
        );
        let order = self
            .store
            .send(self.store.request(reqwest::Method::GET, &url), timeout)
            .await?
            .document()
            .map_err(client::unreadable)?;
        Ok(order["order"]["fulfillments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| live(f["status"].as_str()))
            .flat_map(|f| {
                f["tracking_numbers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|n| n.as_str().map(String::from))
            .collect())
    }

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
        let fos = listed
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
            .collect();
        Ok(fos)
    }

    /// The order's fulfillment orders and its live fulfilments' tracking numbers over GraphQL,
    /// every page of them and of their lines.
    async fn orders_graphql(
        &self,
        order_id: &str,
        timeout: Duration,
    ) -> Result<(Vec<Fo>, Vec<String>), CallOutcome> {
        let id = graphql::gid("Order", order_id);
        let lines_of = |connection: &Value| -> Vec<FoLine> {
            connection["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|li| FoLine {
                    id: li["id"].clone(),
                    inventory_item_id: graphql::legacy(
                        li["inventoryItemId"].as_str().unwrap_or(""),
                    )
                    .to_string(),
                    remaining: li["remainingQuantity"].as_i64().unwrap_or(0),
                })
                .collect()
        };
        let more = |connection: &Value| {
            let info = &connection["pageInfo"];
            (info["hasNextPage"] == true).then(|| info["endCursor"].clone())
        };
        let (mut fos, mut tracking) = (Vec::new(), Vec::new());
        let mut after = Value::Null;
        for page in 0.. {
            if page == MOST_PAGES {
                return Err(client::unreadable(format!(
                    "Shopify order {id} lists more than {} fulfillment orders",
                    MOST_PAGES * 5
                )));
            }
            let variables = json!({"id": id, "after": after});
            let data = self.store.graphql(OPEN_QUERY, variables, timeout).await?;
            let order = &data["order"];
            if order.is_null() {
                return Err(CallOutcome::Permanent {
                    reason: format!("Shopify has no order {id}"),
                });
            }
            if page == 0 {
                tracking = order["fulfillments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|f| live(f["status"].as_str()))
                    .flat_map(|f| f["trackingInfo"].as_array().cloned().unwrap_or_default())
                    .filter_map(|t| t["number"].as_str().map(String::from))
                    .collect();
            }
            let connection = &order["fulfillmentOrders"];
            // Each fulfillment order with the cursor before it, to read more of its lines.
            let mut before = after.clone();
            for edge in connection["edges"].as_array().into_iter().flatten() {
                let node = &edge["node"];
                let mut lines = lines_of(&node["lineItems"]);
                let mut next = more(&node["lineItems"]);
                let mut reads = 0;
                while let Some(cursor) = next {
                    reads += 1;
                    if reads == MOST_PAGES {
                        return Err(client::unreadable(format!(
                            "a fulfillment order of Shopify order {id} lists more than {} lines",
                            MOST_PAGES * 50
                        )));
                    }
                    let variables = json!({"id": id, "fo": before, "after": cursor});
                    let data = self.store.graphql(LINES_QUERY, variables, timeout).await?;
                    let again = &data["order"]["fulfillmentOrders"]["nodes"][0];
                    // The order changed between the reads: the next attempt reads it anew.
                    if again["id"] != node["id"] {
                        return Err(client::unreadable(format!(
                            "the fulfillment orders of Shopify order {id} changed while they were read"
                        )));
                    }
                    let more_lines = &again["lineItems"];
                    lines.extend(lines_of(more_lines));
                    next = more(more_lines);
                }
                fos.push(Fo {
                    id: node["id"].clone(),
                    status: node["status"].as_str().unwrap_or("").to_ascii_lowercase(),
                    lines,
                });
                before = edge["cursor"].clone();
            }
            if connection["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = before;
        }
        Ok((fos, tracking))
    }

    /// What of the order is left to fulfil for this parcel: `None` when nothing is (an
    /// earlier attempt whose answer was lost fulfilled it).
    fn plan(
        &self,
        orders: Vec<Fo>,
        shipment: &Value,
        order_id: &str,
    ) -> Result<Option<Plan>, CallOutcome> {
        // A parcel fulfils the lines it carries when its SKUs map to inventory items
        // (`item_map`, REST ids or global ids); otherwise everything still open.
        let lines = shipment["lines"].as_array().cloned().unwrap_or_default();
        let mapped: Vec<(String, i64)> = lines
            .iter()
            .filter_map(|l| {
                let item = self.items.get(l["sku"].as_str()?)?;
                Some((graphql::legacy(item).to_string(), l["quantity"].as_i64()?))
            })
            .collect();
        let by_lines = !mapped.is_empty() && mapped.len() == lines.len();
        // A parcel listing one item twice takes the two quantities together.
        let mut wanted: Vec<(String, i64)> = Vec::new();
        for (item, quantity) in mapped {
            match wanted.iter_mut().find(|(i, _)| *i == item) {
                Some((_, q)) => *q = q.saturating_add(quantity),
                None => wanted.push((item, quantity)),
            }
        }
        if by_lines {
            // An item on none of the order's lines is not "already fulfilled".
            if let Some((item, _)) = wanted.iter().find(|(item, _)| {
                !orders
                    .iter()
                    .any(|fo| fo.lines.iter().any(|l| l.inventory_item_id == *item))
            }) {
                return Err(CallOutcome::Permanent {
                    reason: format!(
                        "Shopify order {order_id} has no line of inventory item {item}"
                    ),
                });
            }
        }
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
        let plan: Plan = if !by_lines {
            open.into_iter()
                .filter(|fo| fo.lines.iter().any(|l| l.remaining > 0))
                .map(|fo| (fo.id, None))
                .collect()
        } else {
            // Each item's quantity is taken once, line after line, from what is open.
            let mut left = wanted;
            open.into_iter()
                .filter_map(|fo| {
                    let picked: Vec<(Value, i64)> = fo
                        .lines
                        .iter()
                        .filter_map(|li| {
                            let (_, q) = left
                                .iter_mut()
                                .find(|(item, q)| *item == li.inventory_item_id && *q > 0)?;
                            let take = (*q).min(li.remaining);
                            *q -= take.max(0);
                            (take > 0).then(|| (li.id.clone(), take))
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
        // A live fulfilment with the parcel's tracking number is this parcel's, made by an
        // earlier attempt whose answer was lost.
        let number = shipment["tracking_number"]
            .as_str()
            .filter(|n| !n.is_empty());
        let done = |tracking: &[String]| number.is_some_and(|n| tracking.iter().any(|t| t == n));
        let orders = if self.store.graphql {
            let (orders, tracking) = self.orders_graphql(order_id, timeout).await?;
            if done(&tracking) {
                return Ok(CallOutcome::Ok);
            }
            orders
        } else {
            if number.is_some() && done(&self.tracking_rest(order_id, timeout).await?) {
                return Ok(CallOutcome::Ok);
            }
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

/// The first API version with the `@idempotent` directive.
const IDEMPOTENT_SINCE: &str = "2026-01";

const SET_MUTATION_PLAIN: &str = "mutation Set($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { createdAt }
    userErrors { code field message }
  }
}";

const SET_MUTATION: &str = "mutation Set($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { createdAt }
    userErrors { code field message }
  }
}";

impl SetInventoryLevel {
    /// `inventorySetQuantities` with the message key as its `@idempotent` key (from
    /// 2026-01), setting the quantity whatever it was: `changeFromQuantity: null` from
    /// 2026-04, `ignoreCompareQuantity` before.
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
        // `@idempotent` exists from 2026-01; before, the absolute set is sent as it is.
        if self.store.version.as_str() < IDEMPOTENT_SINCE {
            let data = self
                .store
                .graphql(SET_MUTATION_PLAIN, json!({ "input": input }), call.timeout)
                .await?;
            graphql::refused(
                graphql::payload(&data, "inventorySetQuantities")?,
                "the quantity",
            )?;
            return Ok(CallOutcome::Ok);
        }
        let mut key = graphql::idempotency_key(call.key);
        for fresh_key in [false, true] {
            let variables = json!({"input": input, "key": key});
            let data = self
                .store
                .graphql(SET_MUTATION, variables, call.timeout)
                .await?;
            let payload = graphql::payload(&data, "inventorySetQuantities")?;
            // An earlier attempt under this key failed, and Shopify keeps its failure: the
            // quantity is absolute, so it is sent once more under a key of this attempt's
            // own.
            if !fresh_key && graphql::has_code(payload, "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED") {
                let nonce = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                key = graphql::idempotency_key(&format!("{}#{nonce}", call.key));
                continue;
            }
            graphql::refused(payload, "the quantity")?;
            break;
        }
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
