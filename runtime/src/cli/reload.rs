//! Reloading `omniflow run`'s plan without a stop: on SIGHUP (or, with `--watch`, when a
//! flow file or the deployment file changes) the flows are compiled again; a plan that does
//! not check is refused and the running one stays; otherwise the running plan drains and
//! the new one starts on the same state, webhook address and ops endpoint. Inboxes,
//! cursors and outcomes are durable, so nothing accepted is lost or delivered twice.

use omniflow_engine::deploy::Deployment;
use omniflow_ir::Graph;
use omniflow_mapping::pipeline::Pipeline;
use omniflow_runtime::load::load_graph;
use std::path::{Path, PathBuf};

/// A compiled plan and the deployment it was compiled with.
pub struct Plan {
    pub pipeline: Pipeline,
    pub deployment: Deployment,
}

/// Reads the deployment (when given) and compiles the flows at `paths` with it.
pub fn load(paths: &[PathBuf], config: Option<&Path>) -> Result<Plan, String> {
    let deployment = match config {
        Some(path) => super::run::read_deployment(path)?,
        None => Deployment::default(),
    };
    let mut graph = load_graph(paths).map_err(|e| e.to_string())?;
    deployment.apply(&mut graph).map_err(|e| e.to_string())?;
    let pipeline = Pipeline::new(graph).map_err(|e| e.to_string())?;
    Ok(Plan {
        pipeline,
        deployment,
    })
}

/// What differs between two plans, one line per flow, connection, policy or ledger added,
/// removed or changed; empty when they are the same.
pub fn changes(old: &Graph, new: &Graph) -> Vec<String> {
    let mut lines = Vec::new();
    compare(
        "flow",
        &named(&old.flows, |f| &f.name),
        &named(&new.flows, |f| &f.name),
        &mut lines,
    );
    compare(
        "connection",
        &named(&old.connections, |c| &c.name),
        &named(&new.connections, |c| &c.name),
        &mut lines,
    );
    compare(
        "policy",
        &named(&old.policies, |p| &p.name),
        &named(&new.policies, |p| &p.name),
        &mut lines,
    );
    compare(
        "ledger",
        &named(&old.ledgers, |l| &l.name),
        &named(&new.ledgers, |l| &l.name),
        &mut lines,
    );
    if lines.is_empty() && json(old) != json(new) {
        lines.push("schemas, tables or settings changed".into());
    }
    lines
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Each item's serialised form by name.
fn named<T: serde::Serialize>(
    items: &[T],
    name: impl Fn(&T) -> &String,
) -> std::collections::BTreeMap<String, String> {
    items
        .iter()
        .map(|item| (name(item).clone(), json(item)))
        .collect()
}

fn compare(
    kind: &str,
    old: &std::collections::BTreeMap<String, String>,
    new: &std::collections::BTreeMap<String, String>,
    lines: &mut Vec<String>,
) {
    for (name, text) in new {
        match old.get(name) {
            None => lines.push(format!("{kind} {name} added")),
            Some(before) if before != text => lines.push(format!("{kind} {name} changed")),
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|name| !new.contains_key(*name)) {
        lines.push(format!("{kind} {name} removed"));
    }
}

/// What `--watch` compares: every file under the paths (and the deployment file) with its
/// size and modification time.
pub fn fingerprint(
    paths: &[PathBuf],
    config: Option<&Path>,
) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut seen = Vec::new();
    let mut stack: Vec<PathBuf> = paths
        .iter()
        .cloned()
        .chain(config.map(Path::to_path_buf))
        .collect();
    // Bounded: a directory tree of flows, not a file system.
    while let Some(path) = stack.pop().filter(|_| seen.len() < 10_000) {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file() {
            seen.push((path, meta.len(), meta.modified().ok()));
        }
    }
    seen.sort();
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(flow: &str) -> Graph {
        let dir = std::env::temp_dir().join(format!(
            "omniflow-reload-{}-{}",
            std::process::id(),
            flow.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.flow");
        std::fs::write(&path, flow).unwrap();
        let graph = load_graph(&[path]).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        graph
    }

    const BASE: &str = r#"use std.connectors.{file}
connection inbox = file { dir = "in" }
connection outbox = file { dir = "out" }
schema E { id: string }
flow a {
  source s = inbox.read { path = "*.jsonl", format = jsonl }
  map m = s -> E { id = $.id }
  sink o = outbox.write(m) { path = "a.jsonl", idempotency_key = id, dead_letter = "a" }
}
"#;

    #[test]
    fn changes_name_what_was_added_removed_and_changed() {
        let old = graph(BASE);
        assert!(changes(&old, &old).is_empty());
        let changed = graph(&BASE.replace("id = $.id", "id = $.other"));
        assert_eq!(changes(&old, &changed), vec!["flow a changed"]);
        let more = graph(&format!(
            "{BASE}flow b {{\n  source s = inbox.read {{ path = \"*.csv\", format = csv }}\n  map m = s -> E {{ id = $.id }}\n  sink o = outbox.write(m) {{ path = \"b.jsonl\", idempotency_key = id, dead_letter = \"b\" }}\n}}\n"
        ));
        assert_eq!(changes(&old, &more), vec!["flow b added"]);
        assert_eq!(changes(&more, &old), vec!["flow b removed"]);
    }

    #[test]
    fn the_fingerprint_moves_when_a_flow_file_changes() {
        let dir = std::env::temp_dir().join(format!("omniflow-fingerprint-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/a.flow"), "x").unwrap();
        let before = fingerprint(std::slice::from_ref(&dir), None);
        assert_eq!(before.len(), 1);
        std::fs::write(dir.join("sub/a.flow"), "xy").unwrap();
        assert_ne!(fingerprint(std::slice::from_ref(&dir), None), before);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
