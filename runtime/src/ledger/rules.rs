//! A ledger's rules as the book uses them: location and channel indexes, safety stock.

use omniflow_compiler::ir;
use std::collections::BTreeMap;

/// One channel's rules, locations as indexes into [`Rules::locations`].
#[derive(Debug, Clone)]
pub struct ChannelRule {
    pub name: String,
    pub locations: Vec<usize>,
    pub share_bp: u32,
    pub cap: Option<i64>,
    pub min_publish: i64,
    pub safety_stock: i64,
    pub safety_by_location: BTreeMap<String, i64>,
    pub safety_by_sku: BTreeMap<String, i64>,
}

impl ChannelRule {
    /// Units of `sku` the channel holds back at `location`.
    pub fn safety(&self, sku: &str, location: &str) -> i64 {
        self.safety_by_sku
            .get(sku)
            .or_else(|| self.safety_by_location.get(location))
            .copied()
            .unwrap_or(self.safety_stock)
    }
}

/// A ledger's rules.
#[derive(Debug, Clone)]
pub struct Rules {
    pub name: String,
    pub locations: Vec<String>,
    pub reservation_window_ms: i64,
    pub channels: Vec<ChannelRule>,
}

impl Rules {
    /// The rules of a compiled ledger; refuses a channel location the ledger does not keep
    /// (the compiler reports it first).
    pub fn new(ledger: &ir::Ledger) -> Result<Rules, String> {
        let locations = ledger.locations.clone();
        let mut channels = Vec::new();
        for channel in &ledger.channels {
            let mut idx = Vec::new();
            for name in &channel.locations {
                let found = locations.iter().position(|l| l == name).ok_or_else(|| {
                    format!(
                        "ledger `{}`: channel `{}` names location {name}, which the ledger does not keep",
                        ledger.name, channel.name
                    )
                })?;
                idx.push(found);
            }
            channels.push(ChannelRule {
                name: channel.name.clone(),
                locations: idx,
                share_bp: channel.share_bp.min(10_000),
                cap: channel.cap,
                min_publish: channel.min_publish,
                safety_stock: channel.safety_stock,
                safety_by_location: channel.safety_by_location.clone(),
                safety_by_sku: channel.safety_by_sku.clone(),
            });
        }
        Ok(Rules {
            name: ledger.name.clone(),
            locations,
            reservation_window_ms: ledger.reservation_window_ms as i64,
            channels,
        })
    }

    /// The index of a location.
    pub fn location(&self, name: &str) -> Option<usize> {
        self.locations.iter().position(|l| l == name)
    }

    /// The index of a channel.
    pub fn channel(&self, name: &str) -> Option<usize> {
        self.channels.iter().position(|c| c.name == name)
    }
}
