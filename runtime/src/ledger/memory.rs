//! A journal kept in memory: the same contract as the state store's, for property tests
//! and for checking rules without a database.

use super::book::{Hold, Journal, Movement, Position, Publication, Snapshot};
use crate::state::StateResult;
use std::collections::{BTreeMap, HashMap};

/// Every row a ledger would store, in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryJournal {
    /// Movement id -> (sku, location, time, on-hand delta).
    movements: HashMap<String, (String, String, i64, i64)>,
    positions: BTreeMap<(String, String), Position>,
    holds: BTreeMap<String, Vec<Hold>>,
    publications: BTreeMap<(String, String), Publication>,
    rules: Option<String>,
}

impl Journal for MemoryJournal {
    fn record(&mut self, movement: &Movement, on_hand_delta: i64) -> StateResult<bool> {
        if self.movements.contains_key(&movement.id) {
            return Ok(false);
        }
        self.movements.insert(
            movement.id.clone(),
            (
                movement.sku.clone(),
                movement.location.clone(),
                movement.at,
                on_hand_delta,
            ),
        );
        Ok(true)
    }

    fn on_hand_after(&mut self, sku: &str, location: &str, at: i64) -> StateResult<i64> {
        Ok(self
            .movements
            .values()
            .filter(|(s, l, t, _)| s == sku && l == location && *t > at)
            .map(|(_, _, _, delta)| delta)
            .sum())
    }

    fn save_position(&mut self, sku: &str, location: &str, position: &Position) -> StateResult<()> {
        self.positions
            .insert((sku.to_string(), location.to_string()), position.clone());
        Ok(())
    }

    fn save_holds(&mut self, order: &str, holds: &[Hold]) -> StateResult<()> {
        if holds.is_empty() {
            self.holds.remove(order);
        } else {
            self.holds.insert(order.to_string(), holds.to_vec());
        }
        Ok(())
    }

    fn save_publication(
        &mut self,
        channel: &str,
        sku: &str,
        publication: &Publication,
    ) -> StateResult<()> {
        self.publications
            .insert((channel.to_string(), sku.to_string()), publication.clone());
        Ok(())
    }

    fn save_rules(&mut self, rules: &str) -> StateResult<()> {
        self.rules = Some(rules.to_string());
        Ok(())
    }

    fn load(&mut self) -> StateResult<Snapshot> {
        Ok(Snapshot {
            rules: self.rules.clone(),
            positions: self
                .positions
                .iter()
                .map(|((s, l), p)| (s.clone(), l.clone(), p.clone()))
                .collect(),
            holds: self.holds.values().flatten().cloned().collect(),
            publications: self
                .publications
                .iter()
                .map(|((c, s), p)| (c.clone(), s.clone(), p.clone()))
                .collect(),
        })
    }
}
