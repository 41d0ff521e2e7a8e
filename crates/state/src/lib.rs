//! Durable state behind one trait: the inbox of accepted messages, source cursors, sink
//! outcomes (the idempotency store), dead letters and inventory ledgers. [`Store`] runs a backend on its own
//! thread and commits whatever requests arrived together in one transaction (group
//! commit), so durability costs one sync per batch, not per message.
#![deny(clippy::unwrap_used)]

pub mod check;
pub mod cluster;
mod error;
mod journal;
pub mod ledger;
pub mod lineage;
pub mod lock;
pub mod postgres;
pub mod replay;
pub mod retention;
mod sqlite;
#[cfg(test)]
mod testing;

pub use error::StateError;
pub use ledger::Journal;
pub use lock::StateLock;
pub use postgres::PostgresBackend;
pub use sqlite::SqliteBackend;

use std::sync::mpsc;
use std::thread;
use tokio::sync::oneshot;

/// An error of the state backend.
pub type StateResult<T> = Result<T, String>;

/// A message accepted by a source, as stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: i64,
    pub source: String,
    pub payload: Vec<u8>,
    /// When a source accepted it (seconds since the epoch).
    pub received_at: i64,
    /// The W3C trace context the message arrived with (a webhook's `traceparent`).
    pub traceparent: Option<String>,
}

/// Where a dead letter comes from: a flow's message, or a ledger's publication (which
/// re-sends a quantity, not a message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flow(String),
    Ledger(String),
}

impl Origin {
    /// How a ledger's letters are told apart in the stored `flow` column.
    pub const LEDGER_PREFIX: &'static str = "ledger:";

    /// The stored form: the flow's name, or `ledger:` and the ledger's name.
    pub fn encode(&self) -> String {
        match self {
            Origin::Flow(name) => name.clone(),
            Origin::Ledger(name) => format!("{}{name}", Origin::LEDGER_PREFIX),
        }
    }

    /// Reads the stored form.
    pub fn decode(stored: &str) -> Origin {
        match stored.strip_prefix(Origin::LEDGER_PREFIX) {
            Some(ledger) => Origin::Ledger(ledger.to_string()),
            None => Origin::Flow(stored.to_string()),
        }
    }

    /// The flow whose message this is; `None` for a ledger's letter.
    pub fn flow(&self) -> Option<&str> {
        match self {
            Origin::Flow(name) => Some(name),
            Origin::Ledger(_) => None,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encode())
    }
}

impl serde::Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.encode())
    }
}

/// A dead letter: the message, the error, every attempt and the correlation id.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    pub id: i64,
    /// Shown (and stored) as `flow`, a ledger's as `ledger:NAME`.
    #[serde(rename = "flow")]
    pub origin: Origin,
    /// The source that accepted the message (replay re-enters there).
    pub source: String,
    pub node: String,
    /// `flow/sink` and key of the failed delivery; empty for a rejection before any sink.
    pub sink: String,
    pub key: String,
    pub correlation_id: String,
    /// The original source message (for replay).
    pub message: String,
    /// What the failing node received.
    pub payload: String,
    pub error: String,
    /// One line per attempt: time, outcome.
    pub attempts: Vec<String>,
    pub created_at: i64,
    pub replayed_at: Option<i64>,
    /// When the source accepted the message (`None` for letters stored before this was
    /// kept); outcomes recorded since then are kept while the letter may be replayed.
    pub accepted_at: Option<i64>,
    /// When it was settled without a replay (`omniflow dlq discard`).
    pub discarded_at: Option<i64>,
    /// The queue its sink names (`dead_letter = "QUEUE"`); `None` for a letter of no
    /// named queue (a rejection before any sink, a ledger's publication).
    pub queue: Option<String>,
}

/// Sources record the ids they accepted (webhook deliveries, polled items, bus messages)
/// in the outcome store under `kind:flow/source`; sinks record theirs under `flow/sink`.
pub fn is_source_namespace(namespace: &str) -> bool {
    namespace.contains(':')
}

/// Outcomes recorded before these times (seconds since the epoch) are forgotten; `None`
/// keeps that kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Sinks' outcomes.
    pub sinks: Option<i64>,
    /// Sources' accepted ids.
    pub sources: Option<i64>,
}

/// One step of a sweep over the outcomes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Outcomes forgotten by this step.
    pub forgotten: usize,
    /// Where the next step starts; `None` once the sweep reached the end.
    pub next: Option<(String, String)>,
}

/// What happened to a delivery, by (sink, idempotency key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeStatus {
    Delivered,
    DeadLettered,
}

impl OutcomeStatus {
    fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Delivered => "delivered",
            OutcomeStatus::DeadLettered => "dead",
        }
    }

    fn parse(text: &str) -> Option<OutcomeStatus> {
        match text {
            "delivered" => Some(OutcomeStatus::Delivered),
            "dead" => Some(OutcomeStatus::DeadLettered),
            _ => None,
        }
    }
}

/// A state backend. Calls between `begin` and `commit` form one atomic batch. SQLite and
/// PostgreSQL implement the same calls with the same batching; on PostgreSQL a statement
/// that fails outside a savepoint undoes the whole batch (its commit fails).
pub trait Backend: Send {
    /// Starts a batch.
    fn begin(&mut self) -> StateResult<()>;
    /// Makes the batch durable.
    fn commit(&mut self) -> StateResult<()>;
    /// Abandons the batch (after a failed commit).
    fn rollback(&mut self) -> StateResult<()>;
    /// Marks a point inside the batch that one request's writes can be undone to.
    fn savepoint(&mut self) -> StateResult<()>;
    /// Keeps the writes since the savepoint.
    fn release_savepoint(&mut self) -> StateResult<()>;
    /// Undoes the writes since the savepoint.
    fn rollback_savepoint(&mut self) -> StateResult<()>;
    /// Appends messages and, in the same transaction, moves the source's cursor to the
    /// position after them; returns their ids.
    fn append(
        &mut self,
        flow: &str,
        source: &str,
        messages: &[Vec<u8>],
        cursor: Option<(&str, &str)>,
    ) -> StateResult<Vec<i64>>;
    /// Messages of a flow not yet completed, with id above `after`, oldest first. Among
    /// replicas they are claimed for this one instead (`after` 0 says the caller has
    /// nothing in flight, so its own earlier claims are given again).
    fn pending(&mut self, flow: &str, after: i64, limit: usize) -> StateResult<Vec<Stored>>;
    /// Number of pending messages of a flow.
    fn backlog(&mut self, flow: &str) -> StateResult<u64>;
    /// Removes finished messages.
    fn complete(&mut self, ids: &[i64]) -> StateResult<()>;
    /// A source's cursor value.
    fn cursor(&mut self, flow: &str, source: &str, key: &str) -> StateResult<Option<String>>;
    /// The recorded outcome of a delivery.
    fn outcome(&mut self, sink: &str, key: &str) -> StateResult<Option<OutcomeStatus>>;
    /// Records the outcome of a delivery.
    fn record_outcome(&mut self, sink: &str, key: &str, status: OutcomeStatus) -> StateResult<()>;
    /// The recorded outcomes of several deliveries of one sink, in the order of `keys`.
    fn outcomes(&mut self, sink: &str, keys: &[String]) -> StateResult<Vec<Option<OutcomeStatus>>> {
        keys.iter().map(|key| self.outcome(sink, key)).collect()
    }
    /// Records the same outcome for several deliveries of one sink.
    fn record_outcomes(
        &mut self,
        sink: &str,
        keys: &[String],
        status: OutcomeStatus,
    ) -> StateResult<()> {
        keys.iter()
            .try_for_each(|key| self.record_outcome(sink, key, status))
    }
    /// Forgets an outcome (so a replay delivers again).
    fn clear_outcome(&mut self, sink: &str, key: &str) -> StateResult<()>;
    /// Stores a dead letter; returns its id.
    fn add_dead_letter(&mut self, letter: &DeadLetter) -> StateResult<i64>;
    /// Dead letters, newest first; `include_replayed` lists replayed ones too.
    fn dead_letters(
        &mut self,
        include_replayed: bool,
        limit: usize,
    ) -> StateResult<Vec<DeadLetter>>;
    /// Dead letters of one queue, newest first; `include_replayed` lists replayed and
    /// discarded ones too.
    fn queue_letters(
        &mut self,
        queue: &str,
        include_replayed: bool,
        limit: usize,
    ) -> StateResult<Vec<DeadLetter>>;
    /// One dead letter.
    fn dead_letter(&mut self, id: i64) -> StateResult<Option<DeadLetter>>;
    /// Claims a dead letter for replay (marks it replayed); false when it was replayed or
    /// discarded already, so that two replays never put one letter back twice.
    fn mark_replayed(&mut self, id: i64) -> StateResult<bool>;
    /// Settles a dead letter not replayed without replaying it; false when there is no
    /// such letter waiting.
    fn discard(&mut self, id: i64) -> StateResult<bool>;
    /// Puts a dead letter's message back into the inbox, keeping when its source first
    /// accepted it; returns its id.
    fn append_replay(
        &mut self,
        flow: &str,
        source: &str,
        message: &[u8],
        accepted_at: i64,
    ) -> StateResult<i64>;
    /// The acceptance time of the oldest message that may still run: waiting in the inbox
    /// (a replay with its original time), or dead-lettered and neither replayed nor
    /// discarded. `None` when nothing is held.
    fn held_since(&mut self) -> StateResult<Option<i64>>;
    /// Reads at most `scan` outcomes in (sink, key) order after `from` (from the start
    /// when `None`) and forgets those recorded before the cut of their kind.
    fn forget_outcomes(
        &mut self,
        cut: Cut,
        from: Option<&(String, String)>,
        scan: usize,
    ) -> StateResult<Sweep>;
    /// Removes at most `limit` dead letters replayed or discarded before `before`;
    /// returns how many.
    fn forget_dead_letters(&mut self, before: i64, limit: usize) -> StateResult<usize>;
    /// The rows of one inventory ledger.
    /// Keeps the W3C trace context a message arrived with, for its processing.
    fn set_traceparent(&mut self, id: i64, traceparent: &str) -> StateResult<()>;
    /// Stores lineage events with the terms they are found by.
    fn record_lineage(&mut self, events: &[lineage::Event]) -> StateResult<()>;
    /// The newest `limit` events, oldest first, of the messages `term` names: its
    /// correlation id, or a term of one of their events (of the newest
    /// [`lineage::TERM_ROWS`] rows of that term).
    fn lineage(&mut self, term: &str, limit: usize) -> StateResult<Vec<lineage::Event>>;
    /// Removes lineage older than `before_ms` among the oldest `limit` rows of each of its
    /// tables; returns the most rows removed from one table.
    fn forget_lineage(&mut self, before_ms: i64, limit: usize) -> StateResult<usize>;
    fn journal<'a>(&'a mut self, ledger: &'a str) -> StateResult<Box<dyn Journal + 'a>>;
    /// The names of the ledgers that hold rows.
    fn ledger_names(&mut self) -> StateResult<Vec<String>>;
    /// Records an outcome unless one is recorded; true when this call recorded it. Two
    /// processes recording the same key at once: exactly one gets true.
    fn record_new_outcome(
        &mut self,
        namespace: &str,
        key: &str,
        status: OutcomeStatus,
    ) -> StateResult<bool> {
        if self.outcome(namespace, key)?.is_some() {
            return Ok(false);
        }
        self.record_outcome(namespace, key, status)?;
        Ok(true)
    }
    /// This process as a replica (id and time to live) when it shares the state with
    /// other replicas; `None` when it owns the state alone.
    fn replica(&self) -> Option<cluster::Member> {
        None
    }
    /// Takes (sink, key)s for a call by this process and reads their outcomes; a key
    /// another live replica holds is [`cluster::Claim::Held`]. Alone, every key is free.
    fn claim_outcomes(&mut self, sink: &str, keys: &[String]) -> StateResult<Vec<cluster::Claim>> {
        Ok(self
            .outcomes(sink, keys)?
            .into_iter()
            .map(cluster::Claim::Free)
            .collect())
    }
    /// Lets go of (sink, key)s taken with `claim_outcomes` that end without a new outcome
    /// (recording an outcome lets go of its key in the same transaction).
    fn release_claims(&mut self, _sink: &str, _keys: &[String]) -> StateResult<()> {
        Ok(())
    }
    /// Confirms this replica is alive and frees what replicas counted as gone had claimed;
    /// returns how many inbox messages it freed. Fails with [`cluster::FENCED`] once the
    /// others count this replica as gone.
    fn heartbeat(&mut self) -> StateResult<u64> {
        Ok(0)
    }
    /// Takes the lease `name` if no live replica holds it (a new fencing token), or
    /// confirms this replica's; `None` while another live replica holds it.
    fn acquire_lease(&mut self, name: &str) -> StateResult<Option<cluster::Fence>> {
        Ok(Some(cluster::Fence::alone(name)))
    }
    /// Refuses the batch's next writes unless `fence` is still the lease's current holder
    /// and token; taken before a write only the lease holder may make (a source's
    /// cursor), it holds a takeover back until the batch commits.
    fn fence(&mut self, _fence: &cluster::Fence) -> StateResult<()> {
        Ok(())
    }
    /// Takes a ledger's turn for one operation among replicas: holds every other
    /// replica's ledger operation back until this batch ends, and returns the ledger's
    /// new version (one more than the last operation's, whoever made it). `None` when the
    /// process owns the state alone.
    fn ledger_turn(&mut self, _ledger: &str) -> StateResult<Option<i64>> {
        Ok(None)
    }
    /// A ledger's version as last committed (see `ledger_turn`); `None` alone.
    fn ledger_version(&mut self, _ledger: &str) -> StateResult<Option<i64>> {
        Ok(None)
    }
    /// The replicas, leases and backlog, for operators.
    fn cluster_status(&mut self) -> StateResult<cluster::Status> {
        Ok(cluster::Status::default())
    }
    /// Ends a writer's use of the state, outside any batch: what is committed is made
    /// complete in the store itself and the stop is recorded as clean.
    fn close(&mut self) -> StateResult<()> {
        Ok(())
    }
}

/// A queued request: runs against the backend, says whether it succeeded (a failed job's
/// writes are rolled back alone), and returns what to tell the caller after the commit.
type Reply = Box<dyn FnOnce(StateResult<()>) + Send>;
type Work = Box<dyn FnOnce(&mut dyn Backend) -> (bool, Reply) + Send>;

/// How a request runs in its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Several writes, undone together if the request fails (a savepoint).
    Isolated,
    /// One statement: atomic by itself.
    Single,
    /// A read: answered as soon as it ran, without waiting for the batch's commit.
    Read,
}

/// A queued request.
struct Job {
    work: Work,
    mode: Mode,
}

/// What the state thread receives: work for the next batch, or the last request.
enum Request {
    Job(Job),
    /// Runs after every request queued before it; closes the backend and ends the thread.
    Close(mpsc::Sender<StateResult<()>>),
}

/// A cloneable handle to the state thread.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Request>,
    /// Set when a write queued with [`Store::send`] failed: from then on nothing may be
    /// marked complete, so no message can leave the inbox without its outcome.
    degraded: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Set while batches fail to start or commit; cleared by the next commit.
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// This process as a replica when it shares the state with other replicas.
    replica: Option<cluster::Member>,
}

const STOPPED: &str = "the state thread has stopped";

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 4096;

impl Store {
    /// Starts the state thread over a backend.
    pub fn start(backend: Box<dyn Backend>) -> Store {
        let (jobs, queue) = mpsc::channel::<Request>();
        let failing = std::sync::Arc::<std::sync::atomic::AtomicBool>::default();
        let flag = failing.clone();
        let replica = backend.replica();
        thread::Builder::new()
            .name("omniflow-state".into())
            .spawn(move || run_batches(backend, &queue, &flag))
            .map(|_| ())
            .unwrap_or_else(|err| tracing::error!(error = %err, "cannot start the state thread"));
        Store {
            jobs,
            degraded: std::sync::Arc::default(),
            failing,
            replica,
        }
    }

    /// This process's replica id when it shares the state with other replicas (then
    /// reads that claim must commit before they are acted on).
    pub fn replica(&self) -> Option<&str> {
        self.replica.as_ref().map(|member| &*member.id)
    }

    /// This process's time to live as a replica (see [`Store::replica`]).
    pub fn replica_ttl(&self) -> Option<std::time::Duration> {
        self.replica.as_ref().map(|member| member.ttl)
    }

    /// True while the store takes writes: no queued write has failed (see
    /// [`Store::send`]) and the last batch committed.
    pub fn is_writable(&self) -> bool {
        !self.is_degraded() && !self.failing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Commits what was queued before, then closes the backend (a SQLite writer
    /// checkpoints its log and records a clean stop) and ends the state thread; requests
    /// queued after this one are refused.
    pub fn close_blocking(&self) -> StateResult<()> {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Request::Close(tx))
            .map_err(|_| STOPPED.to_string())?;
        rx.recv().map_err(|_| STOPPED.to_string())?
    }

    /// True once a queued write has failed (see [`Store::send`]).
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Queues `work`; `reply` receives its result once the batch is committed.
    fn submit<T, F, R>(&self, mode: Mode, work: F, reply: R) -> StateResult<()>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> StateResult<T> + Send + 'static,
        R: FnOnce(StateResult<T>) + Send + 'static,
    {
        let work: Work = Box::new(move |backend| {
            let result = work(backend);
            let ok = result.is_ok();
            let reply: Reply =
                Box::new(move |committed: StateResult<()>| reply(committed.and(result)));
            (ok, reply)
        });
        self.jobs
            .send(Request::Job(Job { work, mode }))
            .map_err(|_| STOPPED.to_string())
    }

    /// Runs `work` in the next batch and resolves once the batch is durable. If `work`
    /// fails, none of its writes are kept.
    pub async fn call<T, F>(&self, work: F) -> StateResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> StateResult<T> + Send + 'static,
    {
        self.call_in(Mode::Isolated, work).await
    }

    /// Like [`Store::call`], and sets `failed` on the state thread, before the next batch
    /// runs, when the work or its batch's commit failed (so state kept beside the store,
    /// like a ledger's book, is reloaded before it is used again).
    pub async fn call_flagging<T, F>(
        &self,
        work: F,
        failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> StateResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> StateResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(Mode::Isolated, work, move |result| {
            if result.is_err() {
                failed.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            let _ = tx.send(result);
        })?;
        rx.await.map_err(|_| STOPPED.to_string())?
    }

    /// Runs a read in the next batch and answers as soon as it ran (a read waits for no
    /// fsync). What it sees may include writes of the same, not yet committed batch.
    pub async fn read<T, F>(&self, work: F) -> StateResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> StateResult<T> + Send + 'static,
    {
        self.call_in(Mode::Read, work).await
    }

    /// Like [`Store::call`] for work that is one statement (atomic without a savepoint).
    pub async fn call_single<T, F>(&self, work: F) -> StateResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> StateResult<T> + Send + 'static,
    {
        self.call_in(Mode::Single, work).await
    }

    /// Runs `work` in the next batch in the given mode.
    pub async fn call_in<T, F>(&self, mode: Mode, work: F) -> StateResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> StateResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(mode, work, move |result| {
            let _ = tx.send(result);
        })?;
        rx.await.map_err(|_| STOPPED.to_string())?
    }

    /// Queues `work` for the next batch without waiting for it; errors are logged. The
    /// store is degraded as soon as the work fails on the state thread, so a request
    /// queued behind it with [`Store::call_unless_degraded`] already sees it.
    pub fn send<F>(&self, work: F)
    where
        F: FnOnce(&mut dyn Backend) -> StateResult<()> + Send + 'static,
    {
        let (failed, degraded) = (self.degraded.clone(), self.degraded.clone());
        let work = move |backend: &mut dyn Backend| {
            let result = work(backend);
            if result.is_err() {
                failed.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            result
        };
        let queued = self.submit(Mode::Isolated, work, move |result| {
            if let Err(err) = result {
                degraded.store(true, std::sync::atomic::Ordering::SeqCst);
                tracing::error!(error = %err, "state write failed; messages stay pending until a restart");
            }
        });
        if let Err(err) = queued {
            self.degraded
                .store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::error!(error = %err, "state write not queued");
        }
    }

    /// Queues `work` for the next batch, in its own savepoint, without waiting for it: for
    /// writes nothing depends on (lineage). A failure is logged and leaves the store as
    /// it was.
    pub fn send_aside<F>(&self, work: F)
    where
        F: FnOnce(&mut dyn Backend) -> StateResult<()> + Send + 'static,
    {
        let queued = self.submit(Mode::Isolated, work, move |result| {
            if let Err(err) = result {
                tracing::warn!(error = %err, "state write of diagnostics failed; dropped");
            }
        });
        if let Err(err) = queued {
            tracing::warn!(error = %err, "state write of diagnostics not queued; dropped");
        }
    }

    /// Like [`Store::call_single`], but refused on the state thread once a write queued
    /// with [`Store::send`] has failed (checked when the work runs, so it covers a failure
    /// earlier in the same batch; a failed commit undoes the whole batch anyway).
    pub async fn call_unless_degraded<T, F>(&self, work: F) -> StateResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> StateResult<T> + Send + 'static,
    {
        let degraded = self.degraded.clone();
        self.call_single(move |backend| {
            if degraded.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("an earlier state write failed; refused until a restart".into());
            }
            work(backend)
        })
        .await
    }

    /// Like [`Store::call`] but from synchronous code.
    pub fn call_blocking<T, F>(&self, work: F) -> StateResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> StateResult<T> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        self.submit(Mode::Isolated, work, move |result| {
            let _ = tx.send(result);
        })?;
        rx.recv().map_err(|_| STOPPED.to_string())?
    }
}

/// The state thread: takes the requests that arrived together and commits them as one
/// transaction, until the store is closed or every handle is gone.
fn run_batches(
    mut backend: Box<dyn Backend>,
    queue: &mpsc::Receiver<Request>,
    failing: &std::sync::atomic::AtomicBool,
) {
    let mut closing = None;
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Job(job) => batch.push(job),
                Request::Close(reply) => {
                    closing = Some(reply);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            run_batch(backend.as_mut(), batch, failing);
        }
        if let Some(reply) = closing.take() {
            let closed = backend.close();
            drop(backend);
            let _ = reply.send(closed);
            return;
        }
    }
}

/// Runs one batch in one transaction; `failing` says, before anyone hears back, whether
/// it could not start or commit.
fn run_batch(backend: &mut dyn Backend, batch: Vec<Job>, failing: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering::SeqCst;
    if let Err(err) = backend.begin() {
        failing.store(true, SeqCst);
        // Nothing ran: every caller hears the failure and may retry.
        for job in batch {
            let (_, reply) = (job.work)(&mut Unavailable(err.clone()));
            reply(Err(err.clone()));
        }
        return;
    }
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        // A single statement is atomic by itself; several writes in one request are
        // undone together when the request fails.
        let marked = job.mode == Mode::Isolated && backend.savepoint().is_ok();
        let (ok, reply) = (job.work)(backend);
        if marked {
            let _ = if ok {
                backend.release_savepoint()
            } else {
                backend.rollback_savepoint()
            };
        }
        if job.mode == Mode::Read {
            reply(Ok(()));
        } else {
            replies.push(reply);
        }
    }
    let committed = backend.commit();
    if committed.is_err() {
        let _ = backend.rollback();
    }
    failing.store(committed.is_err(), SeqCst);
    for reply in replies {
        reply(committed.clone());
    }
}

/// A backend that refuses everything (used when a batch could not start).
struct Unavailable(String);

impl Backend for Unavailable {
    fn begin(&mut self) -> StateResult<()> {
        Err(self.0.clone())
    }
    fn commit(&mut self) -> StateResult<()> {
        Err(self.0.clone())
    }
    fn rollback(&mut self) -> StateResult<()> {
        Err(self.0.clone())
    }
    fn savepoint(&mut self) -> StateResult<()> {
        Err(self.0.clone())
    }
    fn release_savepoint(&mut self) -> StateResult<()> {
        Err(self.0.clone())
    }
    fn rollback_savepoint(&mut self) -> StateResult<()> {
        Err(self.0.clone())
    }
    fn append(
        &mut self,
        _: &str,
        _: &str,
        _: &[Vec<u8>],
        _: Option<(&str, &str)>,
    ) -> StateResult<Vec<i64>> {
        Err(self.0.clone())
    }
    fn pending(&mut self, _: &str, _: i64, _: usize) -> StateResult<Vec<Stored>> {
        Err(self.0.clone())
    }
    fn backlog(&mut self, _: &str) -> StateResult<u64> {
        Err(self.0.clone())
    }
    fn complete(&mut self, _: &[i64]) -> StateResult<()> {
        Err(self.0.clone())
    }
    fn cursor(&mut self, _: &str, _: &str, _: &str) -> StateResult<Option<String>> {
        Err(self.0.clone())
    }
    fn outcome(&mut self, _: &str, _: &str) -> StateResult<Option<OutcomeStatus>> {
        Err(self.0.clone())
    }
    fn record_outcome(&mut self, _: &str, _: &str, _: OutcomeStatus) -> StateResult<()> {
        Err(self.0.clone())
    }
    fn clear_outcome(&mut self, _: &str, _: &str) -> StateResult<()> {
        Err(self.0.clone())
    }
    fn add_dead_letter(&mut self, _: &DeadLetter) -> StateResult<i64> {
        Err(self.0.clone())
    }
    fn dead_letters(&mut self, _: bool, _: usize) -> StateResult<Vec<DeadLetter>> {
        Err(self.0.clone())
    }
    fn dead_letter(&mut self, _: i64) -> StateResult<Option<DeadLetter>> {
        Err(self.0.clone())
    }
    fn queue_letters(&mut self, _: &str, _: bool, _: usize) -> StateResult<Vec<DeadLetter>> {
        Err(self.0.clone())
    }
    fn journal<'a>(&'a mut self, _: &'a str) -> StateResult<Box<dyn Journal + 'a>> {
        Err(self.0.clone())
    }

    fn ledger_names(&mut self) -> StateResult<Vec<String>> {
        Err(self.0.clone())
    }

    fn mark_replayed(&mut self, _: i64) -> StateResult<bool> {
        Err(self.0.clone())
    }
    fn held_since(&mut self) -> StateResult<Option<i64>> {
        Err(self.0.clone())
    }
    fn discard(&mut self, _: i64) -> StateResult<bool> {
        Err(self.0.clone())
    }
    fn append_replay(&mut self, _: &str, _: &str, _: &[u8], _: i64) -> StateResult<i64> {
        Err(self.0.clone())
    }
    fn forget_outcomes(
        &mut self,
        _: Cut,
        _: Option<&(String, String)>,
        _: usize,
    ) -> StateResult<Sweep> {
        Err(self.0.clone())
    }
    fn forget_dead_letters(&mut self, _: i64, _: usize) -> StateResult<usize> {
        Err(self.0.clone())
    }
    fn record_lineage(&mut self, _: &[lineage::Event]) -> StateResult<()> {
        Err(self.0.clone())
    }
    fn set_traceparent(&mut self, _: i64, _: &str) -> StateResult<()> {
        Err(self.0.clone())
    }
    fn lineage(&mut self, _: &str, _: usize) -> StateResult<Vec<lineage::Event>> {
        Err(self.0.clone())
    }
    fn forget_lineage(&mut self, _: i64, _: usize) -> StateResult<usize> {
        Err(self.0.clone())
    }
}

/// The file of a `sqlite:PATH` state: a plain file path. An empty path, `:memory:` and
/// SQLite `file:` URIs are refused: they would run without a durable state, or open the
/// file under another name than the one its lock is taken on.
pub fn sqlite_path(spec: &str) -> Result<&std::path::Path, StateError> {
    match spec.split_once(':') {
        Some(("sqlite", path)) if path.trim().is_empty() => Err(StateError::Backend(format!(
            "state `{spec}` names no file; use sqlite:PATH"
        ))),
        Some(("sqlite", path)) if path.starts_with(':') || path.starts_with("file:") => {
            Err(StateError::Backend(format!(
                "state `{spec}` is not a plain file path (in-memory databases and SQLite URIs \
                 keep nothing durable or escape the state's lock); use sqlite:PATH"
            )))
        }
        Some(("sqlite", path)) => Ok(std::path::Path::new(path)),
        _ => Err(StateError::Backend(format!(
            "unknown state backend `{}`; use sqlite:PATH or postgres://USER@HOST[:PORT]/DATABASE",
            shown(spec)
        ))),
    }
}

/// `--state` as it may be shown (in logs and errors): a URL's password replaced by `***`.
pub fn shown(spec: &str) -> String {
    match postgres::Target::parse(spec) {
        Ok(target) => target.shown,
        Err(_) if spec.contains("://") => postgres::target::redacted(spec),
        Err(_) => spec.to_string(),
    }
}

/// Opens the backend named by `--state` for writing, as its only writer: takes the state's
/// lock (waiting up to `wait` for a holder to stop), checks the state, and returns the
/// backend with the lock, which is to be dropped only after the store is closed. A
/// PostgreSQL state's lock lives in the backend's own connection.
pub fn open_writer(
    spec: &str,
    wait: std::time::Duration,
) -> Result<(Box<dyn Backend>, StateLock), StateError> {
    if postgres::is_postgres(spec) {
        let backend = PostgresBackend::open_writer(spec, wait)?;
        return Ok((Box::new(backend), StateLock::in_backend()));
    }
    let path = sqlite_path(spec)?;
    let lock = lock::acquire(path, wait)?;
    let backend = SqliteBackend::open_checked(path)?;
    Ok((Box::new(backend), lock))
}

/// Opens a `postgres://` state as one replica among several (see
/// [`PostgresBackend::open_replica`]); a SQLite state is one process's alone and is
/// refused here.
pub fn open_replica(
    spec: &str,
    wait: std::time::Duration,
    ttl: std::time::Duration,
) -> Result<Box<dyn Backend>, StateError> {
    if !postgres::is_postgres(spec) {
        return Err(StateError::Backend(format!(
            "state `{}` is one process's own: replicas share a postgres:// state",
            shown(spec)
        )));
    }
    Ok(Box::new(PostgresBackend::open_replica(spec, wait, ttl)?))
}

/// Opens the backend named by `--state` for a command's writes while flows may run: a
/// SQLite file as its only writer (waiting up to `wait` for a runtime to stop); a
/// PostgreSQL state beside its replicas (waiting only for a writer that owns it alone).
pub fn open_for_command(
    spec: &str,
    wait: std::time::Duration,
) -> Result<(Box<dyn Backend>, StateLock), StateError> {
    if postgres::is_postgres(spec) {
        let backend = PostgresBackend::open_beside_replicas(spec, wait)?;
        return Ok((Box::new(backend), StateLock::in_backend()));
    }
    open_writer(spec, wait)
}

/// Opens the backend named by `--state` (`sqlite:PATH`) without its lock (a state file
/// no other process can know of, like the demo's). A PostgreSQL state is opened as its
/// only writer all the same (its lock costs nothing and lives in the backend).
pub fn open(spec: &str) -> StateResult<Box<dyn Backend>> {
    if postgres::is_postgres(spec) {
        let backend = PostgresBackend::open_writer(spec, std::time::Duration::ZERO)
            .map_err(|e| e.to_string())?;
        return Ok(Box::new(backend));
    }
    let path = sqlite_path(spec).map_err(|e| e.to_string())?;
    Ok(Box::new(SqliteBackend::open(&path.to_string_lossy())?))
}

/// Opens the backend named by `--state` for inspection (reads that do not hold up a
/// running runtime).
pub fn open_for_reading(spec: &str) -> StateResult<Box<dyn Backend>> {
    if postgres::is_postgres(spec) {
        let backend = PostgresBackend::open_for_reading(spec).map_err(|e| e.to_string())?;
        return Ok(Box::new(backend));
    }
    let path = sqlite_path(spec).map_err(|e| e.to_string())?;
    Ok(Box::new(SqliteBackend::open_for_reading(
        &path.to_string_lossy(),
    )?))
}

/// The runs of consecutive values in `ids` (in any order, repeats allowed), as
/// `(first, last)` pairs in ascending order.
pub fn runs(ids: &[i64]) -> Vec<(i64, i64)> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for id in sorted {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == id => *last = id,
            _ => runs.push((id, id)),
        }
    }
    runs
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_dead_letters_origin_is_stored_as_the_flow_column_was() {
        for (origin, stored) in [
            (Origin::Flow("orders".into()), "orders"),
            (Origin::Ledger("stock".into()), "ledger:stock"),
        ] {
            assert_eq!(origin.encode(), stored);
            assert_eq!(origin.to_string(), stored);
            assert_eq!(Origin::decode(stored), origin);
            assert_eq!(
                serde_json::to_string(&origin).unwrap(),
                format!("\"{stored}\"")
            );
        }
        assert_eq!(Origin::Flow("orders".into()).flow(), Some("orders"));
        assert_eq!(Origin::Ledger("stock".into()).flow(), None);
    }

    #[test]
    fn only_a_plain_file_path_is_a_state() {
        assert_eq!(
            sqlite_path("sqlite:/var/lib/omniflow/state.db").unwrap(),
            std::path::Path::new("/var/lib/omniflow/state.db")
        );
        for spec in [
            "sqlite:",
            "sqlite:  ",
            "sqlite::memory:",
            "sqlite:file:s.db",
            "sqlite:file:s.db?mode=memory",
        ] {
            let err = sqlite_path(spec).unwrap_err().to_string();
            assert!(err.contains("use sqlite:PATH"), "{spec}: {err}");
        }
        assert!(open("sqlite::memory:").is_err());
        assert!(open_for_reading("sqlite:file:x.db").is_err());
    }

    use super::*;

    #[test]
    fn runs_cover_exactly_the_ids() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(
            runs(&[7, 5, 6, 9, 9, 12, 11, 1]),
            vec![(1, 1), (5, 7), (9, 9), (11, 12)]
        );
    }

    #[tokio::test]
    async fn appended_messages_keep_their_order_and_ids_in_chunks_and_singly() {
        for state in testing::each("append") {
            let store = &state.store;
            // 64 + 64 + 2: two statements of many rows, then two single rows.
            let messages: Vec<Vec<u8>> = (0..130)
                .map(|n| format!("{{\"n\":{n}}}").into_bytes())
                .collect();
            let sent = messages.clone();
            let ids = store
                .call(move |b| b.append("f", "s", &sent, Some(("file", "130"))))
                .await
                .unwrap();
            assert_eq!(ids.len(), 130);
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
            let stored = store.call(|b| b.pending("f", 0, 1000)).await.unwrap();
            assert_eq!(stored.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
            assert_eq!(
                stored.iter().map(|m| m.payload.clone()).collect::<Vec<_>>(),
                messages
            );
            assert!(stored.iter().all(|m| m.source == "s"));
            let cursor = store.call(|b| b.cursor("f", "s", "file")).await.unwrap();
            assert_eq!(cursor.as_deref(), Some("130"));
        }
    }

    #[tokio::test]
    async fn outcomes_read_and_written_together_match_one_by_one() {
        for state in testing::each("outcomes") {
            let store = &state.store;
            // 40 keys: two statements of many keys and 8 one by one.
            let delivered: Vec<String> = (0..40).map(|n| format!("k{n}")).collect();
            let keys = delivered.clone();
            store
                .call(move |b| {
                    b.record_outcomes("flow/a", &keys, OutcomeStatus::Delivered)?;
                    b.record_outcome("flow/a", "k3", OutcomeStatus::DeadLettered)?;
                    b.record_outcomes("flow/b", &["k5".to_string()], OutcomeStatus::Delivered)
                })
                .await
                .unwrap();
            // Known and unknown keys mixed, a repeat among them, more than one statement's worth.
            let asked: Vec<String> = (0..50)
                .rev()
                .map(|n| format!("k{n}"))
                .chain(["k7".into()])
                .collect();
            let query = asked.clone();
            let together = store
                .call(move |b| b.outcomes("flow/a", &query))
                .await
                .unwrap();
            let query = asked.clone();
            let singly = store
                .call(move |b| {
                    query
                        .iter()
                        .map(|k| b.outcome("flow/a", k))
                        .collect::<StateResult<Vec<_>>>()
                })
                .await
                .unwrap();
            assert_eq!(together, singly);
            assert_eq!(together.iter().filter(|o| o.is_none()).count(), 10);
            assert_eq!(together[50 - 1 - 3], Some(OutcomeStatus::DeadLettered));
            assert_eq!(together[50], Some(OutcomeStatus::Delivered));
            let other = store
                .call(|b| b.outcomes("flow/b", &["k5".into(), "k6".into()]))
                .await
                .unwrap();
            assert_eq!(other, vec![Some(OutcomeStatus::Delivered), None]);
        }
    }

    #[tokio::test]
    async fn keys_and_cursors_from_outside_hold_any_text_on_every_backend() {
        // A remote API chose these: NUL, the escape character, and both side by side.
        let odd = ["a\0b", "\u{1}", "\u{1}0", "\0", "plain"];
        for state in testing::each("odd-text") {
            let kind = state.kind();
            let store = &state.store;
            let keys: Vec<String> = odd.iter().map(|k| k.to_string()).collect();
            let written = keys.clone();
            store
                .call(move |b| {
                    b.record_outcomes("f/s", &written[..3], OutcomeStatus::Delivered)?;
                    b.record_outcome("f/s", &written[3], OutcomeStatus::DeadLettered)?;
                    b.append("f", "src", &[b"m".to_vec()], Some(("pos\0", "t\0\u{1}9")))
                        .map(|_| ())
                })
                .await
                .unwrap();
            let asked = keys.clone();
            let found = store
                .call(move |b| b.outcomes("f/s", &asked))
                .await
                .unwrap();
            assert_eq!(
                found,
                vec![
                    Some(OutcomeStatus::Delivered),
                    Some(OutcomeStatus::Delivered),
                    Some(OutcomeStatus::Delivered),
                    Some(OutcomeStatus::DeadLettered),
                    None
                ],
                "{kind}"
            );
            let cursor = store.call(|b| b.cursor("f", "src", "pos\0")).await.unwrap();
            assert_eq!(cursor.as_deref(), Some("t\0\u{1}9"), "{kind}");
            store
                .call(|b| b.clear_outcome("f/s", "a\0b"))
                .await
                .unwrap();
            let gone = store.call(|b| b.outcome("f/s", "a\0b")).await.unwrap();
            assert_eq!(gone, None, "{kind}");
        }
    }

    #[tokio::test]
    async fn completing_removes_only_the_given_messages() {
        for state in testing::each("complete") {
            let store = &state.store;
            let ids = store
                .call(|b| b.append("f", "s", &vec![b"{}".to_vec(); 10], None))
                .await
                .unwrap();
            let done = vec![ids[0], ids[1], ids[2], ids[5], ids[7], ids[8], ids[2]];
            store.call(move |b| b.complete(&done)).await.unwrap();
            let left: Vec<i64> = store
                .call(|b| b.pending("f", 0, 100))
                .await
                .unwrap()
                .iter()
                .map(|m| m.id)
                .collect();
            assert_eq!(left, vec![ids[3], ids[4], ids[6], ids[9]]);
        }
    }

    #[tokio::test]
    async fn a_store_whose_batches_fail_is_not_writable_until_one_commits() {
        let failing = Store::start(Box::new(Unavailable("disk I/O error".into())));
        assert!(failing.is_writable());
        assert!(failing.call(|b| b.backlog("f")).await.is_err());
        assert!(!failing.is_writable(), "/ready must say no");
        for state in testing::each("writable") {
            state.store.call(|b| b.backlog("f")).await.unwrap();
            assert!(state.store.is_writable(), "{}", state.kind());
        }
    }

    #[tokio::test]
    async fn a_failed_queued_write_refuses_completions_queued_behind_it_in_the_same_batch() {
        for state in testing::each("degraded") {
            let store = &state.store;
            let ids = store
                .call(|b| b.append("f", "s", &[b"{}".to_vec(), b"{}".to_vec()], None))
                .await
                .unwrap();
            // Holds the state thread so that the next requests are taken as one batch.
            store.send(|_| {
                std::thread::sleep(std::time::Duration::from_millis(100));
                Ok(())
            });
            store.send(|_| Err("the outcome could not be written".into()));
            let first = ids[0];
            let refused = store
                .call_unless_degraded(move |b| b.complete(&[first]))
                .await;
            assert!(refused.is_err(), "{refused:?}");
            assert!(store.is_degraded());
            // Nothing left the inbox; an unguarded call still works.
            assert_eq!(store.call(|b| b.backlog("f")).await.unwrap(), 2);
        }
    }
}
