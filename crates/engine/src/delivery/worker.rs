//! One sink's worker: the idempotency check, the delivery [`Stack`] (retries, circuit
//! breaker, rate limits, timeout), the recorded outcome, and the dead letter when the call
//! cannot succeed. What follows a delivery is the caller's, through [`AfterDelivery`].

use super::layer::{self, Final, Request, Scope, Settings, Stack};
use super::outcomes::{durably, Outcomes};
use super::rate_limit::TokenBucket;
use super::retry;
use crate::error::SinkError;
use crate::lineage;
use crate::ops::metrics::{Metrics, DEAD_LETTERS, DUPLICATES, MESSAGES_IN, MESSAGES_OUT};
use omniflow_ir::{self as ir};
use omniflow_state::cluster::Claim;
use omniflow_state::{DeadLetter, Mode, Origin, OutcomeStatus};
use serde_json::json;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};
use tracing::Instrument;

/// Default timeout of a sink call.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of concurrent calls per sink.
const DEFAULT_CONCURRENCY: usize = 32;

/// The message a delivery belongs to, as its dead letter describes it.
pub trait Message: 'static {
    /// The correlation id.
    fn correlation_id(&self) -> &str;
    /// The source that accepted the message.
    fn source(&self) -> &str;
    /// The original source message.
    fn message(&self) -> &[u8];
    /// When the source accepted the message (seconds since the epoch).
    fn accepted_at(&self) -> i64;
}

/// What happens after a delivery: implemented by whoever runs the sink.
pub trait AfterDelivery: 'static {
    /// The messages deliveries belong to.
    type Message: Message;
    /// The sink delivered (now, or before a restart): what follows the sink runs.
    fn delivered(
        self: &Rc<Self>,
        sink: usize,
        job: &SinkJob<Self::Message>,
    ) -> impl Future<Output = ()>;
    /// The delivery was dead-lettered (now, or before a restart) and the sink names
    /// `target` as its dead-letter sink.
    fn dead_lettered(
        self: &Rc<Self>,
        target: &str,
        job: &SinkJob<Self::Message>,
    ) -> impl Future<Output = ()>;
    /// The delivery is over.
    fn finished(self: &Rc<Self>, job: &SinkJob<Self::Message>);
}

/// One delivery waiting for its sink.
pub struct SinkJob<M> {
    pub message: Rc<M>,
    pub key: String,
    /// The sink's order key (`order_by`): deliveries with the same one go one after the
    /// other, in the order they were submitted.
    pub order: Option<String>,
    pub payload: Vec<u8>,
}

/// Everything one sink needs to deliver.
pub struct SinkWorker {
    pub node: usize,
    pub name: String,
    /// `flow/sink`: the idempotency namespace.
    pub sink_id: Arc<str>,
    scope: Rc<Scope>,
    stack: Stack,
    outcomes: Rc<Outcomes>,
    slots: Arc<Semaphore>,
    dead_letter: Option<ir::DeadLetter>,
    in_progress: RefCell<HashSet<String>>,
    /// Keys of deliveries about to call, whose recorded outcomes are read together.
    lookups: RefCell<Lookups>,
    /// Per order key, the last delivery submitted: its number and the signal that it is
    /// over, which the next delivery with that key waits for.
    lines: RefCell<HashMap<String, (u64, oneshot::Receiver<()>)>>,
    /// Numbers the deliveries submitted with an order key.
    submitted: std::cell::Cell<u64>,
}

/// A delivery's place in the line of its order key: it may go once `after` resolves,
/// and its end releases the next (`done` dropped).
struct Turn {
    order: String,
    number: u64,
    after: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
}

/// Outcome lookups waiting for the next read, with where to send each answer.
#[derive(Default)]
struct Lookups {
    keys: Vec<String>,
    replies: Vec<oneshot::Sender<Claim>>,
}

/// How long a delivery waits before asking again for a key another replica holds.
const HELD_RETRY: Duration = Duration::from_millis(50);

impl SinkWorker {
    /// Builds the worker of a sink node; its outcomes go to `outcomes`.
    pub fn new(
        graph: &ir::Graph,
        flow: &ir::Flow,
        node_idx: usize,
        (build_sink, limits, instant): (
            super::BuildSink<'_>,
            &super::rate_limit::ConnectionLimits,
            bool,
        ),
        metrics: &Rc<Metrics>,
        outcomes: &Rc<Outcomes>,
    ) -> Result<SinkWorker, SinkError> {
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
            return Err(SinkError::NotASink(node.name.clone()));
        };
        let connection = graph
            .connections
            .iter()
            .find(|c| &c.name == connection)
            .ok_or_else(|| SinkError::UnknownConnection(connection.clone()))?;
        let connector = build_sink(connection, operation, options)?;
        let policy = retry
            .as_ref()
            .and_then(|name| graph.policies.iter().find(|p| &p.name == name).cloned())
            .unwrap_or_else(retry::default_policy);
        let scope = Rc::new(Scope {
            flow: flow.name.clone(),
            node: node.name.clone(),
            metrics: metrics.clone(),
        });
        let stack = layer::stack(
            connector,
            scope.clone(),
            Settings {
                policy,
                timeout: timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(DEFAULT_TIMEOUT),
                bucket: TokenBucket::new(rate.map(|r| r.per_second()), *burst),
                connection_bucket: limits.get(&connection.name),
                instant,
            },
        );
        Ok(SinkWorker {
            node: node_idx,
            name: node.name.clone(),
            sink_id: Arc::from(format!("{}/{}", flow.name, node.name)),
            scope,
            stack,
            outcomes: outcomes.clone(),
            slots: Arc::new(Semaphore::new(
                concurrency.map_or(DEFAULT_CONCURRENCY, |c| c as usize),
            )),
            dead_letter: dead_letter.clone(),
            in_progress: RefCell::new(HashSet::new()),
            lookups: RefCell::default(),
            lines: RefCell::default(),
            submitted: std::cell::Cell::new(0),
        })
    }

    /// Queues a delivery. Its call waits for one of the sink's call slots (the sink's
    /// concurrency), held for the call alone; back-pressure comes from the flow's bound on
    /// messages in flight. A delivery with an order key goes after the one submitted
    /// before it with that key has been delivered or dead-lettered; it waits without
    /// holding a call slot, so a key held back by failures holds back no other key.
    pub async fn submit<A: AfterDelivery>(
        self: &Rc<Self>,
        after: &Rc<A>,
        job: SinkJob<A::Message>,
    ) {
        let turn = job.order.as_ref().map(|order| self.take_turn(order));
        let worker = self.clone();
        let after = after.clone();
        let span = tracing::info_span!(
            "delivery",
            correlation_id = %job.message.correlation_id(),
            flow = %self.scope.flow,
            node = %self.name,
            key = %job.key,
        );
        tokio::task::spawn_local(
            async move {
                let mut turn = turn;
                if let Some(before) = turn.as_mut().and_then(|t| t.after.take()) {
                    // Ends when the delivery before is over (its sender dropped).
                    let _ = before.await;
                }
                worker.deliver(&after, job).await;
                if let Some(turn) = turn {
                    worker.end_turn(turn);
                }
            }
            .instrument(span),
        );
    }

    /// Joins the line of `order`: after the last delivery submitted with it, if any.
    fn take_turn(&self, order: &str) -> Turn {
        let number = self.submitted.get() + 1;
        self.submitted.set(number);
        let (done, over) = oneshot::channel();
        let before = self
            .lines
            .borrow_mut()
            .insert(order.to_string(), (number, over));
        Turn {
            order: order.to_string(),
            number,
            after: before.map(|(_, over)| over),
            done,
        }
    }

    /// Leaves the line: the next delivery with the key goes; the last one removes it.
    fn end_turn(&self, turn: Turn) {
        let mut lines = self.lines.borrow_mut();
        if lines
            .get(&turn.order)
            .is_some_and(|(n, _)| *n == turn.number)
        {
            lines.remove(&turn.order);
        }
        drop(turn.done);
    }

    async fn deliver<A: AfterDelivery>(self: &Rc<Self>, after: &Rc<A>, job: SinkJob<A::Message>) {
        self.scope.add(MESSAGES_IN, 1);
        // One call per (sink, key) at a time: a replay or a duplicate message waits for the
        // first and then finds its outcome.
        while self.in_progress.borrow().contains(&job.key) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.in_progress.borrow_mut().insert(job.key.clone());
        self.deliver_once(after, &job).await;
        self.in_progress.borrow_mut().remove(&job.key);
        after.finished(&job);
    }

    /// The recorded outcome of this sink's call with `key`, once this process holds the
    /// key (among replicas, a key another live replica holds is asked for again until it
    /// is let go).
    async fn recorded_outcome(self: &Rc<Self>, key: &str) -> Option<OutcomeStatus> {
        let mut wait = HELD_RETRY;
        loop {
            match self.claim(key).await {
                Claim::Free(status) => return status,
                Claim::Held => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Claims `key` and reads its outcome. Lookups made in the same turn of the scheduler
    /// share one state request, queued after every outcome recorded so far, so it sees
    /// them; alone, it is a read, and among replicas the claim is committed before the
    /// answer.
    async fn claim(self: &Rc<Self>, key: &str) -> Claim {
        let (reply, answer) = oneshot::channel();
        let first = {
            let mut lookups = self.lookups.borrow_mut();
            lookups.keys.push(key.to_string());
            lookups.replies.push(reply);
            lookups.keys.len() == 1
        };
        if first {
            tokio::task::spawn_local(self.clone().read_outcomes());
        }
        match answer.await {
            Ok(status) => status,
            // The reader is gone only when the runtime is being torn down: the delivery
            // must not go on without knowing whether it already happened.
            Err(_) => std::future::pending().await,
        }
    }

    /// Answers the lookups queued so far with one read.
    async fn read_outcomes(self: Rc<Self>) {
        // Lets the deliveries started in this turn join the read.
        tokio::task::yield_now().await;
        let Lookups { keys, replies } = std::mem::take(&mut *self.lookups.borrow_mut());
        self.outcomes.flush();
        let (keys, sink_id) = (Arc::new(keys), self.sink_id.clone());
        let mode = match self.outcomes.membership().replica() {
            Some(_) => Mode::Isolated,
            None => Mode::Read,
        };
        let found = durably(self.outcomes.store(), &self.scope.flow, mode, move |b| {
            b.claim_outcomes(&sink_id, &keys)
        })
        .await;
        for (reply, status) in replies.into_iter().zip(found) {
            let _ = reply.send(status);
        }
    }

    async fn deliver_once<A: AfterDelivery>(
        self: &Rc<Self>,
        after: &Rc<A>,
        job: &SinkJob<A::Message>,
    ) {
        let flow = &self.scope.flow;
        let correlation_id = job.message.correlation_id();
        let recorded = self.recorded_outcome(&job.key).await;
        if recorded.is_some() && self.outcomes.membership().replica().is_some() {
            // The outcome is there already: the key goes back at once.
            let (sink_id, key) = (self.sink_id.clone(), Arc::new(vec![job.key.clone()]));
            let (store, flow) = (self.outcomes.store().clone(), flow.clone());
            tokio::task::spawn_local(async move {
                durably(&store, &flow, Mode::Isolated, move |b| {
                    b.release_claims(&sink_id, &key)
                })
                .await
            });
        }
        match recorded {
            Some(OutcomeStatus::Delivered) => {
                self.scope.add(DUPLICATES, 1);
                self.note(
                    job,
                    "duplicate",
                    json!({"earlier": "delivered"}),
                    Vec::new(),
                );
                tracing::debug!(correlation_id, flow, node = %self.name, "already delivered; skipped");
                // What follows this sink may not have happened yet (a crash in between).
                after.delivered(self.node, job).await;
                return;
            }
            Some(OutcomeStatus::DeadLettered) => {
                self.scope.add(DUPLICATES, 1);
                self.note(
                    job,
                    "duplicate",
                    json!({"earlier": "dead_lettered"}),
                    Vec::new(),
                );
                if let Some(ir::DeadLetter::Node(target)) = &self.dead_letter {
                    after.dead_lettered(target, job).await;
                }
                return;
            }
            None => {}
        }
        // A call slot is held for the call only: the lookup before and the recording after
        // queue behind the state's writes, and the target need not wait for them.
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return;
        };
        self.stack.ready().await;
        // A replica the others may count as gone calls no one (it is about to stop).
        self.outcomes.membership().until_current().await;
        let request = Request::new(&job.key, correlation_id, &job.payload);
        let outcome = self.stack.run(&request).await;
        drop(permit);
        match outcome {
            Final::Delivered { attempts, document } => {
                let terms = document
                    .as_deref()
                    .map(lineage::document_terms)
                    .unwrap_or_default();
                self.note(
                    job,
                    "delivered",
                    json!({"attempts": attempts, "document": document}),
                    terms,
                );
                // Written ahead of the message's completion in the one ordered state queue
                // (and ahead of any later lookup); if it fails, the store refuses
                // completions, so the message cannot leave the inbox without its outcome.
                self.outcomes
                    .record_delivered(&self.sink_id, job.key.clone());
                self.scope.add(MESSAGES_OUT, 1);
                after.delivered(self.node, job).await;
            }
            Final::Failed(failure) => {
                self.dead_letter(after, job, failure.reason, failure.attempts)
                    .await
            }
        }
    }

    /// Tells the lineage how `job` ended at this sink: `detail` gains the sink's key.
    fn note<M: Message>(
        &self,
        job: &SinkJob<M>,
        step: &str,
        mut detail: serde_json::Value,
        terms: Vec<String>,
    ) {
        detail["key"] = json!(job.key);
        self.outcomes.note(lineage::event(
            job.message.correlation_id(),
            &self.scope.flow,
            step,
            &self.name,
            detail,
            terms,
        ));
    }

    async fn dead_letter<A: AfterDelivery>(
        self: &Rc<Self>,
        after: &Rc<A>,
        job: &SinkJob<A::Message>,
        reason: String,
        attempts: Vec<String>,
    ) {
        let flow = &self.scope.flow;
        let message = &job.message;
        tracing::error!(correlation_id = %message.correlation_id(), flow, node = %self.name, reason = %reason, "delivery failed; dead-lettered");
        let letter = DeadLetter {
            id: 0,
            origin: Origin::Flow(flow.clone()),
            source: message.source().to_string(),
            node: self.name.clone(),
            sink: self.sink_id.to_string(),
            key: job.key.clone(),
            correlation_id: message.correlation_id().to_string(),
            message: String::from_utf8_lossy(message.message()).into_owned(),
            payload: String::from_utf8_lossy(&job.payload).into_owned(),
            error: reason,
            attempts,
            created_at: 0,
            replayed_at: None,
            accepted_at: Some(message.accepted_at()),
            discarded_at: None,
            queue: match &self.dead_letter {
                Some(ir::DeadLetter::Queue(queue)) => Some(queue.clone()),
                _ => None,
            },
        };
        self.note(
            job,
            "dead_lettered",
            json!({"reason": lineage::reason(&letter.error), "attempts": letter.attempts, "queue": letter.queue}),
            Vec::new(),
        );
        let (sink_id, key) = (self.sink_id.clone(), job.key.clone());
        durably(self.outcomes.store(), flow, Mode::Isolated, move |b| {
            b.add_dead_letter(&letter)?;
            b.record_outcome(&sink_id, &key, OutcomeStatus::DeadLettered)
        })
        .await;
        self.scope.add(DEAD_LETTERS, 1);
        if let Some(ir::DeadLetter::Node(target)) = &self.dead_letter {
            after.dead_lettered(target, job).await;
        }
    }
}
