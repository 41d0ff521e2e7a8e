//! Why a state file cannot be used, each with what to do about it.

use std::path::PathBuf;

/// What to do about a damaged state file.
const RESTORE: &str = "restore the last backup (`omniflow state backup` makes one) or move the \
file away to start empty on purpose; `omniflow state check` tells more";

/// A state file that cannot be opened for writing (or inspected).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "state `{path}` is in use by {holder}; stop it first, or let this process wait for \
         it with --state-wait"
    )]
    InUse { path: PathBuf, holder: String },
    #[error("state `{path}` is an empty file (0 bytes), not a new state (only an absent file is); {restore}", restore = RESTORE)]
    Empty { path: PathBuf },
    #[error("state `{path}` is not a SQLite database ({detail}); {restore}", restore = RESTORE)]
    NotSqlite { path: PathBuf, detail: String },
    #[error(
        "state `{path}` is truncated: {size} bytes where its header promises {expected}; {restore}", restore = RESTORE)]
    Truncated {
        path: PathBuf,
        size: u64,
        expected: u64,
    },
    #[error("state `{path}` is corrupted: {detail}; {restore}", restore = RESTORE)]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "state `{path}` was not stopped cleanly and its write-ahead log `{path}-wal` is gone: \
         the last committed work (messages, outcomes, dead letters) would be lost; put the \
         -wal file back beside it, or {restore}, or run it as it is with `omniflow state \
         accept-lost-wal`", restore = RESTORE)]
    WalMissing { path: PathBuf },
    #[error(
        "state `{path}` was stopped cleanly, yet a write-ahead log `{path}-wal` with content \
         lies beside it ({detail}): close any other SQLite client of the file (closing applies its log), \
         and if none is open, the log is not this file's (a restored copy beside an old log?): \
         move the -wal and -shm files away"
    )]
    WalForeign { path: PathBuf, detail: String },
    #[error(
        "state `{path}` has schema version {found}; this omniflow knows up to {supported}: \
         run the newer omniflow that wrote it"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("`{path}` is a SQLite database of another application (no omniflow tables); point --state at omniflow's own file")]
    Foreign { path: PathBuf },
    #[error("a write-ahead log `{path}-wal` lies where no state `{path}` is; {restore}", restore = RESTORE)]
    WalWithoutDatabase { path: PathBuf },
    #[error("state `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Backend(String),
}

/// A SQLite error as the text of a failed state request.
pub(crate) fn err(e: rusqlite::Error) -> String {
    format!("state store: {e}")
}
