//! `omniflow test --coverage`: which nodes, route branches and sinks the flows' tests
//! reach. Each test's input runs through its flow (as `omniflow test` runs it, sinks
//! taken as succeeding); a node is reached when it emits, a sink when a delivery is asked
//! of it, and a route branch when the route's message reaches that branch's target.

use omniflow_ir::NodeKind;
use omniflow_mapping::json_in::{self, Projection};
use omniflow_mapping::pipeline::{KindRt, Pipeline};
use std::collections::BTreeSet;
use std::fmt::Write;

/// The report, one block per flow with tests or without.
pub fn report(pipeline: &Pipeline) -> String {
    let mut out = String::from("\ncoverage:\n");
    for (flow_idx, flow) in pipeline.flows.iter().enumerate() {
        let (mut nodes, mut sinks, mut branches) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for test in &flow.ir.tests {
            let Some(&source) = flow.index.get(&test.source) else {
                continue;
            };
            nodes.insert(source);
            let bytes = omniflow_mapping::testing::input_bytes(test);
            let projection = match &flow.nodes[source].kind {
                KindRt::Source { projection } => projection.clone(),
                _ => Projection::whole(),
            };
            let Ok(input) = json_in::parse(&bytes, &projection) else {
                continue;
            };
            let Ok(outcome) = pipeline.process(flow_idx, source, input, true, true) else {
                // A rejection still reached the nodes before it; they are not traced.
                continue;
            };
            let reached: Vec<usize> = outcome.trace.iter().map(|(idx, _)| *idx).collect();
            nodes.extend(reached.iter().copied());
            sinks.extend(outcome.deliveries.iter().map(|d| d.sink));
            let names: BTreeSet<&str> = reached
                .iter()
                .chain(outcome.deliveries.iter().map(|d| &d.sink))
                .map(|idx| flow.nodes[*idx].name.as_str())
                .collect();
            for edge in &flow.ir.edges {
                if edge.branch.is_some()
                    && names.contains(edge.from.as_str())
                    && names.contains(edge.to.as_str())
                {
                    branches.insert((edge.from.clone(), edge.branch.clone(), edge.to.clone()));
                }
            }
        }
        let all_sinks: Vec<usize> = (0..flow.nodes.len())
            .filter(|idx| matches!(flow.nodes[*idx].kind, KindRt::Sink { .. }))
            .collect();
        let all_branches: Vec<&omniflow_ir::Edge> = flow
            .ir
            .edges
            .iter()
            .filter(|e| {
                e.branch.is_some()
                    && flow
                        .ir
                        .node(&e.from)
                        .is_some_and(|n| matches!(n.kind, NodeKind::Route { .. }))
            })
            .collect();
        let covered_branches = all_branches
            .iter()
            .filter(|e| branches.contains(&(e.from.clone(), e.branch.clone(), e.to.clone())))
            .count();
        let _ = writeln!(
            out,
            "  {}: {} tests; nodes {}/{}, branches {covered_branches}/{}, sinks {}/{}",
            flow.name,
            flow.ir.tests.len(),
            nodes.len(),
            flow.nodes.len(),
            all_branches.len(),
            sinks.len(),
            all_sinks.len()
        );
        let mut missed: Vec<String> = (0..flow.nodes.len())
            .filter(|idx| !nodes.contains(idx) && !all_sinks.contains(idx))
            .map(|idx| format!("node {}", flow.nodes[idx].name))
            .collect();
        missed.extend(all_branches.iter().filter_map(|e| {
            let key = (e.from.clone(), e.branch.clone(), e.to.clone());
            (!branches.contains(&key)).then(|| {
                format!(
                    "branch {} {} -> {}",
                    e.from,
                    e.branch.as_deref().unwrap_or(""),
                    e.to
                )
            })
        }));
        missed.extend(
            all_sinks
                .iter()
                .filter(|idx| !sinks.contains(idx))
                .map(|idx| format!("sink {}", flow.nodes[*idx].name)),
        );
        if !missed.is_empty() {
            let _ = writeln!(out, "    not reached: {}", missed.join(", "));
        }
    }
    out
}
