//! Tryton's sinks. `create_sale` is idempotent on the ERP side too: the sale's `reference`
//! is the canonical order id, so a retry finds the sale an earlier attempt created and only
//! finishes its workflow (quote, confirm). Decimals travel as
//! `{"__class__": "Decimal", "decimal": "12.50"}` and dates as `{"__class__": "date", …}`.

use super::{invoice, Session, Settings};
use crate::api::{ConnectorError, Map};
use crate::client;
use crate::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Attempts after a sequence collision (`… must be unique`).
const UNIQUE_RETRIES: u64 = 3;

/// A Decimal for Tryton.
pub fn decimal(text: &str) -> Value {
    json!({"__class__": "Decimal", "decimal": text})
}

/// A date for Tryton from an RFC 3339 timestamp (or a plain date).
pub fn date(text: &str) -> Option<Value> {
    let day = text.get(..10)?;
    let parsed = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    use chrono::Datelike;
    Some(
        json!({"__class__": "date", "year": parsed.year(), "month": parsed.month(), "day": parsed.day()}),
    )
}

/// What a Tryton sink does with its message.
#[derive(Clone, Copy)]
pub enum Operation {
    CreateSale,
    CreateParty,
    RecordShipment,
    RecordInvoice,
    AdjustStock,
}

/// A Tryton sink.
pub struct TrytonSink {
    pub(super) session: Session,
    operation: Operation,
    /// Storage location code for stock movements.
    storage: String,
}

impl TrytonSink {
    /// A sink for `operation`.
    pub fn new(settings: &Map, operation: Operation) -> Result<TrytonSink, ConnectorError> {
        let settings = Settings::parse(settings)?;
        Ok(TrytonSink {
            session: Session::new(&settings)?,
            operation,
            storage: settings.storage,
        })
    }

    async fn party(&self, order: &Value, timeout: Duration) -> Result<(i64, i64), CallOutcome> {
        let s = &self.session;
        let email = order["customer"]["email"]
            .as_str()
            .filter(|e| !e.is_empty());
        let name = order["customer"]["name"]
            .as_str()
            .filter(|n| !n.trim().is_empty())
            .or(order["ship_to"]["name"].as_str())
            .or(email)
            .unwrap_or("Walk-in customer")
            .to_string();
        let existing = match email {
            Some(email) => {
                s.search(
                    "party.party",
                    json!([["contact_mechanisms.value", "=", email]]),
                    Some(1),
                    timeout,
                )
                .await?
            }
            None => {
                s.search(
                    "party.party",
                    json!([["name", "=", name]]),
                    Some(1),
                    timeout,
                )
                .await?
            }
        };
        let party = match existing.first() {
            Some(id) => *id,
            None => {
                let mut values = json!({"name": name});
                if let Some(email) = email {
                    values["contact_mechanisms"] =
                        json!([["create", [{"type": "email", "value": email}]]]);
                }
                s.create("party.party", values, timeout).await?
            }
        };
        let to = &order["ship_to"];
        let street = [to["line1"].as_str(), to["line2"].as_str()]
            .into_iter()
            .flatten()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let addresses = s
            .search(
                "party.address",
                json!([
                    ["party", "=", party],
                    ["street", "=", street],
                    ["postal_code", "=", to["postal_code"]]
                ]),
                Some(1),
                timeout,
            )
            .await?;
        let address = match addresses.first() {
            Some(id) => *id,
            None => {
                s.create(
                    "party.address",
                    json!({"party": party, "street": street, "city": to["city"], "postal_code": to["postal_code"]}),
                    timeout,
                )
                .await?
            }
        };
        Ok((party, address))
    }

    /// The sale whose `reference` is the canonical order id.
    pub(super) async fn sale(
        &self,
        reference: &str,
        timeout: Duration,
    ) -> Result<Option<i64>, CallOutcome> {
        let found = self
            .session
            .search(
                "sale.sale",
                json!([["reference", "=", reference]]),
                Some(1),
                timeout,
            )
            .await?;
        Ok(found.first().copied())
    }

    async fn create_sale(&self, order: &Value, timeout: Duration) -> Result<String, CallOutcome> {
        let s = &self.session;
        let reference = client::field(order, "id")?;
        let sale = match self.sale(reference, timeout).await? {
            Some(id) => id,
            None => {
                let (party, address) = self.party(order, timeout).await?;
                let mut lines = Vec::new();
                for line in order["lines"].as_array().cloned().unwrap_or_default() {
                    let sku = line["sku"].as_str().unwrap_or_default();
                    let product = s
                        .find_one(
                            "product.product",
                            json!([["code", "=", sku]]),
                            format!("product {sku} is not in Tryton"),
                            timeout,
                        )
                        .await?;
                    let unit = s
                        .read("product.product", &[product], &["default_uom"], timeout)
                        .await?;
                    let (Some(price), Some(quantity)) = (
                        client::money_text(&line["unit_price"]),
                        line["quantity"].as_f64(),
                    ) else {
                        return Err(CallOutcome::Permanent {
                            reason: format!("line {sku} has no quantity or unit price"),
                        });
                    };
                    lines.push(json!({
                        "type": "line", "product": product,
                        "quantity": quantity,
                        "unit": unit.first().map(|u| u["default_uom"].clone()).unwrap_or(Value::Null),
                        "unit_price": decimal(&price),
                        "description": line["title"].as_str().unwrap_or(sku),
                    }));
                }
                let mut values = json!({
                    "party": party, "invoice_address": address, "shipment_address": address,
                    "reference": reference, "description": order["order_ref"],
                    "invoice_method": "manual", "shipment_method": "order",
                    "lines": [["create", lines]],
                });
                if let Some(day) = order["placed_at"].as_str().and_then(date) {
                    values["sale_date"] = day;
                }
                if let Some(code) = order["currency"].as_str() {
                    if let Some(currency) = s
                        .search(
                            "currency.currency",
                            json!([["code", "=", code]]),
                            Some(1),
                            timeout,
                        )
                        .await?
                        .first()
                    {
                        values["currency"] = json!(currency);
                    }
                }
                s.create("sale.sale", values, timeout).await?
            }
        };
        // Finish the workflow from wherever an earlier attempt left it.
        let state = s.read("sale.sale", &[sale], &["state"], timeout).await?;
        let state = state
            .first()
            .and_then(|r| r["state"].as_str())
            .unwrap_or("draft")
            .to_string();
        if state == "draft" {
            s.model("sale.sale", "quote", vec![json!([sale])], timeout)
                .await?;
        }
        if state == "draft" || state == "quotation" {
            s.model("sale.sale", "confirm", vec![json!([sale])], timeout)
                .await?;
        }
        // The sale is confirmed: its number is only for the lineage, so a failed read of it
        // does not turn the done work into a retry.
        let number = s.read("sale.sale", &[sale], &["number"], timeout).await;
        let number = number.ok().and_then(|rows| {
            rows.first()
                .and_then(|r| r["number"].as_str())
                .map(str::to_string)
        });
        Ok(match number {
            Some(number) => format!("sale.sale {sale} ({number})"),
            None => format!("sale.sale {sale}"),
        })
    }

    async fn record_shipment(
        &self,
        shipment: &Value,
        timeout: Duration,
    ) -> Result<String, CallOutcome> {
        let s = &self.session;
        let reference = client::field(shipment, "order_id")?;
        let Some(sale) = self.sale(reference, timeout).await? else {
            return Err(CallOutcome::Transient {
                class: "not_found".into(),
                reason: format!("sale {reference} is not in Tryton (yet)"),
                retry_after: None,
            });
        };
        let shipments = s
            .read("sale.sale", &[sale], &["shipments"], timeout)
            .await?;
        let ids: Vec<i64> = shipments
            .first()
            .and_then(|r| r["shipments"].as_array())
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        for &id in &ids {
            let state = s
                .read("stock.shipment.out", &[id], &["state"], timeout)
                .await?;
            let state = state
                .first()
                .and_then(|r| r["state"].as_str())
                .unwrap_or("")
                .to_string();
            let steps: &[&str] = match state.as_str() {
                "draft" | "waiting" => &["assign_try", "pick", "pack", "do"],
                "assigned" => &["pick", "pack", "do"],
                "picked" => &["pack", "do"],
                "packed" => &["do"],
                _ => &[],
            };
            for step in steps {
                s.model("stock.shipment.out", step, vec![json!([id])], timeout)
                    .await?;
            }
        }
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        Ok(format!(
            "stock.shipment.out {} of sale.sale {sale}",
            ids.join(",")
        ))
    }

    async fn adjust_stock(
        &self,
        movement: &Value,
        timeout: Duration,
    ) -> Result<String, CallOutcome> {
        let s = &self.session;
        let sku = client::field(movement, "sku")?;
        let product = s
            .find_one(
                "product.product",
                json!([["code", "=", sku]]),
                format!("product {sku} is not in Tryton"),
                timeout,
            )
            .await?;
        let quantity = movement["quantity"]
            .as_i64()
            .ok_or_else(|| CallOutcome::Permanent {
                reason: "the movement has no integer `quantity`".into(),
            })?;
        let kind = movement["kind"].as_str().unwrap_or("");
        if matches!(kind, "cycle_count" | "reservation" | "release") {
            return Err(CallOutcome::Permanent {
                reason: format!("a `{kind}` is not a stock move in Tryton (counts are booked by stock inventories, reservations by sales)"),
            });
        }
        let inbound = match kind {
            "sale" | "shipment" | "transfer_out" | "shrinkage" => false,
            "adjustment" => quantity >= 0,
            _ => true,
        };
        let outside = match kind {
            "return" | "sale" | "shipment" => "CUS",
            "receipt" => "SUP",
            _ => "LF",
        };
        let mut codes = BTreeMap::new();
        for code in [self.storage.as_str(), outside] {
            let id = s
                .find_one(
                    "stock.location",
                    json!([["code", "=", code]]),
                    format!("Tryton has no stock location `{code}`"),
                    timeout,
                )
                .await?;
            codes.insert(code, id);
        }
        let (from, to) = if inbound {
            (codes[outside], codes[self.storage.as_str()])
        } else {
            (codes[self.storage.as_str()], codes[outside])
        };
        let unit = s
            .read(
                "product.product",
                &[product],
                &["default_uom", "cost_price"],
                timeout,
            )
            .await?;
        let row = unit.first().cloned().unwrap_or(Value::Null);
        let mut values = json!({
            "product": product, "unit": row["default_uom"], "quantity": quantity.unsigned_abs() as f64,
            "from_location": from, "to_location": to,
            "unit_price": decimal("0"),
        });
        let company = self.session.context.borrow().get("company").cloned();
        if let Some(company) = company.and_then(|c| c.as_i64()) {
            values["company"] = json!(company);
            // A move with a unit price needs a currency: the company's.
            let row = s
                .read("company.company", &[company], &["currency"], timeout)
                .await?;
            if let Some(currency) = row.first().map(|r| r["currency"].clone()) {
                values["currency"] = currency;
            }
        }
        let id = s.create("stock.move", values, timeout).await?;
        s.model("stock.move", "do", vec![json!([id])], timeout)
            .await?;
        Ok(format!("stock.move {id}"))
    }
}

impl SinkConnector for TrytonSink {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let message = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            // Tryton numbers parties and sales from sequences; two writers can draw the
            // same number and one is refused as not unique. The work resumes from what the
            // ERP holds, so trying again settles it.
            let mut attempt = 0;
            loop {
                let done = match self.operation {
                    Operation::CreateSale => self.create_sale(&message, call.timeout).await,
                    Operation::CreateParty => {
                        // A Customer: its name, email and default address.
                        let as_order =
                            json!({"customer": message, "ship_to": message["default_address"]});
                        self.party(&as_order, call.timeout)
                            .await
                            .map(|(party, _)| format!("party.party {party}"))
                    }
                    Operation::RecordShipment => self.record_shipment(&message, call.timeout).await,
                    Operation::RecordInvoice => invoice::record(self, &message, call.timeout).await,
                    Operation::AdjustStock => self.adjust_stock(&message, call.timeout).await,
                };
                match done {
                    Ok(document) => return CallOutcome::Recorded { document },
                    Err(CallOutcome::Permanent { reason })
                        if reason.contains("must be unique") && attempt < UNIQUE_RETRIES =>
                    {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(150 * attempt)).await;
                    }
                    Err(e) => return e,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(
            decimal("12.50"),
            json!({"__class__": "Decimal", "decimal": "12.50"})
        );
        assert_eq!(
            date("2026-05-04T10:00:00Z"),
            Some(json!({"__class__": "date", "year": 2026, "month": 5, "day": 4}))
        );
        assert_eq!(date("garbage"), None);
    }
}
