//! `omniflow state check` on PostgreSQL: the schema version, who holds the writer's lock,
//! how the last writer stopped, the tables the schema promises, the rows' own consistency
//! and what the state holds. Nothing here writes.

use super::{conn::Conn, lock, schema, PostgresBackend};
use crate::check::Counts;
use crate::error::StateError;

/// What the checks found.
#[derive(Debug, Default)]
pub struct Report {
    /// The URL as shown (no password).
    pub state: String,
    /// `None`: the database holds no omniflow state.
    pub schema_version: Option<i32>,
    /// Who holds the writer's lock now.
    pub holder: Option<String>,
    /// How the last writer stopped (`meta.stop`).
    pub last_stop: Option<String>,
    /// What is wrong, one line each; empty when the state may be used.
    pub problems: Vec<String>,
    /// What the state holds (when its tables are there).
    pub counts: Option<Counts>,
}

/// The tables of the current schema.
const TABLES: &[&str] = &[
    "meta",
    "inbox",
    "cursors",
    "outcomes",
    "dead_letters",
    "ledger_stock",
    "ledger_moves",
    "ledger_holds",
    "ledger_rules",
    "ledger_publications",
    "lineage",
    "lineage_terms",
];

/// Consistency of the rows: each query counts the rows that break one rule.
const RULES: &[(&str, &str)] = &[
    (
        "outcomes with an unknown status",
        "SELECT COUNT(*) FROM outcomes WHERE status NOT IN ('delivered', 'dead')",
    ),
    (
        "dead letters both replayed and discarded",
        "SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NOT NULL AND discarded_at IS NOT NULL",
    ),
    (
        "ledger movements whose position row is missing",
        "SELECT COUNT(*) FROM ledger_moves m WHERE NOT EXISTS \
         (SELECT 1 FROM ledger_stock s WHERE s.id = m.position AND s.ledger = m.ledger)",
    ),
    (
        "inbox messages above the id sequence (the next message would collide)",
        "SELECT COUNT(*) FROM inbox WHERE id > (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END \
         FROM inbox_id_seq)",
    ),
];

/// Runs the checks over a read-only session.
pub fn inspect(spec: &str) -> Result<Report, StateError> {
    let mut conn = PostgresBackend::connect(spec)?;
    conn.batch("SET default_transaction_read_only = on")
        .map_err(StateError::Backend)?;
    let mut report = Report {
        state: conn.target.shown.clone(),
        holder: lock::holder(&mut conn),
        ..Report::default()
    };
    report.schema_version = schema::version(&mut conn).map_err(StateError::Backend)?;
    let Some(version) = report.schema_version else {
        return Ok(report);
    };
    if let Err(newer) = schema::refuse_newer(&conn, Some(version)) {
        report.problems.push(newer.to_string());
        return Ok(report);
    }
    let missing = missing_tables(&mut conn).map_err(StateError::Backend)?;
    if !missing.is_empty() {
        report
            .problems
            .push(format!("tables missing: {}", missing.join(", ")));
        return Ok(report);
    }
    let stop = conn
        .query_opt("SELECT value FROM meta WHERE key = 'stop'", &[])
        .map_err(StateError::Backend)?;
    report.last_stop = stop
        .map(|row| conn.get(&row, 0))
        .transpose()
        .map_err(StateError::Backend)?;
    for (rule, sql) in RULES {
        let row = conn.query_one(sql, &[]).map_err(StateError::Backend)?;
        let broken: i64 = conn.get(&row, 0).map_err(StateError::Backend)?;
        if broken > 0 {
            report.problems.push(format!("{broken} {rule}"));
        }
    }
    report.counts = Some(counts(&mut conn).map_err(StateError::Backend)?);
    Ok(report)
}

fn missing_tables(conn: &mut Conn) -> Result<Vec<String>, String> {
    let names: Vec<&str> = TABLES.to_vec();
    let rows = conn.query(
        "SELECT name FROM UNNEST($1::TEXT[]) AS t(name) WHERE to_regclass(name) IS NULL",
        &[&names],
    )?;
    rows.iter().map(|row| conn.get(row, 0)).collect()
}

fn counts(conn: &mut Conn) -> Result<Counts, String> {
    let row = conn.query_one(
        "SELECT (SELECT COUNT(*) FROM inbox), (SELECT COUNT(*) FROM outcomes), \
         (SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NULL AND discarded_at IS NULL), \
         (SELECT COUNT(*) FROM dead_letters)",
        &[],
    )?;
    Ok(Counts {
        inbox: conn.get(&row, 0)?,
        outcomes: conn.get(&row, 1)?,
        dead_letters_waiting: conn.get(&row, 2)?,
        dead_letters: conn.get(&row, 3)?,
    })
}
