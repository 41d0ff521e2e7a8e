//! One writer per PostgreSQL state, or many replicas: a session-level advisory lock on
//! the process's own connection, which the server releases when that connection ends,
//! however it ends. A writer that owns the state alone takes it exclusively; replicas take
//! it shared, so that neither kind starts while the other runs.

use super::conn::Conn;
use crate::error::StateError;
use std::time::{Duration, Instant};

/// The advisory lock key of the writer (within the state's database).
pub const WRITER_LOCK: i64 = 0x6f6d_6e69_666c_6f02;

/// How often a waiting process tries the lock again.
const RETRY: Duration = Duration::from_millis(100);

/// Takes the writer's lock on `conn`'s session, waiting up to `wait` for its holder to
/// let go (logging who it waits for).
pub fn acquire(conn: &mut Conn, wait: Duration) -> Result<(), StateError> {
    acquire_as(conn, wait, false)
}

/// Takes the lock as a replica (shared with other replicas), waiting up to `wait` for a
/// writer that owns the state alone to let go.
pub fn acquire_shared(conn: &mut Conn, wait: Duration) -> Result<(), StateError> {
    acquire_as(conn, wait, true)
}

fn acquire_as(conn: &mut Conn, wait: Duration, shared: bool) -> Result<(), StateError> {
    let started = Instant::now();
    let mut logged = false;
    let sql = match shared {
        true => "SELECT pg_try_advisory_lock_shared($1)",
        false => "SELECT pg_try_advisory_lock($1)",
    };
    loop {
        let row = conn
            .query_one(sql, &[&WRITER_LOCK])
            .map_err(StateError::Backend)?;
        if conn.get::<bool>(&row, 0).map_err(StateError::Backend)? {
            return Ok(());
        }
        let holder = holder(conn).unwrap_or_else(|| "another omniflow".into());
        if started.elapsed() >= wait {
            return Err(StateError::InUse {
                path: conn.target.shown.clone().into(),
                holder,
            });
        }
        if !logged {
            tracing::info!(%holder, wait_s = wait.as_secs_f64(), "state in use; waiting for its holder to stop");
            logged = true;
        }
        std::thread::sleep(RETRY);
    }
}

/// Who holds the writer's lock of the state now, if anyone: the server session and the
/// name its client gave (omniflow names its process and host).
pub fn holder(conn: &mut Conn) -> Option<String> {
    // A bigint key is kept as two halves: classid (high) and objid (low), objsubid 1.
    let row = conn
        .query_opt(
            "SELECT a.pid, COALESCE(a.application_name, ''), COALESCE(host(a.client_addr), 'local'), \
                    COALESCE(to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '?') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND l.classid::bigint = ($1::bigint >> 32) AND l.objid::bigint = ($1::bigint & 4294967295) \
             LIMIT 1",
            &[&WRITER_LOCK],
        )
        .ok()??;
    let pid: i32 = row.try_get(0).ok()?;
    let name: String = row.try_get(1).ok()?;
    let from: String = row.try_get(2).ok()?;
    let since: String = row.try_get(3).ok()?;
    let name = if name.is_empty() {
        "a client".into()
    } else {
        name
    };
    Some(format!(
        "another omniflow ({name}, server session {pid} from {from} since {since})"
    ))
}
