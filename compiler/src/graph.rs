//! Drawing a flow of the graph IR as Mermaid or Graphviz DOT.

use crate::ir::{Flow, NodeKind};

/// Mermaid `flowchart LR` text for one flow.
pub fn mermaid(flow: &Flow) -> String {
    let mut out = format!("flowchart LR\n  %% flow {}\n", flow.name);
    for node in &flow.nodes {
        let label = label(&node.kind, &node.name);
        let shape = match node.kind {
            NodeKind::Source { .. } => format!("{}([\"{label}\"])", node.name),
            NodeKind::Route { .. } | NodeKind::Filter { .. } => {
                format!("{}{{\"{label}\"}}", node.name)
            }
            NodeKind::Sink { .. } => format!("{}[/\"{label}\"/]", node.name),
            _ => format!("{}[\"{label}\"]", node.name),
        };
        out.push_str(&format!("  {shape}\n"));
    }
    for edge in &flow.edges {
        match &edge.branch {
            Some(branch) => out.push_str(&format!("  {} -->|{branch}| {}\n", edge.from, edge.to)),
            None => out.push_str(&format!("  {} --> {}\n", edge.from, edge.to)),
        }
    }
    for node in &flow.nodes {
        if let NodeKind::Sink {
            dead_letter: Some(crate::ir::DeadLetter::Node(target)),
            ..
        } = &node.kind
        {
            out.push_str(&format!("  {} -.->|dead letter| {target}\n", node.name));
        }
    }
    out
}

/// Graphviz DOT text for one flow.
pub fn dot(flow: &Flow) -> String {
    let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n", flow.name);
    for node in &flow.nodes {
        let shape = match node.kind {
            NodeKind::Source { .. } => "ellipse",
            NodeKind::Route { .. } | NodeKind::Filter { .. } => "diamond",
            NodeKind::Sink { .. } => "box3d",
            _ => "box",
        };
        out.push_str(&format!(
            "  \"{}\" [shape={shape}, label=\"{}\"];\n",
            node.name,
            label(&node.kind, &node.name)
        ));
    }
    for edge in &flow.edges {
        match &edge.branch {
            Some(branch) => out.push_str(&format!(
                "  \"{}\" -> \"{}\" [label=\"{branch}\"];\n",
                edge.from, edge.to
            )),
            None => out.push_str(&format!("  \"{}\" -> \"{}\";\n", edge.from, edge.to)),
        }
    }
    for node in &flow.nodes {
        if let NodeKind::Sink {
            dead_letter: Some(crate::ir::DeadLetter::Node(target)),
            ..
        } = &node.kind
        {
            out.push_str(&format!(
                "  \"{}\" -> \"{target}\" [style=dashed, label=\"dead letter\"];\n",
                node.name
            ));
        }
    }
    out.push_str("}\n");
    out
}

fn label(kind: &NodeKind, name: &str) -> String {
    match kind {
        NodeKind::Source {
            connection,
            operation,
            ..
        } => format!("{name}: {connection}.{operation}"),
        NodeKind::Map { schema, .. } => format!("{name}: map -> {schema}"),
        NodeKind::Sink {
            connection,
            operation,
            ..
        } => format!("{name}: {connection}.{operation}"),
        other => format!("{name}: {}", other.word()),
    }
}
