//! The checks a SQLite state file passes before anything writes to it: its header and
//! size, the write-ahead log against how the last writer stopped, the schema version and
//! its pages. Nothing here writes to the file or its log.

use super::error::StateError;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};

/// The layout version this runtime writes (`meta.schema_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// `meta.stop` while a writer has the file open, and after it stopped cleanly.
pub const RUNNING: &str = "running";
pub const CLEAN: &str = "clean";

/// The first 16 bytes of every SQLite database.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What the checks found.
#[derive(Debug, Default)]
pub struct Inspection {
    /// False for a new state (no file yet).
    pub exists: bool,
    /// `None` for a file from before versions were kept, or an empty database.
    pub schema_version: Option<i64>,
    /// How the last writer stopped, as the database file says (`None`: not recorded).
    pub last_stop: Option<String>,
    /// Size of the write-ahead log, when there is one.
    pub wal_bytes: Option<u64>,
}

/// The write-ahead log of a state file: `PATH-wal`.
pub fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Checks everything but the pages: an absent file is a new state; an empty, foreign,
/// truncated or newer file is refused, and so is a log that is missing after an unclean
/// stop or that appeared after a clean one.
pub fn inspect(path: &Path) -> Result<Inspection, StateError> {
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let wal_bytes = match std::fs::metadata(wal_path(path)) {
        Ok(meta) => Some(meta.len()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(io(err)),
    };
    let size = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return match wal_bytes {
                Some(bytes) if bytes > 0 => Err(StateError::WalWithoutDatabase {
                    path: path.to_path_buf(),
                }),
                _ => Ok(Inspection::default()),
            };
        }
        Err(err) => return Err(io(err)),
    };
    let logged = wal_bytes.is_some_and(|bytes| bytes > 0);
    if size == 0 {
        if !logged {
            return Err(StateError::Empty {
                path: path.to_path_buf(),
            });
        }
        // A new file whose first pages are all still in its log: the page check reads both.
        return Ok(Inspection {
            exists: true,
            wal_bytes,
            ..Inspection::default()
        });
    }
    check_header(path, size, logged)?;
    let mut found = Inspection {
        exists: true,
        wal_bytes,
        ..Inspection::default()
    };
    match read_meta(&immutable(path)) {
        Ok(Meta::Ours {
            schema_version,
            stop,
        }) => {
            found.schema_version = schema_version;
            found.last_stop = stop;
        }
        Ok(Meta::Empty) => {}
        Ok(Meta::Foreign) => {
            return Err(StateError::Foreign {
                path: path.to_path_buf(),
            })
        }
        // The file alone may be mid-checkpoint after a crash: its log completes it, and
        // the page check that follows reads both.
        Err(_) if logged => return Ok(found),
        Err(detail) => {
            return Err(StateError::Corrupt {
                path: path.to_path_buf(),
                detail,
            })
        }
    }
    if let Some(version) = found.schema_version.filter(|v| *v > SCHEMA_VERSION) {
        return Err(StateError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    match found.last_stop.as_deref() {
        Some(RUNNING) if wal_bytes.is_none() => Err(StateError::WalMissing {
            path: path.to_path_buf(),
        }),
        // Content after a clean stop is this file's when every page it holds is already in
        // the file (a clean stop killed between its last checkpoint's copy and the log's
        // truncation), or when a writer of this file began it and stopped before its
        // first checkpoint: the log itself then says so.
        Some(CLEAN) if logged && !wal_is_redundant(path) => match read_meta(&read_only(path)) {
            Ok(Meta::Ours { stop, .. }) if stop.as_deref() == Some(RUNNING) => Ok(found),
            seen => Err(StateError::WalForeign {
                path: path.to_path_buf(),
                detail: match seen {
                    Ok(Meta::Ours { stop, .. }) => format!(
                        "read with it, the file says it stopped {}",
                        stop.as_deref().unwrap_or("unrecorded")
                    ),
                    Ok(_) => "read with it, the file holds no omniflow state".into(),
                    Err(error) => format!("it cannot be read: {error}"),
                },
            }),
        },
        _ => Ok(found),
    }
}

/// The header names a SQLite database whose pages are all there.
fn check_header(path: &Path, size: u64, logged: bool) -> Result<(), StateError> {
    use std::io::Read;
    let mut header = [0u8; 100];
    let read = std::fs::File::open(path)
        .and_then(|mut file| file.read(&mut header))
        .map_err(|source| StateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if read < MAGIC.len() || &header[..16] != MAGIC {
        return Err(StateError::NotSqlite {
            path: path.to_path_buf(),
            detail: "it does not start with the SQLite header".into(),
        });
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        n => {
            return Err(StateError::NotSqlite {
                path: path.to_path_buf(),
                detail: format!("its header names a page size of {n}"),
            })
        }
    };
    let truncated = |expected| StateError::Truncated {
        path: path.to_path_buf(),
        size,
        expected,
    };
    if size < page_size || size % page_size != 0 {
        return Err(truncated(size.div_ceil(page_size).max(1) * page_size));
    }
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    // The page count is valid when the change counter matches `version-valid-for`; a
    // checkpoint interrupted by a crash may leave the file short until its log completes it.
    let pages = u64::from(word(28));
    if !logged && word(24) == word(92) && pages > 0 && size < pages * page_size {
        return Err(truncated(pages * page_size));
    }
    Ok(())
}

/// True when every page the log commits is already, byte for byte, in the database file
/// (frames of the current log generation up to its last commit; a page's last frame wins).
fn wal_is_redundant(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    const HEADER: usize = 32;
    const FRAME_HEADER: usize = 24;
    let Ok(wal) = std::fs::read(wal_path(path)) else {
        return false;
    };
    let word = |at: usize| u32::from_be_bytes([wal[at], wal[at + 1], wal[at + 2], wal[at + 3]]);
    if wal.len() < HEADER || !matches!(word(0), 0x377f_0682 | 0x377f_0683) {
        return false;
    }
    let page_size = word(8) as usize;
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return false;
    }
    let (salt1, salt2) = (word(16), word(20));
    // The last committed frame of each page, in this generation of the log.
    let mut pages = std::collections::BTreeMap::new();
    let mut pending = Vec::new();
    let mut at = HEADER;
    while at + FRAME_HEADER + page_size <= wal.len() {
        if word(at + 8) != salt1 || word(at + 12) != salt2 {
            break;
        }
        pending.push((word(at), at + FRAME_HEADER));
        if word(at + 4) != 0 {
            pages.extend(pending.drain(..));
        }
        at += FRAME_HEADER + page_size;
    }
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut page = vec![0u8; page_size];
    pages.iter().all(|(&number, &offset)| {
        let position = u64::from(number.saturating_sub(1)) * page_size as u64;
        file.seek(SeekFrom::Start(position)).is_ok()
            && file.read_exact(&mut page).is_ok()
            && page[..] == wal[offset..offset + page_size]
    })
}

/// What a file's tables say.
enum Meta {
    /// No tables at all: a database nothing has written yet.
    Empty,
    /// Tables, none of them omniflow's.
    Foreign,
    /// An omniflow state; files from before `meta` have neither value.
    Ours {
        schema_version: Option<i64>,
        stop: Option<String>,
    },
}

fn read_meta(conn: &rusqlite::Result<Connection>) -> Result<Meta, String> {
    let conn = conn.as_ref().map_err(|e| e.to_string())?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| e.to_string())?;
    if tables.is_empty() {
        return Ok(Meta::Empty);
    }
    if !tables.iter().any(|t| t == "inbox") {
        return Ok(Meta::Foreign);
    }
    if !tables.iter().any(|t| t == "meta") {
        return Ok(Meta::Ours {
            schema_version: None,
            stop: None,
        });
    }
    let value = |key: &str| {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
            r.get::<_, String>(0)
        })
        .optional()
        .map_err(|e| e.to_string())
    };
    Ok(Meta::Ours {
        schema_version: value("schema_version")?.and_then(|v| v.parse().ok()),
        stop: value("stop")?,
    })
}

/// The database file alone, as it is on disk: no log, no locks, nothing written.
fn immutable(path: &Path) -> rusqlite::Result<Connection> {
    let mut uri = String::from("file:");
    for byte in path.display().to_string().bytes() {
        match byte {
            b'%' | b'?' | b'#' => uri.push_str(&format!("%{byte:02X}")),
            _ => uri.push(char::from(byte)),
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// A read-only connection: sees the file with its log, never checkpoints or writes, and
/// never waits for or holds up a writer.
pub fn read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Checks the pages (with the log) through a read-only connection: `quick_check`, or the
/// full `integrity_check` when `full`.
pub fn verify(path: &Path, full: bool) -> Result<(), StateError> {
    let conn = read_only(path).map_err(|e| StateError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    verify_with(&conn, path, full)
}

/// [`verify`] over an open connection to `path`.
pub fn verify_with(conn: &Connection, path: &Path, full: bool) -> Result<(), StateError> {
    let corrupt = |detail: String| StateError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let pragma = if full {
        "PRAGMA integrity_check(20)"
    } else {
        "PRAGMA quick_check(20)"
    };
    let rows: Vec<String> = conn
        .prepare(pragma)
        .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| corrupt(e.to_string()))?;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        Err(corrupt(rows.join("; ")))
    }
}

/// What a state holds, for `omniflow state check`.
#[derive(Debug, Default)]
pub struct Counts {
    /// Messages waiting in the inbox.
    pub inbox: i64,
    /// Recorded outcomes (sinks' and sources' ids).
    pub outcomes: i64,
    /// Dead letters neither replayed nor discarded.
    pub dead_letters_waiting: i64,
    pub dead_letters: i64,
}

/// Counts the rows of a state through a read-only connection.
pub fn counts(path: &Path) -> Result<Counts, StateError> {
    let conn = read_only(path).map_err(|e| StateError::Backend(e.to_string()))?;
    counts_with(&conn, path)
}

/// [`counts`] over an open connection to `path`.
pub fn counts_with(conn: &Connection, path: &Path) -> Result<Counts, StateError> {
    let count = |sql: &str| {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map_err(|e| StateError::Backend(format!("state `{}`: {e}", path.display())))
    };
    Ok(Counts {
        inbox: count("SELECT COUNT(*) FROM inbox")?,
        outcomes: count("SELECT COUNT(*) FROM outcomes")?,
        dead_letters_waiting: count(
            "SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NULL AND discarded_at IS NULL",
        )?,
        dead_letters: count("SELECT COUNT(*) FROM dead_letters")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state stopped cleanly and then written by another connection, its files copied as
    /// a crash would leave them; `copied` lets that connection's checkpoint copy its log
    /// into the file first (without truncating the log).
    fn written_after_a_clean_stop(name: &str, copied: bool) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("omniflow-check-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let live = dir.join("live.db");
        drop(crate::SqliteBackend::open(&live.display().to_string()).unwrap());
        let conn = Connection::open(&live).unwrap();
        conn.execute("INSERT INTO cursors VALUES ('f', 's', 'k', 'v')", [])
            .unwrap();
        if copied {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                .unwrap();
        }
        let copy = dir.join("copy.db");
        std::fs::copy(&live, &copy).unwrap();
        std::fs::copy(wal_path(&live), wal_path(&copy)).unwrap();
        drop(conn);
        copy
    }

    #[test]
    fn a_log_whose_pages_are_all_in_a_cleanly_stopped_file_is_accepted() {
        let copy = written_after_a_clean_stop("copied", true);
        assert!(std::fs::metadata(wal_path(&copy)).unwrap().len() > 0);
        let found = inspect(&copy).unwrap();
        assert_eq!(found.last_stop.as_deref(), Some(CLEAN));
        let _ = std::fs::remove_dir_all(copy.parent().unwrap());
    }

    #[test]
    fn a_log_with_pages_written_after_a_clean_stop_is_refused_as_foreign() {
        let copy = written_after_a_clean_stop("foreign", false);
        let refused = inspect(&copy).unwrap_err();
        assert!(
            matches!(refused, StateError::WalForeign { .. }),
            "{refused}"
        );
        let _ = std::fs::remove_dir_all(copy.parent().unwrap());
    }
}
