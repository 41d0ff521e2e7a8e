//! `square.update_price`: RetrieveCatalogObject (`GET /v2/catalog/object/{id}`) for the
//! item variation and its `version`, then UpsertCatalogObject (`POST /v2/catalog/object`)
//! of the whole object (the Catalog API has no sparse updates) with `price_money` in
//! integer minor units and `FIXED_PRICING`, under the message's idempotency key.
//!
//! A variation that already has the price is not written again (a retry after a lost
//! answer reads the price the first attempt set). `VERSION_MISMATCH` (the object changed
//! between the read and the write) is transient: the retry reads the new version.

use super::{error_text, Seller};
use crate::api::{ConnectorError, Map};
use crate::client;
use crate::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::{json, Value};
use std::time::Duration;

/// `square.update_price`. The Price's `sku` is a catalog item variation id, or a canonical
/// SKU that `item_map` pairs with one.
pub struct UpdatePrice {
    seller: Seller,
}

impl UpdatePrice {
    /// Reads the connection settings.
    pub fn new(settings: &Map) -> Result<UpdatePrice, ConnectorError> {
        Ok(UpdatePrice {
            seller: Seller::new(settings)?,
        })
    }

    /// RetrieveCatalogObject.
    async fn retrieve(&self, id: &str, timeout: Duration) -> Result<Value, CallOutcome> {
        let request = self
            .seller
            .request(reqwest::Method::GET, &format!("/v2/catalog/object/{id}"));
        let reply = client::send(request, timeout).await?;
        if !reply.ok() {
            let wait = client::seconds_header(&reply.headers, "retry-after");
            return Err(client::outcome(&reply, wait, error_text(&reply)));
        }
        let body = reply.document().map_err(client::unreadable)?;
        match body.get("object") {
            Some(object) if object.is_object() => Ok(object.clone()),
            _ => Err(client::unreadable(format!(
                "RetrieveCatalogObject answered without its object: {}",
                reply.excerpt()
            ))),
        }
    }

    async fn update(&self, price: &Value, key: &str, timeout: Duration) -> Result<(), CallOutcome> {
        let sku = client::field(price, "sku")?;
        let id = self
            .seller
            .settings
            .item_map
            .get(sku)
            .map(String::as_str)
            .unwrap_or(sku);
        let (Some(amount), Some(currency)) = (
            price["amount"]["amount"].as_i64(),
            price["amount"]["currency"].as_str(),
        ) else {
            return Err(CallOutcome::Permanent {
                reason: "the price has no money `amount`".into(),
            });
        };
        let mut object = self.retrieve(id, timeout).await?;
        if object["type"] != "ITEM_VARIATION" {
            return Err(CallOutcome::Permanent {
                reason: format!(
                    "Square catalog object {id} is {}, not an ITEM_VARIATION",
                    object["type"]
                ),
            });
        }
        let money = json!({"amount": amount, "currency": currency});
        let data = &mut object["item_variation_data"];
        if data["pricing_type"] == "FIXED_PRICING" && data["price_money"] == money {
            return Ok(());
        }
        data["pricing_type"] = json!("FIXED_PRICING");
        data["price_money"] = money;
        // Square keys are at most 128 characters.
        let key: String = key.chars().take(128).collect();
        let body = json!({"idempotency_key": key, "object": object}).to_string();
        match self.seller.post("/v2/catalog/object", body, timeout).await {
            Ok(_) => Ok(()),
            Err(CallOutcome::Permanent { reason }) if reason.contains("VERSION_MISMATCH") => {
                Err(CallOutcome::Transient {
                    class: "conflict".into(),
                    reason,
                    retry_after: None,
                })
            }
            // An earlier attempt with this key was applied, and the variation changed
            // since (its version moved on): the price was set.
            Err(CallOutcome::Permanent { reason }) if reason.contains("IDEMPOTENCY_KEY_REUSED") => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

impl SinkConnector for UpdatePrice {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let price = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            match self.update(&price, call.key, call.timeout).await {
                Ok(()) => CallOutcome::Ok,
                Err(e) => e,
            }
        })
    }
}
