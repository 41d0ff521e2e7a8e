//! Checking one flow: node types in dependency order, every node's expressions and
//! settings, connector operation signatures, and test blocks (`test_block`). Produces the
//! IR flow.

mod source_options;
mod test_block;
mod test_calls;

use super::expr::ExprCx;
use super::options::{self, invalid, range};
use super::settings::{self, const_value, Const};
use super::types::{assignable, Ty};
use super::{limits, Env, OperationInfo};
use crate::diagnostics::{codes, suggest, Diagnostic, Diagnostics};
use crate::ir::{self, DeadLetter, NodeKind, Rate};
use crate::resolve::{Kind, ModuleId, Program};
use crate::source::Span;
use crate::syntax::ast::{ExprKind, FlowDecl, Ident, Literal, Operation, Setting, Settings, Stmt};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

struct FlowCx<'a> {
    program: &'a Program,
    env: &'a Env,
    module: ModuleId,
    decl: &'a FlowDecl,
    nodes: HashMap<&'a str, usize>,
    types: HashMap<usize, Ty>,
}

/// Checks a flow and returns its IR.
pub fn check_flow(
    program: &Program,
    env: &Env,
    module: ModuleId,
    decl: &FlowDecl,
    diags: &mut Diagnostics,
) -> ir::Flow {
    let mut nodes: HashMap<&str, usize> = HashMap::new();
    for (idx, stmt) in decl.stmts.iter().enumerate() {
        let Some(name) = stmt.node_name() else {
            continue;
        };
        if let Some(first) = nodes.get(name.name.as_str()) {
            let first_span = decl.stmts[*first].node_name().map_or(name.span, |n| n.span);
            diags.push(
                Diagnostic::error(
                    codes::DUPLICATE_DEFINITION,
                    name.span,
                    format!(
                        "node `{}` is declared twice in flow `{}`",
                        name.name, decl.name.name
                    ),
                )
                .label("declared again here")
                .secondary(first_span, "first declared here")
                .help("give every node of a flow its own name"),
            );
            continue;
        }
        nodes.insert(&name.name, idx);
    }
    let mut cx = FlowCx {
        program,
        env,
        module,
        decl,
        nodes,
        types: HashMap::new(),
    };
    // Whether each statement is on the path being typed (a cycle comes back to one).
    let mut visiting = vec![false; decl.stmts.len()];
    for idx in 0..decl.stmts.len() {
        cx.node_type(idx, &mut visiting, diags);
    }
    for (idx, stmt) in decl.stmts.iter().enumerate() {
        if let Some(name) = stmt.node_name() {
            program.note_declaration(name.span);
            if let Some(ty) = cx.types.get(&idx) {
                program.note_type(name.span, || ty.display(program));
            }
        }
    }
    let mut flow = ir::Flow {
        name: decl.name.name.clone(),
        nodes: Vec::new(),
        edges: Vec::new(),
        tests: Vec::new(),
    };
    for (idx, stmt) in decl.stmts.iter().enumerate() {
        if let Some(node) = cx.node(idx, stmt, diags) {
            flow.nodes.push(node);
        }
    }
    flow.edges = edges(&flow.nodes);
    for stmt in &decl.stmts {
        if let Stmt::Test(test) = stmt {
            if let Some(test) = cx.test(test, &flow, diags) {
                flow.tests.push(test);
            }
        }
    }
    flow
}

/// Reports (`E0110`) two webhook sources of the flows that run together (the root files)
/// on one path: the runtime's webhook server routes a path to a single source, so the
/// other would never receive a delivery.
pub fn check_webhook_paths(program: &Program, env: &Env, diags: &mut Diagnostics) {
    let mut seen: HashMap<String, Span> = HashMap::new();
    for (idx, module) in program.modules.iter().enumerate() {
        if !module.is_root {
            continue;
        }
        for item in &module.ast.items {
            let crate::syntax::ast::Item::Flow(flow) = item else {
                continue;
            };
            for stmt in &flow.stmts {
                let Some((path, span)) =
                    webhook_path(program, env, ModuleId(idx as u32), flow, stmt)
                else {
                    continue;
                };
                let Some(first) = seen.get(&path) else {
                    seen.insert(path, span);
                    continue;
                };
                let mut report = Diagnostic::error(
                    codes::DUPLICATE_DEFINITION,
                    span,
                    format!("webhook path `{path}` is used by two sources"),
                )
                .label("the server routes this path to one source only")
                .help("give each webhook source its own `path`");
                if first.file == span.file {
                    report = report.secondary(*first, "first used here");
                }
                diags.push(report);
            }
        }
    }
}

/// The path a webhook source listens on (its `path`, else its connection's, else
/// `/hooks/FLOW/SOURCE`) and where it is written; `None` for other statements and paths
/// read from the environment.
fn webhook_path(
    program: &Program,
    env: &Env,
    module: ModuleId,
    flow: &FlowDecl,
    stmt: &Stmt,
) -> Option<(String, Span)> {
    let Stmt::Source {
        name, op, settings, ..
    } = stmt
    else {
        return None;
    };
    let connection = program.lookup(module, &op.connection.name, Kind::Connection)?;
    let connection = env.connections.get(&connection)?;
    let connector = env.connectors.get(&connection.connector?)?;
    let source = connector.sources.iter().find(|s| s.name == op.name.name)?;
    if source.kind != "webhook" {
        return None;
    }
    let written = settings.as_ref().and_then(|s| s.get("path"));
    match written.map(|e| (&e.value.kind, e.value.span)) {
        Some((crate::syntax::ast::ExprKind::Lit(crate::syntax::ast::Literal::Str(path)), at)) => {
            Some((path.clone(), at))
        }
        Some(_) => None,
        None => match connection.ir.settings.get("path") {
            Some(ir::SettingValue::Value(Value::String(path))) => {
                Some((path.clone(), op.connection.span.to(op.name.span)))
            }
            Some(_) => None,
            None => Some((
                format!("/hooks/{}/{}", flow.name.name, name.name),
                name.span,
            )),
        },
    }
}

fn edges(nodes: &[ir::Node]) -> Vec<ir::Edge> {
    let routes: std::collections::HashSet<&str> = nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Route { .. }))
        .map(|n| n.name.as_str())
        .collect();
    let mut edges = Vec::new();
    for node in nodes {
        if let NodeKind::Route {
            arms, otherwise, ..
        } = &node.kind
        {
            {
                for (idx, arm) in arms.iter().enumerate() {
                    for target in &arm.targets {
                        edges.push(ir::Edge {
                            from: node.name.clone(),
                            to: target.clone(),
                            branch: Some(format!("when {}", idx + 1)),
                        });
                    }
                }
                for target in otherwise {
                    edges.push(ir::Edge {
                        from: node.name.clone(),
                        to: target.clone(),
                        branch: Some("otherwise".into()),
                    });
                }
            }
        }
        if let Some(input) = node.kind.input() {
            if !routes.contains(input) {
                edges.push(ir::Edge {
                    from: input.to_string(),
                    to: node.name.clone(),
                    branch: None,
                });
            }
        }
    }
    edges
}

impl<'a> FlowCx<'a> {
    fn connection(
        &self,
        op: &Operation,
        diags: &mut Diagnostics,
    ) -> Option<&'a super::ConnectorInfo> {
        let conn = self.program.resolve(
            self.module,
            &op.connection.name,
            op.connection.span,
            Kind::Connection,
            diags,
        )?;
        let info = self.env.connections.get(&conn)?;
        self.env.connectors.get(&info.connector?)
    }

    fn operation(
        &self,
        op: &Operation,
        sink: bool,
        diags: &mut Diagnostics,
    ) -> Option<&'a OperationInfo> {
        let connector = self.connection(op, diags)?;
        let (ops, others) = if sink {
            (&connector.sinks, &connector.sources)
        } else {
            (&connector.sources, &connector.sinks)
        };
        if let Some(found) = ops.iter().find(|o| o.name == op.name.name) {
            self.program.note_ref(op.name.span, found.span);
            self.program
                .note_type(op.name.span, || found.describe(self.program));
            return Some(found);
        }
        let (want, other) = if sink {
            ("sink", "source")
        } else {
            ("source", "sink")
        };
        let help = if others.iter().any(|o| o.name == op.name.name) {
            format!(
                "`{}` is a {other} operation of `{}`; use it in a `{other}` statement",
                op.name.name, connector.name
            )
        } else {
            suggest::did_you_mean(
                &op.name.name,
                ops.iter().map(|o| o.name.as_str()),
                &format!(
                    "`{}` has the {want} operations {}",
                    connector.name,
                    ops.iter()
                        .map(|o| format!("`{}`", o.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        };
        diags.push(
            Diagnostic::error(
                codes::UNKNOWN_OPERATION,
                op.name.span,
                format!(
                    "connector `{}` has no {want} operation `{}`",
                    connector.name, op.name.name
                ),
            )
            .label(format!("not a {want} operation of `{}`", connector.name))
            .help(help),
        );
        None
    }

    /// The output type of a node, computed in dependency order.
    fn node_type(&mut self, idx: usize, visiting: &mut [bool], diags: &mut Diagnostics) -> Ty {
        if let Some(ty) = self.types.get(&idx) {
            return ty.clone();
        }
        if visiting[idx] {
            return Ty::Error;
        }
        visiting[idx] = true;
        let stmt = &self.decl.stmts[idx];
        let input_ty = |cx: &mut FlowCx,
                        visiting: &mut [bool],
                        diags: &mut Diagnostics,
                        input: &Ident|
         -> Ty {
            match cx.nodes.get(input.name.as_str()).copied() {
                Some(input_idx) if visiting[input_idx] => {
                    diags.push(
                        Diagnostic::error(
                            codes::FLOW_CYCLE,
                            input.span,
                            format!("`{}` reads from itself through a cycle", input.name),
                        )
                        .label("this input closes a cycle")
                        .help("a flow is a directed graph from sources to sinks; break the cycle"),
                    );
                    Ty::Error
                }
                Some(input_idx) => cx.node_type(input_idx, visiting, diags),
                None => Ty::Error,
            }
        };
        let mut scratch = Diagnostics::default();
        let ty = match stmt {
            Stmt::Source { op, .. } => self
                .operation(op, false, &mut scratch)
                .map(|o| o.output.clone())
                .unwrap_or(Ty::Error),
            Stmt::Map { record, input, .. } => {
                // Visit the input too, so a cycle through a map is found.
                input_ty(self, visiting, diags, input);
                match self
                    .program
                    .lookup(self.module, &record.ty.name, Kind::Type)
                {
                    Some(item) if self.env.schemas.contains_key(&item) => Ty::Record(item),
                    _ => Ty::Error,
                }
            }
            Stmt::Filter { input, .. } | Stmt::Route { input, .. } | Stmt::Sink { input, .. } => {
                input_ty(self, visiting, diags, input)
            }
            Stmt::Split { input, each, .. } => {
                let in_ty = input_ty(self, visiting, diags, input);
                let mut cx = ExprCx::new(self.program, self.env, self.module, in_ty, &mut scratch);
                cx.bare_fields = true;
                let (ty, _) = cx.check(each);
                ty.element().unwrap_or(Ty::Error)
            }
            Stmt::Test(_) => Ty::Error,
        };
        visiting[idx] = false;
        self.types.insert(idx, ty.clone());
        ty
    }

    /// Records that `name` refers to the node declared at statement `idx`.
    pub(super) fn note_node(&self, name: &Ident, idx: usize) {
        if let Some(declared) = self.decl.stmts[idx].node_name() {
            self.program.note_ref(name.span, declared.span);
        }
    }

    fn input_type(&self, input: &Ident, diags: &mut Diagnostics) -> Ty {
        match self.nodes.get(input.name.as_str()) {
            Some(idx) => {
                self.note_node(input, *idx);
                let ty = self.types.get(idx).cloned().unwrap_or(Ty::Error);
                self.program
                    .note_type(input.span, || ty.display(self.program));
                ty
            }
            None => {
                let help = suggest::did_you_mean(
                    &input.name,
                    self.nodes.keys().copied(),
                    &format!(
                        "declare a node named `{}` in flow `{}`",
                        input.name, self.decl.name.name
                    ),
                );
                diags.push(
                    Diagnostic::error(
                        codes::UNKNOWN_NODE,
                        input.span,
                        format!("unknown node `{}`", input.name),
                    )
                    .label(format!(
                        "flow `{}` has no node of that name",
                        self.decl.name.name
                    ))
                    .help(help),
                );
                Ty::Error
            }
        }
    }

    fn node(&self, idx: usize, stmt: &Stmt, diags: &mut Diagnostics) -> Option<ir::Node> {
        let output = self.types.get(&idx).cloned().unwrap_or(Ty::Error);
        let (name, kind, slots) = match stmt {
            Stmt::Test(_) => return None,
            Stmt::Source {
                name, op, settings, ..
            } => (
                name,
                self.source_node(name, op, settings.as_ref(), diags),
                0,
            ),
            Stmt::Map {
                name,
                input,
                record,
                ..
            } => {
                let in_ty = self.input_type(input, diags);
                let mut cx = ExprCx::new(self.program, self.env, self.module, in_ty.clone(), diags);
                cx.bare_fields = matches!(in_ty, Ty::Record(_));
                let (_, program) = cx.record(record);
                let reads = cx.reads.iter().cloned().collect();
                let slots = cx.slots();
                (
                    name,
                    NodeKind::Map {
                        input: input.name.clone(),
                        schema: match self
                            .program
                            .lookup(self.module, &record.ty.name, Kind::Type)
                        {
                            Some(item) => self.program.ir_name(item),
                            None => record.ty.name.clone(),
                        },
                        program,
                        reads,
                    },
                    slots,
                )
            }
            Stmt::Filter {
                name, input, cond, ..
            } => {
                let in_ty = self.input_type(input, diags);
                let mut cx = ExprCx::new(self.program, self.env, self.module, in_ty, diags);
                cx.bare_fields = true;
                let cond = cx.condition(cond, "a filter condition");
                (
                    name,
                    NodeKind::Filter {
                        input: input.name.clone(),
                        cond,
                    },
                    cx.slots(),
                )
            }
            Stmt::Route {
                name,
                input,
                arms,
                otherwise,
                ..
            } => {
                let in_ty = self.input_type(input, diags);
                let mut cx = ExprCx::new(self.program, self.env, self.module, in_ty, diags);
                cx.bare_fields = true;
                for target in arms
                    .iter()
                    .flat_map(|arm| &arm.targets)
                    .chain(otherwise.iter().flatten())
                {
                    if let Some(idx) = self.nodes.get(target.name.as_str()) {
                        self.note_node(target, *idx);
                    }
                }
                let arms = arms
                    .iter()
                    .map(|arm| ir::RouteArm {
                        cond: cx.condition(&arm.cond, "a `when` condition"),
                        targets: arm.targets.iter().map(|t| t.name.clone()).collect(),
                    })
                    .collect();
                let slots = cx.slots();
                (
                    name,
                    NodeKind::Route {
                        input: input.name.clone(),
                        arms,
                        otherwise: otherwise.iter().flatten().map(|t| t.name.clone()).collect(),
                    },
                    slots,
                )
            }
            Stmt::Split {
                name, input, each, ..
            } => {
                let in_ty = self.input_type(input, diags);
                let mut cx = ExprCx::new(self.program, self.env, self.module, in_ty, diags);
                cx.bare_fields = true;
                let (ty, each_ir) = cx.check(each);
                if ty.element().is_none() {
                    let shown = ty.display(self.program);
                    cx.diags.push(
                        Diagnostic::error(
                            codes::NOT_A_LIST,
                            each.span,
                            format!("`split` needs a list, found {shown}"),
                        )
                        .label(format!("this is {shown}"))
                        .help("split a list field, e.g. `split lines = order each lines`"),
                    );
                }
                let slots = cx.slots();
                (
                    name,
                    NodeKind::Split {
                        input: input.name.clone(),
                        each: each_ir,
                    },
                    slots,
                )
            }
            Stmt::Sink {
                name,
                op,
                input,
                settings,
                ..
            } => (
                name,
                self.sink_node(name, op, input, settings.as_ref(), diags),
                0,
            ),
        };
        Some(ir::Node {
            name: name.name.clone(),
            kind,
            output: output.to_ir(self.program),
            slots,
        })
    }

    /// A source statement's node: its operation and the options it gives.
    fn source_node(
        &self,
        name: &Ident,
        op: &Operation,
        settings: Option<&Settings>,
        diags: &mut Diagnostics,
    ) -> NodeKind {
        let op_info = self.operation(op, false, diags);
        let connector = self
            .connection(op, &mut Diagnostics::default())
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let empty = Settings {
            entries: Vec::new(),
            span: name.span,
        };
        let options = match op_info {
            Some(info) => {
                let settings = settings.unwrap_or(&empty);
                let cx = options::OptionCx {
                    program: self.program,
                    env: self.env,
                    connection: &op.connection.name,
                    message: None,
                };
                let mut options =
                    source_options::source_options(&cx, &connector, info, settings, diags);
                info.fill_defaults(&mut options);
                self.source_needs(op, info, diags);
                options
            }
            None => BTreeMap::new(),
        };
        NodeKind::Source {
            connection: op.connection.name.clone(),
            operation: op.name.name.clone(),
            kind: op_info.map(|o| o.kind.clone()).unwrap_or_default(),
            options,
        }
    }

    /// A sink statement's node: its input checked against the operation, then its settings.
    fn sink_node(
        &self,
        name: &Ident,
        op: &Operation,
        input: &Ident,
        settings: Option<&Settings>,
        diags: &mut Diagnostics,
    ) -> NodeKind {
        let in_ty = self.input_type(input, diags);
        let op_info = self.operation(op, true, diags);
        if let Some(info) = op_info {
            if assignable(&info.input, &in_ty, false).is_err() && in_ty != Ty::Null {
                let (want, got) = (
                    info.input.display(self.program),
                    in_ty.display(self.program),
                );
                diags.push(
                    Diagnostic::error(
                        codes::OPERATION_TYPE_MISMATCH,
                        input.span,
                        format!("`{}.{}` takes {want}, but `{}` emits {got}", op.connection.name, op.name.name, input.name),
                    )
                    .label(format!("this emits {got}"))
                    .secondary(op.name.span, format!("expects {want}"))
                    .help(format!("map the messages to `{want}` first, e.g. `map to_{} = {} -> {want} {{ ... }}`", want.to_lowercase(), input.name)),
                );
            }
        }
        let connector = self.connection(op, &mut Diagnostics::default());
        let sink = SinkStmt {
            name,
            op,
            input,
            op_info,
            connector,
        };
        self.sink_settings(&sink, in_ty, settings, diags)
    }

    fn sink_settings(
        &self,
        sink: &SinkStmt,
        in_ty: Ty,
        settings: Option<&Settings>,
        diags: &mut Diagnostics,
    ) -> NodeKind {
        let (op, input) = (sink.op, sink.input);
        let mut fields = SinkFields::default();
        if let Some(settings) = settings {
            settings::duplicate_keys(settings.entries.iter().map(|e| &e.name), "setting", diags);
        }
        let mut cx = ExprCx::new(self.program, self.env, self.module, in_ty, diags);
        cx.bare_fields = true;
        for entry in settings.map(|s| s.entries.as_slice()).unwrap_or(&[]) {
            self.sink_setting(sink, &mut cx, entry, &mut fields);
        }
        if let Some(info) = sink.op_info {
            let at = settings.map_or(op.name.span, |s| s.span);
            required_sink_options(op, info, settings, at, cx.diags);
            info.fill_defaults(&mut fields.options);
            let ordered = settings.is_some_and(|s| s.get("order_by").is_some());
            if info.overwrites && !ordered {
                unordered_overwrite(sink, cx.diags);
            }
        }
        NodeKind::Sink {
            input: input.name.clone(),
            connection: op.connection.name.clone(),
            operation: op.name.name.clone(),
            idempotency_key: fields.idempotency_key.unwrap_or(ir::Expr::Lit(Value::Null)),
            retry: fields.retry,
            rate: fields.rate,
            burst: fields.burst,
            concurrency: fields.concurrency,
            timeout_ms: fields.timeout_ms,
            dead_letter: fields.dead_letter,
            options: fields.options,
            order_by: fields.order_by.map(Box::new),
        }
    }

    /// Checks one entry of a sink's settings block: a generic setting, or an option the
    /// operation declares.
    fn sink_setting(
        &self,
        sink: &SinkStmt,
        cx: &mut ExprCx,
        entry: &Setting,
        fields: &mut SinkFields,
    ) {
        match entry.name.name.as_str() {
            "idempotency_key" => {
                fields.idempotency_key = Some(key_expr(cx, entry, "an idempotency key", "id"))
            }
            "order_by" => fields.order_by = Some(key_expr(cx, entry, "an order key", "order_id")),
            "retry" => fields.retry = self.retry_policy(cx.diags, entry),
            "rate" => fields.rate = self.sink_rate(sink, cx.diags, entry),
            "burst" => fields.burst = count_setting(cx.diags, entry),
            "concurrency" => {
                fields.concurrency = count_setting(cx.diags, entry);
                let limit = sink.connector.and_then(|c| c.quota.concurrency);
                if let (Some(limit), Some(n)) = (limit, fields.concurrency) {
                    if n > limit {
                        concurrency_warning(cx.diags, entry.value.span, sink.op, n, limit);
                    }
                }
            }
            "timeout" => fields.timeout_ms = timeout_setting(cx.diags, entry),
            "dead_letter" => fields.dead_letter = self.dead_letter(sink.input, cx.diags, entry),
            key => {
                let Some(info) = sink.op_info else {
                    // The operation is unknown (reported): its options are too.
                    return;
                };
                let Some(option) = info.option(key) else {
                    let mut allowed = options::SINK_SETTINGS.to_vec();
                    allowed.extend(info.options.iter().map(|o| o.name.as_str()));
                    settings::unknown_setting(&entry.name, &allowed, cx.diags);
                    return;
                };
                let message = cx.input.clone();
                let ocx = options::OptionCx {
                    program: self.program,
                    env: self.env,
                    connection: &sink.op.connection.name,
                    message: Some(&message),
                };
                if let Some(value) = options::check_value(&ocx, option, entry, cx.diags) {
                    fields.options.insert(key.to_string(), value);
                }
            }
        }
    }

    /// A sink's `retry`: the name of a retry policy.
    fn retry_policy(&self, diags: &mut Diagnostics, entry: &Setting) -> Option<String> {
        let ExprKind::Var(policy) = &entry.value.kind else {
            let want = "the name of a retry policy, e.g. `standard`";
            invalid(diags, &entry.name, entry.value.span, want);
            return None;
        };
        self.program
            .resolve(self.module, &policy.name, policy.span, Kind::Policy, diags)
            .map(|_| policy.name.clone())
    }

    /// A sink's `rate`, from 1/h to 10000/s, compared with the published quota.
    fn sink_rate(&self, sink: &SinkStmt, diags: &mut Diagnostics, entry: &Setting) -> Option<Rate> {
        let span = entry.value.span;
        match const_value(&entry.value, diags)? {
            Const::Rate { count, per_secs } => {
                let rate = Rate { count, per_secs };
                let per_sec = rate.per_second();
                if count == 0 || per_sec > 10_000.0 {
                    range(
                        diags,
                        codes::RATE_OUT_OF_RANGE,
                        span,
                        format!("rate {count}/{} is outside 1/h to 10000/s", unit(per_secs)),
                        "use a rate between 1/h and 10000/s",
                    );
                    return None;
                }
                let limit = sink
                    .op_info
                    .and_then(|o| o.quota.rate_per_sec)
                    .or(sink.connector.and_then(|c| c.quota.rate_per_sec));
                if let Some(limit) = limit.filter(|limit| per_sec > limit + f64::EPSILON) {
                    let asked = format!("rate {}", rate_text(per_sec));
                    quota_warning(diags, span, sink.op, &asked, &rate_text(limit));
                }
                Some(rate)
            }
            _ => {
                invalid(diags, &entry.name, span, "a rate like `10/s` or `600/m`");
                None
            }
        }
    }

    /// A sink's `dead_letter`: another sink of the flow, or a queue name.
    fn dead_letter(
        &self,
        input: &Ident,
        diags: &mut Diagnostics,
        entry: &Setting,
    ) -> Option<DeadLetter> {
        let target = match &entry.value.kind {
            ExprKind::Lit(Literal::Str(queue)) => return Some(DeadLetter::Queue(queue.clone())),
            ExprKind::Var(target) => target,
            _ => {
                let want = "a sink name or a queue name string";
                invalid(diags, &entry.name, entry.value.span, want);
                return None;
            }
        };
        if target.name == input_sink_name(self.decl, input) {
            diags.push(
                Diagnostic::error(
                    codes::WRONG_NODE_KIND,
                    target.span,
                    format!(
                        "sink `{}` names itself as its dead-letter target",
                        target.name
                    ),
                )
                .label("a failure here would loop back into the same sink")
                .help("name another sink (an exception queue), or a queue name as a string"),
            );
            return None;
        }
        if let Some(idx) = self.nodes.get(target.name.as_str()) {
            self.note_node(target, *idx);
        }
        match self.nodes.get(target.name.as_str()) {
            Some(idx) if matches!(self.decl.stmts[*idx], Stmt::Sink { .. }) => {
                Some(DeadLetter::Node(target.name.clone()))
            }
            Some(_) => {
                diags.push(
                    Diagnostic::error(codes::WRONG_NODE_KIND, target.span, format!("dead-letter target `{}` is not a sink", target.name))
                        .label("a dead-letter target must be a sink")
                        .help("name a sink of this flow (an exception queue), or a queue name as a string"),
                );
                None
            }
            None => {
                let help = suggest::did_you_mean(&target.name, self.nodes.keys().copied(), "name a sink of this flow, or write a queue name as a string, e.g. `dead_letter = \"orders_exceptions\"`");
                diags.push(
                    Diagnostic::error(
                        codes::UNKNOWN_NODE,
                        target.span,
                        format!("unknown node `{}`", target.name),
                    )
                    .label("no sink of that name")
                    .help(help),
                );
                None
            }
        }
    }

    /// Reports the connection settings a source needs at run time that its connection
    /// lacks (`E0211`): those its operation `needs`, a webhook's verification secrets.
    fn source_needs(&self, op: &Operation, info: &OperationInfo, diags: &mut Diagnostics) {
        let Some(conn) = self
            .program
            .lookup(self.module, &op.connection.name, Kind::Connection)
            .and_then(|c| self.env.connections.get(&c))
        else {
            return;
        };
        let mut needed: Vec<&str> = info.needs.iter().map(String::as_str).collect();
        if info.kind == "webhook" && conn.ir.connector == "webhook" {
            needed.extend(limits::scheme_secrets(&conn.ir.settings));
        }
        let missing = limits::missing_settings(needed, &conn.ir.settings);
        if missing.is_empty() {
            return;
        }
        let list = missing
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        diags.push(
            Diagnostic::error(
                codes::MISSING_SETTING,
                op.connection.span.to(op.name.span),
                format!(
                    "`{}.{}` needs the connection setting{} {list}",
                    op.connection.name,
                    op.name.name,
                    if missing.len() == 1 { "" } else { "s" }
                ),
            )
            .label(format!(
                "connection `{}` does not set {list}",
                op.connection.name
            ))
            .help(format!(
                "add {list} to connection `{}`, e.g. `{} = secret(\"NAME\")`",
                op.connection.name, missing[0]
            )),
        );
    }
}

/// The name of the sink statement that reads `input` and is being checked.
fn input_sink_name<'d>(decl: &'d FlowDecl, input: &Ident) -> &'d str {
    decl.stmts
        .iter()
        .find_map(|s| match s {
            Stmt::Sink { name, input: i, .. } if i.span == input.span => Some(name.name.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// The sink statement whose settings are being checked.
struct SinkStmt<'s> {
    name: &'s Ident,
    op: &'s Operation,
    input: &'s Ident,
    op_info: Option<&'s OperationInfo>,
    connector: Option<&'s super::ConnectorInfo>,
}

/// Warns (`W0404`) that a sink whose operation declares `overwrites` has no `order_by`: a
/// message retried after a transient failure can land after a newer one for the same
/// record, and the target ends on the older state.
fn unordered_overwrite(sink: &SinkStmt, diags: &mut Diagnostics) {
    let op = sink.op;
    diags.push(
        Diagnostic::warning(
            codes::UNORDERED_OVERWRITE,
            op.connection.span.to(op.name.span),
            format!(
                "sink `{}` overwrites records in `{}` without `order_by`",
                sink.name.name, op.connection.name
            ),
        )
        .label(format!(
            "each call of `{}.{}` replaces what an earlier call wrote for the same record",
            op.connection.name, op.name.name
        ))
        .help("add `order_by = <the record's key>`, e.g. `order_by = order_id`, so a retried older message cannot overwrite a newer one"),
    );
}

/// Reports (`E0211`) an option the operation declares as required (no `?`, no default)
/// and the sink does not give: a bus `subject`, the entity `path` of OData's
/// `update_entity`.
fn required_sink_options(
    op: &Operation,
    info: &OperationInfo,
    settings: Option<&Settings>,
    at: Span,
    diags: &mut Diagnostics,
) {
    let given = |key: &str| settings.is_some_and(|s| s.get(key).is_some());
    for option in info
        .options
        .iter()
        .filter(|o| o.required && !given(&o.name))
    {
        let key = &option.name;
        diags.push(
            Diagnostic::error(
                codes::MISSING_SETTING,
                at,
                format!("`{}.{}` needs `{key}`", op.connection.name, op.name.name),
            )
            .label(format!("no `{key}` given"))
            .help(format!(
                "add `{key} = \"...\"` (a template over the message's fields)"
            )),
        );
    }
}

/// A sink's `burst` or `concurrency`: a count from 1 to 10000.
fn count_setting(diags: &mut Diagnostics, entry: &Setting) -> Option<u64> {
    let span = entry.value.span;
    match const_value(&entry.value, diags)?.to_json() {
        Value::Number(n) if n.as_u64().is_some_and(|n| (1..=10_000).contains(&n)) => n.as_u64(),
        Value::Number(n) => {
            range(
                diags,
                codes::RATE_OUT_OF_RANGE,
                span,
                format!("`{}` is {n}, allowed 1 to 10000", entry.name.name),
                "use a count between 1 and 10000",
            );
            None
        }
        _ => {
            invalid(diags, &entry.name, span, "a positive integer");
            None
        }
    }
}

/// A sink's `timeout`: a duration from 1ms to 10m.
fn timeout_setting(diags: &mut Diagnostics, entry: &Setting) -> Option<u64> {
    let span = entry.value.span;
    match const_value(&entry.value, diags)? {
        Const::Duration(ms) if (1..=600_000).contains(&ms) => Some(ms),
        Const::Duration(ms) => {
            range(
                diags,
                codes::TIMEOUT_OUT_OF_RANGE,
                span,
                format!("timeout {} is outside 1ms to 10m", duration_text(ms)),
                "use a timeout between 1ms and 10m",
            );
            None
        }
        _ => {
            invalid(diags, &entry.name, span, "a duration like `30s`");
            None
        }
    }
}

/// A sink's `idempotency_key` or `order_by`: a string, integer or enum over the message
/// (`what` names it in the error, `example` is a field to suggest).
fn key_expr(cx: &mut ExprCx, entry: &Setting, what: &str, example: &str) -> ir::Expr {
    let (ty, ir) = cx.check(&entry.value);
    if !(matches!(ty, Ty::String | Ty::Int | Ty::Enum(_)) || ty.is_lenient()) {
        let shown = ty.display(cx.program);
        cx.diags.push(
            Diagnostic::error(
                codes::TYPE_MISMATCH,
                entry.value.span,
                format!("{what} must be a string, found {shown}"),
            )
            .label(format!("this is {shown}"))
            .help(format!(
                "use the message's business key, e.g. `{} = {example}`",
                entry.name.name
            )),
        );
    }
    ir
}

#[derive(Default)]
struct SinkFields {
    idempotency_key: Option<ir::Expr>,
    retry: Option<String>,
    rate: Option<Rate>,
    burst: Option<u64>,
    concurrency: Option<u64>,
    timeout_ms: Option<u64>,
    dead_letter: Option<DeadLetter>,
    options: BTreeMap<String, Value>,
    order_by: Option<ir::Expr>,
}

fn unit(per_secs: u64) -> &'static str {
    match per_secs {
        60 => "m",
        3600 => "h",
        _ => "s",
    }
}

/// A duration in its largest exact unit: `20m`, `1500ms`.
pub(super) fn duration_text(ms: u64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A rate as an integrator would write it: `2/s`, `150/m`, `1/m`.
fn rate_text(per_sec: f64) -> String {
    let per_min = per_sec * 60.0;
    if per_sec >= 1.0 && (per_sec - per_sec.round()).abs() < 1e-9 {
        format!("{}/s", per_sec.round())
    } else if (per_min - per_min.round()).abs() < 1e-6 && per_min >= 1.0 {
        format!("{}/m", per_min.round())
    } else {
        format!("{:.0}/h", per_sec * 3600.0)
    }
}

fn concurrency_warning(
    diags: &mut Diagnostics,
    span: Span,
    op: &Operation,
    asked: u64,
    limit: u64,
) {
    diags.push(
        Diagnostic::warning(
            codes::RATE_EXCEEDS_QUOTA,
            span,
            format!("concurrency {asked} exceeds the published limit of `{}.{}` ({limit} concurrent calls)", op.connection.name, op.name.name),
        )
        .label(format!("the system allows {limit} concurrent calls"))
        .help(format!("lower `concurrency` to at most {limit}; extra parallel calls only queue or fail")),
    );
}

fn quota_warning(diags: &mut Diagnostics, span: Span, op: &Operation, asked: &str, limit: &str) {
    diags.push(
        Diagnostic::warning(
            codes::RATE_EXCEEDS_QUOTA,
            span,
            format!(
                "{asked} exceeds the published quota of `{}.{}` ({limit})",
                op.connection.name, op.name.name
            ),
        )
        .label(format!("the system allows {limit}"))
        .help("lower it to the quota; faster calls will only be answered with 429"),
    );
}
