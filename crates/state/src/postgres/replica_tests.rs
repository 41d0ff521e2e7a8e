//! Replicas sharing one PostgreSQL state: each inbox message and each (sink, key) held by
//! one live replica at a time, taken over once its holder is gone; leases that move only
//! from a gone holder, with a higher fencing token that refuses the old holder's writes;
//! a source's accepted id recorded by exactly one of two racing replicas.

use super::*;
use crate::cluster::{Claim, FENCED};
use crate::testing::FreshDb;
use std::time::Duration;

/// Short enough for a test to outlive it, long enough for a busy machine's statements.
const TTL: Duration = Duration::from_millis(1500);

fn replica(db: &FreshDb) -> PostgresBackend {
    PostgresBackend::open_replica(&db.url, Duration::ZERO, TTL).unwrap()
}

/// Beats for `beating` until the others' time to live has passed without theirs;
/// returns the messages its heartbeats freed.
fn outlive_the_others(beating: &mut PostgresBackend) -> u64 {
    let started = std::time::Instant::now();
    let mut freed = 0;
    while started.elapsed() < TTL + Duration::from_millis(300) {
        freed += beating.heartbeat().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    freed
}

fn ids(stored: &[Stored]) -> Vec<i64> {
    stored.iter().map(|m| m.id).collect()
}

#[test]
fn replicas_claim_disjoint_messages_and_take_over_those_of_a_gone_one() {
    let db = FreshDb::create();
    let (mut a, mut b) = (replica(&db), replica(&db));
    let appended = a.append("f", "s", &vec![b"{}".to_vec(); 10], None).unwrap();
    // `after` other than 0: the caller has messages in flight (its own claims stay).
    let of_a = a.pending("f", 0, 4).unwrap();
    assert_eq!(ids(&of_a), appended[..4].to_vec());
    let of_b = b.pending("f", 0, 100).unwrap();
    assert_eq!(ids(&of_b), appended[4..].to_vec());
    assert!(a.pending("f", appended[3], 100).unwrap().is_empty());
    assert!(b.pending("f", appended[9], 100).unwrap().is_empty());
    // A finishes one; then goes silent while B beats on.
    a.complete(&[appended[0]]).unwrap();
    let freed = outlive_the_others(&mut b) + b.heartbeat().unwrap();
    assert_eq!(freed, 3, "A's three unfinished messages are freed");
    assert_eq!(
        ids(&b.pending("f", appended[9], 100).unwrap()),
        appended[1..4].to_vec()
    );
    let refused = a.heartbeat().unwrap_err();
    assert_eq!(refused, FENCED);
    // Nothing was given twice to a live replica, and nothing is left unclaimed.
    assert_eq!(a.backlog("f").unwrap(), 9);
    let status = b.cluster_status().unwrap();
    assert_eq!(status.replicas.len(), 2);
    let live: Vec<bool> = status.replicas.iter().map(|r| r.live).collect();
    assert_eq!(live.iter().filter(|l| **l).count(), 1, "{status:?}");
    assert_eq!(status.backlog, vec![("f".to_string(), 9, 9)]);
}

#[test]
fn a_key_is_held_by_one_live_replica_at_a_time_and_released_with_its_outcome() {
    let db = FreshDb::create();
    let (mut a, mut b) = (replica(&db), replica(&db));
    let keys = |k: &[&str]| k.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    assert_eq!(
        a.claim_outcomes("f/s", &keys(&["k1", "k2", "k2"])).unwrap(),
        vec![Claim::Free(None); 3]
    );
    assert_eq!(
        b.claim_outcomes("f/s", &keys(&["k2", "k3"])).unwrap(),
        vec![Claim::Held, Claim::Free(None)]
    );
    // A's call succeeded: recording it lets go of the key in the same statement batch.
    a.record_outcomes("f/s", &keys(&["k2"]), OutcomeStatus::Delivered)
        .unwrap();
    assert_eq!(
        b.claim_outcomes("f/s", &keys(&["k2"])).unwrap(),
        vec![Claim::Free(Some(OutcomeStatus::Delivered))]
    );
    b.release_claims("f/s", &keys(&["k2", "k3"])).unwrap();
    // Asking again for a key it holds is free to its holder.
    assert_eq!(
        a.claim_outcomes("f/s", &keys(&["k1"])).unwrap(),
        vec![Claim::Free(None)]
    );
    assert_eq!(
        b.claim_outcomes("f/s", &keys(&["k1"])).unwrap(),
        vec![Claim::Held]
    );
    // Another sink's key of the same name is another key.
    assert_eq!(
        b.claim_outcomes("f/other", &keys(&["k1"])).unwrap(),
        vec![Claim::Free(None)]
    );
    // A is gone: B takes its key over; a heartbeat clears what else A held.
    a.claim_outcomes("f/s", &keys(&["k9"])).unwrap();
    outlive_the_others(&mut b);
    assert_eq!(
        b.claim_outcomes("f/s", &keys(&["k1"])).unwrap(),
        vec![Claim::Free(None)]
    );
    let left = b
        .conn
        .query_one("SELECT COUNT(*) FROM key_claims WHERE key = 'k9'", &[])
        .unwrap();
    assert_eq!(left.get::<_, i64>(0), 0);
}

#[test]
fn a_key_of_a_gone_replica_is_taken_over_before_any_heartbeat_clears_it() {
    let db = FreshDb::create();
    let a = &mut replica(&db);
    // B lives long enough to outlast A without a heartbeat of its own.
    let b = &mut PostgresBackend::open_replica(&db.url, Duration::ZERO, TTL * 20).unwrap();
    let keys = vec!["k1".to_string()];
    assert_eq!(
        a.claim_outcomes("f/s", &keys).unwrap(),
        vec![Claim::Free(None)]
    );
    assert_eq!(b.claim_outcomes("f/s", &keys).unwrap(), vec![Claim::Held]);
    std::thread::sleep(TTL + Duration::from_millis(300));
    assert_eq!(
        b.claim_outcomes("f/s", &keys).unwrap(),
        vec![Claim::Free(None)]
    );
    assert_eq!(a.claim_outcomes("f/s", &keys).unwrap(), vec![Claim::Held]);
    // Nor does a gone replica take a key no one holds.
    let fresh = vec!["k2".to_string()];
    assert_eq!(a.claim_outcomes("f/s", &fresh).unwrap(), vec![Claim::Held]);
}

#[test]
fn a_lease_moves_only_from_a_gone_holder_and_fences_the_old_one_out() {
    let db = FreshDb::create();
    let (mut a, mut b) = (replica(&db), replica(&db));
    let fence_a = a.acquire_lease("source:f/poll").unwrap().unwrap();
    assert_eq!(fence_a.token, 1);
    assert_eq!(b.acquire_lease("source:f/poll").unwrap(), None);
    assert_eq!(
        a.acquire_lease("source:f/poll").unwrap(),
        Some(fence_a.clone())
    );
    a.fence(&fence_a).unwrap();
    outlive_the_others(&mut b);
    let fence_b = b.acquire_lease("source:f/poll").unwrap().unwrap();
    assert_eq!(fence_b.token, 2);
    b.fence(&fence_b).unwrap();
    // The live holder itself is refused behind a token that is not the lease's now.
    let old = crate::cluster::Fence {
        token: 1,
        ..fence_b.clone()
    };
    let refused = b.fence(&old).unwrap_err();
    assert!(refused.contains("stale"), "{refused}");
    let refused = a.fence(&fence_a).unwrap_err();
    assert!(refused.contains("stale"), "{refused}");
    // A cursor write behind a stale fence never lands.
    a.begin().unwrap();
    let fenced = a.fence(&fence_a).and_then(|()| {
        a.append("f", "poll", &[], Some(("cursor", "9")))
            .map(|_| ())
    });
    assert!(fenced.is_err());
    a.commit().unwrap();
    assert_eq!(b.cursor("f", "poll", "cursor").unwrap(), None);
    // A gone replica cannot take a lease back either.
    assert_eq!(a.acquire_lease("source:f/other").unwrap(), None);
}

#[test]
fn two_replicas_recording_one_accepted_id_at_once_record_it_once() {
    let db = FreshDb::create();
    let (mut a, mut b) = (replica(&db), replica(&db));
    a.begin().unwrap();
    assert!(a
        .record_new_outcome("webhook:f/s", "d1", OutcomeStatus::Delivered)
        .unwrap());
    let racing = std::thread::spawn(move || {
        b.begin().unwrap();
        let recorded = b.record_new_outcome("webhook:f/s", "d1", OutcomeStatus::Delivered);
        let _ = b.commit();
        recorded
    });
    std::thread::sleep(Duration::from_millis(100));
    a.commit().unwrap();
    assert_eq!(racing.join().unwrap(), Ok(false));
    assert!(!a
        .record_new_outcome("webhook:f/s", "d1", OutcomeStatus::Delivered)
        .unwrap());
}

#[test]
fn replicas_share_the_state_but_not_with_a_writer_that_owns_it_alone() {
    let db = FreshDb::create();
    let mut a = replica(&db);
    let b = replica(&db);
    let refused = PostgresBackend::open_writer(&db.url, Duration::ZERO)
        .err()
        .unwrap();
    assert!(matches!(refused, StateError::InUse { .. }), "{refused}");
    a.close().unwrap();
    drop(a);
    // The clean stop is recorded by the last replica to leave.
    let mut b = b;
    b.close().unwrap();
    drop(b);
    let mut writer = PostgresBackend::open_writer(&db.url, Duration::ZERO).unwrap();
    assert!(PostgresBackend::open_replica(&db.url, Duration::ZERO, TTL).is_err());
    writer.close().unwrap();
}

#[test]
fn a_replica_with_nothing_in_flight_takes_its_own_unfinished_claims_again() {
    let db = FreshDb::create();
    let mut a = replica(&db);
    let appended = a.append("f", "s", &vec![b"{}".to_vec(); 3], None).unwrap();
    assert_eq!(ids(&a.pending("f", 0, 100).unwrap()), appended);
    // Their completion failed: with something in flight they stay claimed...
    assert!(a.pending("f", appended[2], 100).unwrap().is_empty());
    // ... and once the processor starts over they run again.
    assert_eq!(ids(&a.pending("f", 0, 100).unwrap()), appended);
}

#[test]
fn a_replica_paused_inside_a_transaction_loses_its_session_and_its_locks() {
    let db = FreshDb::create();
    let (mut a, mut b) = (replica(&db), replica(&db));
    // A stops between two statements of a batch, holding a row lock (as a stopped
    // process or a frozen machine would).
    a.conn
        .batch("BEGIN; UPDATE meta SET value = value WHERE key = 'stop'")
        .unwrap();
    // B's write of that row waits for the server to end A's idle session (half A's time to
    // live, at least a second), not for A to resume.
    b.conn.batch("SET lock_timeout = '30s'").unwrap();
    b.conn
        .batch("UPDATE meta SET value = value WHERE key = 'stop'")
        .expect("A's lock is let go while A is still paused");
    // A's batch is gone with its session: nothing of it was kept.
    assert!(a.conn.batch("COMMIT").is_err());
    b.heartbeat().unwrap();
}
