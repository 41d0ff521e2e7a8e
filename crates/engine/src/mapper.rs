//! A message's own work — parse, map, route and write out each delivery — on worker
//! threads, so a flow's runtime thread only moves messages between the inbox, the sinks
//! and the state. Each worker compiles its own [`Pipeline`] from the graph (a pipeline's
//! values are not shared across threads); a processor sends each message of a page to
//! the next worker and takes the answers back in inbox order, so what follows (lineage,
//! per-key order, deliveries) sees messages in the order it always did.
//!
//! There is one worker per CPU the process may use, minus the one the runtime thread
//! needs; on one CPU there is none and the processor maps in line.

use crate::lineage;
use omniflow_ir as ir;
use omniflow_mapping::json_in::Projection;
use omniflow_mapping::pipeline::{Delivery, KindRt, Pipeline};
use omniflow_mapping::{json_in, json_out};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A delivery a message asks for, its value written out.
pub struct Serialised {
    pub sink: usize,
    pub key: String,
    pub order: Option<String>,
    pub payload: Vec<u8>,
}

/// What a message asks for: its deliveries and the record names the lineage finds it by;
/// or the node that refused it and why.
pub type Mapped = Result<(Vec<Serialised>, Vec<String>), (String, String)>;

/// Parses `message` as `source` of flow `flow_idx` and runs it through the flow.
pub fn map_message(
    pipeline: &Pipeline,
    (flow_idx, source_idx): (usize, usize),
    source: &str,
    projection: &Projection,
    message: &[u8],
) -> Mapped {
    match json_in::parse(message, projection) {
        Err(reason) => Err((source.to_string(), reason)),
        Ok(input) => pipeline
            .process(flow_idx, source_idx, input, false, false)
            .map_err(|r| (r.node, r.reason))
            .map(|outcome| serialise(outcome.deliveries)),
    }
}

/// The projection a flow's source parses its messages with.
pub fn projection(pipeline: &Pipeline, flow_idx: usize, source: &str) -> Projection {
    let flow = &pipeline.flows[flow_idx];
    match flow.index.get(source).map(|idx| &flow.nodes[*idx].kind) {
        Some(KindRt::Source { projection }) => projection.clone(),
        _ => Projection::whole(),
    }
}

/// Writes out each delivery's value; also answers the record names the values carry
/// (their keys and top-level references), which the lineage finds the message by.
pub(crate) fn serialise(deliveries: Vec<Delivery<'_>>) -> (Vec<Serialised>, Vec<String>) {
    let mut terms = Vec::new();
    let jobs = deliveries
        .into_iter()
        .map(|d| {
            let mut payload = Vec::with_capacity(512);
            json_out::write(&mut payload, &d.value);
            if terms.len() < omniflow_state::lineage::MAX_TERMS {
                terms.push(d.key.clone());
                lineage::references(&d.value, &mut terms);
            }
            Serialised {
                sink: d.sink,
                key: d.key,
                order: d.order,
                payload,
            }
        })
        .collect();
    (jobs, terms)
}

/// One message for a worker.
struct Job {
    flow_idx: usize,
    source_idx: usize,
    source: String,
    message: Arc<[u8]>,
    /// The message's span, parent of the worker's "map and route" span.
    span: tracing::Span,
    reply: oneshot::Sender<Mapped>,
}

/// The worker threads of a running plan; they stop when it is dropped.
pub struct Mappers {
    senders: Vec<mpsc::Sender<Job>>,
    next: Cell<usize>,
}

impl Mappers {
    /// Workers for `graph`: one per CPU this process may use but one. `None` on one CPU,
    /// or when a worker cannot be started (the processor then maps in line).
    pub fn start(graph: &ir::Graph) -> Option<Mappers> {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Mappers::with_threads(graph, cpus.saturating_sub(1))
    }

    /// `threads` workers for `graph` (`None` for none).
    pub fn with_threads(graph: &ir::Graph, threads: usize) -> Option<Mappers> {
        let mut senders = Vec::with_capacity(threads);
        for n in 0..threads {
            let (tx, rx) = mpsc::channel::<Job>();
            let graph = graph.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("omniflow-map-{n}"))
                .spawn(move || work(graph, rx));
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start a mapping thread; mapping in line");
                return None;
            }
            senders.push(tx);
        }
        (!senders.is_empty()).then(|| Mappers {
            senders,
            next: Cell::new(0),
        })
    }

    /// Sends a message to the next worker; its answer comes on the receiver (a closed
    /// receiver means the worker is gone).
    pub fn map(
        &self,
        (flow_idx, source_idx): (usize, usize),
        source: &str,
        message: Arc<[u8]>,
        span: tracing::Span,
    ) -> oneshot::Receiver<Mapped> {
        let (reply, answer) = oneshot::channel();
        let n = self.next.get();
        self.next.set((n + 1) % self.senders.len());
        let job = Job {
            flow_idx,
            source_idx,
            source: source.to_string(),
            message,
            span,
            reply,
        };
        // A worker that is gone drops the job and its reply: the receiver says so.
        let _ = self.senders[n].send(job);
        answer
    }
}

/// A worker: compiles its own pipeline, then answers jobs until the plan stops.
fn work(graph: ir::Graph, jobs: mpsc::Receiver<Job>) {
    let pipeline = match Pipeline::new(graph) {
        Ok(pipeline) => pipeline,
        Err(error) => {
            tracing::error!(%error, "a mapping thread cannot compile the flows");
            return;
        }
    };
    let mut projections: HashMap<usize, HashMap<String, Projection>> = HashMap::new();
    while let Ok(job) = jobs.recv() {
        let of_flow = projections.entry(job.flow_idx).or_default();
        if !of_flow.contains_key(&job.source) {
            let made = projection(&pipeline, job.flow_idx, &job.source);
            of_flow.insert(job.source.clone(), made);
        }
        let projection = &of_flow[&job.source];
        let span = match crate::ops::telemetry::exporting() {
            true => {
                tracing::info_span!(parent: &job.span, "map and route", routed = tracing::field::Empty)
            }
            false => tracing::Span::none(),
        };
        let mapped = span.in_scope(|| {
            map_message(
                &pipeline,
                (job.flow_idx, job.source_idx),
                &job.source,
                projection,
                &job.message,
            )
        });
        if let Ok((jobs, _)) = &mapped {
            span.record("routed", jobs.len());
        }
        drop(span);
        let _ = job.reply.send(mapped);
    }
}
