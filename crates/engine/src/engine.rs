//! Running a flow: sources append accepted messages to the durable inbox; a processor
//! pages through the inbox, runs maps, filters, routes and splits, and hands deliveries to
//! the sink workers; a message leaves the inbox only when every delivery it caused has
//! succeeded or been dead-lettered. After a crash, pending messages run again and the
//! idempotency store skips the side effects that already happened.

use crate::delivery::outcomes::{self, Outcomes};
use crate::delivery::{AfterDelivery, Message, SinkWorker};
use crate::lineage;
use crate::mapper::Serialised;
use crate::ops::metrics::{Metrics, DEAD_LETTERS, MESSAGES_IN, MESSAGES_OUT, QUEUE_DEPTH};
use crate::shared::Shared;
use omniflow_mapping::json_in::{self, Projection};
use omniflow_mapping::pipeline::{KindRt, Pipeline};
use omniflow_state::{DeadLetter, Mode, Origin, Store};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

/// Messages processed but not finished, per flow (bounds memory).
const MAX_IN_FLIGHT: usize = 2048;
/// Inbox rows read per page.
const PAGE: usize = 512;
/// Finished messages removed from the inbox in one call.
const COMPLETE_BATCH: usize = 256;

/// One delivery of a flow's message to a sink.
pub type SinkJob = crate::delivery::SinkJob<Tracker>;

/// One accepted message on its way through a flow.
pub struct Tracker {
    id: i64,
    source: String,
    message: Arc<[u8]>,
    /// When the source accepted the message.
    accepted_at: i64,
    /// The message's correlation id: its flow and inbox id, kept by every step after.
    correlation: String,
    remaining: Cell<usize>,
    _permit: OwnedSemaphorePermit,
}

impl Tracker {
    /// The correlation id (`FLOW#INBOX_ID`): the same in every log line, dead letter and
    /// lineage event of the message.
    pub fn correlation_id(&self) -> &str {
        &self.correlation
    }

    /// The source that accepted the message.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The original source message.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// When the source accepted the message (seconds since the epoch).
    pub fn accepted_at(&self) -> i64 {
        self.accepted_at
    }

    /// One delivery (or the message itself) is done; completes the message at zero.
    pub fn finish_one(self: &Rc<Self>, ctx: &Rc<FlowCtx>) {
        let left = self.remaining.get().saturating_sub(1);
        self.remaining.set(left);
        if left == 0 {
            ctx.outcomes.finished(&self.correlation);
            let mut done = ctx.done.borrow_mut();
            done.push(self.id);
            if done.len() >= COMPLETE_BATCH {
                ctx.done_signal.notify_one();
            }
        }
    }
}

impl Message for Tracker {
    fn correlation_id(&self) -> &str {
        Tracker::correlation_id(self)
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn message(&self) -> &[u8] {
        &self.message
    }

    fn accepted_at(&self) -> i64 {
        self.accepted_at
    }
}

/// What a running flow shares between its tasks.
pub struct FlowCtx {
    pub pipeline: Rc<Pipeline>,
    pub flow_idx: usize,
    pub store: Store,
    pub metrics: Rc<Metrics>,
    /// What the runner's flows share (ledgers, the bus, NATS connections, limits).
    pub shared: Rc<Shared>,
    pub sinks: HashMap<usize, Rc<SinkWorker>>,
    /// Outcomes of the sinks' deliveries, written ahead of completions.
    outcomes: Rc<Outcomes>,
    /// Wakes the processor when a source appended.
    pub appended: Rc<Notify>,
    in_flight: Cell<usize>,
    /// Finished messages waiting to leave the inbox (one batch per flush).
    done: RefCell<Vec<i64>>,
    done_signal: Notify,
    slots: std::sync::Arc<Semaphore>,
}

impl FlowCtx {
    /// Prepares a flow: its sink workers and connectors.
    pub fn new(
        pipeline: Rc<Pipeline>,
        flow_idx: usize,
        store: Store,
        metrics: Rc<Metrics>,
        shared: &Rc<Shared>,
    ) -> Result<Rc<FlowCtx>, crate::error::StartError> {
        let flow = &pipeline.flows[flow_idx];
        let outcomes = Rc::new(Outcomes::new(
            store.clone(),
            shared.membership.clone(),
            shared.recorder.clone(),
        ));
        let build_sink =
            |connection: &omniflow_ir::Connection,
             operation: &str,
             options: &std::collections::BTreeMap<String, serde_json::Value>| {
                crate::connect::sink_in(shared, connection, operation, options)
            };
        let mut sinks = HashMap::new();
        for (idx, node) in flow.nodes.iter().enumerate() {
            if matches!(node.kind, KindRt::Sink { .. }) {
                let worker = SinkWorker::new(
                    &pipeline.graph,
                    &flow.ir,
                    idx,
                    (&build_sink, &shared.limits, shared.instant_waits),
                    &metrics,
                    &outcomes,
                )
                .map_err(|reason| crate::error::StartError::Sink {
                    flow: flow.name.clone(),
                    reason: Box::new(reason),
                })?;
                sinks.insert(idx, Rc::new(worker));
            }
        }
        Ok(Rc::new(FlowCtx {
            pipeline: pipeline.clone(),
            flow_idx,
            store,
            metrics,
            shared: shared.clone(),
            sinks,
            outcomes,
            appended: Rc::new(Notify::new()),
            in_flight: Cell::new(0),
            done: RefCell::new(Vec::new()),
            done_signal: Notify::new(),
            slots: std::sync::Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }))
    }

    /// Waits until this process holds the lease of `source` (among replicas, one runs a
    /// poll, file or schedule source at a time); `None` once `stop` came first.
    pub async fn source_lease(
        &self,
        source: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<omniflow_state::cluster::Fence> {
        let flow = self.flow_name();
        let lease = format!("source:{flow}/{source}");
        let labels = (flow, source, &*self.metrics);
        self.shared.membership.lease(&lease, labels, stop).await
    }

    /// Records a source's attempt (a poll, a scheduled run, a pass over its files) for
    /// `/health`, counting failures in `omniflow_source_errors_total`.
    pub fn source_attempt(&self, source: &str, error: Option<&String>) {
        let flow = self.flow_name();
        match error {
            None => self.shared.health.ok(flow, source),
            Some(error) => {
                let reason = omniflow_connectors::client::poll_reason(error);
                self.shared.health.failed(flow, source, error, reason);
                self.metrics
                    .add(crate::ops::metrics::SOURCE_ERRORS, flow, source, 1);
                self.metrics.poll_error(flow, source, reason);
            }
        }
    }

    /// The flow's name.
    pub fn flow_name(&self) -> &str {
        &self.pipeline.flows[self.flow_idx].name
    }

    /// Messages being processed right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.get()
    }

    fn projection(&self, source: &str) -> Projection {
        crate::mapper::projection(&self.pipeline, self.flow_idx, source)
    }

    /// Removes finished messages from the inbox, in batches, for as long as the flow runs.
    async fn run_completions(self: Rc<Self>) {
        loop {
            tokio::select! {
                _ = self.done_signal.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(2)) => {}
            }
            // Outcomes first: a message leaves the inbox only after its outcomes.
            self.outcomes.flush();
            let ids = std::mem::take(&mut *self.done.borrow_mut());
            if ids.is_empty() {
                continue;
            }
            let n = ids.len();
            if self.store.is_degraded() {
                // An outcome write failed: keep the messages; a restart re-runs them.
                self.in_flight.set(self.in_flight.get().saturating_sub(n));
                continue;
            }
            if let Err(err) = self
                .store
                .call_unless_degraded(move |b| b.complete(&ids))
                .await
            {
                tracing::error!(error = %err, "cannot complete messages; they will be processed again");
            }
            self.in_flight.set(self.in_flight.get().saturating_sub(n));
        }
    }

    /// True when a sink of this flow keeps an order (`order_by`): among replicas, one at a
    /// time processes the flow, so that its messages reach those sinks in acceptance order.
    fn is_ordered(&self) -> bool {
        let name = self.flow_name();
        self.pipeline
            .graph
            .flows
            .iter()
            .filter(|flow| flow.name == name)
            .flat_map(|flow| &flow.nodes)
            .any(|node| {
                matches!(
                    &node.kind,
                    omniflow_ir::NodeKind::Sink {
                        order_by: Some(_),
                        ..
                    }
                )
            })
    }

    /// Processes pending inbox messages until `stop` turns true. Among replicas, each
    /// page is claimed (and committed as claimed) before it is processed.
    pub async fn run_processor(self: &Rc<Self>, mut stop: watch::Receiver<bool>) {
        let flow_name = self.flow_name().to_string();
        let membership = self.shared.membership.clone();
        if membership.replica().is_some() && self.is_ordered() {
            let lease = format!("flow:{flow_name}");
            let labels = (flow_name.as_str(), "processor", &*self.metrics);
            if membership.lease(&lease, labels, &mut stop).await.is_none() {
                return;
            }
        }
        tokio::task::spawn_local(self.clone().run_completions());
        // Among replicas a claim is several statements, committed before it is acted on.
        let mode = match membership.replica() {
            Some(_) => Mode::Isolated,
            None => Mode::Read,
        };
        let mut projections: HashMap<String, Rc<Projection>> = HashMap::new();
        let mut last_id = 0i64;
        loop {
            if *stop.borrow() {
                return;
            }
            let name = flow_name.clone();
            if mode == Mode::Isolated {
                self.metrics.set_gauge(
                    crate::ops::metrics::CLAIMED,
                    &flow_name,
                    self.in_flight() as i64,
                );
            }
            let page = match self
                .store
                .call_in(mode, move |b| b.pending(&name, last_id, PAGE))
                .await
            {
                Ok(page) => page,
                Err(err) => {
                    tracing::error!(error = %err, flow = %flow_name, "cannot read the inbox; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if page.is_empty() {
                // Also wakes for replays written by `omniflow dlq replay`.
                let name = flow_name.clone();
                if let Ok(depth) = self.store.call(move |b| b.backlog(&name)).await {
                    self.metrics
                        .set_gauge(QUEUE_DEPTH, &flow_name, depth as i64);
                    if depth == 0 {
                        last_id = last_id.max(0);
                    }
                }
                tokio::select! {
                    _ = self.appended.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            // With mapping threads, a page's messages are mapped while the answers before
            // them are acted on, in inbox order.
            let mut mapping = std::collections::VecDeque::new();
            for stored in page {
                last_id = stored.id;
                let Ok(permit) = self.slots.clone().acquire_owned().await else {
                    return;
                };
                let projection = match projections.get(&stored.source) {
                    Some(projection) => projection.clone(),
                    None => {
                        let projection = Rc::new(self.projection(&stored.source));
                        projections.insert(stored.source.clone(), projection.clone());
                        projection
                    }
                };
                self.in_flight.set(self.in_flight.get() + 1);
                let tracker = Rc::new(Tracker {
                    id: stored.id,
                    source: stored.source.clone(),
                    message: Arc::from(stored.payload),
                    accepted_at: stored.received_at,
                    correlation: format!("{}#{}", self.flow_name(), stored.id),
                    remaining: Cell::new(1),
                    _permit: permit,
                });
                let span = tracing::info_span!(
                    "message",
                    inbox_id = stored.id,
                    flow = %self.flow_name(),
                    source = %stored.source,
                );
                crate::ops::telemetry::continue_trace(&span, stored.traceparent.as_deref());
                match &self.shared.mappers {
                    Some(mappers) => {
                        let Some(source_idx) = self.source_index(&tracker).await else {
                            continue;
                        };
                        let answer = mappers.map(
                            (self.flow_idx, source_idx),
                            &tracker.source,
                            tracker.message.clone(),
                            span.clone(),
                        );
                        mapping.push_back((tracker, span, projection, answer));
                    }
                    None => {
                        self.handle(&projection, tracker).instrument(span).await;
                    }
                }
            }
            while let Some((tracker, span, projection, answer)) = mapping.pop_front() {
                match answer.await {
                    Ok(mapped) => self.act(tracker, mapped).instrument(span).await,
                    // A mapping thread that is gone (it panicked) costs speed, not
                    // messages: this one is mapped here.
                    Err(_) => {
                        self.handle(&projection, tracker).instrument(span).await;
                    }
                }
            }
            // Messages appended below `last_id` after a replay are picked up from the start.
            if self.in_flight.get() == 0 {
                last_id = 0;
            }
        }
    }

    /// The flow's index of `source`, or the message is refused (a source the flow does
    /// not have any more, after a reload).
    async fn source_index(self: &Rc<Self>, tracker: &Rc<Tracker>) -> Option<usize> {
        let flow = &self.pipeline.flows[self.flow_idx];
        match flow.index.get(&tracker.source) {
            Some(&idx) => Some(idx),
            None => {
                let reason = format!("the flow has no source `{}`", tracker.source);
                self.reject(tracker, &tracker.source, "", reason).await;
                None
            }
        }
    }

    /// Maps a message in line (no mapping threads) and acts on the answer.
    async fn handle(self: &Rc<Self>, projection: &Projection, tracker: Rc<Tracker>) {
        let Some(source_idx) = self.source_index(&tracker).await else {
            return;
        };
        let span = match crate::ops::telemetry::exporting() {
            true => tracing::info_span!("map and route", routed = tracing::field::Empty),
            false => tracing::Span::none(),
        };
        let mapped = span.in_scope(|| {
            crate::mapper::map_message(
                &self.pipeline,
                (self.flow_idx, source_idx),
                &tracker.source,
                projection,
                &tracker.message,
            )
        });
        if let Ok((jobs, _)) = &mapped {
            span.record("routed", jobs.len());
        }
        drop(span);
        self.act(tracker, mapped).await;
    }

    /// Routes a mapped message to its sinks, or refuses it.
    async fn act(self: &Rc<Self>, tracker: Rc<Tracker>, mapped: crate::mapper::Mapped) {
        let flow = &self.pipeline.flows[self.flow_idx];
        self.metrics
            .add(MESSAGES_IN, &flow.name, &tracker.source, 1);
        if let (Some(recorder), Some(&source_idx)) =
            (&self.shared.recorder, flow.index.get(&tracker.source))
        {
            recorder.message(
                &self.pipeline,
                (self.flow_idx, source_idx),
                &tracker.correlation,
                &tracker.message,
            );
        }
        match mapped {
            Err((node, reason)) => {
                let payload = String::from_utf8_lossy(&tracker.message).into_owned();
                self.reject(&tracker, &node, &payload, reason).await;
            }
            Ok((jobs, terms)) => {
                let source = tracker.source.clone();
                self.note_routed(&tracker, "accepted", &source, &jobs, terms);
                self.dispatch(&tracker, jobs).await;
                tracker.finish_one(self);
            }
        }
    }

    /// Tells the lineage the message went through `node` (`accepted` by its source, or
    /// `continued` after a sink) and which sinks it was routed to.
    fn note_routed(
        &self,
        tracker: &Tracker,
        step: &str,
        node: &str,
        jobs: &[Serialised],
        terms: Vec<String>,
    ) {
        let nodes = &self.pipeline.flows[self.flow_idx].nodes;
        let routed: Vec<&str> = jobs.iter().map(|j| nodes[j.sink].name.as_str()).collect();
        self.outcomes.note(lineage::event(
            &tracker.correlation,
            self.flow_name(),
            step,
            node,
            serde_json::json!({
                "source": tracker.source,
                "inbox_id": tracker.id,
                "received_at": tracker.accepted_at,
                "routed_to": routed,
            }),
            terms,
        ));
    }

    /// Tells the lineage `node` rejected the message; it is found by the record names of
    /// the source message.
    fn note_rejected(&self, tracker: &Tracker, node: &str, reason: &str) {
        let mut terms = Vec::new();
        lineage::json_references(&tracker.message, &mut terms);
        self.outcomes.note(lineage::event(
            &tracker.correlation,
            self.flow_name(),
            "rejected",
            node,
            serde_json::json!({
                "source": tracker.source,
                "inbox_id": tracker.id,
                "received_at": tracker.accepted_at,
                "reason": lineage::reason(reason),
            }),
            terms,
        ));
    }

    async fn dispatch(self: &Rc<Self>, tracker: &Rc<Tracker>, jobs: Vec<Serialised>) {
        tracker.remaining.set(tracker.remaining.get() + jobs.len());
        for job in jobs {
            let Some(worker) = self.sinks.get(&job.sink).cloned() else {
                tracker.finish_one(self);
                continue;
            };
            worker
                .submit(
                    self,
                    SinkJob {
                        message: tracker.clone(),
                        key: job.key,
                        order: job.order,
                        payload: job.payload,
                    },
                )
                .await;
        }
    }

    async fn reject(
        self: &Rc<Self>,
        tracker: &Rc<Tracker>,
        node: &str,
        payload: &str,
        reason: String,
    ) {
        let flow = self.flow_name().to_string();
        tracing::warn!(correlation_id = %tracker.correlation_id(), flow = %flow, node, reason = %reason, "message rejected; dead-lettered");
        self.note_rejected(tracker, node, &reason);
        self.outcomes.finished(&tracker.correlation);
        let letter = self.rejection(tracker, node, payload.to_string(), reason);
        let id = tracker.id;
        self.durably(Mode::Isolated, move |b| {
            b.add_dead_letter(&letter)?;
            b.complete(&[id])
        })
        .await;
        self.metrics.add(DEAD_LETTERS, &flow, node, 1);
        tracker.remaining.set(0);
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
    }

    /// Runs a state call until it succeeds: a write the guarantees depend on is retried
    /// (the message stays pending meanwhile) rather than dropped.
    pub async fn durably<T, F>(&self, mode: Mode, work: F) -> T
    where
        T: Send + 'static,
        F: Fn(&mut dyn omniflow_state::Backend) -> omniflow_state::StateResult<T>
            + Clone
            + Send
            + 'static,
    {
        outcomes::durably(&self.store, self.flow_name(), mode, work).await
    }

    /// The dead letter of a message a node rejected (before any sink).
    fn rejection(
        &self,
        tracker: &Tracker,
        node: &str,
        payload: String,
        reason: String,
    ) -> DeadLetter {
        DeadLetter {
            id: 0,
            origin: Origin::Flow(self.flow_name().to_string()),
            source: tracker.source.clone(),
            node: node.to_string(),
            sink: String::new(),
            key: String::new(),
            correlation_id: tracker.correlation_id().to_string(),
            message: String::from_utf8_lossy(&tracker.message).into_owned(),
            payload,
            error: reason,
            attempts: Vec::new(),
            created_at: 0,
            replayed_at: None,
            accepted_at: Some(tracker.accepted_at),
            discarded_at: None,
            queue: None,
        }
    }

    /// After a sink succeeded: runs the nodes that read from it (continuations).
    pub async fn continue_after(self: &Rc<Self>, sink: usize, job: &SinkJob) {
        let flow = &self.pipeline.flows[self.flow_idx];
        if flow.nodes[sink].next.is_empty() {
            return;
        }
        let jobs = match json_in::parse(&job.payload, &Projection::whole()) {
            Ok(value) => match self
                .pipeline
                .process(self.flow_idx, sink, value, false, false)
            {
                Ok(outcome) => {
                    let (jobs, terms) = crate::mapper::serialise(outcome.deliveries);
                    let node = &flow.nodes[sink].name;
                    self.note_routed(&job.message, "continued", node, &jobs, terms);
                    jobs
                }
                Err(rejected) => {
                    let payload = String::from_utf8_lossy(&job.payload).into_owned();
                    self.reject_continuation(
                        &job.message,
                        &rejected.node,
                        payload,
                        rejected.reason,
                    )
                    .await;
                    return;
                }
            },
            Err(reason) => {
                let payload = String::from_utf8_lossy(&job.payload).into_owned();
                let node = flow.nodes[sink].name.clone();
                self.reject_continuation(&job.message, &node, payload, reason)
                    .await;
                return;
            }
        };
        self.metrics
            .add(MESSAGES_OUT, &flow.name, &flow.nodes[sink].name, 0);
        self.dispatch(&job.message, jobs).await;
    }

    async fn reject_continuation(
        self: &Rc<Self>,
        tracker: &Rc<Tracker>,
        node: &str,
        payload: String,
        reason: String,
    ) {
        self.note_rejected(tracker, node, &reason);
        let letter = self.rejection(tracker, node, payload, reason);
        self.durably(Mode::Isolated, move |b| {
            b.add_dead_letter(&letter).map(|_| ())
        })
        .await;
        self.metrics.add(DEAD_LETTERS, self.flow_name(), node, 1);
    }

    /// Sends a failed delivery to the sink named as its dead-letter target.
    pub async fn send_to_sink(self: &Rc<Self>, target: &str, job: &SinkJob) {
        let flow = &self.pipeline.flows[self.flow_idx];
        let Some(idx) = flow.index.get(target) else {
            return;
        };
        let Some(worker) = self.sinks.get(idx).cloned() else {
            return;
        };
        job.message.remaining.set(job.message.remaining.get() + 1);
        worker
            .submit(
                self,
                SinkJob {
                    message: job.message.clone(),
                    key: job.key.clone(),
                    order: job.order.clone(),
                    payload: job.payload.clone(),
                },
            )
            .await;
    }
}

impl AfterDelivery for FlowCtx {
    type Message = Tracker;

    async fn delivered(self: &Rc<Self>, sink: usize, job: &SinkJob) {
        self.continue_after(sink, job).await
    }

    async fn dead_lettered(self: &Rc<Self>, target: &str, job: &SinkJob) {
        self.send_to_sink(target, job).await
    }

    fn finished(self: &Rc<Self>, job: &SinkJob) {
        job.message.finish_one(self)
    }
}

impl crate::bus::Inbox for FlowCtx {
    fn flow_name(&self) -> &str {
        FlowCtx::flow_name(self)
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn appended(&self) {
        self.appended.notify_one();
    }
}
