//! `tryton.stock_quantities`: product quantities and forecasts in a warehouse.

use super::{Session, Settings};
use crate::api::{ConnectorError, Map, Page, PageFuture, Pager};
use crate::client;
use crate::CallOutcome;
use serde_json::json;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

/// `tryton.stock_quantities`: the quantity and forecast of every goods product in the
/// connection's `warehouse` (a location code, default `WH`), as InventoryPosition
/// documents. A position is emitted when it differs from the last one this process
/// emitted for the product (all of them after a start).
pub struct StockPager {
    session: Session,
    warehouse: String,
    last: RefCell<BTreeMap<String, (i64, i64)>>,
    /// Positions of the page being committed; they become `last` once durable.
    pending: RefCell<BTreeMap<String, (i64, i64)>>,
}

impl StockPager {
    /// The pager of a connection's settings.
    pub fn new(settings: &Map) -> Result<StockPager, ConnectorError> {
        let settings = Settings::parse(settings)?;
        Ok(StockPager {
            session: Session::new(&settings)?,
            warehouse: settings.warehouse,
            last: RefCell::new(BTreeMap::new()),
            pending: RefCell::new(BTreeMap::new()),
        })
    }

    async fn positions(&self) -> Result<Vec<(Vec<u8>, Option<String>)>, CallOutcome> {
        let s = &self.session;
        let timeout = Duration::from_secs(60);
        let warehouse = s
            .find_one(
                "stock.location",
                json!([["code", "=", self.warehouse]]),
                format!("Tryton has no location `{}`", self.warehouse),
                timeout,
            )
            .await?;
        let ids = s
            .search(
                "product.product",
                json!([["type", "=", "goods"], ["code", "!=", null]]),
                None,
                timeout,
            )
            .await?;
        let mut context = s.context.borrow().clone();
        context["locations"] = json!([warehouse]);
        let rows = s
            .raw_model(
                "product.product",
                "read",
                vec![json!(ids), json!(["code", "quantity", "forecast_quantity"])],
                context,
                timeout,
            )
            .await?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let rows = rows.as_array().cloned().ok_or_else(|| {
            client::unreadable(format!(
                "Tryton's product.product read answered {}, not a list",
                client::kind(&rows)
            ))
        })?;
        Ok(rows
            .iter()
            .map(|r| {
                let on_hand = r["quantity"].as_f64().unwrap_or(0.0).round() as i64;
                let forecast = r["forecast_quantity"].as_f64().unwrap_or(0.0).round() as i64;
                let sku = r["code"].as_str().unwrap_or_default();
                let position = json!({
                    "sku": sku, "location": self.warehouse, "on_hand": on_hand,
                    "reserved": (on_hand - forecast).max(0), "in_transit": 0,
                    "available": forecast.max(0), "as_of": now,
                });
                (
                    sku.to_string(),
                    (on_hand, forecast),
                    position.to_string().into_bytes(),
                )
            })
            .filter(|(sku, now, _)| self.last.borrow().get(sku) != Some(now))
            .map(|(sku, now, payload)| {
                self.pending.borrow_mut().insert(sku, now);
                (payload, None)
            })
            .collect())
    }
}

impl Pager for StockPager {
    fn committed(&self, _keys: &[String]) {
        let done = std::mem::take(&mut *self.pending.borrow_mut());
        self.last.borrow_mut().extend(done);
    }

    fn page<'a>(&'a self, _position: Option<&'a str>, _first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let items = self.positions().await.map_err(client::reason)?;
            Ok(Page {
                items,
                more: false,
                position: None,
            })
        })
    }
}
