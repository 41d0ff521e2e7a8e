//! Square. `Authorization: Bearer` and a `Square-Version` header on every call; orders are
//! searched by `updated_at` (the sort field must be the filtered timestamp) with the body
//! `cursor` sent back with the unchanged query; every write carries an `idempotency_key`
//! (the message's key, so a retry after a crash replays rather than repeats). Errors are
//! `{"errors":[{category, code, detail}]}`. Canonical SKUs and locations become catalog
//! variation ids and location ids through the `item_map` and `location_map` settings.
//!
//! `settings` (typed connection settings), `auth` (the seller's token, webhook
//! signatures), `read` (orders, inventory counts), `write` (inventory changes), `catalog`
//! (prices), `classify` (answers to outcomes).

pub mod auth;
pub mod catalog;
pub mod classify;
pub mod read;
pub mod settings;
pub mod write;

pub use auth::{Seller, SquareWebhooks};
pub use classify::error_text;
pub use read::{CountsPager, OrdersPager};
pub use settings::Settings;
pub use write::ChangeInventory;

use crate::api::Registry;

/// Registers Square's operations.
pub fn register(registry: &mut Registry) {
    registry.sink("square", "adjust_inventory", |_, s, _, _| {
        Ok(Box::new(ChangeInventory::new(s, false)?))
    });
    registry.sink("square", "set_inventory_count", |_, s, _, _| {
        Ok(Box::new(ChangeInventory::new(s, true)?))
    });
    registry.sink("square", "update_price", |_, s, _, _| {
        Ok(Box::new(catalog::UpdatePrice::new(s)?))
    });
    registry.pager("square", "orders", |_, s, o| {
        Ok(Box::new(OrdersPager::new(s, o)?))
    });
    registry.pager("square", "inventory_counts", |_, s, o| {
        Ok(Box::new(CountsPager::new(s, o)?))
    });
    for operation in ["order_events", "payment_events", "inventory_events"] {
        registry.verifier("square", operation, |_, s| {
            let need = |name| crate::signatures::need(s, "square", name);
            Ok(Box::new(auth::SquareWebhooks {
                key: need("signature_key")?.into_bytes(),
                url: need("notification_url")?,
            }))
        });
    }
}
