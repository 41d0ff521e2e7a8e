//! A sku as people read it: its stock per location (on-hand, reserved, held by orders, in
//! transit, free) and, per channel, its available-to-sell and what the channel was last
//! told and when, read from the state (`omniflow inventory show` and the console).

use super::book::{Book, Snapshot};
use super::rules::Rules;
use omniflow_ir as ir;
use omniflow_state as state;
use serde_json::{json, Value};

/// The ledger's book as stored, with its declaration.
pub fn stored_book(backend: &mut dyn state::Backend, name: &str) -> Result<Option<Book>, String> {
    let mut journal = backend.journal(name)?;
    let snapshot = journal.load()?;
    let Some(text) = snapshot.rules else {
        return Ok(None);
    };
    let declared: ir::Ledger = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut book = Book::new(Rules::new(&declared)?);
    book.load(journal.as_mut())?;
    Ok(Some(book))
}

fn time(ms: Option<i64>) -> Value {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
        .unwrap_or(Value::Null)
}

/// The sku's rows in one ledger, as JSON.
pub fn report(ledger: &str, sku: &str, snapshot: Snapshot, book: Option<&Book>) -> Value {
    let holds: Vec<_> = snapshot.holds.iter().filter(|h| h.sku == sku).collect();
    let locations: Vec<Value> = snapshot
        .positions
        .iter()
        .filter(|(s, _, _)| s == sku)
        .map(|(_, location, p)| {
            let held: i64 = holds
                .iter()
                .filter(|h| &h.location == location)
                .map(|h| h.quantity)
                .sum();
            json!({
                "location": location,
                "on_hand": p.on_hand,
                "reserved": p.reserved,
                "held": held,
                "in_transit": p.in_transit,
                "free": (p.on_hand - p.reserved - held).max(0),
            })
        })
        .collect();
    let channels: Vec<Value> = match book {
        Some(book) => book
            .rules
            .channels
            .iter()
            .enumerate()
            .map(|(idx, channel)| {
                let told = book.publication(idx, sku);
                json!({
                    "channel": channel.spec.name,
                    "ats": book.ats(idx, sku),
                    "published": told.and_then(|p| p.published),
                    "published_at": time(told.and_then(|p| p.published_at)),
                })
            })
            .collect(),
        // Stored by a runtime that predates the stored declaration: what was told only.
        None => snapshot
            .publications
            .iter()
            .filter(|(_, s, _)| s == sku)
            .map(|(channel, _, p)| {
                json!({
                    "channel": channel,
                    "ats": Value::Null,
                    "published": p.published,
                    "published_at": time(p.published_at),
                })
            })
            .collect(),
    };
    let orders: std::collections::BTreeSet<&str> = holds.iter().map(|h| h.order.as_str()).collect();
    json!({
        "ledger": ledger,
        "sku": sku,
        "locations": locations,
        "channels": channels,
        "held_orders": orders.len(),
        "held_units": holds.iter().filter(|h| !h.location.is_empty()).map(|h| h.quantity).sum::<i64>(),
        "backordered_units": holds.iter().filter(|h| h.location.is_empty()).map(|h| h.quantity).sum::<i64>(),
    })
}

/// The sku's report in every ledger that knows it.
pub fn sku(backend: &mut dyn state::Backend, sku: &str) -> state::StateResult<Vec<Value>> {
    let mut out = Vec::new();
    for name in backend.ledger_names()? {
        let snapshot = backend.journal(&name)?.load()?;
        let known = snapshot.positions.iter().any(|(s, _, _)| s == sku)
            || snapshot.publications.iter().any(|(_, s, _)| s == sku);
        if !known {
            continue;
        }
        // The declaration the runtime stored gives what each channel is offered now.
        let book = stored_book(backend, &name)?;
        out.push(report(&name, sku, snapshot, book.as_ref()));
    }
    Ok(out)
}
