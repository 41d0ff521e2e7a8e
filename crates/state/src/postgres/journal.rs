//! An inventory ledger's rows in PostgreSQL: the same tables and the same statements as
//! the SQLite journal, with `ON CONFLICT` for its `INSERT OR IGNORE/REPLACE`.

use super::conn::Conn;
use crate::ledger::{Hold, Journal, Movement, Position, Publication, Snapshot};
use crate::StateResult;

/// One ledger's view of the state database, for one request.
pub struct PgJournal<'a> {
    pub conn: &'a mut Conn,
    pub ledger: &'a str,
}

impl Journal for PgJournal<'_> {
    fn position_row(&mut self, sku: &str, location: &str) -> StateResult<i64> {
        let found = self.conn.query_opt(
            "SELECT id FROM ledger_stock WHERE ledger = $1 AND sku = $2 AND location = $3",
            &[&self.ledger, &sku, &location],
        )?;
        if let Some(row) = found {
            return self.conn.get(&row, 0);
        }
        let row = self.conn.query_one(
            "INSERT INTO ledger_stock (ledger, sku, location) VALUES ($1, $2, $3) RETURNING id",
            &[&self.ledger, &sku, &location],
        )?;
        self.conn.get(&row, 0)
    }

    fn record(&mut self, movement: &Movement, row: i64, on_hand_delta: i64) -> StateResult<bool> {
        let added = self.conn.execute(
            "INSERT INTO ledger_moves (ledger, id, kind, position, at, delta) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (ledger, id) DO NOTHING",
            &[
                &self.ledger,
                &movement.id,
                &movement.kind.as_str(),
                &row,
                &movement.at,
                &on_hand_delta,
            ],
        )?;
        Ok(added == 1)
    }

    fn on_hand_after(&mut self, row: i64, at: i64) -> StateResult<i64> {
        let sum = self.conn.query_one(
            "SELECT COALESCE(SUM(delta), 0)::BIGINT FROM ledger_moves WHERE position = $1 AND at > $2",
            &[&row, &at],
        )?;
        self.conn.get(&sum, 0)
    }

    fn save_position(&mut self, row: i64, position: &Position) -> StateResult<()> {
        let changed = self.conn.execute(
            "UPDATE ledger_stock SET on_hand = $2, reserved = $3, in_transit = $4, \
             count_at = $5, count_id = $6 WHERE id = $1",
            &[
                &row,
                &position.on_hand,
                &position.reserved,
                &position.in_transit,
                &position.count_at,
                &position.count_id,
            ],
        )?;
        if changed == 1 {
            Ok(())
        } else {
            Err(format!("state store: ledger position row {row} is missing"))
        }
    }

    fn save_holds(&mut self, order: &str, holds: &[Hold]) -> StateResult<()> {
        self.conn.execute(
            "DELETE FROM ledger_holds WHERE ledger = $1 AND order_id = $2",
            &[&self.ledger, &order],
        )?;
        if holds.is_empty() {
            return Ok(());
        }
        // One statement for the order's lines; a repeated line keeps its last value, as
        // SQLite's INSERT OR REPLACE does.
        let mut last = std::collections::HashMap::new();
        for hold in holds {
            last.insert((hold.sku.as_str(), hold.location.as_str()), hold);
        }
        let mut kept: Vec<&Hold> = last.into_values().collect();
        kept.sort_by(|a, b| (&a.sku, &a.location).cmp(&(&b.sku, &b.location)));
        let skus: Vec<&str> = kept.iter().map(|h| h.sku.as_str()).collect();
        let locations: Vec<&str> = kept.iter().map(|h| h.location.as_str()).collect();
        let quantities: Vec<i64> = kept.iter().map(|h| h.quantity).collect();
        let channels: Vec<&str> = kept.iter().map(|h| h.channel.as_str()).collect();
        let expiries: Vec<Option<i64>> = kept.iter().map(|h| h.expires_at).collect();
        self.conn.execute(
            "INSERT INTO ledger_holds (ledger, order_id, sku, location, quantity, channel, expires_at) \
             SELECT $1::TEXT, $2::TEXT, * FROM UNNEST($3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::TEXT[], $7::BIGINT[])",
            &[
                &self.ledger,
                &order,
                &skus,
                &locations,
                &quantities,
                &channels,
                &expiries,
            ],
        )?;
        Ok(())
    }

    fn save_publication(
        &mut self,
        channel: &str,
        sku: &str,
        publication: &Publication,
    ) -> StateResult<()> {
        self.conn.execute(
            "INSERT INTO ledger_publications (ledger, channel, sku, ats, published, published_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (ledger, channel, sku) DO UPDATE SET \
             ats = excluded.ats, published = excluded.published, published_at = excluded.published_at",
            &[
                &self.ledger,
                &channel,
                &sku,
                &publication.ats,
                &publication.published,
                &publication.published_at,
            ],
        )?;
        Ok(())
    }

    fn save_rules(&mut self, rules: &str) -> StateResult<()> {
        self.conn.execute(
            "INSERT INTO ledger_rules (ledger, rules) VALUES ($1, $2) \
             ON CONFLICT (ledger) DO UPDATE SET rules = excluded.rules",
            &[&self.ledger, &rules],
        )?;
        Ok(())
    }

    fn load(&mut self) -> StateResult<Snapshot> {
        let rules = self.conn.query_opt(
            "SELECT rules FROM ledger_rules WHERE ledger = $1",
            &[&self.ledger],
        )?;
        let mut snapshot = Snapshot {
            rules: rules.map(|row| self.conn.get(&row, 0)).transpose()?,
            ..Snapshot::default()
        };
        let rows = self.conn.query(
            "SELECT sku, location, on_hand, reserved, in_transit, count_at, count_id, id \
             FROM ledger_stock WHERE ledger = $1",
            &[&self.ledger],
        )?;
        for row in &rows {
            let position = Position {
                on_hand: self.conn.get(row, 2)?,
                reserved: self.conn.get(row, 3)?,
                in_transit: self.conn.get(row, 4)?,
                held: 0,
                count_at: self.conn.get(row, 5)?,
                count_id: self.conn.get(row, 6)?,
                row: Some(self.conn.get(row, 7)?),
            };
            snapshot
                .positions
                .push((self.conn.get(row, 0)?, self.conn.get(row, 1)?, position));
        }
        let rows = self.conn.query(
            "SELECT order_id, sku, location, quantity, channel, expires_at \
             FROM ledger_holds WHERE ledger = $1 ORDER BY order_id COLLATE \"C\", sku COLLATE \"C\", location COLLATE \"C\"",
            &[&self.ledger],
        )?;
        for row in &rows {
            snapshot.holds.push(Hold {
                order: self.conn.get(row, 0)?,
                sku: self.conn.get(row, 1)?,
                location: self.conn.get(row, 2)?,
                quantity: self.conn.get(row, 3)?,
                channel: self.conn.get(row, 4)?,
                expires_at: self.conn.get(row, 5)?,
            });
        }
        let rows = self.conn.query(
            "SELECT channel, sku, ats, published, published_at \
             FROM ledger_publications WHERE ledger = $1",
            &[&self.ledger],
        )?;
        for row in &rows {
            let publication = Publication {
                ats: self.conn.get(row, 2)?,
                published: self.conn.get(row, 3)?,
                published_at: self.conn.get(row, 4)?,
                pending_since: None,
            };
            snapshot.publications.push((
                self.conn.get(row, 0)?,
                self.conn.get(row, 1)?,
                publication,
            ));
        }
        Ok(snapshot)
    }
}
