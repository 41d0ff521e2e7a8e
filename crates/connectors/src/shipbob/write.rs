//! ShipBob's `create_order`: once per `reference_id`; a 422 on create is confirmed with
//! `GET /order?ReferenceIds=` and counts as done when the order is there.

use super::auth::request;
use super::classify::{error_text, failed};
use super::Settings;
use crate::api::ConnectorError;
use crate::client;
use crate::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::{json, Value};

/// `shipbob.create_order`.
pub struct CreateOrder {
    client: reqwest::Client,
    settings: Settings,
}

impl CreateOrder {
    /// The sink of a connection.
    pub fn new(settings: &Settings) -> Result<CreateOrder, ConnectorError> {
        Ok(CreateOrder {
            client: client::build()?,
            settings: settings.clone(),
        })
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        request(&self.client, &self.settings, method, &url)
    }
}

/// The ShipBob order for a canonical order.
pub fn order_body(order: &Value) -> Result<Value, String> {
    let to = order
        .get("ship_to")
        .filter(|v| v.is_object())
        .ok_or("the order has no ship_to address")?;
    if let Some(reason) = client::inexact_price(order) {
        return Err(reason);
    }
    let decimal = |money: &Value| -> Value { client::money_number(money).unwrap_or(Value::Null) };
    let products: Vec<Value> = order["lines"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|l| {
                    json!({
                        "reference_id": l["sku"],
                        "name": l["title"].as_str().or(l["sku"].as_str()),
                        "quantity": l["quantity"],
                        "unit_price": decimal(&l["unit_price"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if products.is_empty() {
        return Err("the order has no lines".into());
    }
    Ok(json!({
        "reference_id": order["id"],
        "order_number": order["order_ref"].as_str().or(order["external_id"].as_str()),
        "type": "DTC",
        "shipping_method": "Standard",
        "purchase_date": order["placed_at"],
        "recipient": {
            "name": to["name"].as_str().or(order["customer"]["name"].as_str()).unwrap_or("Customer"),
            "email": order["customer"]["email"],
            "phone_number": to["phone"],
            "address": {
                "address1": to["line1"], "address2": to["line2"], "city": to["city"],
                "state": to["region"], "country": to["country"], "zip_code": to["postal_code"],
            }
        },
        "products": products,
        "financials": {"total_price": decimal(&order["total"])},
        "tags": [{"name": "source", "value": "omniflow"}],
    }))
}

impl SinkConnector for CreateOrder {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let order = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let body = match order_body(&order) {
                Ok(b) => b,
                Err(reason) => return CallOutcome::Permanent { reason },
            };
            let base = &self.settings.base;
            let request = self
                .request(reqwest::Method::POST, format!("{base}/order"))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
            let reply = match client::send(request, call.timeout).await {
                Ok(r) => r,
                Err(e) => return e,
            };
            if reply.ok() {
                return CallOutcome::done(order_document(&reply.json()));
            }
            if reply.status != 422 {
                return failed(&reply);
            }
            // 422: the reference may already exist (an earlier attempt that was applied).
            let reference = order["id"].as_str().unwrap_or_default();
            let lookup = self
                .request(reqwest::Method::GET, format!("{base}/order"))
                .query(&[("ReferenceIds", reference)]);
            match client::send(lookup, call.timeout).await {
                Ok(found) if !found.ok() => failed(&found),
                // An unreadable lookup proves nothing either way: try again later.
                Ok(found) => match found
                    .document()
                    .and_then(|body| client::list_at(&body, &[], false))
                {
                    Err(reason) => client::unreadable(reason),
                    Ok(orders) => match orders.iter().find(|o| o["reference_id"] == reference) {
                        Some(same) => CallOutcome::done(order_document(same)),
                        None => CallOutcome::Permanent {
                            reason: error_text(&reply),
                        },
                    },
                },
                Err(e) => e,
            }
        })
    }
}

/// ShipBob's order `order` names: `ShipBob order ID`.
fn order_document(order: &Value) -> Option<String> {
    match &order["id"] {
        Value::Number(id) => Some(format!("ShipBob order {id}")),
        Value::String(id) => Some(format!("ShipBob order {id}")),
        _ => None,
    }
}
