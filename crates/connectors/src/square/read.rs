//! Square's read sources: orders searched by `updated_at` (the sort field must be the
//! filtered timestamp) with the body `cursor` sent back with the unchanged query, and
//! inventory counts.

use super::Seller;
use crate::api::{ConnectorError, Map, Page, PageFuture, Pager};
use crate::client;
use serde_json::json;
use std::time::Duration;

/// `square.orders`: SearchOrders by `updated_at` since the watermark, ascending. The dedupe
/// key is the order id and its version.
pub struct OrdersPager {
    seller: Seller,
    limit: u64,
    lookback: Duration,
}

impl OrdersPager {
    /// Reads the settings and the `page_size` and `lookback` options.
    pub fn new(settings: &Map, options: &Map) -> Result<OrdersPager, ConnectorError> {
        let seller = Seller::new(settings)?;
        if seller.settings.locations.is_empty() {
            return Err(ConnectorError::BadSetting(
                "square orders need `location_ids`".into(),
            ));
        }
        Ok(OrdersPager {
            seller,
            limit: client::page_size(options, 500, 1000),
            lookback: client::lookback(options),
        })
    }
}

impl Pager for OrdersPager {
    /// The position is the watermark, or `watermark|start|cursor` while a search is paged
    /// (the cursor is only valid with the query that started it).
    fn page<'a>(&'a self, position: Option<&'a str>, _first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let parts: Vec<&str> = position
                .map(|p| p.splitn(3, '|').collect())
                .unwrap_or_default();
            let (watermark, start, cursor) = match parts.as_slice() {
                [w, s, c] => (Some(w.to_string()), s.to_string(), Some(c.to_string())),
                [w] => {
                    let start = chrono::DateTime::parse_from_rfc3339(w)
                        .map(|t| {
                            t.with_timezone(&chrono::Utc)
                                - chrono::Duration::from_std(self.lookback).unwrap_or_default()
                        })
                        .unwrap_or_else(|_| chrono::Utc::now() - chrono::Duration::days(30));
                    (Some(w.to_string()), start.to_rfc3339(), None)
                }
                _ => (
                    None,
                    (chrono::Utc::now() - chrono::Duration::days(30)).to_rfc3339(),
                    None,
                ),
            };
            let mut body = json!({
                "location_ids": self.seller.settings.locations,
                "limit": self.limit,
                "query": {
                    "filter": {"date_time_filter": {"updated_at": {"start_at": start}}},
                    "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}
                }
            });
            if let Some(c) = &cursor {
                body["cursor"] = json!(c);
            }
            let reply = self
                .seller
                .post(
                    "/v2/orders/search",
                    body.to_string(),
                    Duration::from_secs(30),
                )
                .await
                .map_err(client::reason)?;
            // Square leaves an empty list out of its answer.
            let answer = reply.document()?;
            let orders = client::list_at(&answer, &["orders"], true)?;
            let mut newest = watermark.clone();
            let mut items = Vec::with_capacity(orders.len());
            for order in orders {
                let updated = order["updated_at"].as_str().unwrap_or_default().to_string();
                if newest.as_deref().is_none_or(|n| updated.as_str() > n) {
                    newest = Some(updated);
                }
                let key = format!(
                    "{}@{}",
                    order["id"].as_str().unwrap_or_default(),
                    order["version"]
                );
                items.push((serde_json::to_vec(&order).unwrap_or_default(), Some(key)));
            }
            let next = answer["cursor"].as_str().map(String::from);
            let position = match &next {
                Some(c) => Some(format!(
                    "{}|{start}|{c}",
                    newest.clone().unwrap_or_default()
                )),
                None => newest,
            };
            Ok(Page {
                items,
                more: next.is_some(),
                position,
            })
        })
    }
}

/// `square.inventory_counts`: BatchRetrieveInventoryCounts of the IN_STOCK state at the
/// connection's locations, `updated_after` the watermark (the newest `calculated_at`),
/// following the body cursor. The dedupe key is the variation, location and count time.
pub struct CountsPager {
    seller: Seller,
    limit: u64,
}

impl CountsPager {
    /// Reads the settings and `page_size`.
    pub fn new(settings: &Map, options: &Map) -> Result<CountsPager, ConnectorError> {
        Ok(CountsPager {
            seller: Seller::new(settings)?,
            limit: client::page_size(options, 1000, 1000),
        })
    }
}

impl Pager for CountsPager {
    /// The position is the watermark, or `watermark|cursor` while paging.
    fn page<'a>(&'a self, position: Option<&'a str>, _first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let (watermark, cursor) = match position.and_then(|p| p.split_once('|')) {
                Some((w, c)) => (
                    Some(w.to_string()).filter(|w| !w.is_empty()),
                    Some(c.to_string()),
                ),
                None => (position.map(String::from).filter(|w| !w.is_empty()), None),
            };
            let mut body = json!({"states": ["IN_STOCK"], "limit": self.limit});
            if !self.seller.settings.locations.is_empty() {
                body["location_ids"] = json!(self.seller.settings.locations);
            }
            if let Some(w) = &watermark {
                body["updated_after"] = json!(w);
            }
            if let Some(c) = &cursor {
                body["cursor"] = json!(c);
            }
            let reply = self
                .seller
                .post(
                    "/v2/inventory/counts/batch-retrieve",
                    body.to_string(),
                    Duration::from_secs(30),
                )
                .await
                .map_err(client::reason)?;
            let answer = reply.document()?;
            let mut newest = watermark.clone();
            let mut items = Vec::new();
            for count in client::list_at(&answer, &["counts"], true)? {
                let at = count["calculated_at"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if newest.as_deref().is_none_or(|n| at.as_str() > n) {
                    newest = Some(at.clone());
                }
                let key = format!(
                    "{}@{}@{at}",
                    count["catalog_object_id"].as_str().unwrap_or_default(),
                    count["location_id"].as_str().unwrap_or_default()
                );
                items.push((serde_json::to_vec(&count).unwrap_or_default(), Some(key)));
            }
            let next = answer["cursor"].as_str().map(String::from);
            let position = match &next {
                Some(c) => Some(format!("{}|{c}", watermark.unwrap_or_default())),
                None => newest,
            };
            Ok(Page {
                items,
                more: next.is_some(),
                position,
            })
        })
    }
}
