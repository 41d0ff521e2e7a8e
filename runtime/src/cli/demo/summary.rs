//! The end of the day: per-flow counts, dead letters with their reasons, and the
//! reconciliation of channel orders against the ERP.

use super::script::{ChannelOrder, Expect};
use omniflow_engine::ops::metrics::{Metrics, DEAD_LETTERS, DUPLICATES, MESSAGES_IN, MESSAGES_OUT};
use omniflow_mapping::pipeline::Pipeline;
use omniflow_state::DeadLetter;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Where one channel order ended up.
#[derive(Debug, PartialEq)]
pub enum Found {
    Erp(usize),
    Review,
    DeadLetter(String),
    Nowhere,
}

/// The verdict on one channel order.
pub struct Line {
    pub order: ChannelOrder,
    pub found: Found,
    pub ok: bool,
}

/// Matches every channel order with the ERP, the review desk and the dead letters.
pub fn reconcile(
    orders: &[ChannelOrder],
    erp: &[String],
    reviewed: &[String],
    dead: &[DeadLetter],
) -> (Vec<Line>, Vec<String>) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for number in erp {
        *counts.entry(number.as_str()).or_default() += 1;
    }
    let lines: Vec<Line> = orders
        .iter()
        .map(|order| {
            let external = order
                .id
                .split_once(':')
                .map(|(_, e)| e)
                .unwrap_or(&order.id);
            let found = if let Some(n) = counts.get(order.id.as_str()) {
                Found::Erp(*n)
            } else if reviewed.iter().any(|path| path.ends_with(external)) {
                Found::Review
            } else if let Some(dl) = dead.iter().find(|d| {
                d.correlation_id == order.id
                    || d.error.contains(external)
                    || d.message.contains(external)
            }) {
                Found::DeadLetter(dl.error.clone())
            } else {
                Found::Nowhere
            };
            let ok = match (&order.expect, &found) {
                (Expect::Erp, Found::Erp(1)) | (Expect::Review, Found::Review) => true,
                (Expect::DeadLetter(why), Found::DeadLetter(reason)) => reason.contains(why),
                _ => false,
            };
            Line {
                order: order.clone(),
                found,
                ok,
            }
        })
        .collect();
    let strangers: Vec<String> = counts
        .keys()
        .filter(|number| !orders.iter().any(|o| o.id == **number))
        .map(|s| s.to_string())
        .collect();
    (lines, strangers)
}

/// The per-flow table: messages in (accepted by sources), out (delivered by sinks), dead
/// letters and duplicates prevented.
pub fn flow_table(pipeline: &Pipeline, metrics: &Metrics) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:>6} {:>6} {:>6} {:>11}",
        "flow", "in", "out", "dead", "duplicates"
    );
    for flow in &pipeline.flows {
        let sources: Vec<&str> = flow
            .ir
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, omniflow_ir::NodeKind::Source { .. }))
            .map(|n| n.name.as_str())
            .collect();
        let sinks: Vec<&str> = flow
            .ir
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, omniflow_ir::NodeKind::Sink { .. }))
            .map(|n| n.name.as_str())
            .collect();
        let name = flow.name.as_str();
        let _ = writeln!(
            out,
            "{:<28} {:>6} {:>6} {:>6} {:>11}",
            name,
            metrics.sum(MESSAGES_IN, name, |n| sources.contains(&n)),
            metrics.sum(MESSAGES_OUT, name, |n| sinks.contains(&n)),
            metrics.sum(DEAD_LETTERS, name, |_| true),
            metrics.sum(DUPLICATES, name, |_| true),
        );
    }
    out
}

/// The reconciliation as text.
pub fn reconciliation_table(lines: &[Line], strangers: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<32} {:<46} {:<6} outcome",
        "channel order", "what", "ok"
    );
    for line in lines {
        let outcome = match &line.found {
            Found::Erp(1) => "in the ERP once".to_string(),
            Found::Erp(n) => format!("in the ERP {n} times"),
            Found::Review => "held at the review desk".to_string(),
            Found::DeadLetter(reason) => format!("dead letter: {reason}"),
            Found::Nowhere => "not found anywhere".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<32} {:<46} {:<6} {outcome}",
            line.order.id,
            line.order.what,
            if line.ok { "yes" } else { "NO" }
        );
    }
    for number in strangers {
        let _ = writeln!(
            out,
            "{number:<32} {:<46} {:<6} in the ERP but no channel sold it",
            "?", "NO"
        );
    }
    out
}

/// One end-of-day check beyond the order reconciliation.
#[derive(Clone)]
pub struct Check {
    pub what: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// The checks as text.
pub fn checks_table(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.what.len()).max().unwrap_or(0);
    let mut out = String::new();
    for check in checks {
        let _ = writeln!(
            out,
            "  {:<4} {:<width$}  {}",
            if check.ok { "yes" } else { "NO" },
            check.what,
            check.detail
        );
    }
    out
}
