//! A journal kept in memory: the same contract as the state store's, for property tests
//! and for checking rules without a database.

use super::book::{Hold, Journal, Movement, Position, Publication, Snapshot};
use omniflow_state::StateResult;
use std::collections::{BTreeMap, HashMap};

/// Every row a ledger would store, in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryJournal {
    /// Movement id -> (position row, time, on-hand delta).
    movements: HashMap<String, (i64, i64, i64)>,
    /// (sku, location) -> row.
    rows: BTreeMap<(String, String), i64>,
    positions: BTreeMap<i64, Position>,
    holds: BTreeMap<String, Vec<Hold>>,
    publications: BTreeMap<(String, String), Publication>,
    rules: Option<String>,
}

impl Journal for MemoryJournal {
    fn position_row(&mut self, sku: &str, location: &str) -> StateResult<i64> {
        let next = self.rows.len() as i64 + 1;
        Ok(*self
            .rows
            .entry((sku.to_string(), location.to_string()))
            .or_insert(next))
    }

    fn record(&mut self, movement: &Movement, row: i64, on_hand_delta: i64) -> StateResult<bool> {
        if self.movements.contains_key(&movement.id) {
            return Ok(false);
        }
        self.movements
            .insert(movement.id.clone(), (row, movement.at, on_hand_delta));
        Ok(true)
    }

    fn on_hand_after(&mut self, row: i64, at: i64) -> StateResult<i64> {
        Ok(self
            .movements
            .values()
            .filter(|(r, t, _)| *r == row && *t > at)
            .map(|(_, _, delta)| delta)
            .sum())
    }

    fn save_position(&mut self, row: i64, position: &Position) -> StateResult<()> {
        self.positions.insert(row, position.clone());
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
                .rows
                .iter()
                .filter_map(|((s, l), row)| {
                    let p = self.positions.get(row)?;
                    Some((
                        s.clone(),
                        l.clone(),
                        Position {
                            row: Some(*row),
                            ..p.clone()
                        },
                    ))
                })
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
