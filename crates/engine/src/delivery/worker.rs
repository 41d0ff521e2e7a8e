//! One sink's worker: idempotency check, rate limit, circuit breaker, the call with its
//! timeout, retries per policy, and the dead letter when the call cannot succeed.

use super::circuit::Circuit;
use super::rate_limit::{ConnectionLimits, TokenBucket};
use super::retry;
use crate::engine::{FlowCtx, Tracker};
use crate::ops::metrics::{DEAD_LETTERS, DUPLICATES, MESSAGES_IN, MESSAGES_OUT, RETRIES};
use omniflow_connectors::{Call, CallOutcome, SinkConnector};
use omniflow_ir::{self as ir, RetryPolicy};
use omniflow_state::{DeadLetter, Mode, OutcomeStatus};
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Semaphore};
use tracing::Instrument;

/// Default timeout of a sink call.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait a Retry-After header can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// Default number of concurrent calls per sink.
const DEFAULT_CONCURRENCY: usize = 32;

/// One delivery waiting for its sink.
pub struct SinkJob {
    pub tracker: Rc<Tracker>,
    pub key: String,
    pub payload: Vec<u8>,
}

/// Everything one sink needs to deliver.
pub struct SinkWorker {
    pub node: usize,
    pub name: String,
    /// `flow/sink`: the idempotency namespace.
    pub sink_id: Arc<str>,
    connector: Box<dyn SinkConnector>,
    policy: RetryPolicy,
    bucket: TokenBucket,
    /// The connection's own quota, shared with the other sinks that use it.
    connection_bucket: Option<Rc<TokenBucket>>,
    circuit: Circuit,
    timeout: Duration,
    slots: std::sync::Arc<Semaphore>,
    dead_letter: Option<ir::DeadLetter>,
    in_progress: RefCell<HashSet<String>>,
    /// Keys of deliveries about to call, whose recorded outcomes are read together.
    lookups: RefCell<Lookups>,
}

/// Outcome lookups waiting for the next read, with where to send each answer.
#[derive(Default)]
struct Lookups {
    keys: Vec<String>,
    replies: Vec<oneshot::Sender<Option<OutcomeStatus>>>,
}

impl SinkWorker {
    /// Builds the worker of a sink node.
    pub fn new(
        graph: &ir::Graph,
        flow: &ir::Flow,
        node_idx: usize,
        limits: &ConnectionLimits,
        connectors: &omniflow_connectors::Context,
    ) -> Result<SinkWorker, String> {
        let node = &flow.nodes[node_idx];
        let ir::NodeKind::Sink {
            connection,
            operation,
            retry,
            rate,
            burst,
            concurrency,
            timeout_ms,
            dead_letter,
            options,
            ..
        } = &node.kind
        else {
            return Err(format!("`{}` is not a sink", node.name));
        };
        let connection = graph
            .connections
            .iter()
            .find(|c| &c.name == connection)
            .ok_or_else(|| format!("unknown connection `{connection}`"))?;
        let connector = crate::connect::sink(connectors, connection, operation, options)?;
        let policy = retry
            .as_ref()
            .and_then(|name| graph.policies.iter().find(|p| &p.name == name).cloned())
            .unwrap_or_else(retry::default_policy);
        Ok(SinkWorker {
            node: node_idx,
            name: node.name.clone(),
            sink_id: Arc::from(format!("{}/{}", flow.name, node.name)),
            connector,
            policy,
            bucket: TokenBucket::new(rate.map(|r| r.per_second()), *burst),
            connection_bucket: limits.get(&connection.name),
            circuit: Circuit::default(),
            timeout: timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_TIMEOUT),
            slots: std::sync::Arc::new(Semaphore::new(
                concurrency.map_or(DEFAULT_CONCURRENCY, |c| c as usize),
            )),
            dead_letter: dead_letter.clone(),
            in_progress: RefCell::new(HashSet::new()),
            lookups: RefCell::default(),
        })
    }

    /// Queues a delivery; waits while the sink is at its concurrency (back-pressure).
    pub async fn submit(self: &Rc<Self>, ctx: &Rc<FlowCtx>, job: SinkJob) {
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let worker = self.clone();
        let ctx = ctx.clone();
        let span = tracing::info_span!(
            "delivery",
            correlation_id = %job.tracker.correlation_id(),
            flow = %ctx.flow_name(),
            node = %self.name,
            key = %job.key,
        );
        tokio::task::spawn_local(
            async move {
                worker.deliver(&ctx, job).await;
                drop(permit);
            }
            .instrument(span),
        );
    }

    async fn deliver(self: &Rc<Self>, ctx: &Rc<FlowCtx>, job: SinkJob) {
        let flow = ctx.flow_name();
        ctx.metrics.add(MESSAGES_IN, flow, &self.name, 1);
        // One call per (sink, key) at a time: a replay or a duplicate message waits for the
        // first and then finds its outcome.
        while self.in_progress.borrow().contains(&job.key) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.in_progress.borrow_mut().insert(job.key.clone());
        self.deliver_once(ctx, &job).await;
        self.in_progress.borrow_mut().remove(&job.key);
        job.tracker.finish_one(ctx);
    }

    /// The recorded outcome of this sink's call with `key`. Lookups made in the same
    /// turn of the scheduler share one state read, queued after every outcome recorded so
    /// far, so it sees them.
    async fn recorded_outcome(
        self: &Rc<Self>,
        ctx: &Rc<FlowCtx>,
        key: &str,
    ) -> Option<OutcomeStatus> {
        let (reply, answer) = oneshot::channel();
        let first = {
            let mut lookups = self.lookups.borrow_mut();
            lookups.keys.push(key.to_string());
            lookups.replies.push(reply);
            lookups.keys.len() == 1
        };
        if first {
            tokio::task::spawn_local(self.clone().read_outcomes(ctx.clone()));
        }
        match answer.await {
            Ok(status) => status,
            // The reader is gone only when the runtime is being torn down: the delivery
            // must not go on without knowing whether it already happened.
            Err(_) => std::future::pending().await,
        }
    }

    /// Answers the lookups queued so far with one read.
    async fn read_outcomes(self: Rc<Self>, ctx: Rc<FlowCtx>) {
        // Lets the deliveries started in this turn join the read.
        tokio::task::yield_now().await;
        let Lookups { keys, replies } = std::mem::take(&mut *self.lookups.borrow_mut());
        ctx.flush_outcomes();
        let (keys, sink_id) = (Arc::new(keys), self.sink_id.clone());
        let found = ctx
            .durably(Mode::Read, move |b| b.outcomes(&sink_id, &keys))
            .await;
        for (reply, status) in replies.into_iter().zip(found) {
            let _ = reply.send(status);
        }
    }

    async fn deliver_once(self: &Rc<Self>, ctx: &Rc<FlowCtx>, job: &SinkJob) {
        let flow = ctx.flow_name();
        match self.recorded_outcome(ctx, &job.key).await {
            Some(OutcomeStatus::Delivered) => {
                ctx.metrics.add(DUPLICATES, flow, &self.name, 1);
                tracing::debug!(correlation_id = %job.tracker.correlation_id(), flow, node = %self.name, "already delivered; skipped");
                // What follows this sink may not have happened yet (a crash in between).
                ctx.continue_after(self.node, job).await;
                return;
            }
            Some(OutcomeStatus::DeadLettered) => {
                ctx.metrics.add(DUPLICATES, flow, &self.name, 1);
                if let Some(ir::DeadLetter::Node(target)) = &self.dead_letter {
                    ctx.send_to_sink(target, job).await;
                }
                return;
            }
            None => {}
        }
        let mut attempts: Vec<String> = Vec::new();
        let mut attempt: u32 = 0;
        let final_error = loop {
            attempt += 1;
            self.circuit.wait().await;
            self.bucket.acquire().await;
            if let Some(shared) = &self.connection_bucket {
                shared.acquire().await;
            }
            let started = Instant::now();
            let outcome = self
                .connector
                .call(Call {
                    key: &job.key,
                    correlation_id: job.tracker.correlation_id(),
                    body: &job.payload,
                    timeout: self.timeout,
                })
                .await;
            ctx.metrics
                .observe_latency(flow, &self.name, started.elapsed().as_secs_f64());
            // The system's own pressure signal slows every sink of the connection
            // before it has to answer 429.
            if let Some(wait) = self.connector.backoff() {
                let wait = wait.min(MAX_RETRY_AFTER);
                self.bucket.pause(wait);
                if let Some(shared) = &self.connection_bucket {
                    shared.pause(wait);
                }
            }
            match outcome {
                CallOutcome::Ok => {
                    self.circuit.success();
                    break None;
                }
                CallOutcome::Permanent { reason } => {
                    // The endpoint answered: it is up, whatever it thought of this message.
                    self.circuit.success();
                    attempts.push(format!(
                        "{} attempt {attempt}: permanent: {reason}",
                        omniflow_state::now_secs()
                    ));
                    break Some(reason);
                }
                CallOutcome::Transient {
                    class,
                    reason,
                    retry_after,
                } => {
                    attempts.push(format!(
                        "{} attempt {attempt}: {class}: {reason}",
                        omniflow_state::now_secs()
                    ));
                    self.circuit.failure();
                    let retry_after = retry_after.map(|d| d.min(MAX_RETRY_AFTER));
                    if let Some(wait) = retry_after.filter(|_| class == "rate_limited") {
                        self.bucket.pause(wait);
                        if let Some(shared) = &self.connection_bucket {
                            shared.pause(wait);
                        }
                    }
                    if !self.policy.transient.contains(&class) {
                        break Some(format!(
                            "{reason} ({class} is not retried by policy `{}`)",
                            self.policy.name
                        ));
                    }
                    if attempt >= self.policy.attempts {
                        break Some(format!("{reason} (gave up after {attempt} attempts)"));
                    }
                    ctx.metrics.add(RETRIES, flow, &self.name, 1);
                    let wait = retry::delay(&self.policy, attempt, retry_after);
                    tracing::warn!(correlation_id = %job.tracker.correlation_id(), flow, node = %self.name, attempt, class = %class, wait_ms = wait.as_millis() as u64, "transient failure; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        };
        match final_error {
            None => {
                // Written ahead of the message's completion in the one ordered state queue
                // (and ahead of any later lookup); if it fails, the store refuses
                // completions, so the message cannot leave the inbox without its outcome.
                ctx.record_delivered(&self.sink_id, job.key.clone());
                ctx.metrics.add(MESSAGES_OUT, flow, &self.name, 1);
                ctx.continue_after(self.node, job).await;
            }
            Some(reason) => self.dead_letter(ctx, job, reason, attempts).await,
        }
    }

    async fn dead_letter(
        self: &Rc<Self>,
        ctx: &Rc<FlowCtx>,
        job: &SinkJob,
        reason: String,
        attempts: Vec<String>,
    ) {
        let flow = ctx.flow_name();
        tracing::error!(correlation_id = %job.tracker.correlation_id(), flow, node = %self.name, reason = %reason, "delivery failed; dead-lettered");
        let letter = DeadLetter {
            id: 0,
            flow: flow.to_string(),
            source: job.tracker.source().to_string(),
            node: self.name.clone(),
            sink: self.sink_id.to_string(),
            key: job.key.clone(),
            correlation_id: job.tracker.correlation_id().to_string(),
            message: String::from_utf8_lossy(job.tracker.message()).into_owned(),
            payload: String::from_utf8_lossy(&job.payload).into_owned(),
            error: reason,
            attempts,
            created_at: 0,
            replayed_at: None,
            accepted_at: Some(job.tracker.accepted_at()),
            discarded_at: None,
        };
        let (sink_id, key) = (self.sink_id.clone(), job.key.clone());
        ctx.durably(Mode::Isolated, move |b| {
            b.add_dead_letter(&letter)?;
            b.record_outcome(&sink_id, &key, OutcomeStatus::DeadLettered)
        })
        .await;
        ctx.metrics.add(DEAD_LETTERS, flow, &self.name, 1);
        if let Some(ir::DeadLetter::Node(target)) = &self.dead_letter {
            ctx.send_to_sink(target, job).await;
        }
    }
}
