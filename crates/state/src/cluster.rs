//! What replicas sharing one state know of each other: claims on deliveries, leases with
//! fencing tokens, and the cluster's picture for operators. A state one process owns
//! (SQLite, or PostgreSQL opened by one writer) answers as a cluster of one: every claim
//! free, every lease held with token 0.

use serde::Serialize;

/// A (sink, key) as a delivery about to call finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This process holds the key now; the recorded outcome, if any, says whether the
    /// call already happened.
    Free(Option<crate::OutcomeStatus>),
    /// Another live replica holds the key (its call may be under way): wait and ask again.
    Held,
}

/// A lease this replica holds: its name and the fencing token it was granted with. A
/// write fenced with a token older than the lease's current one is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: String,
    pub token: i64,
}

impl Fence {
    /// The lease of a process that owns its state alone: held at once, never taken.
    pub fn alone(lease: &str) -> Fence {
        Fence {
            lease: lease.to_string(),
            token: 0,
        }
    }
}

/// A replica: its id and its time to live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: std::sync::Arc<str>,
    pub ttl: std::time::Duration,
}

/// Why a replica must stop: the others count it as gone (its heartbeat came later than
/// its time to live), so its claims and leases may be another's already.
pub const FENCED: &str = "this replica was counted as gone by the others (no heartbeat within its time to live); its claims and leases may have moved: it stops";

/// One replica as the state records it.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaRow {
    pub id: String,
    pub host: String,
    pub pid: i64,
    /// Milliseconds since the epoch, by the database's clock.
    pub started_at: i64,
    pub seen_at: i64,
    pub ttl_ms: i64,
    pub stopped_at: Option<i64>,
    /// Heartbeat within its time to live and not stopped.
    pub live: bool,
    /// Inbox messages it has claimed and not finished.
    pub claimed: i64,
    /// (sink, key)s it holds for a call.
    pub keys: i64,
}

/// One lease as the state records it.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub token: i64,
    pub taken_at: i64,
    /// Its holder is live (otherwise the next replica to ask takes it).
    pub held: bool,
}

/// The cluster's picture: replicas, leases and each flow's waiting messages.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub replicas: Vec<ReplicaRow>,
    pub leases: Vec<LeaseRow>,
    /// (flow, messages in the inbox, of which claimed by a replica).
    pub backlog: Vec<(String, i64, i64)>,
}
