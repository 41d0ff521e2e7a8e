//! The PostgreSQL backend's own guarantees: migrations applied once under racing openers,
//! a newer schema refused, one writer at a time, no password in any error, payloads of any
//! bytes, ids past 32 bits, and a failed statement never committing half a batch.

use super::*;
use crate::testing::{self, off_runtime, FreshDb};
use crate::Store;
use std::time::Duration;

fn writer(url: &str) -> Result<PostgresBackend, StateError> {
    let url = url.to_string();
    off_runtime(move || PostgresBackend::open_writer(&url, Duration::ZERO))
}

fn query_i64(db: &FreshDb, sql: &str) -> i64 {
    let url = db.url.clone();
    let sql = sql.to_string();
    off_runtime(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.query_one(sql.as_str(), &[]).unwrap().get(0)
    })
}

/// Closes a backend on a thread of its own (the client may not be dropped on a runtime).
fn close(mut backend: PostgresBackend) {
    off_runtime(move || {
        backend.close().unwrap();
        drop(backend);
    });
}

#[test]
fn racing_openers_apply_each_migration_once() {
    let db = FreshDb::create();
    let applied: Vec<usize> = std::thread::scope(|scope| {
        let openers: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    let mut conn = PostgresBackend::connect(&db.url).unwrap();
                    schema::migrate(&mut conn).unwrap()
                })
            })
            .collect();
        openers.into_iter().map(|o| o.join().unwrap()).collect()
    });
    assert_eq!(
        applied.iter().sum::<usize>(),
        schema::VERSION as usize,
        "{applied:?}"
    );
    assert_eq!(
        query_i64(&db, "SELECT COUNT(*) FROM omniflow_schema"),
        i64::from(schema::VERSION)
    );
    // Readers find the schema complete.
    let url = db.url.clone();
    off_runtime(move || drop(PostgresBackend::open_for_reading(&url).unwrap()));
}

#[test]
fn a_schema_newer_than_this_omniflow_is_refused() {
    let db = FreshDb::create();
    close(writer(&db.url).unwrap());
    db.batch(&format!(
        "INSERT INTO omniflow_schema (version, applied_at) VALUES ({}, 0)",
        schema::VERSION + 1
    ));
    let refused = writer(&db.url).err().expect("refused").to_string();
    assert!(
        refused.contains(&format!("schema version {}", schema::VERSION + 1))
            && refused.contains("run the newer omniflow"),
        "{refused}"
    );
    let url = db.url.clone();
    let read = off_runtime(move || PostgresBackend::open_for_reading(&url).err());
    assert!(read
        .expect("refused")
        .to_string()
        .contains("newer omniflow"));
    let url = db.url.clone();
    let report = off_runtime(move || check::inspect(&url).unwrap());
    assert_eq!(report.schema_version, Some(schema::VERSION + 1));
    assert!(
        report.problems[0].contains("newer omniflow"),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_second_writer_is_refused_while_the_first_runs_and_admitted_after_it_stops() {
    let db = FreshDb::create();
    let first = writer(&db.url).unwrap();
    let url = db.url.clone();
    let refused = off_runtime(move || {
        PostgresBackend::open_writer(&url, Duration::from_millis(300))
            .err()
            .expect("refused")
    });
    let message = refused.to_string();
    assert!(matches!(refused, StateError::InUse { .. }), "{message}");
    assert!(
        message.contains("another omniflow")
            && message.contains(&format!("omniflow pid {}", std::process::id()))
            && message.contains("--state-wait"),
        "{message}"
    );
    // Inspection takes no lock.
    let url = db.url.clone();
    off_runtime(move || drop(PostgresBackend::open_for_reading(&url).unwrap()));
    let url = db.url.clone();
    let report = off_runtime(move || check::inspect(&url).unwrap());
    assert!(report
        .holder
        .is_some_and(|h| h.contains("another omniflow")));
    assert_eq!(report.last_stop.as_deref(), Some(RUNNING));
    close(first);
    let url = db.url.clone();
    let report = off_runtime(move || check::inspect(&url).unwrap());
    assert_eq!(report.holder, None);
    assert_eq!(report.last_stop.as_deref(), Some(CLEAN));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    close(writer(&db.url).unwrap());
    // The lock is the same through `open_writer` and `open`.
    let second = writer(&db.url).unwrap();
    let url = db.url.clone();
    let opened = off_runtime(move || crate::open(&url).err());
    assert!(opened.expect("refused").contains("in use"));
    close(second);
}

#[test]
fn no_error_shows_the_password() {
    let secret = "pa55-w0rd";
    let server = testing::admin_url();
    let port = Target::parse(&server)
        .unwrap()
        .config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432);
    for spec in [
        format!("postgres://nobody_here:{secret}@127.0.0.1:{port}/postgres"),
        format!("postgresql://u:{secret}@127.0.0.1:1/postgres"),
        format!("postgres://u:{secret}@127.0.0.1:notaport/postgres"),
        format!("postgres://u:{secret}@127.0.0.1:{port}"),
        format!("postgres://u:{secret}@127.0.0.1:{port}/db?password={secret}x"),
        format!("mysql://u:{secret}@127.0.0.1/db"),
    ] {
        let errors = off_runtime(|| {
            [
                crate::open_writer(&spec, Duration::ZERO)
                    .err()
                    .map(|e| e.to_string()),
                crate::open(&spec).err(),
                crate::open_for_reading(&spec).err(),
                check::inspect(&spec).err().map(|e| e.to_string()),
            ]
        });
        for error in errors {
            let error = error.unwrap_or_else(|| panic!("{spec} opened"));
            assert!(!error.contains(secret), "{error}");
            assert!(!error.contains("w0rd"), "{error}");
        }
    }
    let unknown = crate::open("mysql://u:pw@h/db").err().unwrap();
    assert!(
        unknown.contains("sqlite:PATH") && unknown.contains("postgres://"),
        "{unknown}"
    );
}

#[tokio::test]
async fn payloads_of_any_bytes_round_trip() {
    let state = testing::postgres();
    let payloads: Vec<Vec<u8>> = vec![
        vec![0, 1, 2, 0, 255],
        vec![0xc3, 0x28, 0xa0, 0xa1, 0xff, 0xfe],
        Vec::new(),
        b"{\"sku\":\"\xe2\x82\xac\"}".to_vec(),
        (0..=255u8).collect(),
    ];
    let sent = payloads.clone();
    state
        .store
        .call(move |b| b.append("f", "s", &sent, None).map(|_| ()))
        .await
        .unwrap();
    let replay = state
        .store
        .call(|b| b.append_replay("f", "s", &[0, 0xff, 0], 7))
        .await
        .unwrap();
    let stored = state.store.read(|b| b.pending("f", 0, 10)).await.unwrap();
    let mut expected = payloads.clone();
    expected.push(vec![0, 0xff, 0]);
    assert_eq!(
        stored.iter().map(|m| m.payload.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        stored.last().map(|m| (m.id, m.received_at)),
        Some((replay, 7))
    );
    // A dead letter's message may hold a NUL character too.
    let mut letter = testing::letter(0);
    letter.message = "a\0b".into();
    letter.payload = "\u{0}".into();
    let id = state
        .store
        .call(move |b| b.add_dead_letter(&letter))
        .await
        .unwrap();
    let read = state.store.read(move |b| b.dead_letter(id)).await.unwrap();
    let read = read.expect("stored");
    assert_eq!(
        (read.message.as_str(), read.payload.as_str()),
        ("a\0b", "\0")
    );
}

#[tokio::test]
async fn ids_beyond_32_bits_are_kept_whole() {
    let state = testing::postgres();
    let start = 1_i64 << 33;
    state.age(&format!(
        "ALTER TABLE inbox ALTER COLUMN id RESTART WITH {start};
         ALTER TABLE dead_letters ALTER COLUMN id RESTART WITH {start};
         ALTER TABLE ledger_stock ALTER COLUMN id RESTART WITH {start};"
    ));
    let ids = state
        .store
        .call(|b| {
            b.append(
                "f",
                "s",
                &[b"1".to_vec(), b"2".to_vec(), b"3".to_vec()],
                None,
            )
        })
        .await
        .unwrap();
    assert_eq!(ids, [start, start + 1, start + 2]);
    let after = start;
    let waiting = state
        .store
        .read(move |b| b.pending("f", after, 10))
        .await
        .unwrap();
    assert_eq!(
        waiting.iter().map(|m| m.id).collect::<Vec<_>>(),
        [start + 1, start + 2]
    );
    state
        .store
        .call(move |b| b.complete(&[start + 1]))
        .await
        .unwrap();
    assert_eq!(state.store.read(|b| b.backlog("f")).await.unwrap(), 2);
    let letter = testing::letter(0);
    let id = state
        .store
        .call(move |b| b.add_dead_letter(&letter))
        .await
        .unwrap();
    assert_eq!(id, start);
    assert!(state
        .store
        .call(move |b| b.mark_replayed(id))
        .await
        .unwrap());
    assert_eq!(
        state
            .store
            .read(move |b| b.dead_letter(id))
            .await
            .unwrap()
            .map(|l| l.id),
        Some(start)
    );
    let row = state
        .store
        .call(|b| b.journal("stock")?.position_row("sku", "here"))
        .await
        .unwrap();
    assert_eq!(row, start);
}

#[tokio::test]
async fn a_failed_statement_undoes_its_request_alone_in_a_savepoint_and_the_batch_without() {
    let state = testing::postgres();
    let store: &Store = &state.store;
    // Holds the state thread until released: what is queued meanwhile runs as one batch.
    // Returns once the thread is inside the held job (its batch gathered), so nothing
    // queued afterwards can join the held job's batch.
    let hold = || {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (entered, inside) = std::sync::mpsc::channel::<()>();
        store.send(move |_| {
            let _ = entered.send(());
            let _ = held.recv();
            Ok(())
        });
        inside.recv().expect("the state thread runs the held job");
        async move {
            let _ = release.send(());
        }
    };
    // TEXT cannot hold a NUL character: PostgreSQL refuses the statement (a flow's name is
    // stored as it is; keys and cursors from outside are escaped).
    let bad_flow = || "f\0".to_string();
    let released = hold();
    let (failed, kept, ()) = tokio::join!(
        store.call(move |b| {
            b.append("f", "s", &[b"undone".to_vec()], None)?;
            b.append(&bad_flow(), "s", &[b"refused".to_vec()], None)
                .map(|_| ())
        }),
        store.call(|b| b.append("f", "s", &[b"kept".to_vec()], None)),
        released,
    );
    assert!(failed.is_err());
    assert!(kept.is_ok(), "{kept:?}");
    let stored = store.read(|b| b.pending("f", 0, 10)).await.unwrap();
    assert_eq!(
        stored.iter().map(|m| m.payload.clone()).collect::<Vec<_>>(),
        [b"kept".to_vec()]
    );
    // Without a savepoint the failure aborts PostgreSQL's transaction: the batch's commit
    // fails for every request in it, nothing of it is kept, and the next batch runs.
    let released = hold();
    // Queued while the thread is held, so it runs in the same batch as the two below.
    store.send(|_| Ok(()));
    let (failed, undone, ()) = tokio::join!(
        store.call_single(move |b| b
            .append(&bad_flow(), "s", &[b"refused".to_vec()], None)
            .map(|_| ())),
        store.call_single(|b| b.append("f", "s", &[b"in the failed batch".to_vec()], None)),
        released,
    );
    assert!(failed.is_err());
    let undone = undone.expect_err("the batch's commit fails");
    assert!(undone.contains("undid the whole batch"), "{undone}");
    assert_eq!(store.call(|b| b.backlog("f")).await.unwrap(), 1);
    // The write queued behind the hold was in the failed batch too.
    assert!(store.is_degraded());
}

/// Ends the writer's server session (as a restarted or failed-over server, or an operator's
/// `pg_terminate_backend`, does).
fn terminate_writer(db: &FreshDb) {
    let ended = query_i64(
        db,
        &format!(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND l.objid::bigint = ({} & 4294967295)) AS t",
            lock::WRITER_LOCK
        ),
    );
    assert_eq!(ended, 1, "the writer's session");
    // The server ends the session on its own time: wait until the lock is free.
    let started = std::time::Instant::now();
    while query_i64(
        db,
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    ) > 0
    {
        assert!(started.elapsed() < Duration::from_secs(30), "session ended");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_writer_whose_connection_was_lost_reconnects_and_holds_the_state_again() {
    let state = testing::postgres();
    let db = state.database();
    let store: &Store = &state.store;
    store
        .call(|b| b.append("f", "s", &[b"before".to_vec()], None))
        .await
        .unwrap();
    terminate_writer(db);
    // The next batch runs on a new connection, under the writer's lock taken again.
    store
        .call(|b| b.append("f", "s", &[b"after".to_vec()], None))
        .await
        .unwrap();
    let stored = store.read(|b| b.pending("f", 0, 10)).await.unwrap();
    assert_eq!(
        stored.iter().map(|m| m.payload.clone()).collect::<Vec<_>>(),
        [b"before".to_vec(), b"after".to_vec()]
    );
    assert!(store.is_writable());
    let refused = writer(&db.url).err().expect("a second writer is refused");
    assert!(matches!(refused, StateError::InUse { .. }), "{refused}");
}

#[tokio::test]
async fn a_writer_whose_connection_was_lost_never_writes_after_another_writer_opened_the_state() {
    let state = testing::postgres();
    let db = state.database();
    let store: &Store = &state.store;
    store
        .call(|b| b.append("f", "s", &[b"first".to_vec()], None))
        .await
        .unwrap();
    terminate_writer(db);
    // Another writer takes the state meanwhile, and stops.
    let other = writer(&db.url).unwrap();
    close(other);
    // The first one must not go on as if it still were the only writer.
    for _ in 0..2 {
        let refused = store
            .call(|b| b.append("f", "s", &[b"second".to_vec()], None))
            .await
            .expect_err("refused");
        assert!(refused.contains("another writer"), "{refused}");
    }
    assert_eq!(
        query_i64(db, "SELECT COUNT(*) FROM inbox"),
        1,
        "nothing written after the loss"
    );
    // The state is free for the writer that opened it since.
    close(writer(&db.url).unwrap());
}
