//! The flows the playground shows, compiled again whenever a `.flow` file under its paths
//! changes (size or modification time), and one payload run through them.

use omniflow_compiler::fs::RealFs;
use omniflow_mapping::json_in::{self, Projection};
use omniflow_mapping::json_out;
use omniflow_mapping::pipeline::Pipeline;
use omniflow_runtime::load::load_pipeline;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::path::PathBuf;
use std::time::SystemTime;

/// The last compilation, and what it was made from.
struct Loaded {
    /// Each `.flow` file with its size and modification time.
    fingerprint: Vec<(PathBuf, u64, Option<SystemTime>)>,
    /// Goes up at every recompilation; the page reruns when it sees a new one.
    version: u64,
    pipeline: Option<Pipeline>,
    /// Why the flows do not compile (the compiler's report).
    error: Option<String>,
}

/// The flows under some paths, kept current.
pub struct Watched {
    paths: Vec<PathBuf>,
    loaded: RefCell<Loaded>,
}

impl Watched {
    pub fn new(paths: Vec<PathBuf>) -> Watched {
        Watched {
            paths,
            loaded: RefCell::new(Loaded {
                fingerprint: Vec::new(),
                version: 0,
                pipeline: None,
                error: None,
            }),
        }
    }

    /// Compiles again when a file changed since the last look.
    fn refresh(&self) {
        let fingerprint = self.fingerprint();
        let mut loaded = self.loaded.borrow_mut();
        if loaded.version > 0 && loaded.fingerprint == fingerprint {
            return;
        }
        loaded.fingerprint = fingerprint;
        loaded.version += 1;
        match load_pipeline(&self.paths) {
            Ok(pipeline) => {
                loaded.pipeline = Some(pipeline);
                loaded.error = None;
            }
            // The last good flows stay usable while the text has errors.
            Err(err) => loaded.error = Some(err.to_string()),
        }
    }

    fn fingerprint(&self) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
        let files =
            omniflow_compiler::source::collect_flow_files(&RealFs, &self.paths).unwrap_or_default();
        files
            .into_iter()
            .map(|path| {
                let meta = std::fs::metadata(&path).ok();
                let len = meta.as_ref().map_or(0, |m| m.len());
                let modified = meta.and_then(|m| m.modified().ok());
                (path, len, modified)
            })
            .collect()
    }

    /// The flows, their nodes and their test fixtures, with the version and any error.
    pub fn describe(&self) -> Value {
        self.refresh();
        let loaded = self.loaded.borrow();
        let flows: Vec<Value> = loaded
            .pipeline
            .iter()
            .flat_map(|p| &p.flows)
            .map(|flow| {
                let nodes: Vec<Value> = flow
                    .ir
                    .nodes
                    .iter()
                    .map(|n| json!({"name": n.name, "kind": kind_name(&n.kind)}))
                    .collect();
                let fixtures: Vec<Value> = flow
                    .ir
                    .tests
                    .iter()
                    .map(|t| {
                        json!({"name": t.name, "node": t.node, "source": t.source, "input": t.input})
                    })
                    .collect();
                json!({"name": flow.name, "nodes": nodes, "fixtures": fixtures})
            })
            .collect();
        json!({"version": loaded.version, "error": loaded.error, "flows": flows})
    }

    /// Runs `payload` into `node` of `flow` (a source emits it; any other node reads it as
    /// its input and runs alone, then what follows it) and answers the node's output, the
    /// sinks reached and every node's output, or the rejection.
    pub fn run(&self, flow: &str, node: &str, payload: &str) -> Value {
        self.refresh();
        let loaded = self.loaded.borrow();
        let version = loaded.version;
        let Some(pipeline) = &loaded.pipeline else {
            return json!({"version": version, "error": loaded.error});
        };
        let Some(flow_idx) = pipeline.flow(flow) else {
            return json!({"version": version, "error": format!("no flow `{flow}`")});
        };
        let flow_rt = &pipeline.flows[flow_idx];
        let Some(&shown) = flow_rt.index.get(node) else {
            return json!({"version": version, "error": format!("no node `{node}` in flow `{flow}`")});
        };
        let is_source = input_of(&flow_rt.ir.nodes[shown].kind).is_none();
        let input = match json_in::parse(payload.as_bytes(), &Projection::whole()) {
            Ok(input) => input,
            Err(reason) => {
                return json!({"version": version, "error": format!("the payload is not JSON: {reason}")})
            }
        };
        // A source emits the payload; any other node reads it, alone (its siblings do not run).
        let emitted = is_source.then(|| input.clone());
        let processed = match is_source {
            true => pipeline.process(flow_idx, shown, input, true, true),
            false => pipeline.process_at(flow_idx, shown, input, true, true),
        };
        match processed {
            Err(rejected) => json!({
                "version": version,
                "rejected": {"node": rejected.node, "reason": rejected.reason},
            }),
            Ok(outcome) => {
                let written = |value| {
                    let mut out = Vec::new();
                    json_out::write(&mut out, value);
                    serde_json::from_slice::<Value>(&out).unwrap_or(Value::Null)
                };
                let output = match &emitted {
                    Some(payload) => Some(written(payload)),
                    None => outcome
                        .trace
                        .iter()
                        .find(|(idx, _)| *idx == shown)
                        .map(|(_, value)| written(value)),
                };
                let trace: Vec<Value> = outcome
                    .trace
                    .iter()
                    .map(|(idx, value)| json!({"node": flow_rt.nodes[*idx].name, "output": written(value)}))
                    .collect();
                let mut sinks: Vec<&str> = outcome
                    .deliveries
                    .iter()
                    .map(|d| flow_rt.nodes[d.sink].name.as_str())
                    .collect();
                sinks.dedup();
                json!({
                    "version": version,
                    "error": loaded.error,
                    "output": output,
                    "sinks": sinks,
                    "trace": trace,
                })
            }
        }
    }
}

fn kind_name(kind: &omniflow_ir::NodeKind) -> &'static str {
    use omniflow_ir::NodeKind::*;
    match kind {
        Source { .. } => "source",
        Map { .. } => "map",
        Filter { .. } => "filter",
        Route { .. } => "route",
        Split { .. } => "split",
        Sink { .. } => "sink",
    }
}

/// The node a node reads from (`None` for a source).
fn input_of(kind: &omniflow_ir::NodeKind) -> Option<&str> {
    use omniflow_ir::NodeKind::*;
    match kind {
        Source { .. } => None,
        Map { input, .. }
        | Filter { input, .. }
        | Route { input, .. }
        | Split { input, .. }
        | Sink { input, .. } => Some(input),
    }
}
