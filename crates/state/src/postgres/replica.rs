//! One replica among several on one PostgreSQL state: its membership row and heartbeat,
//! inbox claims (`FOR UPDATE SKIP LOCKED`), (sink, key) claims, and leases with fencing
//! tokens. A claim or lease is another's to take once its holder is not live: stopped, or
//! no heartbeat within its time to live, by the database's clock.

use super::conn::Conn;
use super::text;
use crate::cluster::{Claim, Fence, LeaseRow, ReplicaRow, Status, FENCED};
use crate::{OutcomeStatus, StateResult, Stored};

/// The database's clock in milliseconds, at the moment the statement runs.
macro_rules! now_ms {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

/// True for replica row `r` while it is live.
macro_rules! live {
    ($r:literal) => {
        concat!(
            $r,
            ".stopped_at IS NULL AND ",
            $r,
            ".seen_at + ",
            $r,
            ".ttl_ms > ",
            now_ms!()
        )
    };
}

/// How long a replica's statement waits for another replica's lock (set at each batch's
/// start, and again after a ledger's longer turn).
macro_rules! lock_wait {
    () => {
        "SET LOCAL lock_timeout = '300ms'"
    };
}
pub(super) use lock_wait;

/// This process as a replica.
pub struct Replica {
    pub id: String,
    pub ttl_ms: i64,
}

impl Replica {
    /// Registers a new replica (host, process and a random part name it).
    pub fn join(conn: &mut Conn, ttl: std::time::Duration) -> Result<Replica, String> {
        let host = super::target::host_name();
        let pid = i64::from(std::process::id());
        // The start time tells apart two lives of one process id on one host.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let id = format!("{host}-{pid}-{:x}", nanos & 0xffff_ffff_ffff);
        let ttl_ms = ttl.as_millis().clamp(100, i64::MAX as u128) as i64;
        conn.execute(
            concat!(
                "INSERT INTO replicas (id, host, pid, started_at, seen_at, ttl_ms) \
                 VALUES ($1, $2, $3, ",
                now_ms!(),
                ", ",
                now_ms!(),
                ", $4)"
            ),
            &[&id, &host, &pid, &ttl_ms],
        )?;
        Ok(Replica { id, ttl_ms })
    }

    /// Has the server end this replica's session when it sits in a transaction for half
    /// its time to live (at least a second): a replica paused mid-batch (a stopped process,
    /// a frozen machine) would otherwise hold its row locks for as long as it is paused,
    /// and every other replica's writes to those rows would wait on them, heartbeats
    /// included, until the others too were counted as gone. A live replica's batches do
    /// not pause between statements; one that did is rolled back and written again.
    pub fn bound_idle_transactions(&self, conn: &mut Conn) -> Result<(), String> {
        // The server's setting is a 32-bit number of milliseconds.
        let timeout_ms = (self.ttl_ms / 2).clamp(1_000, i64::from(i32::MAX));
        conn.batch(&format!(
            "SET idle_in_transaction_session_timeout = {timeout_ms}"
        ))
    }

    /// Confirms this replica is live (refused once it is not) and frees the inbox claims
    /// and keys of replicas that are not; returns how many messages it freed.
    pub fn heartbeat(&self, conn: &mut Conn) -> StateResult<u64> {
        let beat = conn.execute(
            concat!(
                "UPDATE replicas SET seen_at = ",
                now_ms!(),
                " WHERE id = $1 AND ",
                live!("replicas")
            ),
            &[&self.id],
        )?;
        if beat == 0 {
            return Err(FENCED.into());
        }
        // Keys of replicas that are gone are free anyway (`claim_keys`): the rows go, and
        // so do replicas gone for a week.
        // Rows another replica is changing now are skipped: this is tidying, not a race.
        conn.execute(
            concat!(
                "DELETE FROM key_claims WHERE (sink, key) IN (SELECT c.sink, c.key \
                 FROM key_claims c WHERE c.holder <> $1 AND NOT EXISTS \
                 (SELECT 1 FROM replicas r WHERE r.id = c.holder AND ",
                live!("r"),
                ") FOR UPDATE SKIP LOCKED)"
            ),
            &[&self.id],
        )?;
        conn.execute(
            concat!(
                "DELETE FROM replicas WHERE seen_at < ",
                now_ms!(),
                " - 604800000"
            ),
            &[],
        )?;
        conn.execute(
            concat!(
                "UPDATE inbox SET claimed_by = NULL WHERE id IN (SELECT i.id FROM inbox i \
                 WHERE i.claimed_by IS NOT NULL AND i.claimed_by <> $1 AND NOT EXISTS \
                 (SELECT 1 FROM replicas r WHERE r.id = i.claimed_by AND ",
                live!("r"),
                ") FOR UPDATE SKIP LOCKED)"
            ),
            &[&self.id],
        )
    }

    /// Claims up to `limit` of a flow's unclaimed messages, oldest first. The claims of
    /// replicas that are gone are freed first (waiting for a heartbeat freeing them at the
    /// same moment), so an older message is never passed over for a newer one; with
    /// `again`, this replica's own claims are freed too (nothing of it is in flight: a
    /// message whose completion failed is processed again).
    pub fn claim_messages(
        &self,
        conn: &mut Conn,
        flow: &str,
        limit: usize,
        again: bool,
    ) -> StateResult<Vec<Stored>> {
        conn.execute(
            concat!(
                "UPDATE inbox SET claimed_by = NULL WHERE flow = $1 AND claimed_by IS NOT NULL \
                 AND ((claimed_by = $2 AND $3) OR (claimed_by <> $2 AND NOT EXISTS \
                 (SELECT 1 FROM replicas r WHERE r.id = inbox.claimed_by AND ",
                live!("r"),
                ")))"
            ),
            &[&flow, &self.id, &again],
        )?;
        let rows = conn.query(
            "UPDATE inbox SET claimed_by = $3 WHERE id IN ( \
               SELECT id FROM inbox WHERE flow = $1 AND claimed_by IS NULL \
               ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING id, source, payload, COALESCE(accepted_at, received_at), traceparent",
            &[&flow, &(limit as i64), &self.id],
        )?;
        let mut stored = rows
            .iter()
            .map(|row| {
                Ok(Stored {
                    id: conn.get(row, 0)?,
                    source: conn.get(row, 1)?,
                    payload: conn.get(row, 2)?,
                    received_at: conn.get(row, 3)?,
                    traceparent: conn.get(row, 4)?,
                })
            })
            .collect::<StateResult<Vec<_>>>()?;
        stored.sort_unstable_by_key(|m| m.id);
        Ok(stored)
    }

    /// Takes the keys no live replica holds, then reads the outcomes. A new key is
    /// inserted without touching another's row; a key of a replica that is gone is taken
    /// over only if no one else is taking it (`SKIP LOCKED`).
    pub fn claim_keys(
        &self,
        conn: &mut Conn,
        sink: &str,
        keys: &[String],
    ) -> StateResult<Vec<Claim>> {
        let mut wanted: Vec<std::borrow::Cow<str>> = keys.iter().map(|k| text::stored(k)).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut taken = std::collections::HashSet::new();
        // Sorted, so that two replicas take rows in the same order.
        // A replica that is not live takes nothing.
        let rows = conn.query(
            concat!(
                "INSERT INTO key_claims (sink, key, holder) \
                 SELECT $1::TEXT, k, $2::TEXT FROM UNNEST($3::TEXT[]) AS u(k) \
                 WHERE EXISTS (SELECT 1 FROM replicas m WHERE m.id = $2 AND ",
                live!("m"),
                ") ORDER BY k ON CONFLICT (sink, key) DO NOTHING RETURNING key"
            ),
            &[&sink, &self.id, &wanted],
        )?;
        for row in &rows {
            taken.insert(conn.get::<String>(row, 0)?);
        }
        let rest: Vec<&str> = wanted
            .iter()
            .map(|k| k.as_ref())
            .filter(|k| !taken.contains(*k))
            .collect();
        if !rest.is_empty() {
            let rows = conn.query(
                concat!(
                    "UPDATE key_claims SET holder = $2 WHERE EXISTS (SELECT 1 FROM replicas m \
                       WHERE m.id = $2 AND ",
                    live!("m"),
                    ") AND (sink, key) IN ( \
                       SELECT c.sink, c.key FROM key_claims c WHERE c.sink = $1 AND c.key = ANY($3) \
                       AND (c.holder = $2 OR NOT EXISTS (SELECT 1 FROM replicas r \
                         WHERE r.id = c.holder AND ",
                    live!("r"),
                    ")) ORDER BY c.key FOR UPDATE SKIP LOCKED) RETURNING key"
                ),
                &[&sink, &self.id, &rest],
            )?;
            for row in &rows {
                taken.insert(conn.get::<String>(row, 0)?);
            }
        }
        let outcomes = outcomes(conn, sink, keys)?;
        Ok(keys
            .iter()
            .zip(outcomes)
            .map(
                |(key, outcome)| match taken.contains(text::stored(key).as_ref()) {
                    true => Claim::Free(outcome),
                    false => Claim::Held,
                },
            )
            .collect())
    }

    /// Lets go of this replica's claims on `keys`.
    pub fn release_keys(&self, conn: &mut Conn, sink: &str, keys: &[String]) -> StateResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<std::borrow::Cow<str>> = keys.iter().map(|k| text::stored(k)).collect();
        conn.execute(
            "DELETE FROM key_claims WHERE sink = $1 AND key = ANY($2) AND holder = $3",
            &[&sink, &keys, &self.id],
        )?;
        Ok(())
    }

    /// Takes the lease if its holder is not live (the token goes up), or confirms it; a
    /// replica that is not live itself takes nothing.
    pub fn acquire(&self, conn: &mut Conn, name: &str) -> StateResult<Option<Fence>> {
        // Read first: asking for a lease a live replica holds locks nothing (an upsert
        // would lock its row even when it changes nothing, holding up the holder's fence).
        let current = conn.query_opt(
            concat!(
                "SELECT l.holder, l.token, EXISTS (SELECT 1 FROM replicas r \
                 WHERE r.id = l.holder AND ",
                live!("r"),
                ") FROM leases l WHERE l.name = $1"
            ),
            &[&name],
        )?;
        if let Some(row) = current {
            let (holder, live): (String, bool) = (conn.get(&row, 0)?, conn.get(&row, 2)?);
            match (holder == self.id, live) {
                (true, true) => {
                    let token = conn.get(&row, 1)?;
                    return Ok(Some(Fence {
                        lease: name.to_string(),
                        token,
                    }));
                }
                (false, true) => return Ok(None),
                _ => {}
            }
        }
        let row = conn.query_opt(
            concat!(
                "INSERT INTO leases (name, holder, token, taken_at) \
                 SELECT $1, m.id, 1, ",
                now_ms!(),
                " FROM replicas m WHERE m.id = $2 AND ",
                live!("m"),
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 token = leases.token + 1, taken_at = excluded.taken_at \
                 WHERE leases.holder <> excluded.holder AND NOT EXISTS \
                 (SELECT 1 FROM replicas r WHERE r.id = leases.holder AND ",
                live!("r"),
                ") RETURNING token"
            ),
            &[&name, &self.id],
        )?;
        let row = match row {
            Some(row) => Some(row),
            None => conn.query_opt(
                concat!(
                    "SELECT l.token FROM leases l JOIN replicas r ON r.id = l.holder \
                     WHERE l.name = $1 AND l.holder = $2 AND ",
                    live!("r")
                ),
                &[&name, &self.id],
            )?,
        };
        row.map(|row| {
            Ok(Fence {
                lease: name.to_string(),
                token: conn.get(&row, 0)?,
            })
        })
        .transpose()
    }

    /// Refuses unless `fence` is the lease's holder and token and this replica is live;
    /// the lease's row stays share-locked until the batch ends.
    pub fn fence(&self, conn: &mut Conn, fence: &Fence) -> StateResult<()> {
        let row = conn.query_opt(
            concat!(
                "SELECT l.token FROM leases l JOIN replicas r ON r.id = l.holder \
                 WHERE l.name = $1 AND l.holder = $2 AND ",
                live!("r"),
                " FOR SHARE OF l"
            ),
            &[&fence.lease, &self.id],
        )?;
        let current: Option<i64> = row.map(|row| conn.get(&row, 0)).transpose()?;
        match current {
            Some(token) if token == fence.token => Ok(()),
            _ => Err(format!(
                "lease `{}` is no longer this replica's (fencing token {} is stale); the write is refused",
                fence.lease, fence.token
            )),
        }
    }

    /// Bumps a ledger's version, holding its row until the batch ends (longer than other
    /// locks are waited for: ledger operations queue here, and PostgreSQL's deadlock
    /// check ends a wait that could not finish); returns the new version.
    pub fn ledger_turn(&self, conn: &mut Conn, ledger: &str) -> StateResult<i64> {
        conn.batch("SET LOCAL lock_timeout = '2s'")?;
        let row = conn.query_one(
            "INSERT INTO ledger_versions (ledger, version) VALUES ($1, 1) \
             ON CONFLICT (ledger) DO UPDATE SET version = ledger_versions.version + 1 \
             RETURNING version",
            &[&ledger],
        )?;
        conn.batch(lock_wait!())?;
        conn.get(&row, 0)
    }

    /// Frees this replica's inbox claims and keys and marks it stopped, in one
    /// transaction: no one sees it stopped with messages still claimed.
    pub fn leave(&self, conn: &mut Conn) -> StateResult<()> {
        conn.batch("BEGIN")?;
        let left = (|| {
            conn.execute(
                "UPDATE inbox SET claimed_by = NULL WHERE claimed_by = $1",
                &[&self.id],
            )?;
            conn.execute("DELETE FROM key_claims WHERE holder = $1", &[&self.id])?;
            conn.execute(
                concat!(
                    "UPDATE replicas SET stopped_at = ",
                    now_ms!(),
                    " WHERE id = $1"
                ),
                &[&self.id],
            )
        })();
        match left {
            Ok(_) => conn.batch("COMMIT"),
            Err(err) => {
                let _ = conn.batch("ROLLBACK");
                conn.aborted = false;
                Err(err)
            }
        }
    }
}

/// A ledger's committed version (0 before its first operation).
pub fn ledger_version(conn: &mut Conn, ledger: &str) -> StateResult<i64> {
    let row = conn.query_opt(
        "SELECT version FROM ledger_versions WHERE ledger = $1",
        &[&ledger],
    )?;
    row.map_or(Ok(0), |row| conn.get(&row, 0))
}

/// Whether any replica other than `except` is live.
pub fn others_live(conn: &mut Conn, except: &str) -> StateResult<bool> {
    let row = conn.query_one(
        concat!(
            "SELECT EXISTS (SELECT 1 FROM replicas r WHERE r.id <> $1 AND ",
            live!("r"),
            ")"
        ),
        &[&except],
    )?;
    conn.get(&row, 0)
}

/// The recorded outcomes of `keys` of one sink, in their order.
fn outcomes(
    conn: &mut Conn,
    sink: &str,
    keys: &[String],
) -> StateResult<Vec<Option<OutcomeStatus>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let stored: Vec<std::borrow::Cow<str>> = keys.iter().map(|k| text::stored(k)).collect();
    let rows = conn.query(
        "SELECT key, status FROM outcomes WHERE sink = $1 AND key = ANY($2)",
        &[&sink, &stored],
    )?;
    let mut found = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let status: String = conn.get(row, 1)?;
        found.insert(conn.get::<String>(row, 0)?, OutcomeStatus::parse(&status));
    }
    Ok(stored
        .iter()
        .map(|key| found.get(key.as_ref()).copied().flatten())
        .collect())
}

/// Replicas (newest first, the gone ones of the last day), leases and backlog.
pub fn status(conn: &mut Conn) -> StateResult<Status> {
    let rows = conn.query(
        concat!(
            "SELECT r.id, r.host, r.pid, r.started_at, r.seen_at, r.ttl_ms, r.stopped_at, ",
            live!("r"),
            ", (SELECT COUNT(*) FROM inbox i WHERE i.claimed_by = r.id), \
               (SELECT COUNT(*) FROM key_claims k WHERE k.holder = r.id) \
             FROM replicas r WHERE r.seen_at > ",
            now_ms!(),
            " - 86400000 ORDER BY r.started_at DESC, r.id"
        ),
        &[],
    )?;
    let mut replicas = Vec::with_capacity(rows.len());
    for row in &rows {
        replicas.push(ReplicaRow {
            id: conn.get(row, 0)?,
            host: conn.get(row, 1)?,
            pid: conn.get(row, 2)?,
            started_at: conn.get(row, 3)?,
            seen_at: conn.get(row, 4)?,
            ttl_ms: conn.get(row, 5)?,
            stopped_at: conn.get(row, 6)?,
            live: conn.get(row, 7)?,
            claimed: conn.get(row, 8)?,
            keys: conn.get(row, 9)?,
        });
    }
    let rows = conn.query(
        concat!(
            "SELECT l.name, l.holder, l.token, l.taken_at, EXISTS (SELECT 1 FROM replicas r \
             WHERE r.id = l.holder AND ",
            live!("r"),
            ") FROM leases l ORDER BY l.name"
        ),
        &[],
    )?;
    let mut leases = Vec::with_capacity(rows.len());
    for row in &rows {
        leases.push(LeaseRow {
            name: conn.get(row, 0)?,
            holder: conn.get(row, 1)?,
            token: conn.get(row, 2)?,
            taken_at: conn.get(row, 3)?,
            held: conn.get(row, 4)?,
        });
    }
    let rows = conn.query(
        "SELECT flow, COUNT(*), COUNT(claimed_by) FROM inbox GROUP BY flow ORDER BY flow",
        &[],
    )?;
    let mut backlog = Vec::with_capacity(rows.len());
    for row in &rows {
        backlog.push((conn.get(row, 0)?, conn.get(row, 1)?, conn.get(row, 2)?));
    }
    Ok(Status {
        replicas,
        leases,
        backlog,
    })
}
