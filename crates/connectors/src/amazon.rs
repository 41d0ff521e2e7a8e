//! Amazon Selling Partner API. Login with Amazon: the refresh-token grant gives an access
//! token (sent as `x-amz-access-token`) that is cached and refreshed a minute before it
//! expires, or at once after a 403. Orders are read with getOrders (`LastUpdatedAfter`,
//! `NextToken` paging with the same filters) and completed with getOrderItems before they
//! are emitted. Errors are `{"errors":[{code, message}]}`; 429 `QuotaExceeded` carries no
//! Retry-After, so the wait is derived from the operation's published rate.

use super::client::{self, Reply};
use super::{Call, CallFuture, CallOutcome, SinkConnector};
use crate::api::{Page, PageFuture, Pager};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Waits for getOrderItems tokens within one page before giving up.
const ITEMS_WAITS: u32 = 60;

/// Refresh this long before the token expires.
const REFRESH_EARLY: Duration = Duration::from_secs(60);

/// A cached access token and when to refresh it.
type Cached = Rc<RefCell<Option<(String, Instant)>>>;

thread_local! {
    /// One token per (token endpoint, credentials): the sources and sinks of a connection,
    /// and the ledger's publication to it, share it.
    static TOKENS: RefCell<std::collections::HashMap<String, Cached>> = RefCell::default();
}

/// The LWA token cache of one connection.
pub struct Lwa {
    client: reqwest::Client,
    token_url: String,
    form: String,
    cached: Cached,
}

fn form_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Lwa {
    fn new(client: reqwest::Client, settings: &BTreeMap<String, Value>) -> Result<Lwa, String> {
        let get = |name| client::setting(settings, name, "amazon_sp");
        let token_url = client::optional(settings, "token_endpoint")
            .unwrap_or("https://api.amazon.com/auth/o2/token")
            .to_string();
        let form = format!(
            "grant_type=refresh_token&refresh_token={}&client_id={}&client_secret={}",
            form_escape(get("refresh_token")?),
            form_escape(get("client_id")?),
            form_escape(get("client_secret")?)
        );
        let cached = TOKENS.with(|tokens| {
            tokens
                .borrow_mut()
                .entry(format!("{token_url} {form}"))
                .or_default()
                .clone()
        });
        Ok(Lwa {
            client,
            token_url,
            form,
            cached,
        })
    }

    /// A valid access token.
    pub async fn token(&self) -> Result<String, CallOutcome> {
        if let Some((token, until)) = self.cached.borrow().as_ref() {
            if Instant::now() + REFRESH_EARLY < *until {
                return Ok(token.clone());
            }
        }
        let request = self
            .client
            .post(&self.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body(self.form.clone());
        let reply = client::send(request, Duration::from_secs(30)).await?;
        let body = reply.json();
        let token = body.get("access_token").and_then(Value::as_str);
        match (reply.ok(), token) {
            (true, Some(token)) => {
                let life = body
                    .get("expires_in")
                    .and_then(Value::as_u64)
                    .unwrap_or(3600);
                *self.cached.borrow_mut() = Some((
                    token.to_string(),
                    Instant::now() + Duration::from_secs(life),
                ));
                Ok(token.to_string())
            }
            _ if reply.status >= 500 || reply.status == 429 => Err(client::outcome(
                &reply,
                None,
                format!("LWA token: {}", reply.excerpt()),
            )),
            _ => Err(CallOutcome::Permanent {
                reason: format!(
                    "LWA token refused (HTTP {}): {}",
                    reply.status,
                    reply.excerpt()
                ),
            }),
        }
    }

    /// Forgets the cached token (after a 403).
    pub fn invalidate(&self) {
        *self.cached.borrow_mut() = None;
    }
}

/// One SP-API connection: endpoint, marketplace, token cache.
pub struct SpApi {
    client: reqwest::Client,
    endpoint: String,
    marketplace: String,
    seller: String,
    lwa: Lwa,
}

/// The `errors` list of an SP-API error body, as text.
pub fn error_text(reply: &Reply) -> String {
    let body = reply.json();
    match body.get("errors").and_then(Value::as_array) {
        Some(errors) if !errors.is_empty() => {
            format!("HTTP {}: ", reply.status)
                + &errors
                    .iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e.get("code").and_then(Value::as_str).unwrap_or("?"),
                            e.get("message").and_then(Value::as_str).unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
        }
        _ => format!("HTTP {}: {}", reply.status, reply.excerpt()),
    }
}

impl SpApi {
    /// Reads the connection settings.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<SpApi, String> {
        let client = client::build()?;
        let region = client::optional(settings, "region").unwrap_or("na");
        let endpoint = match client::optional(settings, "endpoint") {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => format!("https://sellingpartnerapi-{region}.amazon.com"),
        };
        Ok(SpApi {
            lwa: Lwa::new(client.clone(), settings)?,
            client,
            endpoint,
            marketplace: client::setting(settings, "marketplace_id", "amazon_sp")?.to_string(),
            seller: client::optional(settings, "seller_id")
                .unwrap_or("")
                .to_string(),
        })
    }

    /// Sends a request built by `make` with a token; a 403 refreshes the token and tries
    /// once more. `rate` (requests per second) sizes the wait after a 429.
    pub(super) async fn send(
        &self,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
        timeout: Duration,
        rate: f64,
    ) -> Result<Reply, CallOutcome> {
        let mut refreshed = false;
        loop {
            let token = self.lwa.token().await?;
            let reply = client::send(make(&token), timeout).await?;
            if reply.status == 403 && !refreshed {
                self.lwa.invalidate();
                refreshed = true;
                continue;
            }
            if reply.ok() {
                return Ok(reply);
            }
            let wait =
                (reply.status == 429).then(|| Duration::from_secs_f64((1.0 / rate).min(120.0)));
            return Err(client::outcome(&reply, wait, error_text(&reply)));
        }
    }

    pub(super) fn get(
        &self,
        path: &str,
        query: Vec<(String, String)>,
    ) -> impl Fn(&str) -> reqwest::RequestBuilder + '_ {
        let url = format!("{}{path}", self.endpoint);
        move |token: &str| {
            self.client
                .get(&url)
                .query(&query)
                .header("x-amz-access-token", token)
        }
    }
}

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
    /// Reads the settings and the `page_size` and `lookback` options.
    pub fn new(
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<OrdersPager, String> {
        Ok(OrdersPager {
            api: SpApi::new(settings)?,
            page_size: client::page_size(options, 100, 100),
            lookback: client::lookback(options),
            known: RefCell::new(std::collections::HashSet::new()),
        })
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
            let body = reply.json();
            let payload = &body["payload"];
            items.extend(
                payload["OrderItems"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
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
                ("MarketplaceIds".to_string(), self.api.marketplace.clone()),
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
            let body = reply.json();
            let payload = &body["payload"];
            let orders = payload["Orders"].as_array().cloned().unwrap_or_default();
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

/// `amazon_sp.confirm_shipment` (confirmShipment, 204) from a canonical Shipment whose
/// `order_id` is `amazon:<AmazonOrderId>`; order items come from getOrderItems, matched by
/// SKU when the shipment's lines name them, all items otherwise.
pub struct ConfirmShipment {
    api: SpApi,
    sku_map: BTreeMap<String, String>,
}

/// `amazon_sp.update_listing_quantity` (patchListingsItem) from an InventoryLevel.
pub struct UpdateListingQuantity {
    api: SpApi,
    sku_map: BTreeMap<String, String>,
}

impl ConfirmShipment {
    /// Reads the connection settings.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<ConfirmShipment, String> {
        Ok(ConfirmShipment {
            api: SpApi::new(settings)?,
            sku_map: client::pairs(client::optional(settings, "sku_map")),
        })
    }
}

impl UpdateListingQuantity {
    /// Reads the connection settings (`sku_map`: canonical code = seller SKU pairs).
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<UpdateListingQuantity, String> {
        Ok(UpdateListingQuantity {
            api: SpApi::new(settings)?,
            sku_map: client::pairs(client::optional(settings, "sku_map")),
        })
    }
}

impl SinkConnector for ConfirmShipment {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let shipment = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let order_id = match client::field(&shipment, "order_id") {
                Ok(id) => id.strip_prefix("amazon:").unwrap_or(id).to_string(),
                Err(e) => return e,
            };
            let items = match self
                .api
                .send(
                    self.api.get(
                        &format!("/orders/v0/orders/{order_id}/orderItems"),
                        Vec::new(),
                    ),
                    call.timeout,
                    0.5,
                )
                .await
            {
                Ok(reply) => reply.json()["payload"]["OrderItems"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                Err(e) => return e,
            };
            // A parcel confirms the items its lines name (canonical SKU or, through
            // `sku_map`, the seller SKU); a shipment without lines confirms every item.
            let lines = shipment["lines"].as_array().cloned().unwrap_or_default();
            let order_items: Vec<Value> = if lines.is_empty() {
                items
                    .iter()
                    .map(|it| json!({"orderItemId": it["OrderItemId"], "quantity": it["QuantityOrdered"]}))
                    .collect()
            } else {
                let mut matched = Vec::new();
                for line in &lines {
                    let sku = line["sku"].as_str().unwrap_or_default();
                    let seller = self.sku_map.get(sku).map(String::as_str).unwrap_or(sku);
                    match items
                        .iter()
                        .find(|it| it["SellerSKU"] == seller || it["SellerSKU"] == sku)
                    {
                        Some(it) => matched.push(
                            json!({"orderItemId": it["OrderItemId"], "quantity": line["quantity"]}),
                        ),
                        None => {
                            return CallOutcome::Permanent {
                                reason: format!(
                                "Amazon order {order_id} has no item for SKU {sku} of parcel {}",
                                shipment["id"]
                            ),
                            }
                        }
                    }
                }
                matched
            };
            if order_items.is_empty() {
                return CallOutcome::Permanent {
                    reason: format!("Amazon order {order_id} has no items to confirm"),
                };
            }
            let body = json!({
                "marketplaceId": self.api.marketplace,
                "packageDetail": {
                    "packageReferenceId": shipment["id"].as_str().unwrap_or("1"),
                    "carrierCode": shipment["carrier"].as_str().unwrap_or("Other"),
                    "carrierName": shipment["carrier"],
                    "trackingNumber": shipment["tracking_number"],
                    "shipDate": shipment["shipped_at"],
                    "orderItems": order_items,
                }
            })
            .to_string();
            let url = format!(
                "{}/orders/v0/orders/{order_id}/shipmentConfirmation",
                self.api.endpoint
            );
            let make = |token: &str| {
                self.api
                    .client
                    .post(&url)
                    .header("x-amz-access-token", token)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            };
            match self.api.send(make, call.timeout, 2.0).await {
                Ok(_) => CallOutcome::Ok,
                Err(e) => e,
            }
        })
    }
}

impl SinkConnector for UpdateListingQuantity {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let level = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let sku = match client::field(&level, "sku") {
                Ok(s) => self
                    .sku_map
                    .get(s)
                    .cloned()
                    .unwrap_or_else(|| s.to_string()),
                Err(e) => return e,
            };
            let Some(quantity) = level["available"].as_i64().map(|q| q.max(0)) else {
                return CallOutcome::Permanent {
                    reason: "the level has no integer `available`".into(),
                };
            };
            let body = json!({
                "productType": "PRODUCT",
                "patches": [{
                    "op": "replace",
                    "path": "/attributes/fulfillment_availability",
                    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}]
                }]
            })
            .to_string();
            patch_listing(&self.api, &sku, body, call.timeout).await
        })
    }
}

/// `patchListingsItem` of a seller SKU. `INVALID` arrives inside a 200: the change was
/// refused, a permanent failure with Amazon's issues.
async fn patch_listing(api: &SpApi, sku: &str, body: String, timeout: Duration) -> CallOutcome {
    let url = format!(
        "{}/listings/2021-08-01/items/{}/{}",
        api.endpoint,
        api.seller,
        form_escape(sku)
    );
    let make = |token: &str| {
        api.client
            .patch(&url)
            .query(&[("marketplaceIds", api.marketplace.as_str())])
            .header("x-amz-access-token", token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
    };
    match api.send(make, timeout, 5.0).await {
        Ok(reply) if reply.json()["status"] == "INVALID" => CallOutcome::Permanent {
            reason: format!(
                "listing {sku} refused: {}",
                reply.json()["issues"]
                    .as_array()
                    .map(|issues| issues
                        .iter()
                        .map(|i| format!(
                            "{}: {}",
                            i["code"].as_str().unwrap_or("?"),
                            i["message"].as_str().unwrap_or("")
                        ))
                        .collect::<Vec<_>>()
                        .join("; "))
                    .unwrap_or_default()
            ),
        },
        Ok(_) => CallOutcome::Ok,
        Err(e) => e,
    }
}

/// `amazon_sp.update_listing_price`: patchListingsItem merging the offer's `our_price`
/// (`purchasable_offer` for the connection's marketplace, the Price's currency and the
/// `ALL` audience) with the price as a decimal number; the offer's other terms stay. A
/// repeated patch sets the same price.
pub struct UpdateListingPrice {
    api: SpApi,
    sku_map: BTreeMap<String, String>,
}

impl UpdateListingPrice {
    /// Reads the connection settings (`sku_map`: canonical code = seller SKU pairs).
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<UpdateListingPrice, String> {
        Ok(UpdateListingPrice {
            api: SpApi::new(settings)?,
            sku_map: client::pairs(client::optional(settings, "sku_map")),
        })
    }
}

impl SinkConnector for UpdateListingPrice {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let price = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let sku = match client::field(&price, "sku") {
                Ok(s) => self
                    .sku_map
                    .get(s)
                    .cloned()
                    .unwrap_or_else(|| s.to_string()),
                Err(e) => return e,
            };
            let (Some(amount), Some(currency)) = (
                client::money_text(&price["amount"]),
                price["amount"]["currency"].as_str(),
            ) else {
                return CallOutcome::Permanent {
                    reason: "the price has no money `amount`".into(),
                };
            };
            // The decimal goes in as written (a JSON number), never through a float.
            let offer = format!(
                r#"{{"marketplace_id":{},"currency":{},"audience":"ALL","our_price":[{{"schedule":[{{"value_with_tax":{amount}}}]}}]}}"#,
                Value::from(self.api.marketplace.as_str()),
                Value::from(currency),
            );
            let body = format!(
                r#"{{"productType":"PRODUCT","patches":[{{"op":"merge","path":"/attributes/purchasable_offer","value":[{offer}]}}]}}"#
            );
            patch_listing(&self.api, &sku, body, call.timeout).await
        })
    }
}

/// Registers Amazon SP-API's operations.
pub fn register(registry: &mut crate::api::Registry) {
    registry.sink("amazon_sp", "confirm_shipment", |_, s, _, _| {
        Ok(Box::new(ConfirmShipment::new(s)?))
    });
    registry.sink("amazon_sp", "update_listing_quantity", |_, s, _, _| {
        Ok(Box::new(UpdateListingQuantity::new(s)?))
    });
    registry.sink("amazon_sp", "update_listing_price", |_, s, _, _| {
        Ok(Box::new(UpdateListingPrice::new(s)?))
    });
    registry.pager("amazon_sp", "orders", |_, s, o| {
        Ok(Box::new(OrdersPager::new(s, o)?))
    });
    registry.pager("amazon_sp", "settlements", |_, s, o| {
        Ok(Box::new(crate::amazon_reports::SettlementsPager::new(
            s, o,
        )?))
    });
}
