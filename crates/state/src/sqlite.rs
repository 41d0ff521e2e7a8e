//! The embedded default backend: one SQLite file in WAL mode, zero setup.

use super::error::StateError;
use super::{check, Backend, DeadLetter, Origin, OutcomeStatus, StateResult, Stored};
use crate::error::err;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// SQLite state in one file.
pub struct SqliteBackend {
    conn: Connection,
    /// Batches only read: they start as deferred transactions, which never wait for or
    /// hold up a running runtime's writes.
    reading: bool,
    /// Checkpointed and marked stopped (or never marked in use).
    closed: bool,
}

impl Drop for SqliteBackend {
    fn drop(&mut self) {
        if !self.closed {
            if let Err(error) = self.finish() {
                tracing::warn!(%error, "state not marked stopped cleanly");
            }
        }
    }
}

/// `wal_checkpoint(TRUNCATE)`: true when every frame reached the file and the log is
/// empty (false when a reader kept it).
fn checkpoint(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|busy| busy == 0)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    flow TEXT NOT NULL,
    source TEXT NOT NULL,
    payload BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    accepted_at INTEGER
);
CREATE INDEX IF NOT EXISTS inbox_by_flow ON inbox (flow, id);
CREATE TABLE IF NOT EXISTS cursors (
    flow TEXT NOT NULL, source TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (flow, source, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outcomes (
    sink TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (sink, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    flow TEXT NOT NULL, source TEXT NOT NULL, node TEXT NOT NULL, sink TEXT NOT NULL, key TEXT NOT NULL,
    correlation_id TEXT NOT NULL, message TEXT NOT NULL, payload TEXT NOT NULL,
    error TEXT NOT NULL, attempts TEXT NOT NULL, created_at INTEGER NOT NULL, replayed_at INTEGER,
    accepted_at INTEGER, discarded_at INTEGER
);
CREATE TABLE IF NOT EXISTS ledger_stock (
    id INTEGER PRIMARY KEY,
    ledger TEXT NOT NULL, sku TEXT NOT NULL, location TEXT NOT NULL,
    on_hand INTEGER NOT NULL DEFAULT 0, reserved INTEGER NOT NULL DEFAULT 0,
    in_transit INTEGER NOT NULL DEFAULT 0, count_at INTEGER, count_id TEXT NOT NULL DEFAULT '',
    UNIQUE (ledger, sku, location)
);
CREATE TABLE IF NOT EXISTS ledger_moves (
    ledger TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, position INTEGER NOT NULL,
    at INTEGER NOT NULL, delta INTEGER NOT NULL,
    PRIMARY KEY (ledger, id)
) WITHOUT ROWID;
-- By time first: movements arrive roughly in time order, so new entries land at the end
-- of the index (few pages per commit); a cycle count reads the movements after its time.
CREATE INDEX IF NOT EXISTS ledger_moves_by_time ON ledger_moves (at, position, delta);
CREATE TABLE IF NOT EXISTS ledger_holds (
    ledger TEXT NOT NULL, order_id TEXT NOT NULL, sku TEXT NOT NULL, location TEXT NOT NULL,
    quantity INTEGER NOT NULL, channel TEXT NOT NULL, expires_at INTEGER,
    PRIMARY KEY (ledger, order_id, sku, location)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_rules (
    ledger TEXT NOT NULL PRIMARY KEY, rules TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_publications (
    ledger TEXT NOT NULL, channel TEXT NOT NULL, sku TEXT NOT NULL,
    ats INTEGER NOT NULL, published INTEGER, published_at INTEGER,
    PRIMARY KEY (ledger, channel, sku)
) WITHOUT ROWID;
-- Lineage: events by message (correlation id), and the terms they are found by. Both in
-- insertion order (rowid), which is time order, so retention removes the oldest rows first.
CREATE TABLE IF NOT EXISTS lineage (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL, correlation TEXT NOT NULL, flow TEXT NOT NULL, step TEXT NOT NULL,
    node TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lineage_by_correlation ON lineage (correlation);
CREATE TABLE IF NOT EXISTS lineage_terms (
    id INTEGER PRIMARY KEY,
    term TEXT NOT NULL, correlation TEXT NOT NULL, at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS lineage_terms_by_term ON lineage_terms (term);
";

/// Messages inserted by one statement when a source appends many at once.
const APPEND_ROWS: usize = 64;

/// `INSERT` of [`APPEND_ROWS`] messages: `?1` flow, `?2` source, `?3` time, then the
/// payloads; answers the new ids.
static APPEND_MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO inbox (flow, source, payload, received_at) VALUES {} RETURNING id",
        listed(APPEND_ROWS, |n| format!("(?1, ?2, ?{}, ?3)", n + 4))
    )
});

/// Keys looked up or recorded by one statement.
const MANY_KEYS: usize = 16;

/// The outcomes of [`MANY_KEYS`] keys of sink `?1` (keys from `?2`).
static OUTCOMES_MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT key, status FROM outcomes WHERE sink = ?1 AND key IN ({})",
        listed(MANY_KEYS, |n| format!("?{}", n + 2))
    )
});

/// Records outcome `?2` at time `?3` for [`MANY_KEYS`] keys of sink `?1` (keys from `?4`).
static RECORD_MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT OR REPLACE INTO outcomes (sink, key, status, at) VALUES {}",
        listed(MANY_KEYS, |n| format!("(?1, ?{}, ?2, ?3)", n + 4))
    )
});

/// `count` SQL items, the n-th written by `item(n)`, separated by commas.
fn listed(count: usize, item: impl Fn(usize) -> String) -> String {
    (0..count).map(item).collect::<Vec<_>>().join(", ")
}

impl SqliteBackend {
    /// Opens (creating if needed) the database file for writing, after the checks of
    /// [`check::inspect`] and a `quick_check`; the caller holds the file's lock.
    pub fn open(path: &str) -> StateResult<SqliteBackend> {
        SqliteBackend::open_checked(Path::new(path)).map_err(|e| e.to_string())
    }

    /// Like [`SqliteBackend::open`], with the reason of a refusal.
    pub fn open_checked(path: &Path) -> Result<SqliteBackend, StateError> {
        let found = check::inspect(path)?;
        if found.exists {
            check::verify(path, false)?;
        }
        let backend = SqliteBackend::connect(path).map_err(StateError::Backend)?;
        Ok(backend)
    }

    /// Records a state refused for its missing log as stopped cleanly, once its pages pass
    /// `quick_check`: the work committed since its last checkpoint is given up, the rest
    /// runs again. The caller holds the file's lock.
    pub fn accept_lost_wal(path: &Path) -> Result<(), StateError> {
        match check::inspect(path) {
            Err(StateError::WalMissing { .. }) => {}
            Err(other) => return Err(other),
            Ok(_) => {
                return Err(StateError::Backend(format!(
                    "state `{}` is not missing its log; nothing to accept",
                    path.display()
                )))
            }
        }
        check::verify(path, false)?;
        let conn = Connection::open(path).map_err(|e| StateError::Backend(err(e)))?;
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'stop'",
            [check::CLEAN],
        )
        .and_then(|_| checkpoint(&conn))
        .map(|_| ())
        .map_err(|e| StateError::Backend(err(e)))
    }

    /// Opens the file, brings its tables up to date and marks it in use.
    fn connect(path: &Path) -> StateResult<SqliteBackend> {
        let conn = Connection::open(path)
            .map_err(|e| format!("cannot open state `{}`: {e}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        // FULL: a committed batch survives power loss, not only a killed process.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "busy_timeout", 5000)
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        // Files made before messages and dead letters kept the original acceptance time
        // and letters could be discarded. The check and the change are one transaction,
        // so two processes opening such a file together both succeed.
        for (table, column, kind) in [
            ("inbox", "accepted_at", "INTEGER"),
            ("dead_letters", "accepted_at", "INTEGER"),
            ("dead_letters", "discarded_at", "INTEGER"),
            ("dead_letters", "queue", "TEXT"),
            ("inbox", "traceparent", "TEXT"),
        ] {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
            let missing = conn
                .prepare(&format!("SELECT {column} FROM {table} LIMIT 0"))
                .is_err();
            let added = if missing {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))
            } else {
                Ok(())
            };
            let end = if added.is_ok() { "COMMIT" } else { "ROLLBACK" };
            conn.execute_batch(end).map_err(err)?;
            added.map_err(err)?;
        }
        // Only replayed messages have one (set apart from their arrival): a partial index
        // finds the oldest without costing the other messages anything.
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS inbox_replays ON inbox (accepted_at) WHERE accepted_at IS NOT NULL;
             CREATE INDEX IF NOT EXISTS dead_letters_by_queue ON dead_letters (queue, id) WHERE queue IS NOT NULL",
        )
        .map_err(err)?;
        // In use from now on, written through to the file itself (not only its log), so
        // that a log deleted after a crash is noticed at the next start.
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1), ('stop', ?2)",
            params![check::SCHEMA_VERSION.to_string(), check::RUNNING],
        )
        .map_err(err)?;
        checkpoint(&conn).map_err(err)?;
        // Every statement of the per-message path stays prepared.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteBackend {
            conn,
            reading: false,
            closed: false,
        })
    }

    /// Opens the database for inspection while a runtime may be writing to it: a
    /// read-only connection whose batches are deferred (reading) transactions.
    pub fn open_for_reading(path: &str) -> StateResult<SqliteBackend> {
        let file = Path::new(path);
        if !check::inspect(file).map_err(|e| e.to_string())?.exists {
            return Err(format!("no state at `{path}`"));
        }
        let conn = check::read_only(file).map_err(err)?;
        Ok(SqliteBackend {
            conn,
            reading: true,
            closed: true,
        })
    }

    /// Checkpoints the log into the file and marks the stop clean, so that the file alone
    /// is a complete copy. A reader holding the log open leaves the stop unmarked (the
    /// next start then reads the log as after a crash).
    fn finish(&mut self) -> StateResult<()> {
        self.closed = true;
        if checkpoint(&self.conn).map_err(err)? {
            self.conn
                .execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'stop'",
                    [check::CLEAN],
                )
                .map_err(err)?;
            if checkpoint(&self.conn).map_err(err)? {
                return Ok(());
            }
            // The mark may have reached the file while the log keeps content: say in the
            // log that the file is in use again, which the next start accepts.
            self.conn
                .execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'stop'",
                    [check::RUNNING],
                )
                .map_err(err)?;
        }
        Err("a reader held the write-ahead log; the next start reads it as after a crash".into())
    }

    fn letter(row: &rusqlite::Row) -> rusqlite::Result<DeadLetter> {
        let attempts: String = row.get(10)?;
        Ok(DeadLetter {
            id: row.get(0)?,
            origin: Origin::decode(&row.get::<_, String>(1)?),
            source: row.get(2)?,
            node: row.get(3)?,
            sink: row.get(4)?,
            key: row.get(5)?,
            correlation_id: row.get(6)?,
            message: row.get(7)?,
            payload: row.get(8)?,
            error: row.get(9)?,
            attempts: serde_json::from_str(&attempts).unwrap_or_default(),
            created_at: row.get(11)?,
            replayed_at: row.get(12)?,
            accepted_at: row.get(13)?,
            discarded_at: row.get(14)?,
            queue: row.get(15)?,
        })
    }
}

const LETTER_COLUMNS: &str =
    "id, flow, source, node, sink, key, correlation_id, message, payload, error, attempts, created_at, replayed_at, accepted_at, discarded_at, queue";

impl Backend for SqliteBackend {
    fn ledger_names(&mut self) -> StateResult<Vec<String>> {
        let mut query = self
            .conn
            .prepare(
                "SELECT ledger FROM ledger_stock UNION SELECT ledger FROM ledger_publications ORDER BY 1",
            )
            .map_err(err)?;
        let rows = query.query_map([], |row| row.get(0)).map_err(err)?;
        rows.collect::<Result<Vec<String>, _>>().map_err(err)
    }

    fn journal<'a>(&'a mut self, ledger: &'a str) -> StateResult<Box<dyn super::Journal + 'a>> {
        Ok(Box::new(super::journal::SqlJournal {
            conn: &self.conn,
            ledger,
            record: None,
            update: None,
        }))
    }

    fn begin(&mut self) -> StateResult<()> {
        let start = if self.reading {
            "BEGIN"
        } else {
            "BEGIN IMMEDIATE"
        };
        self.conn.execute_batch(start).map_err(err)
    }

    fn commit(&mut self) -> StateResult<()> {
        self.conn.execute_batch("COMMIT").map_err(err)
    }

    fn rollback(&mut self) -> StateResult<()> {
        self.conn.execute_batch("ROLLBACK").map_err(err)
    }

    fn savepoint(&mut self) -> StateResult<()> {
        // Prepared once: a savepoint per request is on every message's path.
        self.conn
            .prepare_cached("SAVEPOINT job")
            .and_then(|mut s| s.execute([]))
            .map(|_| ())
            .map_err(err)
    }

    fn release_savepoint(&mut self) -> StateResult<()> {
        self.conn
            .prepare_cached("RELEASE job")
            .and_then(|mut s| s.execute([]))
            .map(|_| ())
            .map_err(err)
    }

    fn rollback_savepoint(&mut self) -> StateResult<()> {
        self.conn
            .execute_batch("ROLLBACK TO job; RELEASE job")
            .map_err(err)
    }

    fn append(
        &mut self,
        flow: &str,
        source: &str,
        messages: &[Vec<u8>],
        cursor: Option<(&str, &str)>,
    ) -> StateResult<Vec<i64>> {
        let now = super::now_secs();
        let mut ids = Vec::with_capacity(messages.len());
        let mut chunks = messages.chunks_exact(APPEND_ROWS);
        if messages.len() >= APPEND_ROWS {
            // Many rows per statement: the statement's fixed costs (the AUTOINCREMENT
            // sequence among them) are paid once per chunk, not once per message.
            let mut insert = self.conn.prepare_cached(&APPEND_MANY).map_err(err)?;
            for chunk in &mut chunks {
                insert.raw_bind_parameter(1, flow).map_err(err)?;
                insert.raw_bind_parameter(2, source).map_err(err)?;
                insert.raw_bind_parameter(3, now).map_err(err)?;
                for (n, message) in chunk.iter().enumerate() {
                    insert.raw_bind_parameter(4 + n, message).map_err(err)?;
                }
                let first = ids.len();
                let mut rows = insert.raw_query();
                while let Some(row) = rows.next().map_err(err)? {
                    ids.push(row.get::<_, i64>(0).map_err(err)?);
                }
                // Rows get increasing ids in the order of the VALUES list.
                ids[first..].sort_unstable();
            }
        }
        let mut insert = self
            .conn
            .prepare_cached(
                "INSERT INTO inbox (flow, source, payload, received_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(err)?;
        for message in chunks.remainder() {
            insert
                .execute(params![flow, source, message, now])
                .map_err(err)?;
            ids.push(self.conn.last_insert_rowid());
        }
        drop(insert);
        if let Some((key, value)) = cursor {
            let mut update = self
                .conn
                .prepare_cached("INSERT OR REPLACE INTO cursors (flow, source, key, value) VALUES (?1, ?2, ?3, ?4)")
                .map_err(err)?;
            update
                .execute(params![flow, source, key, value])
                .map_err(err)?;
        }
        Ok(ids)
    }

    fn pending(&mut self, flow: &str, after: i64, limit: usize) -> StateResult<Vec<Stored>> {
        let mut query = self
            .conn
            .prepare_cached("SELECT id, source, payload, COALESCE(accepted_at, received_at), traceparent FROM inbox WHERE flow = ?1 AND id > ?2 ORDER BY id LIMIT ?3")
            .map_err(err)?;
        let rows = query
            .query_map(params![flow, after, limit as i64], |row| {
                Ok(Stored {
                    id: row.get(0)?,
                    source: row.get(1)?,
                    payload: row.get(2)?,
                    received_at: row.get(3)?,
                    traceparent: row.get(4)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn backlog(&mut self, flow: &str) -> StateResult<u64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM inbox WHERE flow = ?1",
                params![flow],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(err)
    }

    fn complete(&mut self, ids: &[i64]) -> StateResult<()> {
        // Messages finish roughly in the order they arrived: one statement per run of
        // consecutive ids (each run holds exactly the ids it spans).
        let mut delete = self
            .conn
            .prepare_cached("DELETE FROM inbox WHERE id BETWEEN ?1 AND ?2")
            .map_err(err)?;
        for (first, last) in super::runs(ids) {
            delete.execute(params![first, last]).map_err(err)?;
        }
        Ok(())
    }

    fn cursor(&mut self, flow: &str, source: &str, key: &str) -> StateResult<Option<String>> {
        self.conn
            .query_row(
                "SELECT value FROM cursors WHERE flow = ?1 AND source = ?2 AND key = ?3",
                params![flow, source, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)
    }

    fn outcome(&mut self, sink: &str, key: &str) -> StateResult<Option<OutcomeStatus>> {
        let mut query = self
            .conn
            .prepare_cached("SELECT status FROM outcomes WHERE sink = ?1 AND key = ?2")
            .map_err(err)?;
        let status: Option<String> = query
            .query_row(params![sink, key], |r| r.get(0))
            .optional()
            .map_err(err)?;
        Ok(status.as_deref().and_then(OutcomeStatus::parse))
    }

    fn record_outcome(&mut self, sink: &str, key: &str, status: OutcomeStatus) -> StateResult<()> {
        let mut insert = self
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO outcomes (sink, key, status, at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(err)?;
        insert
            .execute(params![sink, key, status.as_str(), super::now_secs()])
            .map_err(err)?;
        Ok(())
    }

    fn outcomes(&mut self, sink: &str, keys: &[String]) -> StateResult<Vec<Option<OutcomeStatus>>> {
        let mut found = std::collections::HashMap::with_capacity(keys.len());
        let mut chunks = keys.chunks_exact(MANY_KEYS);
        if keys.len() >= MANY_KEYS {
            let mut query = self.conn.prepare_cached(&OUTCOMES_MANY).map_err(err)?;
            for chunk in &mut chunks {
                query.raw_bind_parameter(1, sink).map_err(err)?;
                for (n, key) in chunk.iter().enumerate() {
                    query.raw_bind_parameter(2 + n, key).map_err(err)?;
                }
                let mut rows = query.raw_query();
                while let Some(row) = rows.next().map_err(err)? {
                    let status: String = row.get(1).map_err(err)?;
                    let status = OutcomeStatus::parse(&status);
                    found.insert(row.get::<_, String>(0).map_err(err)?, status);
                }
            }
        }
        let rest = chunks.remainder();
        keys[..keys.len() - rest.len()]
            .iter()
            .map(|key| Ok(found.get(key.as_str()).copied().flatten()))
            .chain(rest.iter().map(|key| self.outcome(sink, key)))
            .collect()
    }

    fn record_outcomes(
        &mut self,
        sink: &str,
        keys: &[String],
        status: OutcomeStatus,
    ) -> StateResult<()> {
        let mut chunks = keys.chunks_exact(MANY_KEYS);
        if keys.len() >= MANY_KEYS {
            let mut insert = self.conn.prepare_cached(&RECORD_MANY).map_err(err)?;
            for chunk in &mut chunks {
                insert.raw_bind_parameter(1, sink).map_err(err)?;
                insert.raw_bind_parameter(2, status.as_str()).map_err(err)?;
                insert
                    .raw_bind_parameter(3, super::now_secs())
                    .map_err(err)?;
                for (n, key) in chunk.iter().enumerate() {
                    insert.raw_bind_parameter(4 + n, key).map_err(err)?;
                }
                insert.raw_execute().map_err(err)?;
            }
        }
        chunks
            .remainder()
            .iter()
            .try_for_each(|key| self.record_outcome(sink, key, status))
    }

    fn clear_outcome(&mut self, sink: &str, key: &str) -> StateResult<()> {
        self.conn
            .execute(
                "DELETE FROM outcomes WHERE sink = ?1 AND key = ?2",
                params![sink, key],
            )
            .map(|_| ())
            .map_err(err)
    }

    fn add_dead_letter(&mut self, letter: &DeadLetter) -> StateResult<i64> {
        let attempts = serde_json::to_string(&letter.attempts).unwrap_or_else(|_| "[]".into());
        self.conn
            .execute(
                "INSERT INTO dead_letters (flow, source, node, sink, key, correlation_id, message, payload, error, attempts, created_at, accepted_at, queue) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    letter.origin.encode(),
                    letter.source,
                    letter.node,
                    letter.sink,
                    letter.key,
                    letter.correlation_id,
                    letter.message,
                    letter.payload,
                    letter.error,
                    attempts,
                    super::now_secs(),
                    letter.accepted_at,
                    letter.queue
                ],
            )
            .map_err(err)?;
        Ok(self.conn.last_insert_rowid())
    }

    fn dead_letters(
        &mut self,
        include_replayed: bool,
        limit: usize,
    ) -> StateResult<Vec<DeadLetter>> {
        let sql = format!(
            "SELECT {LETTER_COLUMNS} FROM dead_letters {} ORDER BY id DESC LIMIT ?1",
            if include_replayed {
                ""
            } else {
                "WHERE replayed_at IS NULL AND discarded_at IS NULL"
            }
        );
        let mut query = self.conn.prepare(&sql).map_err(err)?;
        let rows = query
            .query_map(params![limit as i64], SqliteBackend::letter)
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn queue_letters(
        &mut self,
        queue: &str,
        include_replayed: bool,
        limit: usize,
    ) -> StateResult<Vec<DeadLetter>> {
        let sql = format!(
            "SELECT {LETTER_COLUMNS} FROM dead_letters WHERE queue = ?2 {} ORDER BY id DESC LIMIT ?1",
            if include_replayed {
                ""
            } else {
                "AND replayed_at IS NULL AND discarded_at IS NULL"
            }
        );
        let mut query = self.conn.prepare(&sql).map_err(err)?;
        let rows = query
            .query_map(params![limit as i64, queue], SqliteBackend::letter)
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn dead_letter(&mut self, id: i64) -> StateResult<Option<DeadLetter>> {
        self.conn
            .query_row(
                &format!("SELECT {LETTER_COLUMNS} FROM dead_letters WHERE id = ?1"),
                params![id],
                SqliteBackend::letter,
            )
            .optional()
            .map_err(err)
    }

    fn mark_replayed(&mut self, id: i64) -> StateResult<bool> {
        self.conn
            .execute(
                "UPDATE dead_letters SET replayed_at = ?2 \
                 WHERE id = ?1 AND replayed_at IS NULL AND discarded_at IS NULL",
                params![id, super::now_secs()],
            )
            .map(|changed| changed == 1)
            .map_err(err)
    }

    fn close(&mut self) -> StateResult<()> {
        if self.closed {
            return Ok(());
        }
        self.finish()
    }

    fn discard(&mut self, id: i64) -> StateResult<bool> {
        self.conn
            .execute(
                "UPDATE dead_letters SET discarded_at = ?2 \
                 WHERE id = ?1 AND replayed_at IS NULL AND discarded_at IS NULL",
                params![id, super::now_secs()],
            )
            .map(|changed| changed == 1)
            .map_err(err)
    }

    fn held_since(&mut self) -> StateResult<Option<i64>> {
        // Ids grow with arrival, so the lowest id is the oldest arrival waiting; a replay
        // waits with its original acceptance time (partial index); a dead letter not
        // replayed holds its message's (unknown for letters stored before it was kept). A
        // ledger's letters re-send a quantity, no message.
        self.conn
            .prepare_cached(&format!(
                "SELECT MIN(t) FROM ( \
                   SELECT received_at AS t FROM (SELECT received_at FROM inbox ORDER BY id LIMIT 1) \
                   UNION ALL SELECT MIN(accepted_at) FROM inbox WHERE accepted_at IS NOT NULL \
                   UNION ALL SELECT MIN(COALESCE(accepted_at, 0)) FROM dead_letters \
                     WHERE replayed_at IS NULL AND discarded_at IS NULL \
                     AND flow NOT LIKE '{}%')",
                Origin::LEDGER_PREFIX
            ))
            .and_then(|mut q| q.query_row([], |r| r.get(0)))
            .map_err(err)
    }

    fn append_replay(
        &mut self,
        flow: &str,
        source: &str,
        message: &[u8],
        accepted_at: i64,
    ) -> StateResult<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO inbox (flow, source, payload, received_at, accepted_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut q| {
                q.execute(params![
                    flow,
                    source,
                    message,
                    super::now_secs(),
                    accepted_at
                ])
            })
            .map_err(err)?;
        Ok(self.conn.last_insert_rowid())
    }

    fn forget_outcomes(
        &mut self,
        cut: super::Cut,
        from: Option<&(String, String)>,
        scan: usize,
    ) -> StateResult<super::Sweep> {
        // Keyset order: each call reads at most `scan` rows, so a sweep of a large table
        // is many short requests, not one long stall of the state thread.
        let mut read = self
            .conn
            .prepare_cached(
                "SELECT sink, key, at FROM outcomes WHERE (sink, key) > (?1, ?2) \
                 ORDER BY sink, key LIMIT ?3",
            )
            .map_err(err)?;
        let (sink, key) = from.map_or(("", ""), |(s, k)| (s.as_str(), k.as_str()));
        let rows = read
            .query_map(params![sink, key, scan as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        drop(read);
        let mut forget = self
            .conn
            .prepare_cached("DELETE FROM outcomes WHERE sink = ?1 AND key = ?2")
            .map_err(err)?;
        let mut forgotten = 0;
        for (sink, key, at) in &rows {
            let before = if super::is_source_namespace(sink) {
                cut.sources
            } else {
                cut.sinks
            };
            if before.is_some_and(|before| *at < before) {
                forgotten += forget.execute(params![sink, key]).map_err(err)?;
            }
        }
        let next = if rows.len() < scan {
            None
        } else {
            rows.last()
                .map(|(sink, key, _)| (sink.clone(), key.clone()))
        };
        Ok(super::Sweep { forgotten, next })
    }

    fn set_traceparent(&mut self, id: i64, traceparent: &str) -> StateResult<()> {
        self.conn
            .prepare_cached("UPDATE inbox SET traceparent = ?2 WHERE id = ?1")
            .and_then(|mut q| q.execute(params![id, traceparent]))
            .map(|_| ())
            .map_err(err)
    }

    fn record_lineage(&mut self, events: &[crate::lineage::Event]) -> StateResult<()> {
        let mut event = self
            .conn
            .prepare_cached(
                "INSERT INTO lineage (at, correlation, flow, step, node, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(err)?;
        let mut term = self
            .conn
            .prepare_cached("INSERT INTO lineage_terms (term, correlation, at) VALUES (?1, ?2, ?3)")
            .map_err(err)?;
        for e in events {
            event
                .execute(params![
                    e.at_ms,
                    e.correlation,
                    e.flow,
                    e.step,
                    e.node,
                    e.detail_text()
                ])
                .map_err(err)?;
            for t in e.stored_terms() {
                term.execute(params![t, e.correlation, e.at_ms])
                    .map_err(err)?;
            }
        }
        Ok(())
    }

    fn lineage(&mut self, term: &str, limit: usize) -> StateResult<Vec<crate::lineage::Event>> {
        let mut query = self
            .conn
            .prepare_cached(
                "SELECT at, correlation, flow, step, node, detail FROM ( \
                   SELECT id, at, correlation, flow, step, node, detail FROM lineage \
                   WHERE correlation IN (SELECT ?1 UNION SELECT correlation FROM \
                     (SELECT correlation FROM lineage_terms WHERE term = ?1 \
                      ORDER BY id DESC LIMIT ?2)) \
                   ORDER BY at DESC, id DESC LIMIT ?3) ORDER BY at, id",
            )
            .map_err(err)?;
        let rows = query
            .query_map(
                params![
                    crate::lineage::cut(term),
                    crate::lineage::TERM_ROWS as i64,
                    limit as i64
                ],
                |r| {
                    Ok(crate::lineage::Event {
                        at_ms: r.get(0)?,
                        correlation: r.get(1)?,
                        flow: r.get(2)?,
                        step: r.get(3)?,
                        node: r.get(4)?,
                        detail: serde_json::from_str(&r.get::<_, String>(5)?)
                            .unwrap_or(serde_json::Value::Null),
                        terms: Vec::new(),
                    })
                },
            )
            .map_err(err)?;
        let rows = rows.collect::<Result<Vec<_>, _>>().map_err(err)?;
        Ok(crate::lineage::events_of(rows, limit))
    }

    fn forget_lineage(&mut self, before_ms: i64, limit: usize) -> StateResult<usize> {
        let mut removed = 0;
        for table in ["lineage", "lineage_terms"] {
            removed = removed.max(
                self.conn
                    .prepare_cached(&format!(
                        "DELETE FROM {table} WHERE id IN (SELECT id FROM \
                     (SELECT id, at FROM {table} ORDER BY id LIMIT ?2) WHERE at < ?1)"
                    ))
                    .and_then(|mut q| q.execute(params![before_ms, limit as i64]))
                    .map_err(err)?,
            );
        }
        Ok(removed)
    }

    fn forget_dead_letters(&mut self, before: i64, limit: usize) -> StateResult<usize> {
        self.conn
            .prepare_cached(
                "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters \
                 WHERE replayed_at < ?1 OR discarded_at < ?1 ORDER BY id LIMIT ?2)",
            )
            .and_then(|mut q| q.execute(params![before, limit as i64]))
            .map_err(err)
    }
}
