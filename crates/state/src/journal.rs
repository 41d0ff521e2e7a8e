//! An inventory ledger's rows in SQLite: movements (the de-duplication record and the
//! delta log cycle counts are replayed over, keyed by the integer row of their position),
//! positions, order holds and publications.

use super::StateResult;
use crate::error::err;
use crate::ledger::{Hold, Journal, Movement, Position, Publication, Snapshot};
use rusqlite::{params, CachedStatement, Connection, OptionalExtension};

/// One ledger's view of the state database, for one request. The statements of the
/// per-movement path are looked up once per request.
pub struct SqlJournal<'a> {
    pub conn: &'a Connection,
    pub ledger: &'a str,
    pub record: Option<CachedStatement<'a>>,
    pub update: Option<CachedStatement<'a>>,
}

const RECORD: &str = "INSERT OR IGNORE INTO ledger_moves (ledger, id, kind, position, at, delta) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const UPDATE: &str = "UPDATE ledger_stock SET on_hand = ?2, reserved = ?3, in_transit = ?4, \
     count_at = ?5, count_id = ?6 WHERE id = ?1";

impl Journal for SqlJournal<'_> {
    fn position_row(&mut self, sku: &str, location: &str) -> StateResult<i64> {
        let found: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT id FROM ledger_stock WHERE ledger = ?1 AND sku = ?2 AND location = ?3",
            )
            .map_err(err)?
            .query_row(params![self.ledger, sku, location], |row| row.get(0))
            .optional()
            .map_err(err)?;
        if let Some(id) = found {
            return Ok(id);
        }
        self.conn
            .prepare_cached("INSERT INTO ledger_stock (ledger, sku, location) VALUES (?1, ?2, ?3)")
            .map_err(err)?
            .execute(params![self.ledger, sku, location])
            .map_err(err)?;
        Ok(self.conn.last_insert_rowid())
    }

    fn record(&mut self, movement: &Movement, row: i64, on_hand_delta: i64) -> StateResult<bool> {
        if self.record.is_none() {
            self.record = Some(self.conn.prepare_cached(RECORD).map_err(err)?);
        }
        let Some(insert) = self.record.as_mut() else {
            unreachable!("prepared above")
        };
        let added = insert
            .execute(params![
                self.ledger,
                movement.id,
                movement.kind.as_str(),
                row,
                movement.at,
                on_hand_delta
            ])
            .map_err(err)?;
        Ok(added == 1)
    }

    fn on_hand_after(&mut self, row: i64, at: i64) -> StateResult<i64> {
        let mut sum = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(SUM(delta), 0) FROM ledger_moves WHERE position = ?1 AND at > ?2",
            )
            .map_err(err)?;
        sum.query_row(params![row, at], |r| r.get(0)).map_err(err)
    }

    fn save_position(&mut self, row: i64, position: &Position) -> StateResult<()> {
        if self.update.is_none() {
            self.update = Some(self.conn.prepare_cached(UPDATE).map_err(err)?);
        }
        let Some(update) = self.update.as_mut() else {
            unreachable!("prepared above")
        };
        let changed = update
            .execute(params![
                row,
                position.on_hand,
                position.reserved,
                position.in_transit,
                position.count_at,
                position.count_id
            ])
            .map_err(err)?;
        if changed == 1 {
            Ok(())
        } else {
            Err(format!("state store: ledger position row {row} is missing"))
        }
    }

    fn save_holds(&mut self, order: &str, holds: &[Hold]) -> StateResult<()> {
        self.conn
            .prepare_cached("DELETE FROM ledger_holds WHERE ledger = ?1 AND order_id = ?2")
            .map_err(err)?
            .execute(params![self.ledger, order])
            .map_err(err)?;
        let mut insert = self
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO ledger_holds \
                 (ledger, order_id, sku, location, quantity, channel, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(err)?;
        for hold in holds {
            insert
                .execute(params![
                    self.ledger,
                    order,
                    hold.sku,
                    hold.location,
                    hold.quantity,
                    hold.channel,
                    hold.expires_at
                ])
                .map_err(err)?;
        }
        Ok(())
    }

    fn save_publication(
        &mut self,
        channel: &str,
        sku: &str,
        publication: &Publication,
    ) -> StateResult<()> {
        let mut upsert = self
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO ledger_publications \
                 (ledger, channel, sku, ats, published, published_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(err)?;
        upsert
            .execute(params![
                self.ledger,
                channel,
                sku,
                publication.ats,
                publication.published,
                publication.published_at
            ])
            .map_err(err)?;
        Ok(())
    }

    fn save_rules(&mut self, rules: &str) -> StateResult<()> {
        self.conn
            .prepare_cached("INSERT INTO ledger_rules (ledger, rules) VALUES (?1, ?2) ON CONFLICT (ledger) DO UPDATE SET rules = excluded.rules")
            .map_err(err)?
            .execute(params![self.ledger, rules])
            .map_err(err)?;
        Ok(())
    }

    fn load(&mut self) -> StateResult<Snapshot> {
        let mut snapshot = Snapshot {
            rules: self
                .conn
                .prepare("SELECT rules FROM ledger_rules WHERE ledger = ?1")
                .map_err(err)?
                .query_row(params![self.ledger], |row| row.get(0))
                .optional()
                .map_err(err)?,
            ..Snapshot::default()
        };
        let mut positions = self
            .conn
            .prepare(
                "SELECT sku, location, on_hand, reserved, in_transit, count_at, count_id, id \
                 FROM ledger_stock WHERE ledger = ?1",
            )
            .map_err(err)?;
        let rows = positions
            .query_map(params![self.ledger], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    Position {
                        on_hand: row.get(2)?,
                        reserved: row.get(3)?,
                        in_transit: row.get(4)?,
                        held: 0,
                        count_at: row.get(5)?,
                        count_id: row.get(6)?,
                        row: Some(row.get(7)?),
                    },
                ))
            })
            .map_err(err)?;
        for row in rows {
            snapshot.positions.push(row.map_err(err)?);
        }
        let mut holds = self
            .conn
            .prepare(
                "SELECT order_id, sku, location, quantity, channel, expires_at \
                 FROM ledger_holds WHERE ledger = ?1 ORDER BY order_id, sku, location",
            )
            .map_err(err)?;
        let rows = holds
            .query_map(params![self.ledger], |row| {
                Ok(Hold {
                    order: row.get(0)?,
                    sku: row.get(1)?,
                    location: row.get(2)?,
                    quantity: row.get(3)?,
                    channel: row.get(4)?,
                    expires_at: row.get(5)?,
                })
            })
            .map_err(err)?;
        for row in rows {
            snapshot.holds.push(row.map_err(err)?);
        }
        let mut publications = self
            .conn
            .prepare(
                "SELECT channel, sku, ats, published, published_at \
                 FROM ledger_publications WHERE ledger = ?1",
            )
            .map_err(err)?;
        let rows = publications
            .query_map(params![self.ledger], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    Publication {
                        ats: row.get(2)?,
                        published: row.get(3)?,
                        published_at: row.get(4)?,
                        pending_since: None,
                    },
                ))
            })
            .map_err(err)?;
        for row in rows {
            snapshot.publications.push(row.map_err(err)?);
        }
        Ok(snapshot)
    }
}
