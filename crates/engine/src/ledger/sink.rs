//! The ledger's sink operations, as flows call them: `apply(InventoryMovement)`,
//! `reserve(Order)`, `confirm(Order)` and `release(Order)`. A movement or an order the
//! ledger refuses is a permanent failure (a dead letter with the reason); a state-store
//! failure is transient.

use super::book::Refusal;
use super::Ledger;
use omniflow_connectors::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::Value;
use std::collections::BTreeMap;
use std::rc::Rc;

enum Op {
    Apply,
    Reserve {
        channel: Option<String>,
        backorder: bool,
    },
    Confirm,
    Release,
}

/// One sink operation of a ledger.
pub struct LedgerSink {
    ledger: Rc<Ledger>,
    op: Op,
}

impl LedgerSink {
    /// The sink `ledger.operation`; the ledger must be running.
    pub fn new(
        ledgers: &super::Ledgers,
        ledger: &str,
        operation: &str,
        options: &BTreeMap<String, Value>,
    ) -> Result<LedgerSink, String> {
        let running = ledgers
            .get(ledger)
            .ok_or_else(|| format!("ledger `{ledger}` is not running in this process"))?;
        let op = match operation {
            "apply" => Op::Apply,
            "reserve" => Op::Reserve {
                channel: options
                    .get("channel")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                backorder: options.get("on_shortage").and_then(Value::as_str) == Some("backorder"),
            },
            "confirm" => Op::Confirm,
            "release" => Op::Release,
            other => return Err(format!("ledger `{ledger}` has no operation `{other}`")),
        };
        Ok(LedgerSink {
            ledger: running,
            op,
        })
    }
}

fn outcome<T>(result: Result<T, Refusal>) -> CallOutcome {
    match result {
        Ok(_) => CallOutcome::Ok,
        Err(Refusal::Invalid(reason)) => CallOutcome::Permanent { reason },
        Err(Refusal::Store(reason)) => CallOutcome::Transient {
            class: "server_error".into(),
            reason: format!("ledger state: {reason}"),
            retry_after: None,
        },
    }
}

fn order_id(order: &Value) -> Result<String, String> {
    order
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| "order without an id".to_string())
}

fn order_lines(order: &Value, id: &str) -> Result<Vec<(String, i64)>, String> {
    let lines = order
        .get("lines")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("order {id} has no lines"))?;
    lines
        .iter()
        .map(|line| {
            let sku = line.get("sku").and_then(Value::as_str).unwrap_or("");
            let quantity = line.get("quantity").and_then(Value::as_i64);
            match (sku.is_empty(), quantity) {
                (false, Some(q)) => Ok((sku.to_string(), q)),
                _ => Err(format!(
                    "order {id}: a line has no sku or no integer quantity"
                )),
            }
        })
        .collect()
}

impl SinkConnector for LedgerSink {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            // Ids, SKUs and locations are text keys in every state backend; PostgreSQL's
            // text cannot hold NUL, so no backend is given one.
            if call.body.windows(6).any(|w| w == b"\\u0000") {
                return CallOutcome::Permanent {
                    reason: "the message holds a NUL character (\\u0000), which ledger ids, \
                             SKUs and locations may not contain"
                        .into(),
                };
            }
            let body: Value = match serde_json::from_slice(call.body) {
                Ok(v) => v,
                Err(e) => {
                    return CallOutcome::Permanent {
                        reason: format!("not JSON: {e}"),
                    }
                }
            };
            let ledger = &self.ledger;
            match &self.op {
                Op::Apply => match super::movement_from_json(&body) {
                    Ok(movement) => outcome(ledger.apply(movement).await),
                    Err(reason) => {
                        ledger
                            .metrics
                            .add(super::MOVEMENTS, &ledger.name, "refused", 1);
                        CallOutcome::Permanent { reason }
                    }
                },
                Op::Reserve { channel, backorder } => {
                    let parsed = order_id(&body).and_then(|id| {
                        let lines = order_lines(&body, &id)?;
                        let channel = match channel {
                            Some(c) => c.clone(),
                            None => body
                                .get("channel")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                                .ok_or_else(|| format!("order {id} names no channel"))?,
                        };
                        Ok((id, channel, lines))
                    });
                    match parsed {
                        Ok((id, channel, lines)) => {
                            outcome(ledger.reserve(id, &channel, lines, *backorder).await)
                        }
                        Err(reason) => CallOutcome::Permanent { reason },
                    }
                }
                Op::Confirm => match order_id(&body) {
                    Ok(id) => outcome(ledger.confirm(id).await),
                    Err(reason) => CallOutcome::Permanent { reason },
                },
                Op::Release => match order_id(&body) {
                    Ok(id) => outcome(ledger.release(id).await),
                    Err(reason) => CallOutcome::Permanent { reason },
                },
            }
        })
    }
}
