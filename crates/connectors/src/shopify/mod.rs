//! Shopify Admin REST. `X-Shopify-Access-Token` auth; orders are polled with
//! `updated_at_min` and `status=any`, then paged by following the `Link: rel="next"` URL
//! verbatim (its `page_info` freezes the filters). A 429 carries `Retry-After` (seconds,
//! possibly fractional). Error bodies hold `errors` as a string, a list or a field map.
//! Order, fulfilment and inventory writes take no idempotency key, so a fulfilment is
//! preceded by a read of the order's fulfillment orders: nothing left open means the
//! parcel was already fulfilled, which counts as done.
//!
//! `settings` (typed connection settings), `auth` (the store's access token, webhook
//! signatures), `read` (orders), `write` (fulfilments, inventory), `catalog` (products
//! and prices), `classify` (answers to outcomes), `graphql` (the GraphQL Admin API the
//! sinks write through with `api = "graphql"`).

pub mod auth;
pub mod catalog;
pub mod classify;
pub mod graphql;
pub mod read;
pub mod settings;
pub mod write;

pub use auth::{ShopifyWebhooks, Store};
pub use classify::{call_limit_wait, error_text};
pub use read::{next_link, OrdersPager};
pub use settings::Settings;
pub use write::{CreateFulfillment, SetInventoryLevel};

use crate::api::Registry;

/// Registers Shopify's operations.
pub fn register(registry: &mut Registry) {
    registry.sink("shopify", "create_fulfillment", |_, s, _, _| {
        Ok(Box::new(CreateFulfillment::new(s)?))
    });
    registry.sink("shopify", "set_inventory_level", |_, s, _, _| {
        Ok(Box::new(SetInventoryLevel::new(s)?))
    });
    registry.sink("shopify", "update_product", |_, s, _, _| {
        Ok(Box::new(catalog::UpdateProduct::new(s)?))
    });
    registry.sink("shopify", "update_price", |_, s, _, _| {
        Ok(Box::new(catalog::UpdatePrice::new(s)?))
    });
    registry.pager("shopify", "orders", |_, s, o| {
        Ok(Box::new(OrdersPager::new(s, o)?))
    });
    for operation in ["orders_create", "refunds_create"] {
        registry.verifier("shopify", operation, |op, s| {
            Ok(Box::new(auth::ShopifyWebhooks {
                secret: crate::signatures::need(s, "shopify", "webhook_secret")?.into_bytes(),
                topic: auth::topic(op),
            }))
        });
    }
}
