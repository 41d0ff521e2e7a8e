//! Amazon Selling Partner API. Login with Amazon: the refresh-token grant gives an access
//! token (sent as `x-amz-access-token`) that is cached and refreshed a minute before it
//! expires, or at once after a 403. Orders are read with getOrders (`LastUpdatedAfter`,
//! `NextToken` paging with the same filters) and completed with getOrderItems before they
//! are emitted. Errors are `{"errors":[{code, message}]}`; 429 `QuotaExceeded` carries no
//! Retry-After, so the wait is derived from the operation's published rate.
//!
//! `settings` (typed connection settings), `auth` (LWA tokens, the authenticated
//! client), `read` (orders), `reports` (settlement reports), `write` (shipments and
//! listings), `classify` (answers to outcomes).

pub mod auth;
pub mod classify;
pub mod read;
pub mod reports;
pub mod settings;
pub mod write;

pub use auth::{Lwa, SpApi};
pub use classify::error_text;
pub use read::OrdersPager;
pub use reports::SettlementsPager;
pub use settings::Settings;
pub use write::{ConfirmShipment, UpdateListingPrice, UpdateListingQuantity};

use crate::api::Registry;

/// Registers Amazon SP-API's operations.
pub fn register(registry: &mut Registry) {
    registry.sink("amazon_sp", "confirm_shipment", |tokens, s, _, _| {
        Ok(Box::new(ConfirmShipment::new(SpApi::new(
            &Settings::parse(s)?,
            tokens,
        )?)))
    });
    registry.sink("amazon_sp", "update_listing_quantity", |tokens, s, _, _| {
        Ok(Box::new(UpdateListingQuantity::new(SpApi::new(
            &Settings::parse(s)?,
            tokens,
        )?)))
    });
    registry.sink("amazon_sp", "update_listing_price", |tokens, s, _, _| {
        Ok(Box::new(UpdateListingPrice::new(SpApi::new(
            &Settings::parse(s)?,
            tokens,
        )?)))
    });
    registry.pager("amazon_sp", "orders", |tokens, s, o| {
        Ok(Box::new(OrdersPager::new(
            SpApi::new(&Settings::parse(s)?, tokens)?,
            o,
        )))
    });
    registry.pager("amazon_sp", "settlements", |tokens, s, o| {
        Ok(Box::new(SettlementsPager::new(
            SpApi::new(&Settings::parse(s)?, tokens)?,
            o,
        )?))
    });
}
