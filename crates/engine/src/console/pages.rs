//! The console's pages and actions, one function each.

use super::history;
use super::{plot, Console};
use crate::ledger::report;
use crate::lineage;
use crate::ops::metrics::{
    CIRCUIT_OPEN, DEAD_LETTERS, DUPLICATES, MESSAGES_IN, MESSAGES_OUT, QUEUE_DEPTH, RETRIES,
    SINK_LATENCY,
};
use minijinja::context;
use omniflow_http::form;
use omniflow_http::server::{Req, Resp};
use omniflow_mapping::pipeline::KindRt;
use omniflow_state::{replay, DeadLetter};
use serde::Serialize;
use std::time::Instant;

/// Dead letters read for one listing (the newest); filters apply to these, and the page
/// says so when there are more (`omniflow dlq list --all --json` reads them all).
const LETTERS_READ: usize = 1_000;
/// Dead letters shown at most.
const LETTERS_SHOWN: usize = 200;
/// Lineage events shown at most.
const EVENTS_SHOWN: usize = 500;

pub async fn route(console: &Console, req: Req) -> Resp {
    let query = form::parse(&req.query);
    match (req.method.as_str(), req.path.trim_end_matches('/')) {
        ("GET", "/console") => overview(console),
        ("GET", "/console/dead-letters") => letters(console, &query).await,
        ("POST", "/console/dead-letters/replay") => act(console, &req, Action::Replay).await,
        ("POST", "/console/dead-letters/discard") => act(console, &req, Action::Discard).await,
        ("GET", "/console/lineage") => lineage_page(console, form::get(&query, "q")).await,
        ("GET", "/console/inventory") => inventory(console, form::get(&query, "sku")).await,
        _ => Resp::text(404, "no such console page\n"),
    }
}

fn time(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn millis(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s < 1.0 => format!("≤ {} ms", s * 1000.0),
        Some(s) => format!("≤ {s} s"),
        None => "—".into(),
    }
}

#[derive(Serialize)]
struct NodeRow {
    name: String,
    kind: &'static str,
    #[serde(rename = "in")]
    accepted: String,
    out: String,
    dead: u64,
}

#[derive(Serialize)]
struct FlowRow {
    name: String,
    nodes: Vec<NodeRow>,
    queue: String,
    rate: String,
    plot: String,
}

#[derive(Serialize)]
struct SinkRow {
    flow: String,
    name: String,
    open: bool,
    out: u64,
    retries: u64,
    retry_rate: String,
    duplicates: u64,
    p50: String,
    p95: String,
    p99: String,
    histogram: Option<String>,
}

fn overview(console: &Console) -> Resp {
    let (metrics, now) = (&console.metrics, Instant::now());
    let window = history::EVERY.as_secs_f64() * history::KEPT as f64;
    let mut flows = Vec::new();
    let mut sinks = Vec::new();
    for (idx, flow) in console.pipeline.flows.iter().enumerate() {
        let name = flow.name.as_str();
        let rates = console.history.rates(idx, now);
        let rate = rates.last().map_or("—".into(), |r| {
            format!("{:.1} in / {:.1} out", r.accepted, r.delivered)
        });
        let nodes = flow
            .nodes
            .iter()
            .map(|node| {
                let count = |metric| metrics.get(metric, name, &node.name).to_string();
                let (kind, accepted, out) = match &node.kind {
                    KindRt::Source { .. } => ("source", count(MESSAGES_IN), String::new()),
                    KindRt::Map { .. } => ("map", String::new(), String::new()),
                    KindRt::Filter { .. } => ("filter", String::new(), String::new()),
                    KindRt::Route { .. } => ("route", String::new(), String::new()),
                    KindRt::Split { .. } => ("split", String::new(), String::new()),
                    KindRt::Sink { .. } => ("sink", count(MESSAGES_IN), count(MESSAGES_OUT)),
                };
                NodeRow {
                    name: node.name.clone(),
                    kind,
                    accepted,
                    out,
                    dead: metrics.get(DEAD_LETTERS, name, &node.name),
                }
            })
            .collect();
        for node in &flow.nodes {
            if !matches!(node.kind, KindRt::Sink { .. }) {
                continue;
            }
            let sink = node.name.as_str();
            let calls = metrics.get(MESSAGES_IN, name, sink);
            let retries = metrics.get(RETRIES, name, sink);
            let latency = metrics.histogram(SINK_LATENCY, name, sink);
            let quantile = |q| millis(latency.as_ref().and_then(|b| b.quantile(q)));
            sinks.push(SinkRow {
                flow: name.to_string(),
                name: sink.to_string(),
                open: metrics.node_gauge(CIRCUIT_OPEN, name, sink) == Some(1),
                out: metrics.get(MESSAGES_OUT, name, sink),
                retries,
                retry_rate: match calls {
                    0 => "—".into(),
                    calls => format!("{:.1}%", 100.0 * retries as f64 / calls as f64),
                },
                duplicates: metrics.get(DUPLICATES, name, sink),
                p50: quantile(0.5),
                p95: quantile(0.95),
                p99: quantile(0.99),
                histogram: latency
                    .as_ref()
                    .map(|b| plot::histogram(&format!("{name} / {sink} latency"), b)),
            });
        }
        flows.push(FlowRow {
            name: name.to_string(),
            nodes,
            queue: metrics
                .gauge(QUEUE_DEPTH, name)
                .map_or("—".into(), |d| d.to_string()),
            rate,
            plot: plot::rates(&format!("{name} rates"), &rates, window),
        });
    }
    // Sources that read on their own: failing ones first, with the reason.
    let mut sources = console.health.sources();
    sources.sort_by_key(|s| (s.failures == 0, s.flow.clone(), s.source.clone()));
    console.page(
        200,
        "overview.html",
        context! {
            page => "overview", refresh => 5, flows, sinks, sources,
            window => format!("{} minutes", window as u64 / 60),
        },
    )
}

#[derive(Serialize)]
struct Filters {
    flow: String,
    node: String,
    reason: String,
    queue: String,
    hours: String,
    all: bool,
}

impl Filters {
    fn from(query: &[(String, String)]) -> Filters {
        let text = |name| form::get(query, name).trim().to_string();
        Filters {
            flow: text("flow"),
            node: text("node"),
            reason: text("reason"),
            queue: text("queue"),
            hours: text("hours"),
            all: !form::get(query, "all").is_empty(),
        }
    }

    fn keeps(&self, letter: &DeadLetter, now: i64) -> bool {
        let since = self
            .hours
            .parse::<i64>()
            .ok()
            .map(|h| now.saturating_sub(h.saturating_mul(3600)));
        (self.flow.is_empty() || letter.origin.encode() == self.flow)
            && (self.node.is_empty() || letter.node == self.node)
            && (self.queue.is_empty() || letter.queue.as_deref() == Some(self.queue.as_str()))
            && (self.reason.is_empty()
                || letter
                    .error
                    .to_lowercase()
                    .contains(&self.reason.to_lowercase()))
            && since.is_none_or(|since| letter.created_at >= since)
    }
}

#[derive(Serialize)]
struct LetterRow {
    id: i64,
    when: String,
    flow: String,
    node: String,
    queue: String,
    key: String,
    correlation: String,
    error: String,
    attempts: usize,
    state: &'static str,
}

async fn letters(console: &Console, query: &[(String, String)]) -> Resp {
    let filters = Filters::from(query);
    let all = filters.all;
    let read = console
        .store
        .read(move |b| b.dead_letters(all, LETTERS_READ))
        .await;
    let found = match read {
        Ok(found) => found,
        Err(err) => return Resp::text(503, format!("the state cannot be read: {err}\n")),
    };
    let now = omniflow_state::now_secs();
    let mut kept = found.iter().filter(|l| filters.keeps(l, now));
    let letters: Vec<LetterRow> = kept
        .by_ref()
        .take(LETTERS_SHOWN)
        .map(|l| LetterRow {
            id: l.id,
            when: time(l.created_at),
            flow: l.origin.to_string(),
            node: l.node.clone(),
            queue: l.queue.clone().unwrap_or_default(),
            key: l.key.clone(),
            correlation: l.correlation_id.clone(),
            error: l.error.clone(),
            attempts: l.attempts.len(),
            state: match (l.replayed_at, l.discarded_at) {
                (Some(_), _) => "replayed",
                (_, Some(_)) => "discarded",
                _ => "",
            },
        })
        .collect();
    let more = kept.next().is_some();
    let capped = found.len() == LETTERS_READ;
    let notice = match (form::get(query, "done"), form::get(query, "id")) {
        ("replayed", id) => {
            format!("Dead letter {id} replayed: its message is back in its flow's inbox.")
        }
        ("republish", id) => format!(
            "Dead letter {id} settled: its ledger sends the SKU's current quantity again when \
             the runtime next starts."
        ),
        ("discarded", id) => format!("Dead letter {id} discarded."),
        ("gone", id) => format!("Dead letter {id} was already replayed or discarded."),
        _ => String::new(),
    };
    console.page(
        200,
        "letters.html",
        context! {
            page => "letters", f => filters, letters, more, capped,
            searched => LETTERS_READ, notice,
        },
    )
}

enum Action {
    Replay,
    Discard,
}

/// Replays or discards the dead letter the form names, then shows the list again.
async fn act(console: &Console, req: &Req, action: Action) -> Resp {
    let fields = form::parse(&String::from_utf8_lossy(&req.body));
    let Ok(id) = form::get(&fields, "id").parse::<i64>() else {
        return Resp::text(400, "give the dead letter's id\n");
    };
    let done = match action {
        Action::Replay => {
            console
                .store
                .call(move |b| match b.dead_letter(id)? {
                    Some(letter) => {
                        let ledger = letter.origin.flow().is_none();
                        let done = replay::put_back(b, vec![letter])? > 0;
                        Ok(match (done, ledger) {
                            (false, _) => "gone",
                            (true, false) => "replayed",
                            (true, true) => "republish",
                        })
                    }
                    None => Ok("gone"),
                })
                .await
        }
        Action::Discard => console
            .store
            .call(move |b| b.discard(id))
            .await
            .map(|done| if done { "discarded" } else { "gone" }),
    };
    match done {
        Ok(done) => {
            tracing::info!(
                dead_letter = id,
                outcome = done,
                "console action on a dead letter"
            );
            Resp::text(303, "").header(
                "location",
                format!("/console/dead-letters?done={done}&id={id}"),
            )
        }
        Err(err) => Resp::text(503, format!("the state cannot be written: {err}\n")),
    }
}

#[derive(Serialize)]
struct EventRow {
    when: String,
    correlation: String,
    step: String,
    summary: String,
    attempts: Vec<String>,
}

async fn lineage_page(console: &Console, q: &str) -> Resp {
    let q = q.trim().to_string();
    let mut events = Vec::new();
    if !q.is_empty() {
        let term = q.clone();
        match console
            .store
            .read(move |b| b.lineage(&term, EVENTS_SHOWN))
            .await
        {
            Ok(found) => events = found,
            Err(err) => return Resp::text(503, format!("the state cannot be read: {err}\n")),
        }
    }
    let messages = events
        .iter()
        .map(|e| e.correlation.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let events: Vec<EventRow> = events
        .iter()
        .map(|e| EventRow {
            when: jiff::Timestamp::from_millisecond(e.at_ms)
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string())
                .unwrap_or_default(),
            correlation: e.correlation.clone(),
            step: e.step.clone(),
            summary: lineage::summary(e),
            attempts: e.detail["attempts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| lineage::attempt_line(a.as_str().unwrap_or("")))
                .collect(),
        })
        .collect();
    console.page(
        200,
        "lineage.html",
        context! { page => "lineage", q, events, messages },
    )
}

async fn inventory(console: &Console, sku: &str) -> Resp {
    let sku = sku.trim().to_string();
    let mut reports = Vec::new();
    if !sku.is_empty() {
        let wanted = sku.clone();
        match console.store.read(move |b| report::sku(b, &wanted)).await {
            Ok(found) => reports = found,
            Err(err) => return Resp::text(503, format!("the state cannot be read: {err}\n")),
        }
    }
    console.page(
        200,
        "inventory.html",
        context! { page => "inventory", sku, reports },
    )
}
