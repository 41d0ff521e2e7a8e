//! Amazon SP-API's sinks: confirmShipment, and patchListingsItem for quantities and
//! prices.

use super::auth::form_escape;
use super::SpApi;
use crate::client;
use crate::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::{json, Value};
use std::time::Duration;

/// `amazon_sp.confirm_shipment` (confirmShipment, 204) from a canonical Shipment whose
/// `order_id` is `amazon:<AmazonOrderId>`; order items come from getOrderItems, matched by
/// SKU when the shipment's lines name them, all items otherwise.
pub struct ConfirmShipment {
    api: SpApi,
}

/// `amazon_sp.update_listing_quantity` (patchListingsItem) from an InventoryLevel.
pub struct UpdateListingQuantity {
    api: SpApi,
}

impl ConfirmShipment {
    /// The sink of a connection.
    pub fn new(api: SpApi) -> ConfirmShipment {
        ConfirmShipment { api }
    }
}

impl UpdateListingQuantity {
    /// The sink of a connection.
    pub fn new(api: SpApi) -> UpdateListingQuantity {
        UpdateListingQuantity { api }
    }
}

impl SinkConnector for ConfirmShipment {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let shipment = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let order_id = match client::field(&shipment, "order_id") {
                Ok(id) => id.strip_prefix("amazon:").unwrap_or(id).to_string(),
                Err(e) => return e,
            };
            let items = match self
                .api
                .send(
                    self.api.get(
                        &format!("/orders/v0/orders/{order_id}/orderItems"),
                        Vec::new(),
                    ),
                    call.timeout,
                    0.5,
                )
                .await
            {
                Ok(reply) => match reply
                    .document()
                    .and_then(|body| client::list_at(&body, &["payload", "OrderItems"], false))
                {
                    Ok(items) => items,
                    Err(reason) => return client::unreadable(reason),
                },
                Err(e) => return e,
            };
            // A parcel confirms the items its lines name (canonical SKU or, through
            // `sku_map`, the seller SKU); a shipment without lines confirms every item.
            let lines = shipment["lines"].as_array().cloned().unwrap_or_default();
            let order_items: Vec<Value> = if lines.is_empty() {
                items
                    .iter()
                    .map(|it| json!({"orderItemId": it["OrderItemId"], "quantity": it["QuantityOrdered"]}))
                    .collect()
            } else {
                let mut matched = Vec::new();
                for line in &lines {
                    let sku = line["sku"].as_str().unwrap_or_default();
                    let seller = self
                        .api
                        .settings
                        .sku_map
                        .get(sku)
                        .map(String::as_str)
                        .unwrap_or(sku);
                    match items
                        .iter()
                        .find(|it| it["SellerSKU"] == seller || it["SellerSKU"] == sku)
                    {
                        Some(it) => matched.push(
                            json!({"orderItemId": it["OrderItemId"], "quantity": line["quantity"]}),
                        ),
                        None => {
                            return CallOutcome::Permanent {
                                reason: format!(
                                "Amazon order {order_id} has no item for SKU {sku} of parcel {}",
                                shipment["id"]
                            ),
                            }
                        }
                    }
                }
                matched
            };
            if order_items.is_empty() {
                return CallOutcome::Permanent {
                    reason: format!("Amazon order {order_id} has no items to confirm"),
                };
            }
            let body = json!({
                "marketplaceId": self.api.settings.marketplace,
                "packageDetail": {
                    "packageReferenceId": shipment["id"].as_str().unwrap_or("1"),
                    "carrierCode": shipment["carrier"].as_str().unwrap_or("Other"),
                    "carrierName": shipment["carrier"],
                    "trackingNumber": shipment["tracking_number"],
                    "shipDate": shipment["shipped_at"],
                    "orderItems": order_items,
                }
            })
            .to_string();
            let url = format!(
                "{}/orders/v0/orders/{order_id}/shipmentConfirmation",
                self.api.settings.endpoint
            );
            let make = |token: &str| {
                self.api
                    .client
                    .post(&url)
                    .header("x-amz-access-token", token)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            };
            match self.api.send(make, call.timeout, 2.0).await {
                Ok(_) => CallOutcome::Ok,
                Err(e) => e,
            }
        })
    }
}

impl SinkConnector for UpdateListingQuantity {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let level = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let sku = match seller_sku(&self.api, &level) {
                Ok(sku) => sku,
                Err(e) => return e,
            };
            let Some(quantity) = level["available"].as_i64().map(|q| q.max(0)) else {
                return CallOutcome::Permanent {
                    reason: "the level has no integer `available`".into(),
                };
            };
            let body = json!({
                "productType": "PRODUCT",
                "patches": [{
                    "op": "replace",
                    "path": "/attributes/fulfillment_availability",
                    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}]
                }]
            })
            .to_string();
            patch_listing(&self.api, &sku, body, call.timeout).await
        })
    }
}

/// `patchListingsItem` of a seller SKU. `INVALID` arrives inside a 200: the change was
/// refused, a permanent failure with Amazon's issues.
async fn patch_listing(api: &SpApi, sku: &str, body: String, timeout: Duration) -> CallOutcome {
    let url = format!(
        "{}/listings/2021-08-01/items/{}/{}",
        api.settings.endpoint,
        api.settings.seller,
        form_escape(sku)
    );
    let make = |token: &str| {
        api.client
            .patch(&url)
            .query(&[("marketplaceIds", api.settings.marketplace.as_str())])
            .header("x-amz-access-token", token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
    };
    let reply = match api.send(make, timeout, 5.0).await {
        Ok(reply) => reply,
        Err(e) => return e,
    };
    // The same merge sets the same price: an answer that cannot be read is tried again.
    let body = match reply.document() {
        Ok(body) => body,
        Err(reason) => return client::unreadable(reason),
    };
    if body["status"] != "INVALID" {
        return CallOutcome::Ok;
    }
    let issues = body["issues"]
        .as_array()
        .map(|issues| {
            issues
                .iter()
                .map(|i| {
                    format!(
                        "{}: {}",
                        i["code"].as_str().unwrap_or("?"),
                        i["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    CallOutcome::Permanent {
        reason: format!("listing {sku} refused: {issues}"),
    }
}

/// `amazon_sp.update_listing_price`: patchListingsItem merging the offer's `our_price`
/// (`purchasable_offer` for the connection's marketplace, the Price's currency and the
/// `ALL` audience) with the price as a decimal number; the offer's other terms stay. A
/// repeated patch sets the same price.
pub struct UpdateListingPrice {
    api: SpApi,
}

impl UpdateListingPrice {
    /// The sink of a connection.
    pub fn new(api: SpApi) -> UpdateListingPrice {
        UpdateListingPrice { api }
    }
}

impl SinkConnector for UpdateListingPrice {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let price = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let sku = match seller_sku(&self.api, &price) {
                Ok(sku) => sku,
                Err(e) => return e,
            };
            let (Some(amount), Some(currency)) = (
                client::money_text(&price["amount"]),
                price["amount"]["currency"].as_str(),
            ) else {
                return CallOutcome::Permanent {
                    reason: "the price has no money `amount`".into(),
                };
            };
            // The decimal goes in as written (a JSON number), never through a float.
            let offer = format!(
                r#"{{"marketplace_id":{},"currency":{},"audience":"ALL","our_price":[{{"schedule":[{{"value_with_tax":{amount}}}]}}]}}"#,
                Value::from(self.api.settings.marketplace.as_str()),
                Value::from(currency),
            );
            let body = format!(
                r#"{{"productType":"PRODUCT","patches":[{{"op":"merge","path":"/attributes/purchasable_offer","value":[{offer}]}}]}}"#
            );
            patch_listing(&self.api, &sku, body, call.timeout).await
        })
    }
}

/// The seller SKU a listing write names: the message's `sku` through the connection's
/// `sku_map`, or the `sku` itself.
fn seller_sku(api: &SpApi, message: &serde_json::Value) -> Result<String, CallOutcome> {
    let sku = client::field(message, "sku")?;
    Ok(api
        .settings
        .sku_map
        .get(sku)
        .cloned()
        .unwrap_or_else(|| sku.to_string()))
}
