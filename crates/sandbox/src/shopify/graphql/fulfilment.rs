//! Fulfilment over GraphQL: an order's `fulfillmentOrders` connection (each with its
//! `lineItems` connection) and the mutation `fulfillmentCreate(fulfillment:)`, on the
//! fulfillment orders and fulfilments the REST API serves. A refusal is a `userErrors`
//! entry (`field`, `message`), as `fulfillmentCreate` gives them.

use super::super::{fulfil, FulfillmentOrder, Groups, Order, Refused, Shared, System, NOT_OPEN};
use super::{gid, id_of};
use crate::catalog;
use serde_json::{json, Value};

/// A fulfillment order as GraphQL shows it; its lines' SKUs from its order.
pub fn fulfillment_order(fo: &FulfillmentOrder, order: &Order) -> Value {
    let name = catalog::SHOPIFY_LOCATIONS
        .iter()
        .find(|(id, _)| *id == fo.location_id)
        .map_or("Warehouse", |(_, name)| name);
    let sku = |line_item: u64| {
        order.json["line_items"]
            .as_array()
            .and_then(|lines| lines.iter().find(|l| l["id"].as_u64() == Some(line_item)))
            .map_or(Value::Null, |l| l["sku"].clone())
    };
    let lines: Vec<Value> = fo
        .lines
        .iter()
        .map(|l| {
            json!({"__type": "FulfillmentOrderLineItem", "id": gid("FulfillmentOrderLineItem", l.id),
                "sku": sku(l.line_item_id), "totalQuantity": l.quantity, "remainingQuantity": l.remaining,
                "inventoryItemId": gid("InventoryItem", l.inventory_item_id),
                "variant": {"__type": "ProductVariant", "id": gid("ProductVariant", l.variant_id)},
                "lineItem": {"__type": "LineItem", "id": gid("LineItem", l.line_item_id), "sku": sku(l.line_item_id)}})
        })
        .collect();
    json!({
        "__type": "FulfillmentOrder",
        "id": gid("FulfillmentOrder", fo.id),
        "orderId": gid("Order", fo.order_id),
        "status": fo.status.to_ascii_uppercase(),
        "requestStatus": "UNSUBMITTED",
        "createdAt": fo.created_at,
        "updatedAt": fo.created_at,
        "assignedLocation": {"__type": "FulfillmentOrderAssignedLocation", "name": name,
            "location": {"__type": "Location", "id": gid("Location", fo.location_id)}},
        "lineItems": {"__type": "FulfillmentOrderLineItem", "__connection": lines},
    })
}

/// Every field a `fulfillmentCreate` payload can select.
pub fn shape() -> Value {
    json!({"__type": "FulfillmentCreatePayload",
        "fulfillment": {"__type": "Fulfillment", "id": "", "legacyResourceId": "", "name": "",
            "status": "", "createdAt": "",
            "trackingInfo": [{"__type": "FulfillmentTrackingInfo", "company": "", "number": "", "url": ""}]},
        "userErrors": [{"__type": "UserError", "field": [], "message": ""}]})
}

/// `fulfillmentCreate(fulfillment: {lineItemsByFulfillmentOrder, trackingInfo,
/// notifyCustomer})`.
pub fn create(sb: &Shared, input: &Value) -> Value {
    let refused = |field: &[&str], message: &str| {
        json!({"__type": "FulfillmentCreatePayload", "fulfillment": null,
            "userErrors": [{"__type": "UserError", "field": field, "message": message}]})
    };
    let Some(listed) = input["lineItemsByFulfillmentOrder"]
        .as_array()
        .filter(|g| !g.is_empty())
    else {
        return refused(
            &["fulfillment", "lineItemsByFulfillmentOrder"],
            "Line items by fulfillment order must have at least one fulfillment order.",
        );
    };
    let groups: Groups = listed
        .iter()
        .map(|g| {
            let lines = g["fulfillmentOrderLineItems"].as_array().map(|lines| {
                lines
                    .iter()
                    .map(|l| {
                        (
                            id_of(&l["id"], "FulfillmentOrderLineItem"),
                            l["quantity"].as_i64().unwrap_or(0),
                        )
                    })
                    .collect()
            });
            (id_of(&g["fulfillmentOrderId"], "FulfillmentOrder"), lines)
        })
        .collect();
    let tracking = &input["trackingInfo"];
    match fulfil(sb, &groups, tracking) {
        Ok(f) => {
            let id = f["id"].as_u64().unwrap_or(0);
            json!({"__type": "FulfillmentCreatePayload", "userErrors": [],
                "fulfillment": {"__type": "Fulfillment", "id": gid("Fulfillment", id),
                    "legacyResourceId": id.to_string(), "name": f["name"], "status": "SUCCESS",
                    "createdAt": f["created_at"],
                    "trackingInfo": [{"__type": "FulfillmentTrackingInfo", "company": tracking["company"],
                        "number": tracking["number"], "url": tracking["url"]}]}})
        }
        Err(Refused::NotFound) => refused(
            &["fulfillment", "lineItemsByFulfillmentOrder"],
            "Fulfillment order does not exist.",
        ),
        Err(Refused::NotOpen) => {
            sb.bump(System::Shopify, "fulfillment_rejections");
            refused(&["fulfillment"], NOT_OPEN)
        }
    }
}
