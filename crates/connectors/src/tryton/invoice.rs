//! `tryton.record_invoice`: the customer invoice (`account.invoice`) of a sale, whose
//! `reference` is the canonical invoice id. The invoice is looked up by that reference
//! first, so a retry after a lost answer finishes the invoice an earlier attempt made
//! instead of making a second one. Otherwise Tryton makes it from the sale
//! (`sale.sale.manual_invoice`, which invoices only what is not invoiced yet, with the
//! accounts, journal and taxes the ERP has configured); an invoice of the sale still
//! without a reference (an attempt lost right after that call) is taken over. The invoice
//! gets its reference, the canonical number as its description and the issue date, then
//! the workflow reaches the Invoice's state: `validated`, or `posted` (also for `paid`:
//! payments are booked in Tryton's own statements).

use super::{date, TrytonSink};
use crate::{client, CallOutcome};
use serde_json::{json, Value};
use std::time::Duration;

const MODEL: &str = "account.invoice";

/// Records `invoice` (a canonical Invoice).
pub(super) async fn record(
    sink: &TrytonSink,
    invoice: &Value,
    timeout: Duration,
) -> Result<String, CallOutcome> {
    let s = &sink.session;
    let reference = client::field(invoice, "id")?;
    let order = client::field(invoice, "order_id")?;
    let target = match invoice["state"].as_str().unwrap_or("posted") {
        "draft" => None,
        "validated" => Some("validated"),
        "posted" | "paid" => Some("posted"),
        other => {
            return Err(CallOutcome::Permanent {
                reason: format!(
                    "invoice {reference} has state `{other}`; Tryton records draft, validated, posted or paid"
                ),
            })
        }
    };
    let found = s
        .search(
            MODEL,
            json!([["reference", "=", reference], ["type", "=", "out"]]),
            Some(1),
            timeout,
        )
        .await?;
    let id = match found.first() {
        Some(id) => *id,
        None => {
            let id = from_sale(sink, order, reference, timeout).await?;
            let mut values = json!({"reference": reference});
            if let Some(number) = invoice["number"].as_str() {
                values["description"] = json!(number);
            }
            if let Some(day) = invoice["issued_at"].as_str().and_then(date) {
                values["invoice_date"] = day;
            }
            s.model(MODEL, "write", vec![json!([id]), values], timeout)
                .await?;
            id
        }
    };
    let state = s.read(MODEL, &[id], &["state"], timeout).await?;
    let state = state
        .first()
        .and_then(|r| r["state"].as_str())
        .unwrap_or("draft")
        .to_string();
    match (target, state.as_str()) {
        (Some("validated"), "draft") => {
            s.model(MODEL, "validate_invoice", vec![json!([id])], timeout)
                .await?;
        }
        (Some("posted"), "draft" | "validated") => {
            s.model(MODEL, "post", vec![json!([id])], timeout).await?;
        }
        (_, "cancelled") => {
            return Err(CallOutcome::Permanent {
                reason: format!("Tryton invoice {id} ({reference}) is cancelled"),
            })
        }
        _ => {}
    }
    Ok(format!("{MODEL} {id}"))
}

/// The draft invoice Tryton makes from the sale `order` (or the one it made before
/// without a reference).
async fn from_sale(
    sink: &TrytonSink,
    order: &str,
    reference: &str,
    timeout: Duration,
) -> Result<i64, CallOutcome> {
    let s = &sink.session;
    let Some(sale) = sink.sale(order, timeout).await? else {
        return Err(CallOutcome::Transient {
            class: "not_found".into(),
            reason: format!("sale {order} is not in Tryton (yet)"),
            retry_after: None,
        });
    };
    if let Some(id) = unreferenced(sink, sale, timeout).await? {
        return Ok(id);
    }
    s.model("sale.sale", "manual_invoice", vec![json!([sale])], timeout)
        .await?;
    unreferenced(sink, sale, timeout)
        .await?
        .ok_or_else(|| CallOutcome::Permanent {
            reason: format!(
                "sale {order} has nothing left to invoice in Tryton, so invoice {reference} cannot be made"
            ),
        })
}

/// An invoice of the sale that has no reference yet and is still a draft.
async fn unreferenced(
    sink: &TrytonSink,
    sale: i64,
    timeout: Duration,
) -> Result<Option<i64>, CallOutcome> {
    let s = &sink.session;
    let row = s.read("sale.sale", &[sale], &["invoices"], timeout).await?;
    let ids: Vec<i64> = row
        .first()
        .and_then(|r| r["invoices"].as_array())
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return Ok(None);
    }
    let rows = s
        .read(MODEL, &ids, &["reference", "state"], timeout)
        .await?;
    Ok(rows
        .iter()
        .find(|r| r["reference"].as_str().is_none_or(str::is_empty) && r["state"] == "draft")
        .and_then(|r| r["id"].as_i64()))
}
