//! The OData sinks: `create_sale`, a deep insert of the sales order with its items, once
//! per order (the order number, `orderNo` = the canonical order id, is looked up first,
//! so a retry after a lost answer finds the order instead of posting it twice);
//! `record_shipment`, `adjust_stock`, `update_entity` read the entity for its ETag, then
//! PATCH with `If-Match` (412, a concurrent change, is retried; 428 means the service
//! wants the ETag, which is always sent).

use super::{key_segment, Service};
use crate::api::{ConnectorError, Map};
use crate::client;
use crate::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::{json, Value};
use std::rc::Rc;
use std::time::Duration;

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
        settings: &Map,
        operation: Operation,
        options: &Map,
    ) -> Result<ODataSink, ConnectorError> {
        let path = options
            .get("path")
            .and_then(Value::as_str)
            .map(String::from);
        if matches!(operation, Operation::UpdateEntity) && path.is_none() {
            return Err(ConnectorError::BadSetting(
                "`odata.update_entity` needs the `path` option (e.g. \"Products('{{ id }}')\")"
                    .into(),
            ));
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
            Ok(Some(found)) => return self.sales_order_document(&found),
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
            Ok(reply) => self.sales_order_document(&reply.json()),
            Err(e) => e,
        }
    }

    /// A success naming the sales order `entity` (as read or as created) by its key.
    fn sales_order_document(&self, entity: &Value) -> CallOutcome {
        let document = match &entity["ID"] {
            Value::Null => None,
            id => Some(format!("{}{}", self.service.sales_orders, key_segment(id))),
        };
        CallOutcome::done(document)
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
            Ok(_) => CallOutcome::Recorded { document: path },
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
            Ok(_) => CallOutcome::Recorded { document: path },
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
            Ok(_) => CallOutcome::Recorded { document: path },
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
