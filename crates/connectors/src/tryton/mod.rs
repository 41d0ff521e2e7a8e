//! Tryton over JSON-RPC (`POST {url}/{database}/rpc/`). The connector logs in with
//! `common.db.login`, sends `Authorization: Session base64(login:uid:token)`, logs in again
//! once when a call answers 401 (sessions expire after idling), and passes the user's
//! preferences as the `context` argument every model call needs. Decimals travel as
//! `{"__class__": "Decimal", "decimal": "12.50"}` and dates as `{"__class__": "date", …}`.
//! A `UserError` is a business refusal (permanent, with its message); 429, 5xx and
//! timeouts are transient.
//!
//! `settings` (typed connection settings), `auth` (the JSON-RPC session and its login),
//! `read` (stock quantities), `write` (sales, parties, shipments, stock), `invoice`
//! (invoices), `classify` (answers to outcomes).

pub mod auth;
pub mod classify;
mod invoice;
pub mod read;
pub mod settings;
pub mod write;

pub use auth::Session;
pub use read::StockPager;
pub use settings::Settings;
pub use write::{date, decimal, Operation, TrytonSink};

use crate::api::Registry;

/// Registers Tryton's operations.
pub fn register(registry: &mut Registry) {
    registry.sink("tryton", "create_sale", |_, s, _, _| {
        Ok(Box::new(TrytonSink::new(s, Operation::CreateSale)?))
    });
    registry.sink("tryton", "record_shipment", |_, s, _, _| {
        Ok(Box::new(TrytonSink::new(s, Operation::RecordShipment)?))
    });
    registry.sink("tryton", "record_invoice", |_, s, _, _| {
        Ok(Box::new(TrytonSink::new(s, Operation::RecordInvoice)?))
    });
    registry.sink("tryton", "create_party", |_, s, _, _| {
        Ok(Box::new(TrytonSink::new(s, Operation::CreateParty)?))
    });
    registry.sink("tryton", "adjust_stock", |_, s, _, _| {
        Ok(Box::new(TrytonSink::new(s, Operation::AdjustStock)?))
    });
    registry.pager("tryton", "stock_quantities", |_, s, _| {
        Ok(Box::new(StockPager::new(s)?))
    });
}
