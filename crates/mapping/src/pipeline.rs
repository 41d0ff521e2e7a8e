//! The in-memory part of a flow: from a source message through maps, filters, routes and
//! splits to the sink deliveries it produces. Shared by `run`, `map` and `test`.

use crate::eval::{Code, CompileError, Env, Reject};
use crate::json_in::Projection;
use crate::value::Val;
use omniflow_ir::{self as ir, NodeKind};
use std::collections::HashMap;

/// A node ready to run.
pub struct NodeRt {
    pub name: String,
    pub kind: KindRt,
    /// Nodes that read this node's output (for a sink: continuations after success).
    pub next: Vec<usize>,
}

/// What a node does.
pub enum KindRt {
    Source {
        projection: Projection,
    },
    Map {
        code: Code,
    },
    Filter {
        cond: Code,
    },
    Route {
        arms: Vec<(Code, Vec<usize>)>,
        otherwise: Vec<usize>,
    },
    Split {
        each: Code,
    },
    Sink {
        key: Code,
        /// `order_by`, when the sink keeps per-key order.
        order: Option<Code>,
    },
}

/// A flow ready to run.
pub struct FlowRt {
    pub name: String,
    pub nodes: Vec<NodeRt>,
    pub index: HashMap<String, usize>,
    pub ir: ir::Flow,
}

/// One sink call a message asks for.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    pub sink: usize,
    pub key: String,
    /// The sink's order key (`order_by`), when it keeps per-key order.
    pub order: Option<String>,
    pub value: Val<'a>,
}

/// What processing one message produced.
#[derive(Debug, Default)]
pub struct Outcome<'a> {
    pub deliveries: Vec<Delivery<'a>>,
    /// Output of every node that emitted, in order (for tests and `omniflow map`).
    pub trace: Vec<(usize, Val<'a>)>,
}

/// A rejection with the node that rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub node: String,
    pub reason: String,
}

/// A whole graph compiled for execution.
pub struct Pipeline {
    pub env: Env,
    pub flows: Vec<FlowRt>,
    pub graph: ir::Graph,
}

impl Pipeline {
    /// Compiles every expression of a graph.
    pub fn new(graph: ir::Graph) -> Result<Pipeline, CompileError> {
        let mut env = Env::new(&graph);
        let mut flows = Vec::with_capacity(graph.flows.len());
        for flow in &graph.flows {
            flows.push(
                compile_flow(&mut env, flow).map_err(|error| CompileError::InFlow {
                    flow: flow.name.clone(),
                    error: Box::new(error),
                })?,
            );
        }
        Ok(Pipeline { env, flows, graph })
    }

    /// The flow with this name.
    pub fn flow(&self, name: &str) -> Option<usize> {
        self.flows.iter().position(|f| f.name == name)
    }

    /// A flow's first source, with the projection its input is parsed with.
    pub fn first_source(&self, flow_idx: usize) -> Option<(usize, &Projection)> {
        self.flows[flow_idx]
            .nodes
            .iter()
            .enumerate()
            .find_map(|(idx, n)| match &n.kind {
                KindRt::Source { projection } => Some((idx, projection)),
                _ => None,
            })
    }

    /// A flow's first map node: the canonical document `omniflow map` shows.
    pub fn first_map(&self, flow_idx: usize) -> Option<usize> {
        self.flows[flow_idx]
            .nodes
            .iter()
            .position(|n| matches!(n.kind, KindRt::Map { .. }))
    }

    /// Runs a message from a node's output onwards (a source, or a sink whose call
    /// succeeded). With `follow_sinks`, continuations after sinks run as if each call
    /// succeeded (for tests and `omniflow map`).
    pub fn process<'a>(
        &self,
        flow_idx: usize,
        from: usize,
        input: Val<'a>,
        follow_sinks: bool,
        keep_trace: bool,
    ) -> Result<Outcome<'a>, Rejected> {
        let work: Vec<(usize, Val<'a>)> = self.flows[flow_idx].nodes[from]
            .next
            .iter()
            .rev()
            .map(|n| (*n, input.clone()))
            .collect();
        self.drive(flow_idx, work, follow_sinks, keep_trace)
    }

    /// Runs `node` itself on `input` (what it reads), then what follows it, as
    /// [`Pipeline::process`] does (the playground tries one node this way).
    pub fn process_at<'a>(
        &self,
        flow_idx: usize,
        node: usize,
        input: Val<'a>,
        follow_sinks: bool,
        keep_trace: bool,
    ) -> Result<Outcome<'a>, Rejected> {
        self.drive(flow_idx, vec![(node, input)], follow_sinks, keep_trace)
    }

    fn drive<'a>(
        &self,
        flow_idx: usize,
        mut work: Vec<(usize, Val<'a>)>,
        follow_sinks: bool,
        keep_trace: bool,
    ) -> Result<Outcome<'a>, Rejected> {
        let flow = &self.flows[flow_idx];
        let mut outcome = Outcome::default();
        let mut slots: Vec<Val<'a>> = self.env.new_slots();
        while let Some((node_idx, value)) = work.pop() {
            let node = &flow.nodes[node_idx];
            let reject = |r: Reject| Rejected {
                node: node.name.clone(),
                reason: r.0,
            };
            let emitted: Option<Val<'a>> = match &node.kind {
                KindRt::Source { .. } => None,
                KindRt::Map { code } => {
                    Some(self.env.eval(code, &value, &mut slots).map_err(reject)?)
                }
                KindRt::Filter { cond } => {
                    if self
                        .env
                        .eval(cond, &value, &mut slots)
                        .map_err(reject)?
                        .is_true()
                    {
                        Some(value)
                    } else {
                        None
                    }
                }
                KindRt::Route { arms, otherwise } => {
                    let mut targets = otherwise;
                    for (cond, arm_targets) in arms {
                        if self
                            .env
                            .eval(cond, &value, &mut slots)
                            .map_err(reject)?
                            .is_true()
                        {
                            targets = arm_targets;
                            break;
                        }
                    }
                    for target in targets.iter().rev() {
                        work.push((*target, value.clone()));
                    }
                    if keep_trace {
                        outcome.trace.push((node_idx, value));
                    }
                    continue;
                }
                KindRt::Split { each } => {
                    let items = match self.env.eval(each, &value, &mut slots).map_err(reject)? {
                        Val::List(items) => items,
                        Val::Null => std::rc::Rc::from(Vec::new()),
                        other => {
                            return Err(Rejected {
                                node: node.name.clone(),
                                reason: format!("split expects a list, found {}", other.kind()),
                            })
                        }
                    };
                    for item in items.iter().rev() {
                        for next in node.next.iter().rev() {
                            work.push((*next, item.clone()));
                        }
                    }
                    if keep_trace {
                        outcome.trace.push((node_idx, Val::List(items)));
                    }
                    continue;
                }
                KindRt::Sink { key, order } => {
                    let mut non_empty = |code: &Code, what: &str| {
                        let value = self.env.eval(code, &value, &mut slots).map_err(reject)?;
                        // A string is taken as it is (not copied through `text`).
                        let text = match value {
                            Val::Str(text) => Some(text),
                            other => other.text(),
                        };
                        let problem = match text {
                            Some(text) if text.contains('\0') => "holds a NUL character",
                            Some(text) if !text.is_empty() => return Ok(text.into_owned()),
                            _ => "is empty",
                        };
                        Err(Rejected {
                            node: node.name.clone(),
                            reason: format!("the {what} of sink `{}` {problem}", node.name),
                        })
                    };
                    let key = non_empty(key, "idempotency key")?;
                    let order = match order {
                        Some(code) => Some(non_empty(code, "order key")?),
                        None => None,
                    };
                    outcome.deliveries.push(Delivery {
                        sink: node_idx,
                        key,
                        order,
                        value: value.clone(),
                    });
                    if follow_sinks {
                        Some(value)
                    } else {
                        None
                    }
                }
            };
            let Some(emitted) = emitted else { continue };
            for next in node.next.iter().rev() {
                work.push((*next, emitted.clone()));
            }
            if keep_trace {
                outcome.trace.push((node_idx, emitted));
            }
        }
        Ok(outcome)
    }
}

fn compile_flow(env: &mut Env, flow: &ir::Flow) -> Result<FlowRt, CompileError> {
    let index: HashMap<String, usize> = flow
        .nodes
        .iter()
        .enumerate()
        .map(|(idx, n)| (n.name.clone(), idx))
        .collect();
    let lookup = |name: &str| {
        index
            .get(name)
            .copied()
            .ok_or_else(|| CompileError::UnknownNode(name.to_string()))
    };
    let mut nodes = Vec::with_capacity(flow.nodes.len());
    for node in &flow.nodes {
        let kind = match &node.kind {
            NodeKind::Source { .. } => {
                let consumers: Vec<&ir::Node> = flow
                    .consumers(&node.name)
                    .filter_map(|e| flow.node(&e.to))
                    .collect();
                let all_maps = !consumers.is_empty()
                    && consumers
                        .iter()
                        .all(|n| matches!(n.kind, NodeKind::Map { .. }));
                let projection = if all_maps {
                    let reads: Vec<String> = consumers
                        .iter()
                        .flat_map(|n| match &n.kind {
                            NodeKind::Map { reads, program, .. } => {
                                crate::reads::narrowed(reads, program)
                            }
                            _ => Vec::new(),
                        })
                        .collect();
                    Projection::from_reads(&reads)
                } else {
                    Projection::whole()
                };
                KindRt::Source { projection }
            }
            NodeKind::Map { program, .. } => KindRt::Map {
                code: env.compile(program)?,
            },
            NodeKind::Filter { cond, .. } => KindRt::Filter {
                cond: env.compile(cond)?,
            },
            NodeKind::Route {
                arms, otherwise, ..
            } => KindRt::Route {
                arms: arms
                    .iter()
                    .map(|arm| {
                        Ok((
                            env.compile(&arm.cond)?,
                            arm.targets
                                .iter()
                                .map(|t| lookup(t))
                                .collect::<Result<Vec<_>, _>>()?,
                        ))
                    })
                    .collect::<Result<_, CompileError>>()?,
                otherwise: otherwise
                    .iter()
                    .map(|t| lookup(t))
                    .collect::<Result<_, _>>()?,
            },
            NodeKind::Split { each, .. } => KindRt::Split {
                each: env.compile(each)?,
            },
            NodeKind::Sink {
                idempotency_key,
                order_by,
                ..
            } => KindRt::Sink {
                key: env.compile(idempotency_key)?,
                order: order_by.as_ref().map(|e| env.compile(e)).transpose()?,
            },
        };
        let next = flow
            .edges
            .iter()
            .filter(|e| e.from == node.name && e.branch.is_none())
            .map(|e| lookup(&e.to))
            .collect::<Result<_, _>>()?;
        nodes.push(NodeRt {
            name: node.name.clone(),
            kind,
            next,
        });
    }
    Ok(FlowRt {
        name: flow.name.clone(),
        nodes,
        index,
        ir: flow.clone(),
    })
}
