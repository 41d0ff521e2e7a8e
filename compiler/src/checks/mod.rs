//! Flow-graph checks over the syntax tree: sources, route targets, unreachable branches,
//! outputs that reach no sink, sinks without idempotency key or error path, unused names.

use crate::diagnostics::{codes, Diagnostic, Diagnostics};
use crate::resolve::{ItemRef, Program};
use crate::syntax::ast::{Expr, ExprKind, FlowDecl, Item, Literal, Stmt};
use std::collections::{HashMap, HashSet};

/// Checks the graph shape of one flow.
pub fn check_flow(decl: &FlowDecl, diags: &mut Diagnostics) {
    let nodes: HashMap<&str, &Stmt> = decl
        .stmts
        .iter()
        .filter_map(|s| s.node_name().map(|n| (n.name.as_str(), s)))
        .collect();
    if !decl.stmts.iter().any(|s| matches!(s, Stmt::Source { .. })) {
        diags.push(
            Diagnostic::error(
                codes::MISSING_SOURCE,
                decl.name.span,
                format!("flow `{}` has no source", decl.name.name),
            )
            .label("nothing enters this flow")
            .help("add a source, e.g. `source orders = shop.orders { every = 2m }`"),
        );
    }
    // Which nodes consume each node's output.
    let mut consumers: HashMap<&str, Vec<&str>> = HashMap::new();
    for stmt in &decl.stmts {
        let Some(name) = stmt.node_name() else {
            continue;
        };
        if let Some(input) = stmt.input() {
            consumers
                .entry(input.name.as_str())
                .or_default()
                .push(&name.name);
        }
        if let Stmt::Sink {
            settings: Some(settings),
            ..
        } = stmt
        {
            if let Some(ExprKind::Var(target)) = settings.get("dead_letter").map(|s| &s.value.kind)
            {
                consumers
                    .entry(name.name.as_str())
                    .or_default()
                    .push(&target.name);
            }
        }
    }
    let mut route_targets: HashMap<&str, HashSet<&str>> = HashMap::new();
    for stmt in &decl.stmts {
        match stmt {
            Stmt::Route {
                name,
                arms,
                otherwise,
                ..
            } => {
                check_route(name, arms, otherwise.as_deref(), &nodes, diags);
            }
            Stmt::Sink { name, settings, .. } => {
                let has = |key: &str| settings.as_ref().is_some_and(|s| s.get(key).is_some());
                if !has("idempotency_key") {
                    diags.push(
                        Diagnostic::error(codes::MISSING_IDEMPOTENCY_KEY, name.span, format!("sink `{}` has no idempotency key", name.name))
                            .label("a retry or replay could repeat this side effect")
                            .help("add `idempotency_key = id` (the message's business key) to the sink's settings"),
                    );
                }
                if !has("dead_letter") {
                    diags.push(
                        Diagnostic::error(codes::MISSING_ERROR_PATH, name.span, format!("sink `{}` has no dead-letter target", name.name))
                            .label("permanent failures would have nowhere to go")
                            .help("add `dead_letter = \"queue_name\"` or name an exception sink of this flow"),
                    );
                }
            }
            _ => {}
        }
        // A node reading from a route must be one of its targets.
        if let (Some(name), Some(input)) = (stmt.node_name(), stmt.input()) {
            if let Some(Stmt::Route {
                arms, otherwise, ..
            }) = nodes.get(input.name.as_str())
            {
                // Each route's targets are gathered once, however many nodes read it.
                let targets = route_targets.entry(input.name.as_str()).or_insert_with(|| {
                    arms.iter()
                        .flat_map(|a| a.targets.iter())
                        .chain(otherwise.iter().flatten())
                        .map(|t| t.name.as_str())
                        .collect()
                });
                if !targets.contains(name.name.as_str()) {
                    diags.push(
                        Diagnostic::warning(
                            codes::UNFED_NODE,
                            input.span,
                            format!(
                                "`{}` reads from route `{}`, which never sends to it",
                                name.name, input.name
                            ),
                        )
                        .label("no branch of the route targets this node")
                        .help(format!(
                            "add `{}` to a `when` or `otherwise` branch of `{}`",
                            name.name, input.name
                        )),
                    );
                }
            }
        }
    }
    // Every node must lead to a sink.
    let reaching = reaching_a_sink(&nodes, &consumers);
    for stmt in &decl.stmts {
        let (Some(name), false) = (stmt.node_name(), matches!(stmt, Stmt::Sink { .. })) else {
            continue;
        };
        if !reaching.contains(name.name.as_str()) {
            diags.push(
                Diagnostic::error(
                    codes::UNUSED_OUTPUT,
                    name.span,
                    format!("the output of `{}` reaches no sink", name.name),
                )
                .label("messages from here go nowhere")
                .help(format!("send `{}` to a sink, or remove it", name.name)),
            );
        }
    }
}

/// The nodes with a path of one step or more to a sink: one search back from all sinks
/// along the consumer edges, so a long chain of nodes costs its length, not its square.
fn reaching_a_sink<'a>(
    nodes: &HashMap<&'a str, &'a Stmt>,
    consumers: &HashMap<&'a str, Vec<&'a str>>,
) -> HashSet<&'a str> {
    let mut producers: HashMap<&str, Vec<&str>> = HashMap::new();
    for (&from, to) in consumers {
        for &next in to {
            producers.entry(next).or_default().push(from);
        }
    }
    let mut reaching: HashSet<&str> = HashSet::new();
    let mut queue: Vec<&str> = nodes
        .iter()
        .filter(|(_, stmt)| matches!(stmt, Stmt::Sink { .. }))
        .flat_map(|(name, _)| producers.get(name).into_iter().flatten().copied())
        .collect();
    while let Some(current) = queue.pop() {
        if reaching.insert(current) {
            queue.extend(producers.get(current).into_iter().flatten().copied());
        }
    }
    reaching
}

fn check_route(
    name: &crate::syntax::ast::Ident,
    arms: &[crate::syntax::ast::RouteArm],
    otherwise: Option<&[crate::syntax::ast::Ident]>,
    nodes: &HashMap<&str, &Stmt>,
    diags: &mut Diagnostics,
) {
    let mut always_taken: Option<crate::source::Span> = None;
    // Conditions by their shape as JSON text, so a route of many arms stays linear.
    let mut seen: HashMap<String, crate::source::Span> = HashMap::new();
    for arm in arms {
        // A lone arm has no other to repeat: its shape is not written.
        let shape = (arms.len() > 1).then(|| {
            serde_json::to_value(&arm.cond)
                .unwrap_or_default()
                .to_string()
        });
        if let Some(first) = always_taken {
            diags.push(
                Diagnostic::warning(
                    codes::UNREACHABLE_BRANCH,
                    arm.cond.span,
                    "unreachable branch",
                )
                .label("never taken")
                .secondary(first, "an earlier branch always matches")
                .help("remove this branch or reorder the branches"),
            );
        } else if let Some(first) = shape.as_ref().and_then(|shape| seen.get(shape)) {
            diags.push(
                Diagnostic::warning(
                    codes::UNREACHABLE_BRANCH,
                    arm.cond.span,
                    "unreachable branch: the same condition is tested earlier",
                )
                .label("never taken")
                .secondary(*first, "the same condition, taken first")
                .help("merge the targets into the earlier branch, or change the condition"),
            );
        } else if is_bool(&arm.cond, false) {
            diags.push(
                Diagnostic::warning(
                    codes::UNREACHABLE_BRANCH,
                    arm.cond.span,
                    "unreachable branch: the condition is always false",
                )
                .label("never true")
                .help("remove this branch"),
            );
        }
        if is_bool(&arm.cond, true) && always_taken.is_none() {
            always_taken = Some(arm.cond.span);
        }
        if let Some(shape) = shape {
            seen.entry(shape).or_insert(arm.cond.span);
        }
        check_targets(name, &arm.targets, nodes, diags);
    }
    match otherwise {
        Some(targets) => {
            if let Some(first) = always_taken {
                if let Some(t) = targets.first() {
                    diags.push(
                        Diagnostic::warning(
                            codes::UNREACHABLE_BRANCH,
                            t.span,
                            "unreachable `otherwise`",
                        )
                        .label("never taken")
                        .secondary(first, "an earlier branch always matches")
                        .help("remove the `otherwise` branch or the `when true` branch"),
                    );
                }
            }
            check_targets(name, targets, nodes, diags);
        }
        None if always_taken.is_none() => diags.push(
            Diagnostic::warning(
                codes::ROUTE_WITHOUT_OTHERWISE,
                name.span,
                format!("route `{}` has no `otherwise`", name.name),
            )
            .label("messages matching no branch are dropped here")
            .help("add `otherwise -> target` (an exception sink if nothing else fits)"),
        ),
        None => {}
    }
}

fn check_targets(
    route: &crate::syntax::ast::Ident,
    targets: &[crate::syntax::ast::Ident],
    nodes: &HashMap<&str, &Stmt>,
    diags: &mut Diagnostics,
) {
    for target in targets {
        match nodes.get(target.name.as_str()) {
            None => {
                let help = crate::diagnostics::suggest::did_you_mean(
                    &target.name,
                    nodes.keys().copied(),
                    &format!(
                        "declare a node `{}` that reads from `{}`",
                        target.name, route.name
                    ),
                );
                diags.push(
                    Diagnostic::error(
                        codes::UNKNOWN_NODE,
                        target.span,
                        format!("unknown node `{}`", target.name),
                    )
                    .label("no node of that name")
                    .help(help),
                );
            }
            Some(stmt) => {
                if stmt.input().map(|i| i.name.as_str()) != Some(route.name.as_str()) {
                    let reads = stmt
                        .input()
                        .map_or("nothing".to_string(), |i| format!("`{}`", i.name));
                    diags.push(
                        Diagnostic::error(
                            codes::ROUTE_TARGET_MISMATCH,
                            target.span,
                            format!(
                                "route `{}` sends to `{}`, which reads from {reads}",
                                route.name, target.name
                            ),
                        )
                        .label("this target does not read from the route")
                        .help(format!(
                            "make `{}` read from `{}` (e.g. `sink {} = conn.op({})`)",
                            target.name, route.name, target.name, route.name
                        )),
                    );
                }
            }
        }
    }
}

fn is_bool(expr: &Expr, value: bool) -> bool {
    matches!(expr.kind, ExprKind::Lit(Literal::Bool(b)) if b == value)
}

/// Warns about imports and declarations that nothing uses (in files given on the command line).
pub fn check_unused(program: &Program, diags: &mut Diagnostics) {
    // Names in a file that did not parse may be used by the part that failed.
    let broken: HashSet<crate::source::FileId> = diags
        .as_slice()
        .iter()
        .filter(|d| d.code.id.starts_with("E00"))
        .map(|d| d.span().file)
        .collect();
    let mut used: HashSet<ItemRef> = HashSet::new();
    for module in &program.modules {
        for binding in module.scope.values() {
            if binding.used.get() {
                used.insert(binding.target);
            }
        }
    }
    for module in program.modules.iter().filter(|m| m.is_root && !m.is_std) {
        let mut imports: Vec<_> = module
            .scope
            .iter()
            .filter(|(_, b)| !b.used.get())
            .filter_map(|(name, b)| b.import_span.map(|span| (span, name)))
            .filter(|(span, _)| !broken.contains(&span.file))
            .collect();
        imports.sort_by_key(|(span, _)| span.start);
        for (span, name) in imports {
            diags.push(
                Diagnostic::warning(
                    codes::UNUSED_IMPORT,
                    span,
                    format!("`{name}` is imported but never used"),
                )
                .label("unused import")
                .help(format!("remove `{name}` from the `use`")),
            );
        }
        let has_flow = module.ast.items.iter().any(|i| matches!(i, Item::Flow(_)));
        if !has_flow {
            continue;
        }
        for (name, binding) in &module.scope {
            if binding.import_span.is_some() || used.contains(&binding.target) {
                continue;
            }
            let item = program.item(binding.target);
            let what = match item {
                Item::Connection(_) => "connection",
                Item::Table(_) => "table",
                Item::Policy(_) => "policy",
                _ => continue,
            };
            let span = item.name().map_or(item.span(), |n| n.span);
            diags.push(
                Diagnostic::warning(
                    codes::UNUSED_DECLARATION,
                    span,
                    format!("{what} `{name}` is never used"),
                )
                .label("declared but unused")
                .help(format!("use the {what} in a flow, or remove it")),
            );
        }
    }
}
