//! OData v4 (and v2) ERP services, shaped like a SAP CAP or S/4HANA sales-order API:
//! - `create_sale`: a deep insert of the sales order with its items, once per order: the
//!   order number (`orderNo` = the canonical order id) is looked up first, so a retry
//!   after a lost answer finds the order instead of posting it twice;
//! - `record_shipment`, `adjust_stock`, `update_entity`: read the entity for its ETag,
//!   then PATCH with `If-Match` (412, a concurrent change, is retried; 428 means the
//!   service wants the ETag, which is always sent);
//! - a CSRF token is fetched (`x-csrf-token: Fetch`) when the connection says `csrf = true`
//!   or a write is refused with `x-csrf-token: Required`, and sent on writes;
//! - V4 (`{"error":{code, message, details}}`) and V2 (`message.value`, `innererror`)
//!   error bodies become the dead-letter reason.
//!
//! `settings` (typed connection settings), `auth` (the service client: credentials, CSRF
//! token), `read` (entity sets, stock), `write` (sales orders and entity updates),
//! `classify` (error bodies); the key and literal encodings both sides use are here.

pub mod auth;
pub mod classify;
pub mod read;
pub mod settings;
pub mod write;

pub use auth::Service;
pub use classify::error_text;
pub use read::{EntitiesPager, StockPager};
pub use settings::Settings;
pub use write::{ODataSink, Operation};

use crate::api::Registry;
use serde_json::Value;

/// Quotes a string for a `$filter` literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `text` percent-encoded for an OData URL (quotes kept, as `$filter` literals need).
pub fn urlencode(text: &str) -> String {
    crate::client::percent_encode(text, b"'")
}

/// The key segment of an entity: `('text')` or `(uuid)`.
pub fn key_segment(id: &Value) -> String {
    match id.as_str() {
        Some(s) if s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4 => {
            format!("({s})")
        }
        Some(s) => format!("({})", urlencode(&literal(s))),
        None => format!("({id})"),
    }
}

/// Registers the OData connector's operations.
pub fn register(registry: &mut Registry) {
    registry.sink("odata", "create_sale", |_, s, _, o| {
        Ok(Box::new(ODataSink::new(s, Operation::CreateSale, o)?))
    });
    registry.sink("odata", "record_shipment", |_, s, _, o| {
        Ok(Box::new(ODataSink::new(s, Operation::RecordShipment, o)?))
    });
    registry.sink("odata", "record_invoice", |_, s, _, o| {
        Ok(Box::new(ODataSink::new(s, Operation::RecordInvoice, o)?))
    });
    registry.sink("odata", "adjust_stock", |_, s, _, o| {
        Ok(Box::new(ODataSink::new(s, Operation::AdjustStock, o)?))
    });
    registry.sink("odata", "update_entity", |_, s, _, o| {
        Ok(Box::new(ODataSink::new(s, Operation::UpdateEntity, o)?))
    });
    registry.pager("odata", "entities", |_, s, o| {
        Ok(Box::new(EntitiesPager::new(s, o)?))
    });
    registry.pager("odata", "stock", |_, s, o| {
        Ok(Box::new(StockPager::new(s, o)?))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_literals() {
        assert_eq!(key_segment(&json!("ITM-1")), "('ITM-1')");
        assert_eq!(
            key_segment(&json!("0b5c1f0e-2c7d-4f7a-9a55-3c3c2f1d9e10")),
            "(0b5c1f0e-2c7d-4f7a-9a55-3c3c2f1d9e10)"
        );
        assert_eq!(literal("O'Brien"), "'O''Brien'");
    }
}
