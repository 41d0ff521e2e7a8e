//! `shopify.orders`: polled with `updated_at_min` and `status=any`, then paged by following
//! the `Link: rel="next"` URL verbatim (its `page_info` freezes the filters).

use super::Store;
use crate::api::{ConnectorError, Map, Page, PageFuture, Pager};
use crate::client;
use std::time::Duration;

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(link: Option<&str>) -> Option<String> {
    link?.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// `shopify.orders`: orders updated since the watermark (`updated_at`). The dedupe key is
/// the order id and its `updated_at`.
pub struct OrdersPager {
    store: Store,
    limit: u64,
    lookback: Duration,
}

impl OrdersPager {
    /// Reads the settings and the `page_size` and `lookback` options.
    pub fn new(settings: &Map, options: &Map) -> Result<OrdersPager, ConnectorError> {
        Ok(OrdersPager {
            store: Store::new(settings)?,
            limit: client::page_size(options, 250, 250),
            lookback: client::lookback(options),
        })
    }
}

impl Pager for OrdersPager {
    /// The position is the watermark, or `watermark|next URL` while a listing is paged.
    fn page<'a>(&'a self, position: Option<&'a str>, _first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let (watermark, next) = match position.and_then(|p| p.split_once('|')) {
                Some((w, n)) => (Some(w.to_string()), Some(n.to_string())),
                None => (position.map(String::from), None),
            };
            let url = match &next {
                Some(url) => url.clone(),
                None => {
                    let since = watermark
                        .as_deref()
                        .and_then(|w| chrono::DateTime::parse_from_rfc3339(w).ok())
                        .map(|t| {
                            t.with_timezone(&chrono::Utc)
                                - chrono::Duration::from_std(self.lookback).unwrap_or_default()
                        })
                        .unwrap_or_else(|| chrono::Utc::now() - chrono::Duration::days(30));
                    format!(
                        "{}/orders.json?status=any&limit={}&updated_at_min={}",
                        self.store.base,
                        self.limit,
                        since.format("%Y-%m-%dT%H:%M:%S%%2B00:00")
                    )
                }
            };
            let reply = self
                .store
                .send(
                    self.store.request(reqwest::Method::GET, &url),
                    Duration::from_secs(30),
                )
                .await
                .map_err(client::reason)?;
            let orders = client::list_at(&reply.document()?, &["orders"], false)?;
            let mut newest = watermark.clone();
            let mut items = Vec::with_capacity(orders.len());
            for order in orders {
                let updated = order["updated_at"].as_str().unwrap_or_default().to_string();
                let stamp = chrono::DateTime::parse_from_rfc3339(&updated)
                    .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339())
                    .unwrap_or(updated.clone());
                if newest.as_deref().is_none_or(|n| stamp.as_str() > n) {
                    newest = Some(stamp);
                }
                let key = format!("{}@{updated}", order["id"]);
                items.push((serde_json::to_vec(&order).unwrap_or_default(), Some(key)));
            }
            let next = next_link(reply.header("link"));
            let position = match &next {
                // The next URL carries the frozen filters, so the newest stamp so far can
                // ride in the watermark slot.
                Some(n) => Some(format!("{}|{n}", newest.unwrap_or_default())),
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

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn link_header_next() {
        let link = r#"<https://s.myshopify.com/admin/api/2026-04/orders.json?limit=2&page_info=abc>; rel="next", <https://s/x?page_info=zzz>; rel="previous""#;
        assert_eq!(
            next_link(Some(link)).as_deref(),
            Some("https://s.myshopify.com/admin/api/2026-04/orders.json?limit=2&page_info=abc")
        );
        assert_eq!(
            next_link(Some(r#"<https://s/x?page_info=zzz>; rel="previous""#)),
            None
        );
        assert_eq!(next_link(None), None);
    }
}
