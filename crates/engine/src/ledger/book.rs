//! The ledger's book: positions per (sku, location), order reservations, and the
//! available-to-sell each channel was last computed at. Pure logic; every change it makes
//! is written through a [`Journal`] in the same step, so the durable copy never lags.
//!
//! On-hand follows one rule that makes delivery order irrelevant: a cycle count at time T
//! replaces on-hand as of T, and on-hand is the latest count plus every delta that
//! happened after it. A delta at or before the latest count is recorded and absorbed.

use super::rules::Rules;
use omniflow_state::StateResult;
use std::collections::HashMap;

pub use omniflow_state::ledger::{
    Hold, Journal, Kind, Movement, Position, Publication, Snapshot, MAX_QUANTITY,
};

/// A movement's or a reservation's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied now; the skus whose stock changed.
    Changed(Vec<String>),
    /// Applied before (same movement id, or the order already holds its reservation).
    Duplicate,
}

/// The in-memory book of one ledger.
pub struct Book {
    pub rules: Rules,
    /// Positions per sku, one per ledger location (in the rules' order).
    positions: HashMap<String, Vec<Position>>,
    holds: HashMap<String, Vec<Hold>>,
    /// Per channel (rules' order), per sku.
    publications: Vec<HashMap<String, Publication>>,
}

fn journal_err(err: String) -> Refusal {
    Refusal::Store(err)
}

/// Why an operation did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The input breaks a rule; retrying cannot help.
    Invalid(String),
    /// The state store failed; the operation may be retried.
    Store(String),
}

impl Book {
    /// An empty book.
    pub fn new(rules: Rules) -> Book {
        let channels = rules.channels.len();
        Book {
            rules,
            positions: HashMap::new(),
            holds: HashMap::new(),
            publications: vec![HashMap::new(); channels],
        }
    }

    /// Replaces the book's contents with what the journal holds.
    pub fn load(&mut self, journal: &mut dyn Journal) -> StateResult<()> {
        let snapshot = journal.load()?;
        self.positions.clear();
        self.holds.clear();
        for map in &mut self.publications {
            map.clear();
        }
        for (sku, location, position) in snapshot.positions {
            if let Some(idx) = self.rules.location(&location) {
                self.row_mut(&sku)[idx] = Position {
                    held: 0,
                    ..position
                };
            }
        }
        for hold in snapshot.holds {
            if let Some(idx) = self.rules.location(&hold.location) {
                self.row_mut(&hold.sku)[idx].held += hold.quantity;
            }
            self.holds.entry(hold.order.clone()).or_default().push(hold);
        }
        for (channel, sku, publication) in snapshot.publications {
            if let Some(idx) = self.rules.channel(&channel) {
                self.publications[idx].insert(sku, publication);
            }
        }
        // What each channel is offered now, from the positions and holds just loaded.
        let now = super::now_ms();
        let skus: Vec<String> = self.positions.keys().cloned().collect();
        for sku in skus {
            self.refresh(&sku, now);
        }
        Ok(())
    }

    fn row_mut(&mut self, sku: &str) -> &mut Vec<Position> {
        if !self.positions.contains_key(sku) {
            self.positions.insert(
                sku.to_string(),
                vec![Position::default(); self.rules.locations.len()],
            );
        }
        self.positions
            .get_mut(sku)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// The journal row of a position, created on first use.
    fn row_id(
        &mut self,
        journal: &mut dyn Journal,
        sku: &str,
        location: usize,
    ) -> Result<i64, Refusal> {
        if let Some(row) = self.row_mut(sku)[location].row {
            return Ok(row);
        }
        let name = self.rules.locations[location].clone();
        let row = journal.position_row(sku, &name).map_err(journal_err)?;
        self.row_mut(sku)[location].row = Some(row);
        Ok(row)
    }

    /// The position of (sku, location index), if any movement touched it.
    pub fn position(&self, sku: &str, location: usize) -> Option<&Position> {
        self.positions.get(sku).and_then(|row| row.get(location))
    }

    /// Every sku the book holds a position for.
    pub fn skus(&self) -> impl Iterator<Item = &str> {
        self.positions.keys().map(String::as_str)
    }

    /// A channel's publication state for a sku.
    pub fn publication(&self, channel: usize, sku: &str) -> Option<&Publication> {
        self.publications.get(channel)?.get(sku)
    }

    /// Skus whose current value the channel has not been told.
    pub fn pending(&self, channel: usize) -> Vec<(String, i64)> {
        let mut out: Vec<(String, i64)> = self.publications[channel]
            .iter()
            .filter(|(_, p)| p.is_pending())
            .map(|(sku, p)| (sku.clone(), p.ats))
            .collect();
        out.sort();
        out
    }

    /// The holds of an order.
    pub fn holds(&self, order: &str) -> &[Hold] {
        self.holds.get(order).map(Vec::as_slice).unwrap_or(&[])
    }

    fn location_index(&self, movement: &Movement, name: &str) -> Result<usize, Refusal> {
        self.rules.location(name).ok_or_else(|| {
            Refusal::Invalid(format!(
                "movement {}: location {name} is not kept by ledger `{}` (it keeps {})",
                movement.id,
                self.rules.name,
                self.rules.locations.join(", ")
            ))
        })
    }

    /// Applies one movement once.
    pub fn apply(
        &mut self,
        journal: &mut dyn Journal,
        movement: &Movement,
    ) -> Result<Applied, Refusal> {
        let at = self.location_index(movement, &movement.location)?;
        let counterpart = match (&movement.counterpart, movement.kind) {
            (Some(name), Kind::TransferOut) if !name.is_empty() => {
                Some(self.location_index(movement, name)?)
            }
            _ => None,
        };
        if movement.sku.trim().is_empty() {
            return Err(Refusal::Invalid(format!(
                "movement {}: no sku",
                movement.id
            )));
        }
        if movement.quantity.abs() > MAX_QUANTITY {
            return Err(Refusal::Invalid(format!(
                "movement {}: {} units is beyond the {MAX_QUANTITY} a movement may carry",
                movement.id, movement.quantity
            )));
        }
        let signed_ok = movement.kind == Kind::Adjustment || movement.quantity >= 0;
        if !signed_ok {
            return Err(Refusal::Invalid(format!(
                "movement {}: a {} of {} units; quantities are positive except for adjustments",
                movement.id,
                movement.kind.as_str(),
                movement.quantity
            )));
        }
        let delta = movement.kind.on_hand_delta(movement.quantity);
        let sku = movement.sku.as_str();
        let row = self.row_id(journal, sku, at)?;
        if !journal.record(movement, row, delta).map_err(journal_err)? {
            return Ok(Applied::Duplicate);
        }
        // Taken out and put back (no copy); a journal failure reloads the whole book.
        let mut position = std::mem::take(&mut self.row_mut(sku)[at]);
        match movement.kind {
            Kind::CycleCount => {
                let newer = match position.count_at {
                    None => true,
                    Some(t) => {
                        movement.at > t || (movement.at == t && movement.id > position.count_id)
                    }
                };
                if newer {
                    let after = journal
                        .on_hand_after(row, movement.at)
                        .map_err(journal_err)?;
                    position.on_hand = movement.quantity + after;
                    position.count_at = Some(movement.at);
                    position.count_id = movement.id.clone();
                }
            }
            Kind::Reservation => position.reserved += movement.quantity,
            Kind::Release => position.reserved -= movement.quantity,
            _ => {
                if position.count_at.is_none_or(|t| movement.at > t) {
                    position.on_hand += delta;
                }
                if movement.kind == Kind::TransferIn {
                    position.in_transit -= movement.quantity;
                }
            }
        }
        if matches!(movement.kind, Kind::Shipment | Kind::Sale) {
            if let Some(order) = &movement.reference {
                let consumed = self.consume_hold(journal, order, sku, at, movement.quantity);
                position.held -= consumed.as_ref().copied().unwrap_or(0);
                if let Err(err) = consumed {
                    self.row_mut(sku)[at] = position;
                    return Err(err);
                }
            }
        }
        journal.save_position(row, &position).map_err(journal_err)?;
        self.row_mut(sku)[at] = position;
        if let Some(to) = counterpart {
            let target_row = self.row_id(journal, sku, to)?;
            let target = &mut self.row_mut(sku)[to];
            target.in_transit += movement.quantity;
            let target = target.clone();
            journal
                .save_position(target_row, &target)
                .map_err(journal_err)?;
        }
        Ok(Applied::Changed(vec![movement.sku.clone()]))
    }

    /// Takes up to `quantity` from an order's holds of a sku (a shipment or sale of
    /// reserved units): at the movement's location first, then at the others. Returns what
    /// it took at `location`; what it took elsewhere is released there directly.
    fn consume_hold(
        &mut self,
        journal: &mut dyn Journal,
        order: &str,
        sku: &str,
        location: usize,
        quantity: i64,
    ) -> Result<i64, Refusal> {
        let here = self.rules.locations[location].clone();
        let Some(holds) = self.holds.get_mut(order) else {
            return Ok(0);
        };
        let mut order_of: Vec<usize> = (0..holds.len())
            .filter(|&i| holds[i].sku == sku && !holds[i].location.is_empty())
            .collect();
        order_of.sort_by_key(|&i| holds[i].location != here);
        let (mut taken_here, mut taken_elsewhere, mut left) = (0, Vec::new(), quantity);
        for i in order_of {
            let take = holds[i].quantity.min(left);
            if take == 0 {
                break;
            }
            holds[i].quantity -= take;
            left -= take;
            if holds[i].location == here {
                taken_here += take;
            } else {
                taken_elsewhere.push((holds[i].location.clone(), take));
            }
        }
        if left == quantity {
            return Ok(0);
        }
        holds.retain(|h| h.quantity > 0);
        let remaining = holds.clone();
        if remaining.is_empty() {
            self.holds.remove(order);
        }
        for (name, take) in taken_elsewhere {
            if let Some(l) = self.rules.location(&name) {
                self.row_mut(sku)[l].held -= take;
            }
        }
        journal.save_holds(order, &remaining).map_err(journal_err)?;
        Ok(taken_here)
    }

    /// Units of a sku a channel may take now at one of its locations: what is free there
    /// less the channel's safety stock, never below 0.
    fn sellable_at(&self, channel: usize, row: Option<&Vec<Position>>, sku: &str, l: usize) -> i64 {
        let rule = &self.rules.channels[channel];
        let free = row.and_then(|r| r.get(l)).map_or(0, Position::free);
        (free - rule.safety(sku, &self.rules.locations[l])).max(0)
    }

    /// Units of a sku a channel may take now at each of its locations.
    pub fn sellable(&self, channel: usize, sku: &str) -> Vec<(usize, i64)> {
        let row = self.positions.get(sku);
        self.rules.channels[channel]
            .at
            .iter()
            .map(|&l| (l, self.sellable_at(channel, row, sku, l)))
            .collect()
    }

    /// Reserves an order's lines for a channel: all of them or none, unless `backorder`,
    /// which holds what is there and records the rest as backordered.
    pub fn reserve(
        &mut self,
        journal: &mut dyn Journal,
        order: &str,
        channel: usize,
        lines: &[(String, i64)],
        backorder: bool,
        now: i64,
    ) -> Result<Applied, Refusal> {
        if self.holds.contains_key(order) {
            return Ok(Applied::Duplicate);
        }
        let mut wanted: Vec<(String, i64)> = Vec::new();
        for (sku, quantity) in lines {
            if *quantity <= 0 || *quantity > MAX_QUANTITY {
                return Err(Refusal::Invalid(format!(
                    "order {order}: line for {sku} asks for {quantity} units"
                )));
            }
            match wanted.iter_mut().find(|(s, _)| s == sku) {
                Some(entry) => entry.1 += quantity,
                None => wanted.push((sku.clone(), *quantity)),
            }
        }
        let rule = &self.rules.channels[channel];
        let window = self.rules.reservation_window_ms;
        let expires_at = (window > 0).then_some(now + window);
        let mut holds = Vec::new();
        let mut short = Vec::new();
        for (sku, quantity) in &wanted {
            let sellable = self.sellable(channel, sku);
            let total: i64 = sellable.iter().map(|(_, n)| n).sum();
            if total < *quantity {
                short.push(format!(
                    "{sku} needs {quantity}, {total} available to channel {}",
                    rule.spec.name
                ));
                if !backorder {
                    continue;
                }
            }
            let mut left = *quantity;
            for (l, n) in sellable {
                let take = n.min(left);
                if take > 0 {
                    holds.push(Hold {
                        order: order.to_string(),
                        sku: sku.clone(),
                        location: self.rules.locations[l].clone(),
                        quantity: take,
                        channel: rule.spec.name.clone(),
                        expires_at,
                    });
                    left -= take;
                }
            }
            if left > 0 {
                holds.push(Hold {
                    order: order.to_string(),
                    sku: sku.clone(),
                    location: String::new(),
                    quantity: left,
                    channel: rule.spec.name.clone(),
                    expires_at,
                });
            }
        }
        if !short.is_empty() && !backorder {
            return Err(Refusal::Invalid(format!(
                "order {order} cannot be reserved: {}",
                short.join("; ")
            )));
        }
        journal.save_holds(order, &holds).map_err(journal_err)?;
        for hold in &holds {
            if let Some(l) = self.rules.location(&hold.location) {
                self.row_mut(&hold.sku)[l].held += hold.quantity;
            }
        }
        let skus = wanted.into_iter().map(|(sku, _)| sku).collect();
        self.holds.insert(order.to_string(), holds);
        Ok(Applied::Changed(skus))
    }

    /// Keeps an order's holds past their window. `false` when the order holds nothing.
    pub fn confirm(&mut self, journal: &mut dyn Journal, order: &str) -> Result<bool, Refusal> {
        let Some(holds) = self.holds.get_mut(order) else {
            return Ok(false);
        };
        for hold in holds.iter_mut() {
            hold.expires_at = None;
        }
        journal.save_holds(order, holds).map_err(journal_err)?;
        Ok(true)
    }

    /// Drops an order's holds; returns the skus they held.
    pub fn release(
        &mut self,
        journal: &mut dyn Journal,
        order: &str,
    ) -> Result<Vec<String>, Refusal> {
        let Some(holds) = self.holds.remove(order) else {
            return Ok(Vec::new());
        };
        journal.save_holds(order, &[]).map_err(journal_err)?;
        let mut skus: Vec<String> = Vec::new();
        for hold in holds {
            if let Some(l) = self.rules.location(&hold.location) {
                self.row_mut(&hold.sku)[l].held -= hold.quantity;
            }
            if !skus.contains(&hold.sku) {
                skus.push(hold.sku);
            }
        }
        Ok(skus)
    }

    /// True when a hold's window has passed at `now` (there is something to expire).
    pub fn any_expired(&self, now: i64) -> bool {
        self.holds
            .values()
            .flatten()
            .any(|h| h.expires_at.is_some_and(|at| at <= now))
    }

    /// Releases every order whose window has passed; returns the orders and the skus.
    pub fn expire(
        &mut self,
        journal: &mut dyn Journal,
        now: i64,
    ) -> Result<(Vec<String>, Vec<String>), Refusal> {
        let mut orders: Vec<String> = self
            .holds
            .iter()
            .filter(|(_, holds)| {
                holds
                    .iter()
                    .any(|h| h.expires_at.is_some_and(|at| at <= now))
            })
            .map(|(order, _)| order.clone())
            .collect();
        orders.sort();
        let mut skus = Vec::new();
        for order in &orders {
            for sku in self.release(journal, order)? {
                if !skus.contains(&sku) {
                    skus.push(sku);
                }
            }
        }
        Ok((orders, skus))
    }

    /// Recomputes every channel's available-to-sell of a sku; returns the channels whose
    /// value changed, with the new value.
    /// Not stored: what a channel is offered follows from the stored positions and holds;
    /// only what it was told is written (see [`Book::published`]).
    pub fn refresh(&mut self, sku: &str, now: i64) -> Vec<(usize, i64)> {
        let mut changed = Vec::new();
        for channel in 0..self.rules.channels.len() {
            let ats = self.ats(channel, sku);
            let known = self.publications[channel].get(sku).map(|p| p.ats);
            if known.unwrap_or(0) == ats {
                continue;
            }
            let publication = self.publications[channel]
                .entry(sku.to_string())
                .or_default();
            publication.ats = ats;
            publication.pending_since = match (publication.is_pending(), publication.pending_since)
            {
                (false, _) => None,
                (true, Some(since)) => Some(since),
                (true, None) => Some(now),
            };
            changed.push((channel, ats));
        }
        changed
    }

    /// Recomputes available-to-sell for the skus an operation changed: (sku, channel, new
    /// value) for every channel whose value moved.
    pub fn refresh_changed(&mut self, applied: &Applied, now: i64) -> Vec<(String, usize, i64)> {
        let mut changed = Vec::new();
        if let Applied::Changed(skus) = applied {
            for sku in skus {
                for (channel, ats) in self.refresh(sku, now) {
                    changed.push((sku.clone(), channel, ats));
                }
            }
        }
        changed
    }

    /// Records that a channel was told `value` for a sku; returns how long it waited
    /// (milliseconds) when that was the current value.
    pub fn published(
        &mut self,
        journal: &mut dyn Journal,
        channel: usize,
        sku: &str,
        value: i64,
        now: i64,
    ) -> StateResult<Option<i64>> {
        let publication = self.publications[channel]
            .entry(sku.to_string())
            .or_default();
        publication.published = Some(value);
        publication.published_at = Some(now);
        let waited = publication.pending_since.map(|since| now - since);
        publication.pending_since = if publication.is_pending() {
            Some(publication.pending_since.unwrap_or(now))
        } else {
            None
        };
        journal.save_publication(&self.rules.channels[channel].spec.name, sku, publication)?;
        Ok(if publication.is_pending() {
            None
        } else {
            waited
        })
    }

    /// A channel's available-to-sell of a sku under the rules: per location, the
    /// channel's share of what is free beyond its safety stock (rounded down), summed,
    /// capped, and 0 below the minimum to publish.
    pub fn ats(&self, channel: usize, sku: &str) -> i64 {
        let rule = &self.rules.channels[channel];
        let row = self.positions.get(sku);
        let total: i64 = rule
            .at
            .iter()
            .map(|&l| {
                self.sellable_at(channel, row, sku, l) * i64::from(rule.spec.share_bp) / 10_000
            })
            .sum();
        let capped = rule.spec.cap.map_or(total, |cap| total.min(cap));
        if capped < rule.spec.min_publish {
            0
        } else {
            capped.max(0)
        }
    }
}
