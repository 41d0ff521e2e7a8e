//! ShipBob. `Authorization: Bearer` plus the `shipbob_channel_id` header; an order is
//! created once per `reference_id` (the canonical order id): a 422 on create means it
//! already exists, which is confirmed with `GET /order?ReferenceIds=` and counts as done.
//! 429 carries `x-retry-after` seconds; 400/422 bodies map fields to messages. Webhooks
//! are signed the Standard Webhooks way.
//!
//! `settings` (typed connection settings), `auth` (request headers, webhook signatures),
//! `read` (the inventory and shipments pagers), `write` (`create_order`), `classify`
//! (answers to outcomes).

pub mod auth;
pub mod classify;
pub mod read;
pub mod settings;
pub mod write;

pub use auth::StandardWebhooks;
pub use classify::error_text;
pub use read::{InventoryPager, Listing, ShipmentsPager};
pub use settings::Settings;
pub use write::{order_body, CreateOrder};

use crate::api::Registry;

/// Registers ShipBob's operations.
pub fn register(registry: &mut Registry) {
    registry.sink("shipbob", "create_order", |_, s, _, _| {
        Ok(Box::new(CreateOrder::new(&Settings::parse(s)?)?))
    });
    registry.pager("shipbob", "inventory", |_, s, o| {
        Ok(Box::new(InventoryPager(Listing::new(
            &Settings::parse(s)?,
            o,
        )?)))
    });
    registry.pager("shipbob", "shipments", |_, s, o| {
        Ok(Box::new(ShipmentsPager(Listing::new(
            &Settings::parse(s)?,
            o,
        )?)))
    });
    registry.verifier("shipbob", "shipment_events", |_, s| {
        Ok(Box::new(StandardWebhooks::from_secret(
            &crate::signatures::need(s, "shipbob", "webhook_secret")?,
        )?))
    });
}
