//! ShipBob. `Authorization: Bearer` plus the `shipbob_channel_id` header; an order is
//! created once per `reference_id` (the canonical order id): a 422 on create means it
//! already exists, which is confirmed with `GET /order?ReferenceIds=` and counts as done.
//! 429 carries `x-retry-after` seconds; 400/422 bodies map fields to messages.

use super::client::{self, Reply};
use super::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `shipbob.create_order`.
pub struct CreateOrder {
    client: reqwest::Client,
    base: String,
    token: String,
    channel: String,
}

/// A ShipBob error body (field map, ProblemDetails or message) as text.
pub fn error_text(reply: &Reply) -> String {
    let body = reply.json();
    let text = match &body {
        Value::Object(map) if map.contains_key("title") || map.contains_key("detail") => format!(
            "{} {}",
            map.get("title").and_then(Value::as_str).unwrap_or(""),
            map.get("detail").and_then(Value::as_str).unwrap_or("")
        ),
        Value::Object(map) if map.contains_key("message") => {
            map["message"].as_str().unwrap_or("").to_string()
        }
        Value::Object(map) => map
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
                format!("{field}: {messages}")
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => reply.excerpt(),
    };
    format!("HTTP {}: {}", reply.status, text.trim())
}

impl CreateOrder {
    /// Reads the connection settings.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<CreateOrder, String> {
        let base = client::optional(settings, "base_url").unwrap_or("https://api.shipbob.com");
        let version = client::optional(settings, "api_version").unwrap_or("2026-07");
        Ok(CreateOrder {
            client: client::build()?,
            base: format!("{}/{version}", base.trim_end_matches('/')),
            token: client::setting(settings, "token", "shipbob")?.to_string(),
            channel: client::setting(settings, "channel_id", "shipbob")?.to_string(),
        })
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        self.client
            .request(method, url)
            .bearer_auth(&self.token)
            .header("shipbob_channel_id", &self.channel)
    }

    fn failed(reply: &Reply) -> CallOutcome {
        let wait = client::seconds_header(&reply.headers, "x-retry-after")
            .or_else(|| client::seconds_header(&reply.headers, "retry-after"));
        client::outcome(reply, wait, error_text(reply))
    }
}

/// The ShipBob order for a canonical order.
pub fn order_body(order: &Value) -> Result<Value, String> {
    let to = order
        .get("ship_to")
        .filter(|v| v.is_object())
        .ok_or("the order has no ship_to address")?;
    let currency = order["currency"].as_str().unwrap_or("USD");
    if let Some(reason) = client::inexact_price(order) {
        return Err(reason);
    }
    let decimal = |money: &Value| -> Value { client::money_number(money).unwrap_or(Value::Null) };
    let products: Vec<Value> = order["lines"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|l| {
                    json!({
                        "reference_id": l["sku"],
                        "name": l["title"].as_str().or(l["sku"].as_str()),
                        "quantity": l["quantity"],
                        "unit_price": decimal(&l["unit_price"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if products.is_empty() {
        return Err("the order has no lines".into());
    }
    let _ = currency;
    Ok(json!({
        "reference_id": order["id"],
        "order_number": order["order_ref"].as_str().or(order["external_id"].as_str()),
        "type": "DTC",
        "shipping_method": "Standard",
        "purchase_date": order["placed_at"],
        "recipient": {
            "name": to["name"].as_str().or(order["customer"]["name"].as_str()).unwrap_or("Customer"),
            "email": order["customer"]["email"],
            "phone_number": to["phone"],
            "address": {
                "address1": to["line1"], "address2": to["line2"], "city": to["city"],
                "state": to["region"], "country": to["country"], "zip_code": to["postal_code"],
            }
        },
        "products": products,
        "financials": {"total_price": decimal(&order["total"])},
        "tags": [{"name": "source", "value": "omniflow"}],
    }))
}

impl SinkConnector for CreateOrder {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let order = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let body = match order_body(&order) {
                Ok(b) => b,
                Err(reason) => return CallOutcome::Permanent { reason },
            };
            let request = self
                .request(reqwest::Method::POST, format!("{}/order", self.base))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
            let reply = match client::send(request, call.timeout).await {
                Ok(r) => r,
                Err(e) => return e,
            };
            if reply.ok() {
                return CallOutcome::Ok;
            }
            if reply.status != 422 {
                return Self::failed(&reply);
            }
            // 422: the reference may already exist (an earlier attempt that was applied).
            let reference = order["id"].as_str().unwrap_or_default();
            let lookup = self
                .request(reqwest::Method::GET, format!("{}/order", self.base))
                .query(&[("ReferenceIds", reference)]);
            match client::send(lookup, call.timeout).await {
                Ok(found)
                    if found.ok()
                        && found
                            .json()
                            .as_array()
                            .is_some_and(|a| a.iter().any(|o| o["reference_id"] == reference)) =>
                {
                    CallOutcome::Ok
                }
                Ok(found) if !found.ok() => Self::failed(&found),
                Ok(_) => CallOutcome::Permanent {
                    reason: error_text(&reply),
                },
                Err(e) => e,
            }
        })
    }
}

/// A GET against ShipBob with its auth headers.
fn get(client: &reqwest::Client, url: &str, token: &str, channel: &str) -> reqwest::RequestBuilder {
    client
        .get(url)
        .bearer_auth(token)
        .header("shipbob_channel_id", channel)
}

/// What the ShipBob read sources share: where, who, and the page size.
pub struct Listing {
    client: reqwest::Client,
    base: String,
    token: String,
    channel: String,
    page_size: u64,
}

impl Listing {
    /// Reads the settings and `page_size` (at most 250).
    pub fn new(
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<Listing, String> {
        let base = client::optional(settings, "base_url").unwrap_or("https://api.shipbob.com");
        let version = client::optional(settings, "api_version").unwrap_or("2026-07");
        Ok(Listing {
            client: client::build()?,
            base: format!("{}/{version}", base.trim_end_matches('/')),
            token: client::setting(settings, "token", "shipbob")?.to_string(),
            channel: client::setting(settings, "channel_id", "shipbob")?.to_string(),
            page_size: client::page_size(options, 250, 250),
        })
    }
}

/// `shipbob.inventory`: per-centre inventory rows (`/inventory-level/locations`), following
/// the `next` URL of the cursor body.
pub struct InventoryPager(pub Listing);

/// `shipbob.shipments`: orders with tracking not yet uploaded (`HasTracking=true`,
/// `IsTrackingUploaded=false`), paged by `Page`/`Limit` and the `next-page` header. The
/// dedupe key is the order id and its shipments' ids and tracking numbers, so an order is
/// emitted again when a parcel ships or its tracking changes.
pub struct ShipmentsPager(pub Listing);

async fn fetch(request: reqwest::RequestBuilder) -> Result<Reply, String> {
    let reply = client::send(request, std::time::Duration::from_secs(30))
        .await
        .map_err(client::reason)?;
    if reply.ok() {
        Ok(reply)
    } else {
        Err(error_text(&reply))
    }
}

impl Listing {
    /// Fetches the page at the stored next URL while paging, else `start` (every poll
    /// begins at the first page).
    async fn fetch_page(
        &self,
        position: Option<&str>,
        first: bool,
        start: String,
    ) -> Result<Reply, String> {
        let url = match position.filter(|p| !first && p.starts_with("http")) {
            Some(next) => next.to_string(),
            None => start,
        };
        fetch(get(&self.client, &url, &self.token, &self.channel)).await
    }
}

impl crate::api::Pager for InventoryPager {
    /// Every poll starts from the first page; the position is the next URL while paging.
    fn page<'a>(&'a self, position: Option<&'a str>, first: bool) -> crate::api::PageFuture<'a> {
        Box::pin(async move {
            let start = format!(
                "{}/inventory-level/locations?PageSize={}",
                self.0.base, self.0.page_size
            );
            let reply = self.0.fetch_page(position, first, start).await?;
            let body = reply.json();
            let items = body["items"]
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .map(|r| (serde_json::to_vec(r).unwrap_or_default(), None))
                        .collect()
                })
                .unwrap_or_default();
            let next = body["next"].as_str().map(String::from);
            // The last page stores an empty position, so no stale next URL outlives
            // the listing.
            Ok(crate::api::Page {
                items,
                more: next.is_some(),
                position: Some(next.unwrap_or_default()),
            })
        })
    }
}

impl crate::api::Pager for ShipmentsPager {
    /// Every poll starts from the first page; the position is the next URL while paging.
    fn page<'a>(&'a self, position: Option<&'a str>, first: bool) -> crate::api::PageFuture<'a> {
        Box::pin(async move {
            let start = format!(
                "{}/order?HasTracking=true&IsTrackingUploaded=false&Page=1&Limit={}",
                self.0.base, self.0.page_size
            );
            let reply = self.0.fetch_page(position, first, start).await?;
            let orders = reply.json().as_array().cloned().unwrap_or_default();
            let items = orders
                .iter()
                .map(|o| {
                    let parcels: Vec<String> = o["shipments"]
                        .as_array()
                        .map(|s| {
                            s.iter()
                                .map(|x| {
                                    format!("{}:{}", x["id"], x["tracking"]["tracking_number"])
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    (
                        serde_json::to_vec(o).unwrap_or_default(),
                        Some(format!("{}@{}", o["id"], parcels.join("+"))),
                    )
                })
                .collect();
            let next = reply
                .header("next-page")
                .map(String::from)
                .filter(|_| orders.len() as u64 >= self.0.page_size);
            // The last page stores an empty position, so no stale next URL outlives
            // the listing.
            Ok(crate::api::Page {
                items,
                more: next.is_some(),
                position: Some(next.unwrap_or_default()),
            })
        })
    }
}
