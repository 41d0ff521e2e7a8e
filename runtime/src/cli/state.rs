//! `omniflow state`: `check` runs the start-up checks of a state file and its full
//! integrity check and counts what it holds; `backup PATH` copies a state, running or not,
//! with SQLite's online backup into one self-contained file (both only read the state);
//! `accept-lost-wal` lets a state whose log was deleted after a crash run as it is. On a
//! PostgreSQL state, `check` reads the schema version, the writer's lock, the last stop,
//! the rows' consistency and the counts.

use omniflow_state::{self as state, check};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// State backend: sqlite:PATH or postgres://USER@HOST[:PORT]/DATABASE.
    #[arg(long, default_value = "sqlite:omniflow.db", global = true)]
    state: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Check the state file (header, write-ahead log, schema version, every page) and
    /// count what it holds; exit 1 when it cannot be used.
    Check,
    /// Copy the state into a new file PATH, safely while a runtime runs.
    Backup { path: PathBuf },
    /// Accept that a state refused for its deleted write-ahead log lost the work committed
    /// since its last checkpoint, and let it run as it is.
    AcceptLostWal,
}

pub fn run(args: Args) -> u8 {
    if state::postgres::is_postgres(&args.state) {
        return match args.command {
            Command::Check => check_postgres(&args.state),
            Command::Backup { .. } => {
                eprintln!("error: `state backup` copies a SQLite file; back a PostgreSQL state up with pg_dump");
                2
            }
            Command::AcceptLostWal => {
                eprintln!("error: `state accept-lost-wal` is for a SQLite file; a PostgreSQL state has no log of its own to lose");
                2
            }
        };
    }
    let path = match state::sqlite_path(&args.state) {
        Ok(path) => path,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    match args.command {
        Command::Check => check_state(path),
        Command::Backup { path: target } => match backup(path, &target) {
            Ok(()) => 0,
            Err(err) => {
                eprintln!("error: {err}");
                1
            }
        },
        Command::AcceptLostWal => {
            let accepted = state::lock::acquire(path, std::time::Duration::ZERO)
                .and_then(|_lock| state::SqliteBackend::accept_lost_wal(path));
            match accepted {
                Ok(()) => {
                    println!(
                        "`{}` runs as it is: the work committed since its last checkpoint is gone",
                        path.display()
                    );
                    0
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    1
                }
            }
        }
    }
}

fn check_state(path: &Path) -> u8 {
    println!("state      {}", path.display());
    match state::lock::holder(path) {
        Some(holder) => println!("in use by  {holder}"),
        None => println!("in use by  nobody"),
    }
    let found = match check::inspect(path) {
        Ok(found) if !found.exists => {
            println!("no state file (a run would start a new one)");
            return 1;
        }
        Ok(found) => found,
        Err(err) => {
            println!("refused    {err}");
            return 1;
        }
    };
    let version = found
        .schema_version
        .map_or("none (from before versions were kept)".into(), |v| {
            v.to_string()
        });
    println!(
        "schema     {version} (this omniflow writes {})",
        check::SCHEMA_VERSION
    );
    println!(
        "last stop  {}",
        match found.last_stop.as_deref() {
            Some(check::CLEAN) => "clean",
            Some(check::RUNNING) => "not clean (running, or stopped by a crash)",
            _ => "not recorded",
        }
    );
    println!(
        "wal        {}",
        found
            .wal_bytes
            .map_or("none".into(), |bytes| format!("{bytes} bytes"))
    );
    if let Err(err) = check::verify(path, true) {
        println!("refused    {err}");
        return 1;
    }
    println!("integrity  ok");
    match check::counts(path) {
        Ok(counts) => {
            println!("inbox      {} messages waiting", counts.inbox);
            println!("outcomes   {}", counts.outcomes);
            println!(
                "dead       {} letters waiting, {} in all",
                counts.dead_letters_waiting, counts.dead_letters
            );
            0
        }
        Err(err) => {
            println!("refused    {err}");
            1
        }
    }
}

fn check_postgres(spec: &str) -> u8 {
    let report = match state::postgres::check::inspect(spec) {
        Ok(report) => report,
        Err(err) => {
            println!("refused    {err}");
            return 1;
        }
    };
    println!("state      {}", report.state);
    println!(
        "in use by  {}",
        report.holder.as_deref().unwrap_or("nobody")
    );
    let Some(version) = report.schema_version else {
        println!("no state in this database (a run would start a new one)");
        return 1;
    };
    println!(
        "schema     {version} (this omniflow writes {})",
        state::postgres::schema::VERSION
    );
    println!(
        "last stop  {}",
        match report.last_stop.as_deref() {
            Some(check::CLEAN) => "clean",
            Some(check::RUNNING) => "not clean (running, or stopped by a crash)",
            _ => "not recorded",
        }
    );
    if !report.problems.is_empty() {
        for problem in &report.problems {
            println!("refused    {problem}");
        }
        return 1;
    }
    println!("integrity  ok");
    if let Some(counts) = report.counts {
        println!("inbox      {} messages waiting", counts.inbox);
        println!("outcomes   {}", counts.outcomes);
        println!(
            "dead       {} letters waiting, {} in all",
            counts.dead_letters_waiting, counts.dead_letters
        );
    }
    0
}

/// Copies the state page by page in one read transaction (a consistent snapshot that a
/// running writer does not restart), marks the copy stopped cleanly and checks it.
fn backup(path: &Path, target: &Path) -> Result<(), String> {
    // The state's own companions (log, shared memory, lock) are never a backup's place.
    let state = path.as_os_str().to_string_lossy();
    let named = target.as_os_str().to_string_lossy();
    if ["", "-wal", "-shm", "-journal", ".lock"]
        .iter()
        .any(|suffix| named == format!("{state}{suffix}"))
    {
        return Err(format!(
            "`{}` belongs to the state itself; name a new file for the backup",
            target.display()
        ));
    }
    if target.exists() {
        return Err(format!(
            "`{}` exists; name a new file for the backup",
            target.display()
        ));
    }
    if !check::inspect(path).map_err(|e| e.to_string())?.exists {
        return Err(format!("no state at `{}`", path.display()));
    }
    let source = check::read_only(path).map_err(|e| e.to_string())?;
    let mut copy =
        rusqlite::Connection::open(target).map_err(|e| format!("`{}`: {e}", target.display()))?;
    {
        let backup = rusqlite::backup::Backup::new(&source, &mut copy)
            .map_err(|e| format!("backup: {e}"))?;
        // All pages in one step: one snapshot, however busy the writer is.
        backup.step(-1).map_err(|e| format!("backup: {e}"))?;
    }
    drop(source);
    copy.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
         INSERT OR REPLACE INTO meta (key, value) VALUES ('stop', '{}')",
        check::CLEAN
    ))
    .map_err(|e| format!("`{}`: {e}", target.display()))?;
    check::verify_with(&copy, target, true).map_err(|e| e.to_string())?;
    let counts = check::counts_with(&copy, target).map_err(|e| e.to_string())?;
    // The last connection: its log is checkpointed into the copy and removed.
    drop(copy);
    println!(
        "backed up `{}` to `{}`: {} messages waiting, {} outcomes, {} dead letters ({} waiting)",
        path.display(),
        target.display(),
        counts.inbox,
        counts.outcomes,
        counts.dead_letters,
        counts.dead_letters_waiting
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_never_lands_on_the_state_or_its_companions() {
        let state = std::env::temp_dir().join(format!("omniflow-backup-{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm", "-journal", ".lock"] {
            let target = PathBuf::from(format!("{}{suffix}", state.display()));
            let err = backup(&state, &target).unwrap_err();
            assert!(
                err.contains("belongs to the state itself"),
                "{suffix}: {err}"
            );
        }
    }
}
