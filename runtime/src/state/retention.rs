//! How long the state remembers finished work (`retention:` in `omniflow.yaml`). Without
//! a window, outcomes and dead letters are kept for ever.
//!
//! - `outcomes`: the idempotency memory (sinks' outcomes and sources' dedupe ids). An
//!   outcome older than the window is forgotten, so a message carrying the same key later
//!   is delivered again; but never one recorded since the oldest message that may still
//!   run (pending in the inbox, or a dead letter that may be replayed), so the guarantees
//!   for everything the runtime holds stay whole.
//! - `dead_letters`: replayed dead letters older than the window are removed; letters not
//!   replayed are kept until they are.

use super::{StateResult, Store};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::watch;

/// Outcomes read by one request of a sweep (bounds how long it holds the state thread).
const SCAN: usize = 2000;
/// Dead letters removed by one request.
const LETTERS: usize = 500;
/// Time between sweeps.
const EVERY: Duration = Duration::from_secs(600);

/// The retention windows of a deployment.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// How long an outcome is remembered.
    pub outcomes: Option<Window>,
    /// How long a replayed dead letter is kept.
    pub dead_letters: Option<Window>,
}

impl Retention {
    /// True when some window is set.
    pub fn is_set(&self) -> bool {
        self.outcomes.is_some() || self.dead_letters.is_some()
    }
}

/// A retention window: a whole number of seconds, minutes, hours or days (`90d`, `12h`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(try_from = "String")]
pub struct Window(pub Duration);

impl TryFrom<String> for Window {
    type Error = String;

    fn try_from(text: String) -> Result<Window, String> {
        let bad = || {
            format!("`{text}` is not a retention window; write a whole number and a unit, like 90d, 12h, 30m or 45s")
        };
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = text.split_at(split);
        let n: u64 = number.parse().map_err(|_| bad())?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        if n == 0 {
            return Err(format!(
                "`{text}`: a retention window must be longer than zero"
            ));
        }
        n.checked_mul(seconds)
            .filter(|s| *s <= i64::MAX as u64 / 2)
            .map(|s| Window(Duration::from_secs(s)))
            .ok_or_else(bad)
    }
}

/// What one sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub outcomes: usize,
    pub dead_letters: usize,
}

/// Applies the windows once, as of `now` (seconds since the epoch), in short requests.
pub async fn sweep(store: &Store, retention: &Retention, now: i64) -> StateResult<Swept> {
    let mut swept = Swept::default();
    if !retention.is_set() {
        return Ok(swept);
    }
    // Read once: whatever arrives later was accepted after it, so the cut stays safe.
    let held = store.read(|b| b.held_since()).await?;
    let cut = |window: Window| {
        let before = now.saturating_sub(window.0.as_secs() as i64);
        held.map_or(before, |h| h.min(before))
    };
    if let Some(window) = retention.outcomes {
        let before = cut(window);
        let mut from = None;
        loop {
            let start = from.take();
            let step = store
                .call(move |b| b.forget_outcomes(before, start.as_ref(), SCAN))
                .await?;
            swept.outcomes += step.forgotten;
            match step.next {
                Some(next) => from = Some(next),
                None => break,
            }
        }
    }
    if let Some(window) = retention.dead_letters {
        let before = cut(window);
        loop {
            let removed = store
                .call_single(move |b| b.forget_dead_letters(before, LETTERS))
                .await?;
            swept.dead_letters += removed;
            if removed < LETTERS {
                break;
            }
        }
    }
    Ok(swept)
}

/// Sweeps at start and every ten minutes until `stop` turns true.
pub async fn run(store: Store, retention: Retention, mut stop: watch::Receiver<bool>) {
    loop {
        match sweep(&store, &retention, super::now_secs()).await {
            Ok(swept) if swept != Swept::default() => tracing::info!(
                outcomes = swept.outcomes,
                dead_letters = swept.dead_letters,
                "retention: forgot state older than its window"
            ),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "retention sweep failed; trying again later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_units() {
        let w = |t: &str| Window::try_from(t.to_string());
        assert_eq!(w("90d"), Ok(Window(Duration::from_secs(90 * 86_400))));
        assert_eq!(w("12h"), Ok(Window(Duration::from_secs(12 * 3600))));
        assert_eq!(w("30m"), Ok(Window(Duration::from_secs(1800))));
        assert_eq!(w("45s"), Ok(Window(Duration::from_secs(45))));
        for bad in [
            "",
            "d",
            "90",
            "1.5d",
            "90 d",
            "-1d",
            "3w",
            "99999999999999999999d",
        ] {
            assert!(
                w(bad).unwrap_err().contains("is not a retention window"),
                "{bad}"
            );
        }
        assert!(w("0d").unwrap_err().contains("longer than zero"));
    }

    use crate::state::{DeadLetter, OutcomeStatus, SqliteBackend};

    const DAY: i64 = 86_400;

    fn store(name: &str) -> (Store, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "omniflow-retention-{name}-{}.db",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let backend = SqliteBackend::open(&path.display().to_string()).unwrap();
        (Store::start(Box::new(backend)), path)
    }

    /// Moves recorded times into the past, through a second connection to the file.
    fn age(path: &std::path::Path, sql: &str) {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.execute_batch(sql).unwrap();
    }

    fn letter(accepted_at: i64) -> DeadLetter {
        DeadLetter {
            id: 0,
            flow: "f".into(),
            source: "s".into(),
            node: "post".into(),
            sink: "f/post".into(),
            key: "k".into(),
            correlation_id: "c".into(),
            message: "{}".into(),
            payload: "{}".into(),
            error: "refused".into(),
            attempts: Vec::new(),
            created_at: 0,
            replayed_at: None,
            accepted_at: Some(accepted_at),
        }
    }

    async fn record(store: &Store, sink: &str, keys: &[&str]) {
        let (sink, keys) = (
            sink.to_string(),
            keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        );
        store
            .call(move |b| b.record_outcomes(&sink, &keys, OutcomeStatus::Delivered))
            .await
            .unwrap();
    }

    async fn known(store: &Store, sink: &str, keys: &[&str]) -> Vec<bool> {
        let (sink, keys) = (
            sink.to_string(),
            keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        );
        let found = store.read(move |b| b.outcomes(&sink, &keys)).await.unwrap();
        found.iter().map(Option::is_some).collect()
    }

    fn day_window() -> Retention {
        Retention {
            outcomes: Some(Window(Duration::from_secs(DAY as u64))),
            dead_letters: Some(Window(Duration::from_secs(DAY as u64))),
        }
    }

    #[tokio::test]
    async fn old_outcomes_are_forgotten_but_never_what_held_messages_need() {
        let (store, path) = store("outcomes");
        let now = crate::state::now_secs();
        // More old outcomes than one request reads, so the sweep pages.
        let old: Vec<String> = (0..2 * SCAN + 7).map(|n| format!("old-{n}")).collect();
        let old: Vec<&str> = old.iter().map(String::as_str).collect();
        record(&store, "f/post", &old).await;
        record(&store, "webhook:f/hooks", &["d1"]).await;
        record(&store, "f/post", &["after-letter", "after-message", "new"]).await;
        let message = store
            .call(|b| b.append("f", "s", &[b"{}".to_vec()], None))
            .await
            .unwrap()[0];
        let first = store
            .call(move |b| b.add_dead_letter(&letter(now - 7 * DAY)))
            .await
            .unwrap();
        age(
            &path,
            &format!(
                "UPDATE outcomes SET at = at - {} WHERE key LIKE 'old-%' OR key = 'd1';
                 UPDATE outcomes SET at = at - {} WHERE key = 'after-letter';
                 UPDATE outcomes SET at = at - {} WHERE key = 'after-message';
                 UPDATE inbox SET received_at = received_at - {};",
                10 * DAY,
                6 * DAY,
                3 * DAY,
                5 * DAY
            ),
        );

        // The message waiting since five days ago and the letter accepted seven days ago
        // hold everything recorded since then, though it is older than the window.
        let swept = sweep(&store, &day_window(), now).await.unwrap();
        assert_eq!(swept.outcomes, old.len() + 1);
        assert!(known(&store, "f/post", &old).await.iter().all(|k| !k));
        assert_eq!(known(&store, "webhook:f/hooks", &["d1"]).await, [false]);
        assert_eq!(
            known(&store, "f/post", &["after-letter", "after-message", "new"]).await,
            [true, true, true]
        );

        // Once the message finished and the letter was replayed (and its replay ran), only
        // the window counts.
        store.call(move |b| b.complete(&[message])).await.unwrap();
        store.call(move |b| b.mark_replayed(first)).await.unwrap();
        let swept = sweep(&store, &day_window(), now).await.unwrap();
        assert_eq!(swept.outcomes, 2);
        assert_eq!(
            known(&store, "f/post", &["after-letter", "after-message", "new"]).await,
            [false, false, true]
        );

        // A letter replayed after the oldest waiting message arrived may still be pending.
        let second = store
            .call(move |b| b.add_dead_letter(&letter(now - 4 * DAY)))
            .await
            .unwrap();
        let waiting = store
            .call(|b| b.append("f", "s", &[b"{}".to_vec()], None))
            .await
            .unwrap()[0];
        store.call(move |b| b.mark_replayed(second)).await.unwrap();
        record(&store, "f/post", &["during-replay"]).await;
        age(
            &path,
            &format!(
                "UPDATE outcomes SET at = at - {} WHERE key = 'during-replay';",
                2 * DAY
            ),
        );
        assert_eq!(sweep(&store, &day_window(), now).await.unwrap().outcomes, 0);
        store.call(move |b| b.complete(&[waiting])).await.unwrap();
        assert_eq!(sweep(&store, &day_window(), now).await.unwrap().outcomes, 1);
        assert_eq!(
            known(&store, "f/post", &["during-replay", "new"]).await,
            [false, true]
        );

        // Without windows nothing is forgotten.
        record(&store, "f/post", &["kept"]).await;
        age(
            &path,
            &format!("UPDATE outcomes SET at = at - {};", 400 * DAY),
        );
        let swept = sweep(&store, &Retention::default(), now).await.unwrap();
        assert_eq!(swept, Swept::default());
        assert_eq!(
            known(&store, "f/post", &["kept", "new"]).await,
            [true, true]
        );
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn only_replayed_dead_letters_older_than_the_window_are_removed() {
        let (store, path) = store("letters");
        let now = crate::state::now_secs();
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(
                store
                    .call(move |b| b.add_dead_letter(&letter(now)))
                    .await
                    .unwrap(),
            );
        }
        let (old, recent) = (ids[0], ids[1]);
        store
            .call(move |b| {
                b.mark_replayed(old)?;
                b.mark_replayed(recent)
            })
            .await
            .unwrap();
        age(
            &path,
            &format!(
                "UPDATE dead_letters SET replayed_at = replayed_at - {} WHERE id = {old};
                 UPDATE dead_letters SET created_at = created_at - {};",
                2 * DAY,
                30 * DAY
            ),
        );
        let swept = sweep(&store, &day_window(), now).await.unwrap();
        assert_eq!(swept.dead_letters, 1);
        let left: Vec<i64> = store
            .read(|b| b.dead_letters(true, 10))
            .await
            .unwrap()
            .iter()
            .map(|l| l.id)
            .collect();
        assert_eq!(left, [ids[2], recent]);
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn a_file_from_before_acceptance_times_gains_the_column_and_holds_its_letters() {
        let path = std::env::temp_dir().join(format!(
            "omniflow-retention-legacy-{}.db",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        age(
            &path,
            "CREATE TABLE dead_letters (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                flow TEXT NOT NULL, source TEXT NOT NULL, node TEXT NOT NULL, sink TEXT NOT NULL,
                key TEXT NOT NULL, correlation_id TEXT NOT NULL, message TEXT NOT NULL,
                payload TEXT NOT NULL, error TEXT NOT NULL, attempts TEXT NOT NULL,
                created_at INTEGER NOT NULL, replayed_at INTEGER);
             INSERT INTO dead_letters (flow, source, node, sink, key, correlation_id, message,
                payload, error, attempts, created_at)
                VALUES ('f', 's', 'post', 'f/post', 'k', 'c', '{}', '{}', 'refused', '[]', 1);",
        );
        let backend = SqliteBackend::open(&path.display().to_string()).unwrap();
        let store = Store::start(Box::new(backend));
        let letters = store.read(|b| b.dead_letters(true, 10)).await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].accepted_at, None);
        // Its message's acceptance is unknown: nothing may be forgotten until it is replayed.
        assert_eq!(store.read(|b| b.held_since()).await.unwrap(), Some(0));
        record(&store, "f/post", &["old"]).await;
        age(
            &path,
            &format!("UPDATE outcomes SET at = at - {};", 10 * DAY),
        );
        let now = crate::state::now_secs();
        assert_eq!(sweep(&store, &day_window(), now).await.unwrap().outcomes, 0);
        let id = letters[0].id;
        store.call(move |b| b.mark_replayed(id)).await.unwrap();
        assert_eq!(sweep(&store, &day_window(), now).await.unwrap().outcomes, 1);
        let _ = std::fs::remove_file(path);
    }
}
