//! ShipBob's read sources: inventory rows per fulfillment centre and orders whose tracking
//! is not yet uploaded. Every poll starts from the first page; while paging, the position
//! is the next page's URL, and the last page stores an empty position.

use super::auth::request;
use super::classify::error_text;
use super::Settings;
use crate::api::{ConnectorError, Map, Page, PageFuture, Pager};
use crate::client::{self, Reply};

/// What the ShipBob read sources share: where, who, and the page size.
pub struct Listing {
    client: reqwest::Client,
    settings: Settings,
    page_size: u64,
}

impl Listing {
    /// The listing of a connection, with the source's `page_size` (at most 250).
    pub fn new(settings: &Settings, options: &Map) -> Result<Listing, ConnectorError> {
        Ok(Listing {
            client: client::build()?,
            settings: settings.clone(),
            page_size: client::page_size(options, 250, 250),
        })
    }

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
        let get = request(&self.client, &self.settings, reqwest::Method::GET, &url);
        let reply = client::send(get, std::time::Duration::from_secs(30))
            .await
            .map_err(client::reason)?;
        if reply.ok() {
            Ok(reply)
        } else {
            Err(error_text(&reply))
        }
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

impl Pager for InventoryPager {
    fn page<'a>(&'a self, position: Option<&'a str>, first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let start = format!(
                "{}/inventory-level/locations?PageSize={}",
                self.0.settings.base, self.0.page_size
            );
            let reply = self.0.fetch_page(position, first, start).await?;
            let body = reply.document()?;
            let items = client::list_at(&body, &["items"], false)?
                .iter()
                .map(|r| (serde_json::to_vec(r).unwrap_or_default(), None))
                .collect();
            let next = body["next"].as_str().map(String::from);
            Ok(Page {
                items,
                more: next.is_some(),
                position: Some(next.unwrap_or_default()),
            })
        })
    }
}

impl Pager for ShipmentsPager {
    fn page<'a>(&'a self, position: Option<&'a str>, first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let start = format!(
                "{}/order?HasTracking=true&IsTrackingUploaded=false&Page=1&Limit={}",
                self.0.settings.base, self.0.page_size
            );
            let reply = self.0.fetch_page(position, first, start).await?;
            let orders = client::list_at(&reply.document()?, &[], false)?;
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
            Ok(Page {
                items,
                more: next.is_some(),
                position: Some(next.unwrap_or_default()),
            })
        })
    }
}
