//! The scripted retail day, driven through the sandbox's control API: what each channel
//! does, in order, and what the integration is expected to make of it.

use serde_json::{json, Value};
use std::time::Duration;

/// What should become of a channel order.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// Booked in the ERP exactly once.
    Erp,
    /// Held at the review desk, not booked.
    Review,
    /// A dead letter whose reason contains this text.
    DeadLetter(&'static str),
}

/// A channel order the day created.
#[derive(Clone, Debug)]
pub struct ChannelOrder {
    /// The canonical order id (`amazon:…`, `shopify:…`).
    pub id: String,
    pub what: &'static str,
    pub expect: Expect,
}

/// Talks to the sandbox.
pub struct Driver {
    client: reqwest::Client,
    pub sandbox: String,
}

fn first_str<'a>(value: &'a Value, paths: &[&[&str]]) -> Option<&'a Value> {
    paths.iter().find_map(|path| {
        let mut at = value;
        for key in *path {
            at = at.get(key)?;
        }
        (!at.is_null()).then_some(at)
    })
}

fn id_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Driver {
    /// A driver for the sandbox at `sandbox` (`http://host:port`).
    pub fn new(sandbox: &str) -> Result<Driver, String> {
        Ok(Driver {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())?,
            sandbox: sandbox.to_string(),
        })
    }

    /// POSTs JSON to a sandbox path.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let response = self
            .client
            .post(format!("{}{path}", self.sandbox))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("POST {path}: HTTP {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GETs JSON from a sandbox path, with optional headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Value, String> {
        let mut request = self.client.get(format!("{}{path}", self.sandbox));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("GET {path}: HTTP {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("GET {path}: {e}"))
    }

    /// Subscribes the flows' webhook endpoints.
    pub async fn subscribe(&self, webhooks: &str) -> Result<(), String> {
        self.post("/_sandbox/webhooks", json!({"system": "shopify", "topic": "orders/create", "url": format!("{webhooks}/webhooks/shopify/orders-create")}))
            .await?;
        self.post("/_sandbox/webhooks", json!({"system": "shipbob", "topic": "order.shipped", "url": format!("{webhooks}/webhooks/shipbob/order-shipped")}))
            .await?;
        Ok(())
    }

    /// A marketplace order.
    pub async fn amazon_order(
        &self,
        items: &[(&str, u32)],
        what: &'static str,
        expect: Expect,
    ) -> Result<ChannelOrder, String> {
        let items: Vec<Value> = items
            .iter()
            .map(|(sku, q)| json!({"sku": sku, "quantity": q}))
            .collect();
        let order = self
            .post(
                "/_sandbox/amazon/orders",
                json!({
                    "items": items, "status": "Unshipped", "fulfillment_channel": "MFN",
                    "buyer_email": "buyer@example.com",
                    "address": {"Name": "Ada Buyer", "AddressLine1": "1 Market St", "City": "Springfield",
                                "StateOrRegion": "IL", "PostalCode": "62701", "CountryCode": "US"}
                }),
            )
            .await?;
        let id = first_str(
            &order,
            &[
                &["AmazonOrderId"],
                &["order", "AmazonOrderId"],
                &["payload", "AmazonOrderId"],
            ],
        )
        .map(id_text)
        .ok_or_else(|| format!("the sandbox returned no AmazonOrderId: {order}"))?;
        Ok(ChannelOrder {
            id: format!("amazon:{id}"),
            what,
            expect,
        })
    }

    /// A storefront order; `pickup` adds a line collected in the SoHo store.
    pub async fn shopify_order(
        &self,
        skus: &[(&str, u32)],
        pickup: Option<&str>,
        duplicate: bool,
        what: &'static str,
    ) -> Result<ChannelOrder, String> {
        let mut lines: Vec<Value> = skus
            .iter()
            .map(|(sku, q)| json!({"sku": sku, "quantity": q}))
            .collect();
        if let Some(sku) = pickup {
            lines.push(json!({"sku": sku, "quantity": 1, "properties": [{"name": "_pickup_store", "value": "SoHo"}]}));
        }
        // A twice-delivered webhook also arrives late, after orders placed after it.
        let path = if duplicate {
            "/_sandbox/shopify/orders?duplicate=true&delay_ms=1500"
        } else {
            "/_sandbox/shopify/orders"
        };
        let order = self
            .post(
                path,
                json!({
                    "line_items": lines, "email": "shopper@example.com",
                    "customer": {"first_name": "Sam", "last_name": "Shopper", "email": "shopper@example.com"},
                    "shipping_address": {"name": "Sam Shopper", "address1": "9 Elm St", "city": "Brooklyn",
                                         "province_code": "NY", "zip": "11211", "country_code": "US"}
                }),
            )
            .await?;
        let id = first_str(&order, &[&["id"], &["order", "id"]])
            .map(id_text)
            .ok_or_else(|| format!("the sandbox returned no order id: {order}"))?;
        Ok(ChannelOrder {
            id: format!("shopify:{id}"),
            what,
            expect: Expect::Erp,
        })
    }

    /// A completed POS sale in the SoHo store.
    pub async fn pos_sale(&self, variation: &str, quantity: u32) -> Result<(), String> {
        self.post(
            "/_sandbox/square/orders",
            json!({"location_id": "FPYCBCHYMXFK1", "state": "COMPLETED",
                   "line_items": [{"catalog_object_id": variation, "quantity": quantity.to_string(),
                                   "base_price_money": {"amount": 2200, "currency": "USD"}}]}),
        )
        .await
        .map(|_| ())
    }

    /// A store return of an online order (one resellable tee).
    pub async fn store_return(&self, order_id: &str) -> Result<(), String> {
        self.post(
            "/_sandbox/square/orders",
            json!({
                "location_id": "FPYCBCHYMXFK1", "state": "COMPLETED", "reference_id": order_id,
                "line_items": [],
                "returns": [{"uid": "ret-1", "return_line_items": [{
                    "uid": "rli-1", "name": "Classic Tee #036", "quantity": "1",
                    "catalog_object_id": "QX7RZ2B4KJH6T3M5PLD8WCFA", "note": "RESELL tags on",
                    "base_price_money": {"amount": 2950, "currency": "USD"},
                    "total_money": {"amount": 2950, "currency": "USD"}}]}],
                "return_amounts": {"total_money": {"amount": 2950, "currency": "USD"}}
            }),
        )
        .await
        .map(|_| ())
    }

    /// The warehouse ships the order it holds for `reference` (twice-delivered webhook).
    pub async fn ship(&self, reference: &str, token: &str) -> Result<bool, String> {
        let auth = format!("Bearer {token}");
        let found = self
            .get(
                &format!(
                    "/2026-07/order?ReferenceIds={}",
                    reference.replace(':', "%3A")
                ),
                &[("authorization", &auth)],
            )
            .await?;
        let Some(id) = found
            .as_array()
            .and_then(|a| a.first())
            .and_then(|o| o.get("id"))
            .map(id_text)
        else {
            return Ok(false);
        };
        self.post(
            &format!("/_sandbox/shipbob/orders/{id}/ship?duplicate=true"),
            json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
        )
        .await?;
        Ok(true)
    }

    /// PATCHes an entity of the sandbox's OData service (any ETag), as a product master
    /// user would.
    pub async fn patch_odata(&self, entity: &str, body: Value) -> Result<(), String> {
        let response = self
            .client
            .patch(format!("{}/odata/v4/sales/{entity}", self.sandbox))
            .basic_auth("connector", Some("secret"))
            .header(reqwest::header::IF_MATCH, "*")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("PATCH {entity}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("PATCH {entity}: HTTP {}", response.status()));
        }
        Ok(())
    }

    /// Starts an ERP outage.
    pub async fn erp_outage(&self, seconds: u64) -> Result<(), String> {
        self.post(
            "/_sandbox/faults",
            json!({"system": "odata", "status": 503, "for_ms": seconds * 1000}),
        )
        .await
        .map(|_| ())
    }

    /// The sandbox's counts.
    pub async fn stats(&self) -> Result<Value, String> {
        self.get("/_sandbox/stats", &[]).await
    }
}
