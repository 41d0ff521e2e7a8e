//! How long the state remembers finished work (`retention:` in `omniflow.yaml`). Without
//! a window, everything is kept for ever.
//!
//! - `outcomes`: sinks' outcomes, the idempotency memory. A message is deduplicated
//!   against the outcomes recorded up to `window` before it was accepted: an outcome is
//!   forgotten once it is older than the window counted back from now and from the
//!   acceptance of every message that may still run (waiting in the inbox, replayed with
//!   its original acceptance time, or dead-lettered and not replayed). A message carrying
//!   the same key later than that is delivered again.
//! - `source_ids`: the ids sources accepted (webhook deliveries, polled items, bus
//!   messages), checked only when a message comes in: forgotten once older than the
//!   window. A poll source that still lists an item after the
//!   window takes it in again, so this one is best left unset unless the source's lists
//!   only hold recent items.
//! - `dead_letters`: dead letters replayed or discarded longer ago than the window are
//!   removed; the others are kept (and hold their message's outcomes) until they are.
//! - `lineage`: what `omniflow trace` shows, removed once older than the window (by
//!   default the `outcomes` window).

use super::{Cut, StateResult, Store};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::watch;

/// Outcomes read by one request of a sweep (bounds how long it holds the state thread).
const SCAN: usize = 10_000;
/// Dead letters removed by one request.
const LETTERS: usize = 500;
/// Time between sweeps.
const EVERY: Duration = Duration::from_secs(3600);
/// The shortest window (a guard against `90s` written for `90d`).
const SHORTEST: u64 = 3600;

/// The retention windows of a deployment.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// How long sinks' outcomes are remembered.
    pub outcomes: Option<Window>,
    /// How long sources' accepted ids are remembered.
    pub source_ids: Option<Window>,
    /// How long a replayed dead letter is kept.
    pub dead_letters: Option<Window>,
    /// How long lineage is kept (default: the outcomes' window).
    pub lineage: Option<Window>,
}

impl Retention {
    /// True when some window is set.
    pub fn is_set(&self) -> bool {
        self.outcomes.is_some()
            || self.source_ids.is_some()
            || self.dead_letters.is_some()
            || self.lineage.is_some()
    }
}

/// A retention window: a whole number of minutes, hours or days (`90d`, `12h`), at least
/// an hour.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(try_from = "String")]
pub struct Window(pub Duration);

impl Window {
    fn seconds(self) -> i64 {
        self.0.as_secs() as i64
    }
}

impl TryFrom<String> for Window {
    type Error = String;

    fn try_from(text: String) -> Result<Window, String> {
        let bad = || {
            format!("`{text}` is not a retention window; write a whole number and a unit, like 90d, 12h or 90m")
        };
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = text.split_at(split);
        let n: u64 = number.parse().map_err(|_| bad())?;
        let unit = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        let seconds = n
            .checked_mul(unit)
            .filter(|s| *s <= i64::MAX as u64 / 4)
            .ok_or_else(bad)?;
        if seconds < SHORTEST {
            return Err(format!("`{text}`: a retention window must be at least 1h"));
        }
        Ok(Window(Duration::from_secs(seconds)))
    }
}

/// What one sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Sinks' outcomes and sources' ids forgotten.
    pub outcomes: usize,
    pub dead_letters: usize,
    /// Lineage rows removed (the larger count of its two tables).
    pub lineage: usize,
}

/// Applies the windows once, as of `now` (seconds since the epoch), in short requests.
pub async fn sweep(store: &Store, retention: &Retention, now: i64) -> StateResult<Swept> {
    let mut swept = Swept::default();
    if !retention.is_set() {
        return Ok(swept);
    }
    // Read once, committed: whatever arrives later was accepted after it.
    let held = store.call(|b| b.held_since()).await?;
    let since = held.map_or(now, |h| h.min(now));
    let cut = Cut {
        sinks: retention
            .outcomes
            .map(|w| since.saturating_sub(w.seconds())),
        // Sources check their ids only when taking a message in; held work never reads them.
        sources: retention
            .source_ids
            .map(|w| now.saturating_sub(w.seconds())),
    };
    if cut != Cut::default() {
        let mut from = None;
        loop {
            let start = from.take();
            let step = store
                .call(move |b| b.forget_outcomes(cut, start.as_ref(), SCAN))
                .await?;
            swept.outcomes += step.forgotten;
            match step.next {
                Some(next) => from = Some(next),
                None => break,
            }
        }
    }
    if let Some(window) = retention.dead_letters {
        let before = now.saturating_sub(window.seconds());
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
    if let Some(window) = retention.lineage.or(retention.outcomes) {
        let before = now.saturating_sub(window.seconds()).saturating_mul(1000);
        loop {
            let removed = store
                .call_single(move |b| b.forget_lineage(before, LETTERS))
                .await?;
            swept.lineage += removed;
            if removed < LETTERS {
                break;
            }
        }
    }
    if let (Some(held), Some(window)) = (held, retention.outcomes) {
        if now - held > window.seconds() {
            tracing::warn!(
                held_since = held,
                "retention: a message or dead letter accepted before the outcomes window holds older outcomes; replay or finish it to let them go"
            );
        }
    }
    Ok(swept)
}

/// Sweeps at start and every hour until `stop` turns true.
pub async fn run(store: Store, retention: Retention, mut stop: watch::Receiver<bool>) {
    loop {
        match sweep(&store, &retention, super::now_secs()).await {
            Ok(swept) if swept != Swept::default() => tracing::info!(
                outcomes = swept.outcomes,
                dead_letters = swept.dead_letters,
                lineage = swept.lineage,
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
    fn windows_are_whole_units_of_at_least_an_hour() {
        let w = |t: &str| Window::try_from(t.to_string());
        assert_eq!(w("90d"), Ok(Window(Duration::from_secs(90 * 86_400))));
        assert_eq!(w("12h"), Ok(Window(Duration::from_secs(12 * 3600))));
        assert_eq!(w("90m"), Ok(Window(Duration::from_secs(5400))));
        assert_eq!(w("3600s"), Ok(Window(Duration::from_secs(3600))));
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
        for short in ["0d", "59m", "90s"] {
            assert!(w(short).unwrap_err().contains("at least 1h"), "{short}");
        }
    }

    use crate::{DeadLetter, OutcomeStatus, SqliteBackend};

    const DAY: i64 = 86_400;

    /// Moves recorded times into the past, through a second connection to the file.
    fn age(path: &std::path::Path, sql: &str) {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.execute_batch(sql).unwrap();
    }

    fn letter(accepted_at: i64) -> DeadLetter {
        DeadLetter {
            id: 0,
            origin: crate::Origin::Flow("f".into()),
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
            discarded_at: None,
            queue: None,
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
        let day = Some(Window(Duration::from_secs(DAY as u64)));
        Retention {
            outcomes: day,
            source_ids: None,
            dead_letters: day,
            lineage: None,
        }
    }

    /// Ages outcomes by key: `(key, days ago)`.
    fn age_outcomes(state: &crate::testing::TestState, ages: &[(&str, f64)]) {
        let sql: String = ages
            .iter()
            .map(|(key, days)| {
                format!(
                    "UPDATE outcomes SET at = at - {} WHERE key = '{key}';",
                    (days * DAY as f64) as i64
                )
            })
            .collect();
        state.age(&sql);
    }

    #[tokio::test]
    async fn old_outcomes_are_forgotten_but_never_what_held_messages_need() {
        for state in crate::testing::each("retention-outcomes") {
            let store = &state.store;
            let now = crate::now_secs();
            let window = day_window();
            // More old outcomes than one request reads, so the sweep pages.
            let old: Vec<String> = (0..2 * SCAN + 7).map(|n| format!("old-{n}")).collect();
            let old: Vec<&str> = old.iter().map(String::as_str).collect();
            record(store, "f/post", &old).await;
            state.age(&format!("UPDATE outcomes SET at = at - {};", 10 * DAY));
            record(store, "webhook:f/hooks", &["d1"]).await;
            record(store, "f/post", &["far", "near", "new"]).await;
            age_outcomes(&state, &[("d1", 10.0), ("far", 6.5), ("near", 5.5)]);

            // A message waiting since five days ago is deduplicated against the day before it
            // arrived: what is older goes, what it may still skip stays.
            let message = store
                .call(|b| b.append("f", "s", &[b"{}".to_vec()], None))
                .await
                .unwrap()[0];
            state.age(&format!(
                "UPDATE inbox SET received_at = received_at - {};",
                5 * DAY
            ));
            let swept = sweep(store, &window, now).await.unwrap();
            assert_eq!(swept.outcomes, old.len() + 1);
            assert!(known(store, "f/post", &old).await.iter().all(|k| !k));
            assert_eq!(
                known(store, "f/post", &["far", "near", "new"]).await,
                [false, true, true]
            );
            // Sources' ids have their own window, unset here.
            assert_eq!(known(store, "webhook:f/hooks", &["d1"]).await, [true]);
            store.call(move |b| b.complete(&[message])).await.unwrap();
            assert_eq!(sweep(store, &window, now).await.unwrap().outcomes, 1);
            assert_eq!(known(store, "f/post", &["near"]).await, [false]);

            // A replay waits with its message's original acceptance time.
            let replay = store
                .call(move |b| b.append_replay("f", "s", b"{}", now - 4 * DAY))
                .await
                .unwrap();
            let waiting = store.read(|b| b.pending("f", 0, 10)).await.unwrap();
            assert_eq!(waiting.len(), 1);
            assert_eq!(waiting[0].received_at, now - 4 * DAY);
            record(store, "f/post", &["before-replay"]).await;
            age_outcomes(&state, &[("before-replay", 4.5)]);
            assert_eq!(sweep(store, &window, now).await.unwrap().outcomes, 0);
            store.call(move |b| b.complete(&[replay])).await.unwrap();
            assert_eq!(sweep(store, &window, now).await.unwrap().outcomes, 1);

            // A dead letter not replayed holds its message's day; a ledger's letters hold
            // nothing.
            let letter_id = store
                .call(move |b| b.add_dead_letter(&letter(now - 3 * DAY)))
                .await
                .unwrap();
            let mut publication = letter(now - 20 * DAY);
            publication.origin = crate::Origin::Ledger("stock".into());
            store
                .call(move |b| b.add_dead_letter(&publication))
                .await
                .unwrap();
            record(store, "f/post", &["for-letter", "before-letter"]).await;
            age_outcomes(&state, &[("for-letter", 3.5), ("before-letter", 4.2)]);
            assert_eq!(sweep(store, &window, now).await.unwrap().outcomes, 1);
            assert_eq!(
                known(store, "f/post", &["for-letter", "before-letter"]).await,
                [true, false]
            );
            store
                .call(move |b| b.mark_replayed(letter_id))
                .await
                .unwrap();
            assert_eq!(sweep(store, &window, now).await.unwrap().outcomes, 1);
            assert_eq!(
                known(store, "f/post", &["for-letter", "new"]).await,
                [false, true]
            );

            // Sources' ids go with their own window, which held work does not hold back; a
            // letter waiting for a month holds sinks' outcomes until it is discarded.
            let stale = store
                .call(move |b| b.add_dead_letter(&letter(now - 30 * DAY)))
                .await
                .unwrap();
            record(store, "f/post", &["pinned"]).await;
            age_outcomes(&state, &[("pinned", 10.0)]);
            let both = Retention {
                source_ids: Some(Window(Duration::from_secs(DAY as u64))),
                ..day_window()
            };
            assert_eq!(sweep(store, &both, now).await.unwrap().outcomes, 1);
            assert_eq!(known(store, "webhook:f/hooks", &["d1"]).await, [false]);
            assert_eq!(known(store, "f/post", &["pinned"]).await, [true]);
            assert!(store.call(move |b| b.discard(stale)).await.unwrap());
            assert!(!store.call(move |b| b.discard(stale)).await.unwrap());
            assert_eq!(sweep(store, &both, now).await.unwrap().outcomes, 1);
            assert_eq!(
                known(store, "f/post", &["pinned", "new"]).await,
                [false, true]
            );

            // Without windows nothing is forgotten.
            record(store, "f/post", &["kept"]).await;
            state.age(&format!("UPDATE outcomes SET at = at - {};", 400 * DAY));
            let swept = sweep(store, &Retention::default(), now).await.unwrap();
            assert_eq!(swept, Swept::default());
            assert_eq!(known(store, "f/post", &["kept", "new"]).await, [true, true]);
        }
    }

    #[tokio::test]
    async fn only_settled_dead_letters_older_than_the_window_are_removed() {
        for state in crate::testing::each("retention-letters") {
            let store = &state.store;
            let now = crate::now_secs();
            let mut ids = Vec::new();
            for _ in 0..4 {
                ids.push(
                    store
                        .call(move |b| b.add_dead_letter(&letter(now)))
                        .await
                        .unwrap(),
                );
            }
            let (old, recent, discarded) = (ids[0], ids[1], ids[3]);
            store
                .call(move |b| {
                    b.mark_replayed(old)?;
                    b.mark_replayed(recent)?;
                    b.discard(discarded).map(|_| ())
                })
                .await
                .unwrap();
            state.age(
                &format!(
                    "UPDATE dead_letters SET replayed_at = replayed_at - {0} WHERE id = {old};
                     UPDATE dead_letters SET discarded_at = discarded_at - {0} WHERE id = {discarded};
                     UPDATE dead_letters SET created_at = created_at - {1};",
                    2 * DAY,
                    30 * DAY
                ),
            );
            let swept = sweep(store, &day_window(), now).await.unwrap();
            assert_eq!(swept.dead_letters, 2);
            let left: Vec<i64> = store
                .read(|b| b.dead_letters(true, 10))
                .await
                .unwrap()
                .iter()
                .map(|l| l.id)
                .collect();
            assert_eq!(left, [ids[2], recent]);
        }
    }

    #[tokio::test]
    async fn a_file_from_before_acceptance_times_gains_the_columns_and_holds_its_letters() {
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
             CREATE TABLE inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, flow TEXT NOT NULL,
                source TEXT NOT NULL, payload BLOB NOT NULL, received_at INTEGER NOT NULL);
             INSERT INTO inbox (flow, source, payload, received_at) VALUES ('f', 's', X'7B7D', 7);
             INSERT INTO dead_letters (flow, source, node, sink, key, correlation_id, message,
                payload, error, attempts, created_at)
                VALUES ('f', 's', 'post', 'f/post', 'k', 'c', '{}', '{}', 'refused', '[]', 1);",
        );
        let backend = SqliteBackend::open(&path.display().to_string()).unwrap();
        let store = Store::start(Box::new(backend));
        let letters = store.read(|b| b.dead_letters(true, 10)).await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].accepted_at, None);
        let waiting = store.read(|b| b.pending("f", 0, 10)).await.unwrap();
        assert_eq!(waiting[0].received_at, 7);
        store
            .call(move |b| b.complete(&[waiting[0].id]))
            .await
            .unwrap();
        // The letter's acceptance is unknown: nothing may be forgotten until it is replayed.
        assert_eq!(store.read(|b| b.held_since()).await.unwrap(), Some(0));
        record(&store, "f/post", &["old"]).await;
        age(
            &path,
            &format!("UPDATE outcomes SET at = at - {};", 10 * DAY),
        );
        let now = crate::now_secs();
        assert_eq!(sweep(&store, &day_window(), now).await.unwrap().outcomes, 0);
        let id = letters[0].id;
        store.call(move |b| b.mark_replayed(id)).await.unwrap();
        assert_eq!(sweep(&store, &day_window(), now).await.unwrap().outcomes, 1);
        let _ = std::fs::remove_file(path);
    }
}
