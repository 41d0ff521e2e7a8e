//! The state in a PostgreSQL database: the same tables and the same behaviour as the
//! SQLite backend, over one synchronous connection on the state thread. A process holds a
//! session-level advisory lock on that connection for its lifetime: exclusive for a writer
//! that owns the state alone, shared for a replica among several (see [`replica`]).

pub mod check;
mod conn;
mod journal;
pub mod lock;
mod replica;
#[cfg(test)]
mod replica_tests;
pub mod schema;
pub mod target;
#[cfg(test)]
mod tests;
mod text;

use crate::error::StateError;
use crate::{Backend, Cut, DeadLetter, Origin, OutcomeStatus, StateResult, Stored, Sweep};
use conn::Conn;
pub use target::{is_postgres, Target};

/// `meta.stop` while a writer has the state open, and after it stopped cleanly.
pub use crate::check::{CLEAN, RUNNING};

/// A PostgreSQL state.
pub struct PostgresBackend {
    conn: Conn,
    /// Batches only read (`BEGIN READ ONLY`): inspection beside a running writer.
    reading: bool,
    /// Marked stopped (or never marked in use).
    closed: bool,
    /// What this writer wrote as `meta.writer` when it opened the state: after a lost
    /// connection, it goes on only if no other writer has opened the state since.
    identity: String,
    /// Why this writer may not go on (another writer opened the state after its
    /// connection was lost); every batch is refused with it.
    superseded: Option<String>,
    /// The connection was lost and this writer does not hold the state again yet.
    lost: bool,
    /// Set when this process is one replica among several.
    replica: Option<replica::Replica>,
    /// Holds the lock shared (a replica, or a command beside replicas).
    shared: bool,
}

/// Why the batch's commit failed after one of its statements did.
const ABORTED: &str =
    "state store: a statement of this batch failed, so PostgreSQL undid the whole batch";

impl PostgresBackend {
    /// Opens the state as its only writer: connects, takes the writer's lock (waiting up
    /// to `wait` for a holder to stop), applies the schema's migrations and marks the
    /// state in use. The lock lives as long as the backend's connection.
    pub fn open_writer(
        spec: &str,
        wait: std::time::Duration,
    ) -> Result<PostgresBackend, StateError> {
        let mut conn = PostgresBackend::connect(spec)?;
        lock::acquire(&mut conn, wait)?;
        schema::migrate(&mut conn)?;
        let identity = identity();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('stop', $1), ('writer', $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&RUNNING, &identity],
        )
        .map_err(StateError::Backend)?;
        conn.aborted = false;
        Ok(PostgresBackend {
            conn,
            reading: false,
            closed: false,
            identity,
            superseded: None,
            lost: false,
            replica: None,
            shared: false,
        })
    }

    /// Opens the state as one replica among several: connects, takes the lock shared
    /// (waiting up to `wait` for a writer that owns the state alone), applies the schema's
    /// migrations and joins the replicas with time to live `ttl`: unless a heartbeat
    /// comes within it, the others take over this replica's claims and leases.
    pub fn open_replica(
        spec: &str,
        wait: std::time::Duration,
        ttl: std::time::Duration,
    ) -> Result<PostgresBackend, StateError> {
        let mut conn = PostgresBackend::connect(spec)?;
        lock::acquire_shared(&mut conn, wait)?;
        schema::migrate(&mut conn)?;
        let joined = replica::Replica::join(&mut conn, ttl);
        let replica = joined.map_err(StateError::Backend)?;
        replica
            .bound_idle_transactions(&mut conn)
            .map_err(StateError::Backend)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('stop', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&RUNNING],
        )
        .map_err(StateError::Backend)?;
        conn.aborted = false;
        tracing::info!(replica = %replica.id, ttl_ms = replica.ttl_ms, "joined the replicas of the state");
        Ok(PostgresBackend {
            conn,
            reading: false,
            closed: false,
            identity: replica.id.clone(),
            superseded: None,
            lost: false,
            replica: Some(replica),
            shared: true,
        })
    }

    /// Opens the state for a command's writes beside running replicas (a dead letter's
    /// replay or discard, each one atomic statement batch): takes the lock shared, so it
    /// waits up to `wait` for a writer that owns the state alone, and joins no replicas.
    pub fn open_beside_replicas(
        spec: &str,
        wait: std::time::Duration,
    ) -> Result<PostgresBackend, StateError> {
        let mut conn = PostgresBackend::connect(spec)?;
        lock::acquire_shared(&mut conn, wait)?;
        schema::migrate(&mut conn)?;
        conn.aborted = false;
        Ok(PostgresBackend {
            conn,
            reading: false,
            // Nothing to record at the end: the lock goes with the connection.
            closed: true,
            identity: String::new(),
            superseded: None,
            lost: false,
            replica: None,
            shared: true,
        })
    }

    /// Connects again after the connection was lost (a server restart, a failover, an
    /// ended session). The server let go of the writer's lock with the old session, so a
    /// writer takes it again, and goes on only if no other writer opened the state
    /// meanwhile (whose work this one's memory knows nothing of): otherwise it refuses
    /// every batch from then on, and is to be restarted.
    fn reconnect(&mut self) -> StateResult<()> {
        if let Some(reason) = &self.superseded {
            return Err(reason.clone());
        }
        self.lost = true;
        let client = self.conn.target.connect()?;
        self.conn.replace(client);
        if self.reading {
            self.lost = false;
            return Ok(());
        }
        let shown = self.conn.target.shown.clone();
        if self.shared {
            // A replica goes on under the shared lock: its next heartbeat says whether the
            // others still count it as live. A command beside replicas just goes on.
            lock::acquire_shared(&mut self.conn, std::time::Duration::ZERO).map_err(|err| {
                format!("state store ({shown}): the connection was lost and the replicas' lock could not be taken again: {err}")
            })?;
            if let Some(replica) = &self.replica {
                replica.bound_idle_transactions(&mut self.conn)?;
            }
            tracing::warn!(state = %shown, "state connection lost; connected again as a replica");
            self.lost = false;
            return Ok(());
        }
        if let Err(err) = lock::acquire(&mut self.conn, std::time::Duration::ZERO) {
            // The lost session's lock may not be gone yet: the next batch tries again.
            return Err(format!(
                "state store ({shown}): the connection was lost and the writer's lock could \
                 not be taken again: {err}"
            ));
        }
        let row = self
            .conn
            .query_opt("SELECT value FROM meta WHERE key = 'writer'", &[])?;
        let found: Option<String> = row.map(|row| self.conn.get(&row, 0)).transpose()?;
        if found.as_deref() != Some(self.identity.as_str()) {
            let reason = format!(
                "state store ({shown}): another writer opened the state after this one lost \
                 its connection; nothing more is written: restart omniflow"
            );
            tracing::error!(%reason, "state lost to another writer");
            self.superseded = Some(reason.clone());
            let _ = self
                .conn
                .execute("SELECT pg_advisory_unlock($1)", &[&lock::WRITER_LOCK]);
            return Err(reason);
        }
        tracing::warn!(state = %shown, "state connection lost; connected again under the writer's lock");
        self.lost = false;
        Ok(())
    }

    /// Opens the state for inspection: no lock, no migration, read-only batches. A
    /// database without omniflow's tables, or with another schema version, is refused.
    pub fn open_for_reading(spec: &str) -> Result<PostgresBackend, StateError> {
        let mut conn = PostgresBackend::connect(spec)?;
        let found = schema::version(&mut conn).map_err(StateError::Backend)?;
        schema::refuse_newer(&conn, found)?;
        match found {
            None => {
                return Err(StateError::Backend(format!(
                    "no state at `{}` (the database holds no omniflow tables)",
                    conn.target.shown
                )))
            }
            Some(version) if version < schema::VERSION => {
                return Err(StateError::Backend(format!(
                    "state `{}` has schema version {version}; this omniflow reads {}: start \
                     `omniflow run` on it once to migrate it",
                    conn.target.shown,
                    schema::VERSION
                )))
            }
            Some(_) => {}
        }
        conn.aborted = false;
        Ok(PostgresBackend {
            conn,
            reading: true,
            closed: true,
            identity: String::new(),
            superseded: None,
            lost: false,
            replica: None,
            shared: false,
        })
    }

    /// Connects to the database of a `postgres://` URL.
    pub(crate) fn connect(spec: &str) -> Result<Conn, StateError> {
        let target = Target::parse(spec).map_err(StateError::Backend)?;
        let client = target.connect().map_err(StateError::Backend)?;
        Ok(Conn::new(client, target))
    }

    /// The URL as shown (no password).
    pub fn shown(&self) -> &str {
        &self.conn.target.shown
    }

    fn letter(conn: &Conn, row: &postgres::Row) -> StateResult<DeadLetter> {
        let attempts: String = conn.get(row, 10)?;
        Ok(DeadLetter {
            id: conn.get(row, 0)?,
            origin: Origin::decode(&conn.get::<String>(row, 1)?),
            source: conn.get(row, 2)?,
            node: conn.get(row, 3)?,
            sink: conn.get(row, 4)?,
            key: text::loaded(conn.get(row, 5)?),
            correlation_id: conn.get(row, 6)?,
            message: text(conn.get(row, 7)?),
            payload: text(conn.get(row, 8)?),
            error: conn.get(row, 9)?,
            attempts: serde_json::from_str(&attempts).unwrap_or_default(),
            created_at: conn.get(row, 11)?,
            replayed_at: conn.get(row, 12)?,
            accepted_at: conn.get(row, 13)?,
            discarded_at: conn.get(row, 14)?,
            queue: conn.get(row, 15)?,
        })
    }

    fn status(&self, row: &postgres::Row, column: usize) -> StateResult<Option<OutcomeStatus>> {
        let status: String = self.conn.get(row, column)?;
        Ok(OutcomeStatus::parse(&status))
    }
}

/// Names one opening of the state by a writer (`meta.writer`): process, host and time.
fn identity() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{} at {nanos}", target::application_name())
}

/// A dead letter's message or payload, stored as bytes.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

/// `SELECT` of dead letters, newest first, with or without the settled ones.
macro_rules! letters_sql {
    ($where:literal) => {
        concat!(
            "SELECT id, flow, source, node, sink, key, correlation_id, message, payload, error, \
             attempts, created_at, replayed_at, accepted_at, discarded_at, queue FROM dead_letters ",
            $where,
            " ORDER BY id DESC LIMIT $1"
        )
    };
}

impl Backend for PostgresBackend {
    fn begin(&mut self) -> StateResult<()> {
        if let Some(reason) = &self.superseded {
            return Err(reason.clone());
        }
        self.conn.aborted = false;
        // A replica's statements wait at most this long for another replica's locks, so
        // that two batches never wait on each other (a deadlock): the statement fails,
        // alone inside its request's savepoint, and is asked again.
        let start = match (self.reading, self.replica.is_some()) {
            (true, _) => "BEGIN READ ONLY",
            (false, true) => concat!("BEGIN; ", replica::lock_wait!()),
            (false, false) => "BEGIN",
        };
        if self.lost {
            self.reconnect()?;
            return self.conn.batch(start);
        }
        match self.conn.batch(start) {
            Err(_) if self.conn.client.is_closed() => {
                // Lost: nothing of this batch ran yet, so it may start on a new connection.
                self.reconnect()?;
                self.conn.aborted = false;
                self.conn.batch(start)
            }
            started => started,
        }
    }

    fn commit(&mut self) -> StateResult<()> {
        if self.conn.aborted {
            // COMMIT of an aborted transaction only rolls back, and says no error.
            let _ = self.conn.batch("ROLLBACK");
            self.conn.aborted = false;
            return Err(ABORTED.into());
        }
        self.conn.batch("COMMIT")
    }

    fn rollback(&mut self) -> StateResult<()> {
        let rolled = self.conn.batch("ROLLBACK");
        self.conn.aborted = false;
        rolled
    }

    fn savepoint(&mut self) -> StateResult<()> {
        self.conn.batch("SAVEPOINT job")
    }

    fn release_savepoint(&mut self) -> StateResult<()> {
        self.conn.batch("RELEASE SAVEPOINT job")
    }

    fn rollback_savepoint(&mut self) -> StateResult<()> {
        self.conn
            .batch("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")?;
        // The savepoint was taken in a healthy transaction: undoing to it heals it.
        self.conn.aborted = false;
        Ok(())
    }

    fn append(
        &mut self,
        flow: &str,
        source: &str,
        messages: &[Vec<u8>],
        cursor: Option<(&str, &str)>,
    ) -> StateResult<Vec<i64>> {
        let now = crate::now_secs();
        let mut ids = Vec::with_capacity(messages.len());
        if !messages.is_empty() {
            // One statement for all: the payloads travel as one array, in order.
            let payloads: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let rows = self.conn.query(
                "INSERT INTO inbox (flow, source, payload, received_at) \
                 SELECT $1::TEXT, $2::TEXT, m.payload, $3::BIGINT \
                 FROM UNNEST($4::BYTEA[]) WITH ORDINALITY AS m(payload, n) ORDER BY m.n \
                 RETURNING id",
                &[&flow, &source, &now, &payloads],
            )?;
            for row in &rows {
                ids.push(self.conn.get::<i64>(row, 0)?);
            }
            // Rows get increasing ids in the order they are inserted.
            ids.sort_unstable();
        }
        if let Some((key, value)) = cursor {
            self.conn.execute(
                "INSERT INTO cursors (flow, source, key, value) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (flow, source, key) DO UPDATE SET value = excluded.value",
                &[&flow, &source, &text::stored(key), &text::stored(value)],
            )?;
        }
        Ok(ids)
    }

    fn pending(&mut self, flow: &str, after: i64, limit: usize) -> StateResult<Vec<Stored>> {
        if let Some(replica) = &self.replica {
            // Claimed: what this replica is given, no other is given until it is gone.
            // `after` 0: the processor has nothing in flight, its own claims are free.
            return replica.claim_messages(&mut self.conn, flow, limit, after == 0);
        }
        let rows = self.conn.query(
            "SELECT id, source, payload, COALESCE(accepted_at, received_at), traceparent \
             FROM inbox WHERE flow = $1 AND id > $2 ORDER BY id LIMIT $3",
            &[&flow, &after, &(limit as i64)],
        )?;
        rows.iter()
            .map(|row| {
                Ok(Stored {
                    id: self.conn.get(row, 0)?,
                    source: self.conn.get(row, 1)?,
                    payload: self.conn.get(row, 2)?,
                    received_at: self.conn.get(row, 3)?,
                    traceparent: self.conn.get(row, 4)?,
                })
            })
            .collect()
    }

    fn backlog(&mut self, flow: &str) -> StateResult<u64> {
        let row = self
            .conn
            .query_one("SELECT COUNT(*) FROM inbox WHERE flow = $1", &[&flow])?;
        Ok(self.conn.get::<i64>(&row, 0)? as u64)
    }

    fn complete(&mut self, ids: &[i64]) -> StateResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.conn
            .execute("DELETE FROM inbox WHERE id = ANY($1)", &[&ids])?;
        Ok(())
    }

    fn cursor(&mut self, flow: &str, source: &str, key: &str) -> StateResult<Option<String>> {
        let row = self.conn.query_opt(
            "SELECT value FROM cursors WHERE flow = $1 AND source = $2 AND key = $3",
            &[&flow, &source, &text::stored(key)],
        )?;
        row.map(|row| self.conn.get(&row, 0).map(text::loaded))
            .transpose()
    }

    fn outcome(&mut self, sink: &str, key: &str) -> StateResult<Option<OutcomeStatus>> {
        let row = self.conn.query_opt(
            "SELECT status FROM outcomes WHERE sink = $1 AND key = $2",
            &[&sink, &text::stored(key)],
        )?;
        match row {
            Some(row) => self.status(&row, 0),
            None => Ok(None),
        }
    }

    fn record_outcome(&mut self, sink: &str, key: &str, status: OutcomeStatus) -> StateResult<()> {
        if let Some(replica) = &self.replica {
            replica.release_keys(&mut self.conn, sink, std::slice::from_ref(&key.to_string()))?;
        }
        self.conn.execute(
            "INSERT INTO outcomes (sink, key, status, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sink, key) DO UPDATE SET status = excluded.status, at = excluded.at",
            &[
                &sink,
                &text::stored(key),
                &status.as_str(),
                &crate::now_secs(),
            ],
        )?;
        Ok(())
    }

    fn outcomes(&mut self, sink: &str, keys: &[String]) -> StateResult<Vec<Option<OutcomeStatus>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<std::borrow::Cow<str>> = keys.iter().map(|k| text::stored(k)).collect();
        let rows = self.conn.query(
            "SELECT key, status FROM outcomes WHERE sink = $1 AND key = ANY($2)",
            &[&sink, &keys],
        )?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            found.insert(self.conn.get::<String>(row, 0)?, self.status(row, 1)?);
        }
        Ok(keys
            .iter()
            .map(|key| found.get(key.as_ref()).copied().flatten())
            .collect())
    }

    fn record_outcomes(
        &mut self,
        sink: &str,
        keys: &[String],
        status: OutcomeStatus,
    ) -> StateResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        if let Some(replica) = &self.replica {
            replica.release_keys(&mut self.conn, sink, keys)?;
        }
        let keys: Vec<std::borrow::Cow<str>> = keys.iter().map(|k| text::stored(k)).collect();
        // DISTINCT: one statement may not change a row twice.
        self.conn.execute(
            "INSERT INTO outcomes (sink, key, status, at) \
             SELECT $1::TEXT, k.key, $2::TEXT, $3::BIGINT \
             FROM (SELECT DISTINCT key FROM UNNEST($4::TEXT[]) AS u(key)) AS k \
             ON CONFLICT (sink, key) DO UPDATE SET status = excluded.status, at = excluded.at",
            &[&sink, &status.as_str(), &crate::now_secs(), &keys],
        )?;
        Ok(())
    }

    fn record_new_outcome(
        &mut self,
        namespace: &str,
        key: &str,
        status: OutcomeStatus,
    ) -> StateResult<bool> {
        // A second process inserting the same key waits for the first's transaction and
        // then finds the row: exactly one of them records it.
        let inserted = self.conn.execute(
            "INSERT INTO outcomes (sink, key, status, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sink, key) DO NOTHING",
            &[
                &namespace,
                &text::stored(key),
                &status.as_str(),
                &crate::now_secs(),
            ],
        )?;
        Ok(inserted == 1)
    }

    fn replica(&self) -> Option<crate::cluster::Member> {
        self.replica.as_ref().map(|r| crate::cluster::Member {
            id: std::sync::Arc::from(r.id.as_str()),
            ttl: std::time::Duration::from_millis(r.ttl_ms as u64),
        })
    }

    fn claim_outcomes(
        &mut self,
        sink: &str,
        keys: &[String],
    ) -> StateResult<Vec<crate::cluster::Claim>> {
        match &self.replica {
            Some(replica) => replica.claim_keys(&mut self.conn, sink, keys),
            None => Ok(self
                .outcomes(sink, keys)?
                .into_iter()
                .map(crate::cluster::Claim::Free)
                .collect()),
        }
    }

    fn release_claims(&mut self, sink: &str, keys: &[String]) -> StateResult<()> {
        match &self.replica {
            Some(replica) => replica.release_keys(&mut self.conn, sink, keys),
            None => Ok(()),
        }
    }

    fn heartbeat(&mut self) -> StateResult<u64> {
        match &self.replica {
            Some(replica) => replica.heartbeat(&mut self.conn),
            None => Ok(0),
        }
    }

    fn acquire_lease(&mut self, name: &str) -> StateResult<Option<crate::cluster::Fence>> {
        match &self.replica {
            Some(replica) => replica.acquire(&mut self.conn, name),
            None => Ok(Some(crate::cluster::Fence::alone(name))),
        }
    }

    fn fence(&mut self, fence: &crate::cluster::Fence) -> StateResult<()> {
        match &self.replica {
            Some(replica) => replica.fence(&mut self.conn, fence),
            None => Ok(()),
        }
    }

    fn ledger_turn(&mut self, ledger: &str) -> StateResult<Option<i64>> {
        match &self.replica {
            Some(replica) => replica.ledger_turn(&mut self.conn, ledger).map(Some),
            None => Ok(None),
        }
    }

    fn ledger_version(&mut self, ledger: &str) -> StateResult<Option<i64>> {
        match self.replica {
            Some(_) => replica::ledger_version(&mut self.conn, ledger).map(Some),
            None => Ok(None),
        }
    }

    fn cluster_status(&mut self) -> StateResult<crate::cluster::Status> {
        replica::status(&mut self.conn)
    }

    fn clear_outcome(&mut self, sink: &str, key: &str) -> StateResult<()> {
        self.conn.execute(
            "DELETE FROM outcomes WHERE sink = $1 AND key = $2",
            &[&sink, &text::stored(key)],
        )?;
        Ok(())
    }

    fn add_dead_letter(&mut self, letter: &DeadLetter) -> StateResult<i64> {
        let attempts = serde_json::to_string(&letter.attempts).unwrap_or_else(|_| "[]".into());
        let row = self.conn.query_one(
            "INSERT INTO dead_letters (flow, source, node, sink, key, correlation_id, message, \
             payload, error, attempts, created_at, accepted_at, queue) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
            &[
                &letter.origin.encode(),
                &letter.source,
                &letter.node,
                &letter.sink,
                &text::stored(&letter.key),
                &letter.correlation_id,
                &letter.message.as_bytes(),
                &letter.payload.as_bytes(),
                // A reason may quote the message; PostgreSQL's text cannot hold NUL.
                &letter.error.replace('\0', "\u{fffd}"),
                &attempts,
                &crate::now_secs(),
                &letter.accepted_at,
                &letter.queue,
            ],
        )?;
        self.conn.get(&row, 0)
    }

    fn queue_letters(
        &mut self,
        queue: &str,
        include_replayed: bool,
        limit: usize,
    ) -> StateResult<Vec<DeadLetter>> {
        let rows = self.conn.query(
            "SELECT id, flow, source, node, sink, key, correlation_id, message, payload, \
             error, attempts, created_at, replayed_at, accepted_at, discarded_at, queue \
             FROM dead_letters WHERE queue = $2 AND ($3 OR (replayed_at IS NULL \
             AND discarded_at IS NULL)) ORDER BY id DESC LIMIT $1",
            &[&(limit as i64), &queue, &include_replayed],
        )?;
        rows.iter()
            .map(|row| PostgresBackend::letter(&self.conn, row))
            .collect()
    }

    fn dead_letters(
        &mut self,
        include_replayed: bool,
        limit: usize,
    ) -> StateResult<Vec<DeadLetter>> {
        let sql = if include_replayed {
            letters_sql!("")
        } else {
            letters_sql!("WHERE replayed_at IS NULL AND discarded_at IS NULL")
        };
        let rows = self.conn.query(sql, &[&(limit as i64)])?;
        rows.iter()
            .map(|row| PostgresBackend::letter(&self.conn, row))
            .collect()
    }

    fn dead_letter(&mut self, id: i64) -> StateResult<Option<DeadLetter>> {
        let row = self.conn.query_opt(
            "SELECT id, flow, source, node, sink, key, correlation_id, message, payload, error, \
             attempts, created_at, replayed_at, accepted_at, discarded_at, queue FROM dead_letters WHERE id = $1",
            &[&id],
        )?;
        row.map(|row| PostgresBackend::letter(&self.conn, &row))
            .transpose()
    }

    fn mark_replayed(&mut self, id: i64) -> StateResult<bool> {
        let changed = self.conn.execute(
            "UPDATE dead_letters SET replayed_at = $2 \
             WHERE id = $1 AND replayed_at IS NULL AND discarded_at IS NULL",
            &[&id, &crate::now_secs()],
        )?;
        Ok(changed == 1)
    }

    fn discard(&mut self, id: i64) -> StateResult<bool> {
        let changed = self.conn.execute(
            "UPDATE dead_letters SET discarded_at = $2 \
             WHERE id = $1 AND replayed_at IS NULL AND discarded_at IS NULL",
            &[&id, &crate::now_secs()],
        )?;
        Ok(changed == 1)
    }

    fn append_replay(
        &mut self,
        flow: &str,
        source: &str,
        message: &[u8],
        accepted_at: i64,
    ) -> StateResult<i64> {
        let row = self.conn.query_one(
            "INSERT INTO inbox (flow, source, payload, received_at, accepted_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&flow, &source, &message, &crate::now_secs(), &accepted_at],
        )?;
        self.conn.get(&row, 0)
    }

    fn held_since(&mut self) -> StateResult<Option<i64>> {
        // As in SQLite: the oldest arrival waiting (lowest id), the oldest replay waiting
        // (partial index), the oldest flow's letter neither replayed nor discarded.
        let ledger_letters = format!("{}%", Origin::LEDGER_PREFIX);
        let row = self.conn.query_one(
            "SELECT MIN(t)::BIGINT FROM ( \
               SELECT received_at AS t FROM (SELECT received_at FROM inbox ORDER BY id LIMIT 1) AS first \
               UNION ALL SELECT MIN(accepted_at) FROM inbox WHERE accepted_at IS NOT NULL \
               UNION ALL SELECT MIN(COALESCE(accepted_at, 0)) FROM dead_letters \
                 WHERE replayed_at IS NULL AND discarded_at IS NULL AND flow NOT LIKE $1) AS held",
            &[&ledger_letters],
        )?;
        self.conn.get(&row, 0)
    }

    fn forget_outcomes(
        &mut self,
        cut: Cut,
        from: Option<&(String, String)>,
        scan: usize,
    ) -> StateResult<Sweep> {
        // Keyset order, as in SQLite: each call reads at most `scan` rows.
        let (sink, key) = from.map_or(("", ""), |(s, k)| (s.as_str(), k.as_str()));
        let rows = self.conn.query(
            "SELECT sink, key, at FROM outcomes WHERE (sink, key) > ($1, $2) \
             ORDER BY sink, key LIMIT $3",
            &[&sink, &key, &(scan as i64)],
        )?;
        let mut read = Vec::with_capacity(rows.len());
        for row in &rows {
            read.push((
                self.conn.get::<String>(row, 0)?,
                self.conn.get::<String>(row, 1)?,
                self.conn.get::<i64>(row, 2)?,
            ));
        }
        let (mut sinks, mut keys) = (Vec::new(), Vec::new());
        for (sink, key, at) in &read {
            let before = if crate::is_source_namespace(sink) {
                cut.sources
            } else {
                cut.sinks
            };
            if before.is_some_and(|before| *at < before) {
                sinks.push(sink.as_str());
                keys.push(key.as_str());
            }
        }
        let forgotten = if sinks.is_empty() {
            0
        } else {
            self.conn.execute(
                "DELETE FROM outcomes WHERE (sink, key) IN \
                 (SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[]))",
                &[&sinks, &keys],
            )? as usize
        };
        let next = if read.len() < scan {
            None
        } else {
            read.last()
                .map(|(sink, key, _)| (sink.clone(), key.clone()))
        };
        Ok(Sweep { forgotten, next })
    }

    fn set_traceparent(&mut self, id: i64, traceparent: &str) -> StateResult<()> {
        self.conn.execute(
            "UPDATE inbox SET traceparent = $2 WHERE id = $1",
            &[&id, &traceparent],
        )?;
        Ok(())
    }

    fn record_lineage(&mut self, events: &[crate::lineage::Event]) -> StateResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        // Two statements for the whole batch, not one per row.
        let mut at = Vec::with_capacity(events.len());
        let mut correlation = Vec::with_capacity(events.len());
        let (mut flow, mut step, mut node, mut detail) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut term, mut term_correlation, mut term_at) = (Vec::new(), Vec::new(), Vec::new());
        for e in events {
            let c = text::stored(&e.correlation).into_owned();
            for t in e.stored_terms() {
                term.push(text::stored(t).into_owned());
                term_correlation.push(c.clone());
                term_at.push(e.at_ms);
            }
            at.push(e.at_ms);
            correlation.push(c);
            flow.push(e.flow.as_str());
            step.push(e.step.as_str());
            node.push(text::stored(&e.node).into_owned());
            detail.push(e.detail_text());
        }
        self.conn.execute(
            "INSERT INTO lineage (at, correlation, flow, step, node, detail) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[])",
            &[&at, &correlation, &flow, &step, &node, &detail],
        )?;
        if !term.is_empty() {
            self.conn.execute(
                "INSERT INTO lineage_terms (term, correlation, at) \
                 SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[])",
                &[&term, &term_correlation, &term_at],
            )?;
        }
        Ok(())
    }

    fn lineage(&mut self, term: &str, limit: usize) -> StateResult<Vec<crate::lineage::Event>> {
        let term = text::stored(crate::lineage::cut(term));
        // The newest rows of the term first (an index range, however common the term),
        // then the newest `limit` events of those messages, returned oldest first.
        let rows = self.conn.query(
            "SELECT at, correlation, flow, step, node, detail FROM ( \
               SELECT id, at, correlation, flow, step, node, detail FROM lineage \
               WHERE correlation IN (SELECT $1::TEXT UNION SELECT correlation FROM \
                 (SELECT correlation FROM lineage_terms WHERE term = $1 \
                  ORDER BY id DESC LIMIT $2) AS newest) \
               ORDER BY at DESC, id DESC LIMIT $3) AS found ORDER BY at, id",
            &[&term, &(crate::lineage::TERM_ROWS as i64), &(limit as i64)],
        )?;
        rows.iter()
            .map(|row| {
                Ok(crate::lineage::Event {
                    at_ms: self.conn.get(row, 0)?,
                    correlation: text::loaded(self.conn.get(row, 1)?),
                    flow: self.conn.get(row, 2)?,
                    step: self.conn.get(row, 3)?,
                    node: text::loaded(self.conn.get(row, 4)?),
                    detail: serde_json::from_str(&self.conn.get::<String>(row, 5)?)
                        .unwrap_or(serde_json::Value::Null),
                    terms: Vec::new(),
                })
            })
            .collect::<StateResult<Vec<_>>>()
            .map(|rows| crate::lineage::events_of(rows, limit))
    }

    fn forget_lineage(&mut self, before_ms: i64, limit: usize) -> StateResult<usize> {
        let events = self.conn.execute(
            "DELETE FROM lineage WHERE id IN (SELECT id FROM \
             (SELECT id, at FROM lineage ORDER BY id LIMIT $2) AS oldest WHERE at < $1)",
            &[&before_ms, &(limit as i64)],
        )?;
        let terms = self.conn.execute(
            "DELETE FROM lineage_terms WHERE id IN (SELECT id FROM \
             (SELECT id, at FROM lineage_terms ORDER BY id LIMIT $2) AS oldest WHERE at < $1)",
            &[&before_ms, &(limit as i64)],
        )?;
        Ok(events.max(terms) as usize)
    }

    fn forget_dead_letters(&mut self, before: i64, limit: usize) -> StateResult<usize> {
        let removed = self.conn.execute(
            "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters \
             WHERE replayed_at < $1 OR discarded_at < $1 ORDER BY id LIMIT $2)",
            &[&before, &(limit as i64)],
        )?;
        Ok(removed as usize)
    }

    fn journal<'a>(&'a mut self, ledger: &'a str) -> StateResult<Box<dyn crate::Journal + 'a>> {
        Ok(Box::new(journal::PgJournal {
            conn: &mut self.conn,
            ledger,
        }))
    }

    fn ledger_names(&mut self) -> StateResult<Vec<String>> {
        let rows = self.conn.query(
            "SELECT ledger COLLATE \"C\" FROM ledger_stock UNION \
             SELECT ledger COLLATE \"C\" FROM ledger_publications ORDER BY 1",
            &[],
        )?;
        rows.iter().map(|row| self.conn.get(row, 0)).collect()
    }

    /// Records the stop as clean and lets go of the writer's lock at once (a successor
    /// need not wait for the connection to end). What was committed is in the server
    /// already: there is nothing like SQLite's log to fold back.
    fn close(&mut self) -> StateResult<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if let Some(replica) = &self.replica {
            // The last replica to leave records the clean stop.
            replica.leave(&mut self.conn)?;
            if !replica::others_live(&mut self.conn, &replica.id)? {
                self.conn
                    .execute("UPDATE meta SET value = $1 WHERE key = 'stop'", &[&CLEAN])?;
            }
            self.conn.execute(
                "SELECT pg_advisory_unlock_shared($1)",
                &[&lock::WRITER_LOCK],
            )?;
            return Ok(());
        }
        self.conn
            .execute("UPDATE meta SET value = $1 WHERE key = 'stop'", &[&CLEAN])?;
        self.conn
            .execute("SELECT pg_advisory_unlock($1)", &[&lock::WRITER_LOCK])?;
        Ok(())
    }
}
