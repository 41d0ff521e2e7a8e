//! The OData read sources: entity sets with `$filter`/`$select`/`$expand`, following the
//! next links, and stock positions read from one.

use super::{error_text, literal, urlencode, Service};
use crate::api::{ConnectorError, Map, Page, PageFuture, Pager};
use crate::client;
use serde_json::{json, Value};
use std::time::Duration;

/// `odata.entities`: reads an entity set (`entity_set`, required) with
/// `$filter`/`$select`/`$expand` and follows
/// `@odata.nextLink` (V4, relative to the service root) or `d.__next` (V2). With
/// `cursor = watermark`, only rows whose `watermark` field (default `modifiedAt`) is
/// later than the stored one are read, oldest first; the dedupe key is the row's key and
/// watermark value. `page_size` asks for pages of that size (`Prefer: odata.maxpagesize`).
pub struct EntitiesPager {
    service: Service,
    entity_set: String,
    filter: Option<String>,
    select: Option<String>,
    expand: Option<String>,
    watermark: Option<String>,
    page_size: Option<u64>,
}

impl EntitiesPager {
    /// Reads the settings and the `entity_set`, `filter`, `select`, `expand`, `cursor`,
    /// `watermark` and `page_size` options.
    pub fn new(settings: &Map, options: &Map) -> Result<EntitiesPager, ConnectorError> {
        let text = |k: &str| options.get(k).and_then(Value::as_str).map(String::from);
        let watermark = match text("cursor").as_deref() {
            Some("watermark") => Some(text("watermark").unwrap_or_else(|| "modifiedAt".into())),
            _ => None,
        };
        Ok(EntitiesPager {
            service: Service::new(settings)?,
            // `check` requires it (E0211); `odata.stock` names `Products` when its source
            // names no set.
            entity_set: text("entity_set").ok_or_else(|| {
                ConnectorError::BadSetting("an odata poll source needs `entity_set`".into())
            })?,
            filter: text("filter"),
            select: text("select"),
            expand: text("expand"),
            watermark,
            page_size: options.get("page_size").and_then(Value::as_u64),
        })
    }

    fn first_url(&self, since: Option<&str>) -> String {
        let mut filters: Vec<String> = self.filter.iter().map(|f| format!("({f})")).collect();
        if let (Some(field), Some(since)) = (&self.watermark, since) {
            let looks_like_time =
                since.len() >= 10 && since.as_bytes()[4] == b'-' && since.as_bytes()[7] == b'-';
            let value = if looks_like_time {
                since.to_string()
            } else {
                literal(since)
            };
            // `ge`: rows stamped in the same instant as the last one are read again and
            // skipped by their dedupe key, rather than missed.
            filters.push(format!("{field} ge {value}"));
        }
        let mut query = Vec::new();
        if !filters.is_empty() {
            query.push(format!("$filter={}", urlencode(&filters.join(" and "))));
        }
        if let Some(select) = &self.select {
            query.push(format!("$select={}", urlencode(select)));
        }
        if let Some(expand) = &self.expand {
            query.push(format!("$expand={}", urlencode(expand)));
        }
        if let Some(field) = &self.watermark {
            query.push(format!("$orderby={}", urlencode(&format!("{field} asc"))));
        }
        if query.is_empty() {
            self.entity_set.clone()
        } else {
            format!("{}?{}", self.entity_set, query.join("&"))
        }
    }
}

impl Pager for EntitiesPager {
    /// The position is the watermark, or `watermark|next link` while a read is paged.
    fn page<'a>(&'a self, position: Option<&'a str>, _first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let (watermark, next) = match position.and_then(|p| p.split_once('|')) {
                Some((w, n)) => (
                    Some(w.to_string()).filter(|w| !w.is_empty()),
                    Some(n.to_string()),
                ),
                None => (position.map(String::from).filter(|w| !w.is_empty()), None),
            };
            let path = next.unwrap_or_else(|| self.first_url(watermark.as_deref()));
            let mut request = self.service.request(reqwest::Method::GET, &path);
            if let Some(size) = self.page_size {
                request = request.header("Prefer", format!("odata.maxpagesize={size}"));
            }
            let reply = client::send(request, Duration::from_secs(60))
                .await
                .map_err(client::reason)?;
            if !reply.ok() {
                return Err(error_text(&reply));
            }
            let body = reply.document()?;
            let rows = super::auth::rows(&body)?;
            let mut newest = watermark.clone();
            let mut items = Vec::with_capacity(rows.len());
            for row in rows {
                let key = match &self.watermark {
                    Some(field) => {
                        let stamp = row[field.as_str()]
                            .as_str()
                            .map(String::from)
                            .unwrap_or_else(|| row[field.as_str()].to_string());
                        if newest.as_deref().is_none_or(|n| stamp.as_str() > n) {
                            newest = Some(stamp.clone());
                        }
                        let id = row
                            .get("ID")
                            .or_else(|| row.get("@odata.id"))
                            .map(|v| v.to_string())
                            .unwrap_or_default();
                        Some(format!("{id}@{stamp}"))
                    }
                    None => None,
                };
                items.push((serde_json::to_vec(&row).unwrap_or_default(), key));
            }
            let next = body["@odata.nextLink"]
                .as_str()
                .or(body["d"]["__next"].as_str())
                .map(String::from);
            // Paging keeps the watermark the read started from; the last page commits the
            // newest value seen.
            let position = match &next {
                Some(n) => Some(format!("{}|{n}", watermark.unwrap_or_default())),
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

/// `odata.stock`: stock positions read from an entity set (`entity_set`, default
/// `Products`), one InventoryPosition per row: the key `ID` is the SKU, `stock` the
/// quantity on hand (and available), `modifiedAt` the time of the count, and the row's
/// `location` (else the connection's `warehouse`, default `WH`) the location. Paging,
/// `$filter` and the watermark (`modifiedAt` unless `cursor = none`) are those of
/// [`EntitiesPager`].
pub struct StockPager {
    rows: EntitiesPager,
    warehouse: String,
}

impl StockPager {
    /// Reads the settings and the source's options.
    pub fn new(settings: &Map, options: &Map) -> Result<StockPager, ConnectorError> {
        let mut options = options.clone();
        options
            .entry("entity_set".into())
            .or_insert_with(|| json!("Products"));
        options
            .entry("cursor".into())
            .or_insert_with(|| json!("watermark"));
        Ok(StockPager {
            rows: EntitiesPager::new(settings, &options)?,
            warehouse: client::optional(settings, "warehouse")
                .unwrap_or("WH")
                .to_string(),
        })
    }

    /// The InventoryPosition of one row; `None` when the row is not a JSON object.
    fn position(&self, row: &[u8]) -> Option<Vec<u8>> {
        let row: Value = serde_json::from_slice(row).ok()?;
        let sku = match &row["ID"] {
            Value::String(s) => Value::String(s.clone()),
            Value::Null => Value::Null,
            other => Value::String(other.to_string()),
        };
        let location = row["location"]
            .as_str()
            .unwrap_or(&self.warehouse)
            .to_string();
        let as_of = row["modifiedAt"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| {
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            });
        let position = json!({
            "sku": sku, "location": location, "on_hand": row["stock"],
            "reserved": 0, "in_transit": 0, "available": row["stock"], "as_of": as_of,
        });
        serde_json::to_vec(&position).ok()
    }
}

impl Pager for StockPager {
    fn page<'a>(&'a self, position: Option<&'a str>, first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let mut page = crate::api::Pager::page(&self.rows, position, first).await?;
            for (payload, _) in &mut page.items {
                if let Some(converted) = self.position(payload) {
                    *payload = converted;
                }
            }
            Ok(page)
        })
    }
}
