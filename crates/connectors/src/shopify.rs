//! Shopify Admin REST. `X-Shopify-Access-Token` auth; orders are polled with
//! `updated_at_min` and `status=any`, then paged by following the `Link: rel="next"` URL
//! verbatim (its `page_info` freezes the filters). A 429 carries `Retry-After` (seconds,
//! possibly fractional). Error bodies hold `errors` as a string, a list or a field map.
//! Order, fulfilment and inventory writes take no idempotency key, so a fulfilment is
//! preceded by a read of the order's fulfillment orders: nothing left open means the
//! parcel was already fulfilled, which counts as done.

pub mod auth;
pub mod catalog;

use super::client::{self, Reply};
use super::{Call, CallFuture, CallOutcome, SinkConnector};
use crate::api::{Page, PageFuture, Pager};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// One Shopify store connection.
pub struct Store {
    client: reqwest::Client,
    base: String,
    token: String,
    /// Until when callers should hold back, from the last call-limit header.
    hold: std::cell::Cell<Option<std::time::Instant>>,
}

/// Share of the leaky bucket above which calls are slowed down.
const BUCKET_HIGH: f64 = 0.8;

/// How long to wait for a `X-Shopify-Shop-Api-Call-Limit: used/capacity` bucket to drain
/// back to three quarters, when it is above [`BUCKET_HIGH`]; the bucket leaks capacity/20
/// calls a second (2/s for 40 on Standard, 4/s for 80 on Advanced).
pub fn call_limit_wait(header: &str) -> Option<Duration> {
    let (used, capacity) = header.trim().split_once('/')?;
    let (used, capacity): (f64, f64) = (used.trim().parse().ok()?, capacity.trim().parse().ok()?);
    if capacity <= 0.0 || used < capacity * BUCKET_HIGH {
        return None;
    }
    let leak = capacity / 20.0;
    Duration::try_from_secs_f64((used - capacity * 0.75) / leak).ok()
}

/// The `errors` of a Shopify error body, as text.
pub fn error_text(reply: &Reply) -> String {
    let body = reply.json();
    let text = match body.get("errors") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|e| {
                e.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| e.to_string())
            })
            .collect::<Vec<_>>()
            .join("; "),
        Some(Value::Object(fields)) => fields
            .iter()
            .map(|(field, messages)| {
                let messages = match messages {
                    Value::Array(m) => m
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                    other => other.to_string(),
                };
                format!("{field} {messages}")
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => reply.excerpt(),
    };
    format!("HTTP {}: {text}", reply.status)
}

impl Store {
    /// Reads `shop` (a shop name, a domain, or a full base URL for a sandbox), `access_token`
    /// and `api_version`.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<Store, String> {
        let shop = client::setting(settings, "shop", "shopify")?;
        let version = client::optional(settings, "api_version").unwrap_or("2026-04");
        let origin = if shop.starts_with("http://") || shop.starts_with("https://") {
            shop.trim_end_matches('/').to_string()
        } else if shop.contains('.') {
            format!("https://{shop}")
        } else {
            format!("https://{shop}.myshopify.com")
        };
        Ok(Store {
            client: client::build()?,
            base: format!("{origin}/admin/api/{version}"),
            token: client::setting(settings, "access_token", "shopify")?.to_string(),
            hold: std::cell::Cell::new(None),
        })
    }

    /// What is left of the hold the call-limit header asked for.
    pub fn backoff(&self) -> Option<Duration> {
        let until = self.hold.get()?;
        let left = until.saturating_duration_since(std::time::Instant::now());
        (!left.is_zero()).then_some(left)
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, url)
            .header("X-Shopify-Access-Token", &self.token)
            .header(reqwest::header::ACCEPT, "application/json")
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<Reply, CallOutcome> {
        let reply = client::send(request, timeout).await?;
        if let Some(wait) = reply
            .header("x-shopify-shop-api-call-limit")
            .and_then(call_limit_wait)
        {
            self.hold.set(Some(std::time::Instant::now() + wait));
        }
        if reply.ok() {
            return Ok(reply);
        }
        let wait = client::seconds_header(&reply.headers, "retry-after");
        Err(client::outcome(&reply, wait, error_text(&reply)))
    }
}

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
    pub fn new(
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<OrdersPager, String> {
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
            let orders = reply.json()["orders"]
                .as_array()
                .cloned()
                .unwrap_or_default();
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

/// `shopify.create_fulfillment`: fulfils what is open on the order's fulfillment orders
/// with the shipment's tracking.
pub struct CreateFulfillment {
    store: Store,
    items: BTreeMap<String, String>,
}

impl CreateFulfillment {
    /// Reads the connection settings.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<CreateFulfillment, String> {
        Ok(CreateFulfillment {
            store: Store::new(settings)?,
            items: client::pairs(client::optional(settings, "item_map")),
        })
    }
}

impl SinkConnector for CreateFulfillment {
    fn backoff(&self) -> Option<Duration> {
        self.store.backoff()
    }

    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let shipment = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let order_id = match client::field(&shipment, "order_id") {
                Ok(id) => id.strip_prefix("shopify:").unwrap_or(id).to_string(),
                Err(e) => return e,
            };
            let url = format!(
                "{}/orders/{order_id}/fulfillment_orders.json",
                self.store.base
            );
            let reply = match self
                .store
                .send(self.store.request(reqwest::Method::GET, &url), call.timeout)
                .await
            {
                Ok(r) => r,
                Err(e) => return e,
            };
            let orders = reply.json()["fulfillment_orders"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let (open, rest): (Vec<Value>, Vec<Value>) = orders
                .into_iter()
                .partition(|fo| fo["status"] == "open" || fo["status"] == "in_progress");
            if let Some(blocked) = rest
                .iter()
                .find(|fo| fo["status"] != "closed" && fo["status"] != "cancelled")
            {
                if open.is_empty() {
                    return CallOutcome::Permanent {
                        reason: format!(
                            "Shopify order {order_id}: fulfillment order {} is {}, nothing can be fulfilled",
                            blocked["id"], blocked["status"]
                        ),
                    };
                }
            }
            // A parcel fulfils the lines it carries when its SKUs map to inventory items
            // (`item_map`); otherwise everything still open.
            let lines = shipment["lines"].as_array().cloned().unwrap_or_default();
            let wanted: Vec<(String, i64)> = lines
                .iter()
                .filter_map(|l| {
                    Some((
                        self.items.get(l["sku"].as_str()?)?.clone(),
                        l["quantity"].as_i64()?,
                    ))
                })
                .collect();
            let by_order: Vec<Value> = if wanted.is_empty() || wanted.len() < lines.len() {
                open.iter()
                    .map(|fo| json!({"fulfillment_order_id": fo["id"]}))
                    .collect()
            } else {
                open.iter()
                    .filter_map(|fo| {
                        let picked: Vec<Value> = fo["line_items"]
                            .as_array()?
                            .iter()
                            .filter_map(|li| {
                                let (_, q) = {
                                    let id = li["inventory_item_id"].to_string();
                                    wanted.iter().find(|(item, _)| *item == id)?
                                };
                                let left = li["fulfillable_quantity"].as_i64().unwrap_or(0);
                                (left > 0).then(|| json!({"id": li["id"], "quantity": (*q).min(left)}))
                            })
                            .collect();
                        (!picked.is_empty()).then(|| json!({"fulfillment_order_id": fo["id"], "fulfillment_order_line_items": picked}))
                    })
                    .collect()
            };
            if by_order.is_empty() {
                // Nothing of this parcel is left open: an earlier attempt whose answer was
                // lost fulfilled it.
                return CallOutcome::Ok;
            }
            let body = json!({
                "fulfillment": {
                    "message": "shipped",
                    "notify_customer": true,
                    "tracking_info": {
                        "number": shipment["tracking_number"],
                        "company": shipment["carrier"],
                        "url": shipment["tracking_url"],
                    },
                    "line_items_by_fulfillment_order": by_order,
                }
            })
            .to_string();
            let url = format!("{}/fulfillments.json", self.store.base);
            let request = self
                .store
                .request(reqwest::Method::POST, &url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            match self.store.send(request, call.timeout).await {
                Ok(_) => CallOutcome::Ok,
                Err(e) => e,
            }
        })
    }
}

/// `shopify.set_inventory_level`: `inventory_levels/set.json` with the absolute quantity.
/// `location_map` pairs canonical locations with Shopify location ids and `item_map`
/// canonical SKUs with inventory item ids.
pub struct SetInventoryLevel {
    store: Store,
    locations: BTreeMap<String, String>,
    items: BTreeMap<String, String>,
}

impl SetInventoryLevel {
    /// Reads the connection settings.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<SetInventoryLevel, String> {
        Ok(SetInventoryLevel {
            store: Store::new(settings)?,
            locations: client::pairs(client::optional(settings, "location_map")),
            items: client::pairs(client::optional(settings, "item_map")),
        })
    }
}

impl SinkConnector for SetInventoryLevel {
    fn backoff(&self) -> Option<Duration> {
        self.store.backoff()
    }

    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let level = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let (Some(sku), Some(location)) = (level["sku"].as_str(), level["location"].as_str())
            else {
                return CallOutcome::Permanent {
                    reason: "the level has no sku or location".into(),
                };
            };
            let Some(location_id) = self.locations.get(location) else {
                return CallOutcome::Permanent {
                    reason: format!(
                        "location {location} has no Shopify location id in `location_map`"
                    ),
                };
            };
            let Some(item_id) = self.items.get(sku) else {
                return CallOutcome::Permanent {
                    reason: format!("SKU {sku} has no Shopify inventory item in `item_map`"),
                };
            };
            let Some(available) = level["available"].as_i64() else {
                return CallOutcome::Permanent {
                    reason: "the level has no integer `available`".into(),
                };
            };
            let body = format!(
                r#"{{"location_id":{location_id},"inventory_item_id":{item_id},"available":{}}}"#,
                available
            );
            let url = format!("{}/inventory_levels/set.json", self.store.base);
            let request = self
                .store
                .request(reqwest::Method::POST, &url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            match self.store.send(request, call.timeout).await {
                Ok(_) => CallOutcome::Ok,
                Err(e) => e,
            }
        })
    }
}

/// Registers Shopify's operations.
pub fn register(registry: &mut crate::api::Registry) {
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

#[cfg(test)]
mod tests {
    use super::next_link;
    use std::time::Duration;

    #[test]
    fn call_limit_slows_down_near_full() {
        use super::call_limit_wait;
        assert_eq!(call_limit_wait("10/40"), None);
        assert_eq!(call_limit_wait("32/40"), Some(Duration::from_secs(1)));
        assert_eq!(call_limit_wait("40/40"), Some(Duration::from_secs(5)));
        assert_eq!(call_limit_wait("72/80"), Some(Duration::from_secs(3)));
        assert_eq!(call_limit_wait("garbage"), None);
    }

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
