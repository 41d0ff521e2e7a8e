//! Counters and histograms for `/metrics` (Prometheus text format).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Upper bounds of the sink latency histogram, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Values by metric name, then flow, then node: looked up by `&str`, so counting a
/// message allocates nothing once its labels have been seen.
type ByLabels<T> = BTreeMap<&'static str, BTreeMap<String, BTreeMap<String, T>>>;

/// The value of `name{flow, node}`, created on first use.
fn slot<'m, T: Default>(
    map: &'m mut ByLabels<T>,
    name: &'static str,
    flow: &str,
    node: &str,
) -> &'m mut T {
    let flows = map.entry(name).or_default();
    if !flows.contains_key(flow) {
        flows.insert(flow.to_string(), BTreeMap::new());
    }
    let Some(nodes) = flows.get_mut(flow) else {
        unreachable!("inserted above")
    };
    if !nodes.contains_key(node) {
        nodes.insert(node.to_string(), T::default());
    }
    let Some(value) = nodes.get_mut(node) else {
        unreachable!("inserted above")
    };
    value
}

/// Every labelled value of a map, in name, flow, node order.
fn labelled<T>(map: &ByLabels<T>) -> impl Iterator<Item = (&'static str, &str, &str, &T)> {
    map.iter().flat_map(|(name, flows)| {
        flows.iter().flat_map(move |(flow, nodes)| {
            nodes
                .iter()
                .map(move |(node, value)| (*name, flow.as_str(), node.as_str(), value))
        })
    })
}

/// A histogram as read back: cumulative counts per upper bound, the count and the sum.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    pub bounds: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: f64,
}

impl Buckets {
    /// The upper bound of the bucket holding quantile `q` (0..=1); `None` when it lies
    /// beyond the last bound or nothing was observed.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q * self.count as f64).ceil().max(1.0) as u64;
        self.bounds
            .iter()
            .find(|(_, cumulative)| *cumulative >= rank)
            .map(|(bound, _)| *bound)
    }
}

/// Every metric of one process; one thread owns it.
#[derive(Default)]
pub struct Metrics {
    counters: RefCell<ByLabels<u64>>,
    gauges: RefCell<BTreeMap<(&'static str, String), i64>>,
    node_gauges: RefCell<ByLabels<i64>>,
    histograms: RefCell<ByLabels<Histogram>>,
    /// `omniflow_poll_errors_total` by (flow, source, reason class).
    poll_errors: RefCell<BTreeMap<(String, String, &'static str), u64>>,
    /// This replica's id (when the state is shared) and its counters.
    replica: RefCell<Option<String>>,
    replica_counters: RefCell<BTreeMap<&'static str, u64>>,
    /// The same values sent to OpenTelemetry, when exporters are installed.
    mirror: Option<super::telemetry::Mirror>,
}

impl Metrics {
    /// Metrics that are also mirrored to OpenTelemetry when exporters are installed.
    pub fn exported() -> Metrics {
        Metrics {
            mirror: super::telemetry::Mirror::global(),
            ..Metrics::default()
        }
    }

    /// Names this process's replica (`omniflow_replica_info`).
    pub fn set_replica(&self, id: &str) {
        *self.replica.borrow_mut() = Some(id.to_string());
    }

    /// Adds to a counter labelled with this process's replica.
    pub fn add_replica(&self, name: &'static str, by: u64) {
        *self.replica_counters.borrow_mut().entry(name).or_default() += by;
    }

    /// Adds to a counter labelled with flow and node.
    pub fn add(&self, name: &'static str, flow: &str, node: &str, by: u64) {
        *slot(&mut self.counters.borrow_mut(), name, flow, node) += by;
        if let Some(mirror) = &self.mirror {
            mirror.add(name, flow, node, by);
        }
    }

    /// Counts a failed poll of `source` by the class of its reason
    /// (`omniflow_poll_errors_total{flow, source, reason}`).
    pub fn poll_error(&self, flow: &str, source: &str, reason: &'static str) {
        *self
            .poll_errors
            .borrow_mut()
            .entry((flow.to_string(), source.to_string(), reason))
            .or_default() += 1;
    }

    /// A counter's value (0 when never incremented).
    pub fn get(&self, name: &'static str, flow: &str, node: &str) -> u64 {
        self.counters
            .borrow()
            .get(name)
            .and_then(|flows| flows.get(flow))
            .and_then(|nodes| nodes.get(node))
            .copied()
            .unwrap_or(0)
    }

    /// A counter summed over the nodes of a flow that `keep` accepts.
    pub fn sum(&self, name: &'static str, flow: &str, keep: impl Fn(&str) -> bool) -> u64 {
        self.counters
            .borrow()
            .get(name)
            .and_then(|flows| flows.get(flow))
            .map(|nodes| {
                nodes
                    .iter()
                    .filter(|(node, _)| keep(node))
                    .map(|(_, v)| *v)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Sets a per-flow gauge.
    pub fn set_gauge(&self, name: &'static str, flow: &str, value: i64) {
        self.gauges
            .borrow_mut()
            .insert((name, flow.to_string()), value);
        if let Some(mirror) = &self.mirror {
            mirror.set(name, flow, "", value);
        }
    }

    /// Sets a gauge labelled with flow and node.
    pub fn set_node_gauge(&self, name: &'static str, flow: &str, node: &str, value: i64) {
        *slot(&mut self.node_gauges.borrow_mut(), name, flow, node) = value;
        if let Some(mirror) = &self.mirror {
            mirror.set(name, flow, node, value);
        }
    }

    /// Records one sink call's latency.
    pub fn observe_latency(&self, flow: &str, sink: &str, seconds: f64) {
        self.observe(SINK_LATENCY, flow, sink, seconds);
    }

    /// Records one observation of a histogram labelled with flow and node.
    pub fn observe(&self, name: &'static str, flow: &str, node: &str, seconds: f64) {
        let mut histograms = self.histograms.borrow_mut();
        let histogram = slot(&mut histograms, name, flow, node);
        if histogram.counts.is_empty() {
            histogram.counts = vec![0; BUCKETS.len()];
        }
        for (idx, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                histogram.counts[idx] += 1;
            }
        }
        histogram.sum += seconds;
        histogram.count += 1;
        if let Some(mirror) = &self.mirror {
            mirror.observe(name, flow, node, seconds);
        }
    }

    /// A per-flow gauge's value (`None` when never set).
    pub fn gauge(&self, name: &'static str, flow: &str) -> Option<i64> {
        self.gauges.borrow().get(&(name, flow.to_string())).copied()
    }

    /// A gauge labelled with flow and node (`None` when never set).
    pub fn node_gauge(&self, name: &'static str, flow: &str, node: &str) -> Option<i64> {
        self.node_gauges
            .borrow()
            .get(name)
            .and_then(|flows| flows.get(flow))
            .and_then(|nodes| nodes.get(node))
            .copied()
    }

    /// A histogram's cumulative bucket counts by upper bound (seconds), with its count and
    /// sum; `None` before its first observation.
    pub fn histogram(&self, name: &'static str, flow: &str, node: &str) -> Option<Buckets> {
        let histograms = self.histograms.borrow();
        let h = histograms.get(name)?.get(flow)?.get(node)?;
        Some(Buckets {
            bounds: BUCKETS
                .iter()
                .copied()
                .zip(h.counts.iter().copied())
                .collect(),
            count: h.count,
            sum: h.sum,
        })
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(replica) = self.replica.borrow().as_deref() {
            header(&mut out, REPLICA_INFO, "gauge");
            let _ = writeln!(out, "{REPLICA_INFO}{{replica=\"{replica}\"}} 1");
            for (name, value) in self.replica_counters.borrow().iter() {
                header(&mut out, name, "counter");
                let _ = writeln!(out, "{name}{{replica=\"{replica}\"}} {value}");
            }
        }
        let mut last = "";
        for (name, flow, node, value) in labelled(&self.counters.borrow()) {
            if name != last {
                header(&mut out, name, "counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{{flow=\"{flow}\",node=\"{node}\"}} {value}");
        }
        let poll_errors = self.poll_errors.borrow();
        if !poll_errors.is_empty() {
            header(&mut out, POLL_ERRORS, "counter");
        }
        for ((flow, source, reason), value) in poll_errors.iter() {
            let _ = writeln!(
                out,
                "{POLL_ERRORS}{{flow=\"{flow}\",source=\"{source}\",reason=\"{reason}\"}} {value}"
            );
        }
        let mut last = "";
        for ((name, flow), value) in self.gauges.borrow().iter() {
            if *name != last {
                header(&mut out, name, "gauge");
                last = name;
            }
            let _ = writeln!(out, "{name}{{flow=\"{flow}\"}} {value}");
        }
        let mut last = "";
        for (name, flow, node, value) in labelled(&self.node_gauges.borrow()) {
            if name != last {
                header(&mut out, name, "gauge");
                last = name;
            }
            let _ = writeln!(out, "{name}{{flow=\"{flow}\",node=\"{node}\"}} {value}");
        }
        let mut last = "";
        for (name, flow, node, histogram) in labelled(&self.histograms.borrow()) {
            if name != last {
                header(&mut out, name, "histogram");
                last = name;
            }
            let labels = format!("flow=\"{flow}\",node=\"{node}\"");
            for (bound, count) in BUCKETS.iter().zip(&histogram.counts) {
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", histogram.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", histogram.count);
        }
        out
    }
}

/// What every metric measures, as its `# HELP` line says (`tests/tidy.rs` holds every
/// metric name of the engine to this table).
pub const HELP: &[(&str, &str)] = &[
    (
        "omniflow_poll_errors_total",
        "Failed polls by flow, source and reason class (unreadable_answer, unexpected_answer, graphql_error, auth, refused, rate_limited, server_error, timeout, connect, paging, other).",
    ),
    (
        "omniflow_source_errors_total",
        "Failed attempts of a source that reads on its own (a poll, a scheduled run, a pass over its files), by flow and source.",
    ),
    (
        "omniflow_replica_info",
        "1, labelled with this process's replica id, when replicas share the state.",
    ),
    (
        "omniflow_replica_taken_over_total",
        "Inbox messages this replica freed for the others because the replica that had claimed them was gone.",
    ),
    (
        "omniflow_lease_held",
        "1 while this replica holds the lease of a source or ordered flow (the one replica that runs it), else 0.",
    ),
    (
        "omniflow_claimed_messages",
        "Inbox messages this process has claimed and not finished, by flow.",
    ),
    (
        "omniflow_sink_latency_seconds",
        "Duration of sink calls, by flow and sink.",
    ),
    (
        "omniflow_messages_in_total",
        "Messages a node received, by flow and node.",
    ),
    (
        "omniflow_messages_out_total",
        "Messages a node emitted (for a sink: calls that succeeded), by flow and node.",
    ),
    (
        "omniflow_retries_total",
        "Sink calls retried after a transient failure, by flow and sink.",
    ),
    (
        "omniflow_dead_letters_total",
        "Dead letters written, by flow and node.",
    ),
    (
        "omniflow_circuit_open",
        "1 while a sink's or a publishing channel's circuit breaker holds calls back, else 0.",
    ),
    (
        "omniflow_duplicates_prevented_total",
        "Deliveries skipped because their sink and idempotency key already had an outcome.",
    ),
    (
        "omniflow_queue_depth",
        "Messages accepted and not yet finished, by flow.",
    ),
    (
        "omniflow_bus_published_total",
        "Messages published to the bus, by flow and sink.",
    ),
    (
        "omniflow_inventory_published_total",
        "Calls that set a channel's quantity, by ledger and channel.",
    ),
    (
        "omniflow_inventory_publication_refused_total",
        "Publications the channel refused (dead letters), by ledger and channel.",
    ),
    (
        "omniflow_inventory_publication_retries_total",
        "Failed publication attempts that will be retried, by ledger and channel.",
    ),
    (
        "omniflow_inventory_publication_lag_seconds",
        "Time from a change of available-to-sell to the call that told the channel.",
    ),
    (
        "omniflow_inventory_publication_pending",
        "SKUs waiting to be published, by ledger and channel.",
    ),
    (
        "omniflow_ledger_movements_total",
        "Stock movements by outcome, per ledger.",
    ),
    (
        "omniflow_ledger_reservations_total",
        "Order reservations by outcome, per ledger.",
    ),
    (
        "omniflow_poll_reread_total",
        "Items a poll read again inside its lookback window and skipped, by flow and source.",
    ),
    (
        "omniflow_webhooks_rejected_total",
        "Webhook deliveries refused (signature, size, headers, topic), by flow and source.",
    ),
    (
        "omniflow_schedule_runs_total",
        "Scheduled runs completed, by flow and source.",
    ),
    (
        "omniflow_schedule_next_tick_seconds",
        "The next tick a scheduled source waits for, in Unix seconds, by flow and source.",
    ),
];

/// The `# HELP` and `# TYPE` lines that open a metric.
fn header(out: &mut String, name: &str, kind: &str) {
    let help = HELP
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("An omniflow metric.", |(_, h)| h);
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Sink call latency.
pub const SINK_LATENCY: &str = "omniflow_sink_latency_seconds";
/// Messages a node received.
pub const MESSAGES_IN: &str = "omniflow_messages_in_total";
/// Messages a node emitted (for a sink: calls that succeeded).
pub const MESSAGES_OUT: &str = "omniflow_messages_out_total";
/// Retried sink calls.
pub const RETRIES: &str = "omniflow_retries_total";
/// Dead letters written.
pub const DEAD_LETTERS: &str = "omniflow_dead_letters_total";
/// 1 while a sink's (or a publishing channel's) circuit breaker holds calls back, else 0.
pub const CIRCUIT_OPEN: &str = "omniflow_circuit_open";
/// Deliveries skipped because their (sink, key) already succeeded.
pub const DUPLICATES: &str = "omniflow_duplicates_prevented_total";
/// Messages accepted and not yet finished.
pub const QUEUE_DEPTH: &str = "omniflow_queue_depth";
/// 1, labelled with this process's replica id.
pub const REPLICA_INFO: &str = "omniflow_replica_info";
/// Messages freed from replicas that are gone.
pub const TAKEN_OVER: &str = "omniflow_replica_taken_over_total";
/// 1 while this replica holds a source's or flow's lease.
pub const LEASE_HELD: &str = "omniflow_lease_held";
/// Messages claimed and not finished, by flow.
pub const CLAIMED: &str = "omniflow_claimed_messages";
/// Failed attempts of a polling, scheduled or file source.
pub const SOURCE_ERRORS: &str = "omniflow_source_errors_total";
/// Failed polls by flow, source and the class of their reason.
pub const POLL_ERRORS: &str = "omniflow_poll_errors_total";
