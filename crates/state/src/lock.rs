//! One writer per state file: an advisory lock (`flock`) on `STATE.lock` beside it, which
//! the kernel releases when the holder dies, however it dies. The lock file holds the
//! holder's details as text so that a refused process can name it. A PostgreSQL state's
//! lock is a session lock in the backend's own connection instead.

use super::error::StateError;
use rustix::fs::{flock, FlockOperation};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a waiting process tries the lock again.
const RETRY: Duration = Duration::from_millis(100);

/// The held lock of a state; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct StateLock {
    held: Held,
}

/// Where a writer's lock lives.
#[derive(Debug)]
enum Held {
    /// A state file's lock file, locked with `flock`.
    File { file: File, path: PathBuf },
    /// A PostgreSQL state's session lock, held by the backend's own connection: it is
    /// released when the backend is dropped (after the store closes), not by this value.
    Backend,
}

impl StateLock {
    /// The lock of a state whose backend holds it itself.
    pub fn in_backend() -> StateLock {
        StateLock {
            held: Held::Backend,
        }
    }

    /// The lock file; `None` when the backend holds the lock.
    pub fn path(&self) -> Option<&Path> {
        match &self.held {
            Held::File { path, .. } => Some(path),
            Held::Backend => None,
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // The file stays: removing it while another process waits on its inode would let
        // a third process lock a new file beside a holder of the old one.
        if let Held::File { file, .. } = &self.held {
            let _ = flock(file, FlockOperation::Unlock);
        }
    }
}

/// The lock file of a state file: `PATH.lock`.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the state file's lock, waiting up to `wait` for its holder to release it
/// (logging who it waits for), and writes this process's details into the lock file.
pub fn acquire(state: &Path, wait: Duration) -> Result<StateLock, StateError> {
    let path = lock_path(state);
    let io = |source| StateError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    let started = Instant::now();
    // A moment at least: `omniflow state check` may be looking at the lock just now.
    let wait = wait.max(RETRY * 3);
    let mut logged = false;
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => break,
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let holder = holder_text(&mut file);
                if started.elapsed() >= wait {
                    return Err(StateError::InUse {
                        path: state.to_path_buf(),
                        holder: describe(&holder),
                    });
                }
                if !logged {
                    tracing::info!(holder = %describe(&holder), wait_s = wait.as_secs_f64(), "state file in use; waiting for its holder to stop");
                    logged = true;
                }
                std::thread::sleep(RETRY);
            }
            Err(errno) => return Err(io(errno.into())),
        }
    }
    let details = format!(
        "pid: {}\nhost: {}\nstarted: {}\ncommand: {}\n",
        std::process::id(),
        host_name(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(details.as_bytes()))
        .and_then(|()| file.sync_data())
        .map_err(io)?;
    Ok(StateLock {
        held: Held::File { file, path },
    })
}

/// Who holds the state file's lock now, if anyone (without taking it).
pub fn holder(state: &Path) -> Option<String> {
    let mut file = File::open(lock_path(state)).ok()?;
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = flock(&file, FlockOperation::Unlock);
            None
        }
        Err(_) => Some(describe(&holder_text(&mut file))),
    }
}

/// The lock file's text (empty while its holder has not written it yet).
fn holder_text(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    text
}

/// One line naming the holder: PID, host, start time and command line.
fn describe(text: &str) -> String {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
            .unwrap_or("?")
            .trim()
            .to_string()
    };
    if text.trim().is_empty() {
        return "another process (its details are not written yet)".into();
    }
    format!(
        "PID {} on host {} since {} ({})",
        field("pid"),
        field("host"),
        field("started"),
        field("command")
    )
}

/// This machine's name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Parses a wait like `30s`, `500ms`, `2m` or a number of seconds.
pub fn parse_wait(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 500ms or 2m"))?;
    match &text[digits.len()..] {
        "" | "s" => Ok(Duration::from_secs(number)),
        "ms" => Ok(Duration::from_millis(number)),
        "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
        unit => Err(format!("unknown unit `{unit}` in `{text}`; use ms, s or m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_first_holder_and_taken_once_released() {
        let dir = std::env::temp_dir().join(format!("omniflow-lock-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let state = dir.join("state.db");
        let first = acquire(&state, Duration::ZERO).unwrap();
        // flock locks belong to the open file: a second open in the same process conflicts.
        let refused = acquire(&state, Duration::from_millis(150)).unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains(&format!("PID {}", std::process::id())),
            "{message}"
        );
        assert_eq!(
            holder(&state).map(|h| h.contains("PID")),
            Some(true),
            "{message}"
        );
        drop(first);
        assert!(holder(&state).is_none());
        assert!(acquire(&state, Duration::ZERO).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn waits_are_read_in_their_units() {
        assert_eq!(parse_wait("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_wait("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_wait("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_wait("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_wait("2h").is_err());
        assert!(parse_wait("soon").is_err());
    }
}
