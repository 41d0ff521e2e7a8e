//! A ledger's rules as the book uses them: location and channel indexes, safety stock.

use omniflow_ir as ir;

/// One channel's rules: its declaration, and its locations as indexes into
/// [`Rules::locations`].
#[derive(Debug, Clone)]
pub struct ChannelRule {
    pub spec: ir::LedgerChannel,
    pub at: Vec<usize>,
}

impl ChannelRule {
    /// Units of `sku` the channel holds back at `location`.
    pub fn safety(&self, sku: &str, location: &str) -> i64 {
        self.spec
            .safety_by_sku
            .get(sku)
            .or_else(|| self.spec.safety_by_location.get(location))
            .copied()
            .unwrap_or(self.spec.safety_stock)
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
                spec: ir::LedgerChannel {
                    share_bp: channel.share_bp.min(10_000),
                    ..channel.clone()
                },
                at: idx,
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
        self.channels.iter().position(|c| c.spec.name == name)
    }
}
