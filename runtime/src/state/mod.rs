//! Durable state behind one trait: the inbox of accepted messages, source cursors, sink
//! outcomes (the idempotency store) and dead letters. [`Store`] runs a backend on its own
//! thread and commits whatever requests arrived together in one transaction (group
//! commit), so durability costs one sync per batch, not per message.

mod sqlite;

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
}

/// A dead letter: the message, the error, every attempt and the correlation id.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub flow: String,
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

/// A state backend. Calls between `begin` and `commit` form one atomic batch. A
/// PostgreSQL backend implements the same calls with the same batching.
pub trait Backend: Send {
    /// Starts a batch.
    fn begin(&mut self) -> StateResult<()>;
    /// Makes the batch durable.
    fn commit(&mut self) -> StateResult<()>;
    /// Appends messages and, in the same transaction, moves the source's cursor to the
    /// position after them; returns their ids.
    fn append(
        &mut self,
        flow: &str,
        source: &str,
        messages: &[Vec<u8>],
        cursor: Option<(&str, &str)>,
    ) -> StateResult<Vec<i64>>;
    /// Messages of a flow not yet completed, with id above `after`, oldest first.
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
    /// One dead letter.
    fn dead_letter(&mut self, id: i64) -> StateResult<Option<DeadLetter>>;
    /// Marks a dead letter replayed.
    fn mark_replayed(&mut self, id: i64) -> StateResult<()>;
}

type Job = Box<dyn FnOnce(&mut dyn Backend) -> Box<dyn FnOnce(StateResult<()>) + Send> + Send>;

/// A cloneable handle to the state thread.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
}

const STOPPED: &str = "the state thread has stopped";

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 4096;

impl Store {
    /// Starts the state thread over a backend.
    pub fn start(mut backend: Box<dyn Backend>) -> Store {
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("omniflow-state".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let began = backend.begin();
                    let mut replies = Vec::with_capacity(batch.len());
                    for job in batch {
                        replies.push(job(backend.as_mut()));
                    }
                    let committed = began.and_then(|_| backend.commit());
                    for reply in replies {
                        reply(committed.clone());
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(|err| tracing::error!(error = %err, "cannot start the state thread"));
        Store { jobs }
    }

    /// Queues `work`; `reply` receives its result once the batch is committed.
    fn submit<T, F, R>(&self, work: F, reply: R) -> StateResult<()>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> StateResult<T> + Send + 'static,
        R: FnOnce(StateResult<T>) + Send + 'static,
    {
        let job: Job = Box::new(move |backend| {
            let result = work(backend);
            Box::new(move |committed: StateResult<()>| reply(committed.and(result)))
        });
        self.jobs.send(job).map_err(|_| STOPPED.to_string())
    }

    /// Runs `work` in the next batch and resolves once the batch is durable.
    pub async fn call<T, F>(&self, work: F) -> StateResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> StateResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(work, move |result| {
            let _ = tx.send(result);
        })?;
        rx.await.map_err(|_| STOPPED.to_string())?
    }

    /// Queues `work` for the next batch without waiting for it; errors are logged.
    pub fn send<F>(&self, work: F)
    where
        F: FnOnce(&mut dyn Backend) -> StateResult<()> + Send + 'static,
    {
        let queued = self.submit(work, |result| {
            if let Err(err) = result {
                tracing::error!(error = %err, "state write failed");
            }
        });
        if let Err(err) = queued {
            tracing::error!(error = %err, "state write not queued");
        }
    }

    /// Like [`Store::call`] but from synchronous code.
    pub fn call_blocking<T, F>(&self, work: F) -> StateResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> StateResult<T> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        self.submit(work, move |result| {
            let _ = tx.send(result);
        })?;
        rx.recv().map_err(|_| STOPPED.to_string())?
    }
}

/// Opens the backend named by `--state` (`sqlite:PATH`).
pub fn open(spec: &str) -> StateResult<Box<dyn Backend>> {
    match spec.split_once(':') {
        Some(("sqlite", path)) => Ok(Box::new(SqliteBackend::open(path)?)),
        _ => Err(format!(
            "unknown state backend `{spec}`; use sqlite:PATH (PostgreSQL + NATS JetStream is planned)"
        )),
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
