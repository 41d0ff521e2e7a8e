//! `amazon_sp.orders`: getOrders (`LastUpdatedAfter`, `NextToken` paging with the same
//! filters), each order completed with getOrderItems before it is emitted.

use super::SpApi;
use crate::api::{Map, Page, PageFuture, Pager};
use crate::client;
use crate::CallOutcome;
use serde_json::Value;
use std::cell::RefCell;
use std::time::Duration;

/// Waits for getOrderItems tokens within one page before giving up.
const ITEMS_WAITS: u32 = 60;

/// `amazon_sp.orders`: getOrders since the watermark (LastUpdateDate), each order with its
/// `OrderItems`. The dedupe key is the order id and its LastUpdateDate.
pub struct OrdersPager {
    api: SpApi,
    page_size: u64,
    lookback: Duration,
    /// Orders (id@LastUpdateDate) already durable: read again in the lookback window, they
    /// are not completed with their items a second time (getOrderItems is rate-limited).
    known: RefCell<std::collections::HashSet<String>>,
}

impl OrdersPager {
    /// The pager of a connection, with the `page_size` and `lookback` options.
    pub fn new(api: SpApi, options: &Map) -> OrdersPager {
        OrdersPager {
            api,
            page_size: client::page_size(options, 100, 100),
            lookback: client::lookback(options),
            known: RefCell::new(std::collections::HashSet::new()),
        }
    }

    async fn items(&self, order_id: &str) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        let mut waited = 0;
        loop {
            let mut query = Vec::new();
            if let Some(token) = &next {
                query.push(("NextToken".to_string(), token.clone()));
            }
            let reply = self
                .api
                .send(
                    self.api.get(
                        &format!("/orders/v0/orders/{order_id}/orderItems"),
                        query.clone(),
                    ),
                    Duration::from_secs(30),
                    0.5,
                )
                .await;
            // getOrderItems refills at one call every two seconds: a page with more new
            // orders than its burst waits for tokens instead of failing whole.
            let reply = match reply {
                Err(CallOutcome::Transient {
                    class, retry_after, ..
                }) if class == "rate_limited" && waited < ITEMS_WAITS => {
                    waited += 1;
                    tokio::time::sleep(retry_after.unwrap_or(Duration::from_secs(2))).await;
                    continue;
                }
                other => other.map_err(client::reason)?,
            };
            let body = reply.document()?;
            let payload = &body["payload"];
            items.extend(client::list_at(&body, &["payload", "OrderItems"], false)?);
            next = payload["NextToken"].as_str().map(String::from);
            if next.is_none() {
                return Ok(items);
            }
        }
    }
}

impl Pager for OrdersPager {
    /// The position is the watermark (the newest LastUpdateDate committed), or
    /// `newest so far|LastUpdatedAfter sent|NextToken` while a listing is paged: the token
    /// is only valid with the very filters that started the listing.
    fn page<'a>(&'a self, position: Option<&'a str>, _first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let stamp =
                |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let parts: Vec<&str> = position
                .map(|p| p.splitn(3, '|').collect())
                .unwrap_or_default();
            let (watermark, since, token) = match parts.as_slice() {
                [w, s, t] => (
                    Some(w.to_string()).filter(|w| !w.is_empty()),
                    s.to_string(),
                    Some(t.to_string()),
                ),
                _ => {
                    let watermark = position.map(String::from).filter(|w| !w.is_empty());
                    let from = watermark
                        .as_deref()
                        .and_then(|w| chrono::DateTime::parse_from_rfc3339(w).ok())
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .unwrap_or_else(|| chrono::Utc::now() - chrono::Duration::days(30));
                    let since =
                        from - chrono::Duration::from_std(self.lookback).unwrap_or_default();
                    (watermark, stamp(since), None)
                }
            };
            let mut query = vec![
                (
                    "MarketplaceIds".to_string(),
                    self.api.settings.marketplace.clone(),
                ),
                ("LastUpdatedAfter".to_string(), since.clone()),
                ("MaxResultsPerPage".to_string(), self.page_size.to_string()),
            ];
            if let Some(token) = &token {
                query.push(("NextToken".to_string(), token.clone()));
            }
            let reply = match self
                .api
                .send(
                    self.api.get("/orders/v0/orders", query),
                    Duration::from_secs(30),
                    1.0 / 60.0,
                )
                .await
            {
                Ok(reply) => reply,
                // A refused continuation token (expired, or from other filters) would be
                // refused forever: start the listing again from the watermark.
                Err(CallOutcome::Permanent { reason }) if token.is_some() => {
                    tracing::warn!(reason = %reason, "getOrders refused the NextToken; listing again from the watermark");
                    return Ok(Page {
                        items: Vec::new(),
                        more: false,
                        position: Some(watermark.unwrap_or_default()),
                    });
                }
                Err(other) => return Err(client::reason(other)),
            };
            let body = reply.document()?;
            let payload = &body["payload"];
            let orders = client::list_at(&body, &["payload", "Orders"], false)?;
            let mut items = Vec::with_capacity(orders.len());
            let mut newest = watermark.clone();
            for mut order in orders {
                let id = order["AmazonOrderId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let updated = order["LastUpdateDate"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if newest.as_deref().is_none_or(|n| updated.as_str() > n) {
                    newest = Some(updated.clone());
                }
                let key = format!("{id}@{updated}");
                if self.known.borrow().contains(&key) {
                    continue;
                }
                order["OrderItems"] = Value::Array(self.items(&id).await?);
                items.push((serde_json::to_vec(&order).unwrap_or_default(), Some(key)));
            }
            let next = payload["NextToken"].as_str().map(String::from);
            let newest = newest.unwrap_or_default();
            let position = match &next {
                Some(t) => format!("{newest}|{since}|{t}"),
                // An empty listing leaves the watermark where it was.
                None => newest,
            };
            Ok(Page {
                items,
                more: next.is_some(),
                position: Some(position),
            })
        })
    }

    fn committed(&self, keys: &[String]) {
        let mut known = self.known.borrow_mut();
        if known.len() > 100_000 {
            known.clear();
        }
        known.extend(keys.iter().cloned());
    }
}
