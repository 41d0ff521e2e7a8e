//! Tidy checks: every diagnostic code has a fixture and a `docs/language.md` entry, every
//! stdlib file is embedded, every operation the stdlib declares runs in the runtime, the
//! table of built-in functions in `docs/language.md` is the one the compiler and runtime
//! share, every `.rs` file opens with a `//!` doc comment.

use omniflow_compiler::diagnostics::codes;
use omniflow_tests::{files_with_suffix, repo_root};

#[test]
fn every_code_has_a_fixture_and_docs() {
    let root = repo_root();
    let fixtures = files_with_suffix(&root.join("tests/fixtures/diagnostics"), ".flow");
    let names: Vec<String> = fixtures
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().to_string()))
        .collect();
    let docs = std::fs::read_to_string(root.join("docs/language.md")).unwrap_or_default();
    let mut missing = Vec::new();
    for code in codes::ALL {
        let stem = format!("{}-{}", code.id, code.name);
        if !names.iter().any(|n| n.starts_with(&stem)) {
            missing.push(format!("fixture {stem}.flow"));
        }
        if !docs.contains(&format!("### {} {}", code.id, code.name)) {
            missing.push(format!("docs entry `### {} {}`", code.id, code.name));
        }
    }
    assert!(missing.is_empty(), "missing: {missing:#?}");
}

#[test]
fn codes_are_unique() {
    let mut ids: Vec<&str> = codes::ALL.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "a code id is registered twice");
}

#[test]
fn every_stdlib_file_is_embedded() {
    let root = repo_root().join("stdlib");
    for file in files_with_suffix(&root, ".flow") {
        let relative = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        assert!(
            omniflow_compiler::stdlib::FILES
                .iter()
                .any(|f| f.path == relative),
            "stdlib/{relative} is not listed in compiler/src/stdlib.rs"
        );
    }
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let root = repo_root();
    let mut offenders = Vec::new();
    for dir in ["compiler", "runtime", "crates", "tests"] {
        for file in files_with_suffix(&root.join(dir), ".rs") {
            if file.components().any(|c| c.as_os_str() == "target") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            if !text.starts_with("//!") {
                offenders.push(file.display().to_string());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "files without a leading //! doc: {offenders:#?}"
    );
}

/// Every operation `stdlib/connectors/*.flow` declares: (connector, operation, kind), the
/// kind being `sink` for a sink, else the source's kind.
fn stdlib_operations() -> Vec<(String, String, String)> {
    use omniflow_compiler::diagnostics::Diagnostics;
    use omniflow_compiler::source::FileId;
    use omniflow_compiler::syntax::{ast::Item, parse_module};
    let mut declared = Vec::new();
    for file in omniflow_compiler::stdlib::FILES
        .iter()
        .filter(|f| f.module.starts_with("std.connectors."))
    {
        let mut diags = Diagnostics::default();
        let module = parse_module(FileId(0), file.text, &mut diags);
        assert!(!diags.has_errors(), "stdlib/{} does not parse", file.path);
        for item in &module.items {
            let Item::Connector(connector) = item else {
                continue;
            };
            // A declaration with requests runs through the declared connectors, not the
            // registry.
            if omniflow_compiler::typeck::declared::has_implementation(connector) {
                continue;
            }
            let connector_name = connector.name.name.as_str();
            let operations = connector
                .sources
                .iter()
                .map(|s| (s.name.name.as_str(), s.kind.name.as_str()))
                .chain(
                    connector
                        .sinks
                        .iter()
                        .map(|s| (s.name.name.as_str(), "sink")),
                );
            for (operation, kind) in operations {
                declared.push((
                    connector_name.to_string(),
                    operation.to_string(),
                    kind.to_string(),
                ));
            }
        }
    }
    declared
}

#[test]
fn every_stdlib_operation_has_a_runtime_implementation() {
    let declared = stdlib_operations();
    let missing: Vec<String> = declared
        .iter()
        .filter(|(connector, operation, kind)| {
            !omniflow_engine::connect::implements(connector, operation, kind)
        })
        .map(|(connector, operation, kind)| format!("{connector}.{operation} ({kind})"))
        .collect();
    assert!(
        declared.len() > 40,
        "the stdlib declares {} operations",
        declared.len()
    );
    assert!(
        missing.is_empty(),
        "declared in stdlib/connectors but not run by the runtime: {}",
        missing.join(", ")
    );
}

#[test]
fn every_runtime_operation_is_declared_in_the_stdlib() {
    let declared = stdlib_operations();
    let registry = omniflow_connectors::Registry::builtin();
    let mut undeclared = Vec::new();
    let mut registered = 0;
    for (connector, operation, kind) in registry.operations() {
        registered += 1;
        if !declared
            .iter()
            .any(|(c, o, k)| c == connector && o == operation && kind.runs(k))
        {
            undeclared.push(format!("{connector}.{operation} ({kind:?})"));
        }
    }
    for (connector, operation, kind) in omniflow_engine::connect::OWN {
        registered += 1;
        if !declared
            .iter()
            .any(|(c, o, k)| c == connector && o == operation && k == kind)
        {
            undeclared.push(format!("{connector}.{operation} ({kind})"));
        }
    }
    assert!(
        registered > 40,
        "the runtime registers {registered} operations"
    );
    assert!(
        undeclared.is_empty(),
        "run by the runtime but not declared (with that kind) in stdlib/connectors: {}",
        undeclared.join(", ")
    );
}

#[test]
fn every_compiler_builtin_has_an_implementation() {
    use omniflow_compiler::typeck::builtins::BUILTINS;
    let graph = omniflow_ir::Graph::default();
    let mut env = omniflow_mapping::eval::Env::new(&graph);
    for builtin in BUILTINS {
        let call = omniflow_ir::Expr::Call {
            func: builtin.name.to_string(),
            args: Vec::new(),
        };
        assert!(
            env.compile(&call).is_ok(),
            "`{}` is not implemented",
            builtin.name
        );
    }
    assert!(std::ptr::eq(BUILTINS, omniflow_mapping::builtins::BUILTINS));
}

/// The row of `docs/language.md`'s table of built-in functions that describes an entry.
fn builtin_row(builtin: &omniflow_mapping::builtins::Builtin) -> String {
    use omniflow_mapping::builtins::{Fixed, Param, Ret};
    let required = builtin.params.len() - builtin.optional;
    let mut args: Vec<String> = builtin
        .params
        .iter()
        .enumerate()
        .map(|(idx, param)| {
            let name = match param {
                Param::Any => "any",
                Param::Str => "string",
                Param::Int => "int",
                Param::Num => "number",
                Param::List => "list",
                Param::Money => "money",
                Param::Time => "datetime",
            };
            if idx < required {
                name.to_string()
            } else {
                format!("[{name}]")
            }
        })
        .collect();
    if builtin.variadic {
        args.push("...".into());
    }
    if args.is_empty() {
        args.push("—".into());
    }
    let result = match builtin.ret {
        Ret::Fixed(fixed) => match fixed {
            Fixed::Str => "string",
            Fixed::Int => "int",
            Fixed::Decimal => "decimal",
            Fixed::Bool => "bool",
            Fixed::Money => "money",
            Fixed::Datetime => "datetime",
            Fixed::Date => "date",
            Fixed::StrList => "[string]",
            Fixed::Json => "json",
            Fixed::Secret => "secret",
        },
        Ret::Element => "element type of the list",
        Ret::Unified => "common type of the arguments",
        Ret::First => "type of the argument",
    };
    format!(
        "| `{}` | {} | {result} | {} |",
        builtin.name,
        args.join(", "),
        builtin.doc
    )
}

#[test]
fn the_docs_list_the_builtins_of_the_table() {
    let docs = std::fs::read_to_string(repo_root().join("docs/language.md")).unwrap();
    let section = docs
        .split("\n## Built-in functions\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/language.md has a section `## Built-in functions`");
    let documented: Vec<&str> = section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .collect();
    let table: Vec<String> = omniflow_mapping::builtins::BUILTINS
        .iter()
        .map(builtin_row)
        .collect();
    assert_eq!(
        documented,
        table,
        "docs/language.md's table of built-in functions differs from the table in crates/mapping/src/builtins"
    );
}

/// The crates and the workspace crates each may depend on: the graph runs one way, from the
/// binaries down to the IR. A dependency against the direction fails here.
const CRATE_GRAPH: &[(&str, &[&str])] = &[
    ("omniflow-ir", &[]),
    ("omniflow-compiler", &["omniflow-ir", "omniflow-mapping"]),
    ("omniflow-mapping", &["omniflow-ir"]),
    ("omniflow-state", &[]),
    ("omniflow-http", &["omniflow-ir"]),
    ("omniflow-connectors", &["omniflow-ir", "omniflow-mapping"]),
    ("omniflow-sandbox", &["omniflow-http"]),
    (
        "omniflow-engine",
        &[
            "omniflow-ir",
            "omniflow-mapping",
            "omniflow-state",
            "omniflow-http",
            "omniflow-connectors",
        ],
    ),
    (
        "omniflow-runtime",
        &[
            "omniflow-compiler",
            "omniflow-ir",
            "omniflow-mapping",
            "omniflow-state",
            "omniflow-http",
            "omniflow-connectors",
            "omniflow-engine",
            "omniflow-sandbox",
        ],
    ),
];

/// Third-party crates a crate must not use: pure crates stay free of the async runtime and of
/// I/O stacks, so they stay testable and fast to build.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("omniflow-ir", &["tokio", "reqwest", "hyper", "rusqlite"]),
    (
        "omniflow-compiler",
        &["tokio", "reqwest", "hyper", "rusqlite"],
    ),
    (
        "omniflow-mapping",
        &["tokio", "reqwest", "hyper", "rusqlite"],
    ),
    (
        "omniflow-sandbox",
        &["rusqlite", "omniflow-connectors", "omniflow-engine"],
    ),
    (
        "omniflow-connectors",
        &[
            "rusqlite",
            "omniflow-engine",
            "omniflow-state",
            "omniflow-sandbox",
        ],
    ),
];

/// The names a manifest's code depends on (`[dependencies]`, `[build-dependencies]`, target
/// dependencies; not dev-dependencies: tests may reach further).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]"
                || line == "[build-dependencies]"
                || (line.starts_with("[target.") && line.ends_with(".dependencies]"));
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or("");
            names.push(name.trim().to_string());
        }
    }
    names
}

fn manifests() -> Vec<(String, Vec<String>)> {
    let root = repo_root();
    let mut paths = vec![
        root.join("compiler/Cargo.toml"),
        root.join("runtime/Cargo.toml"),
    ];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        paths.push(entry.unwrap().path().join("Cargo.toml"));
    }
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let name = text
                .lines()
                .find_map(|l| l.strip_prefix("name = "))
                .unwrap()
                .trim_matches('"')
                .to_string();
            (name, dependencies(&text))
        })
        .collect()
}

#[test]
fn crates_depend_only_in_the_intended_direction() {
    let manifests = manifests();
    assert_eq!(
        manifests.len(),
        CRATE_GRAPH.len(),
        "a crate is missing from CRATE_GRAPH"
    );
    let mut offenders = Vec::new();
    for (name, deps) in &manifests {
        let allowed = CRATE_GRAPH
            .iter()
            .find(|(crate_name, _)| crate_name == name)
            .unwrap_or_else(|| panic!("{name} is not in CRATE_GRAPH"))
            .1;
        for dep in deps.iter().filter(|d| d.starts_with("omniflow-")) {
            if !allowed.contains(&dep.as_str()) {
                offenders.push(format!("{name} -> {dep}"));
            }
        }
        if let Some((_, forbidden)) = FORBIDDEN.iter().find(|(crate_name, _)| crate_name == name) {
            for dep in deps.iter().filter(|d| forbidden.contains(&d.as_str())) {
                offenders.push(format!("{name} -> {dep} (forbidden)"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "dependencies against the crate graph: {offenders:#?}"
    );
}

#[test]
fn pure_crates_name_no_async_runtime_or_io_stack() {
    let root = repo_root();
    let mut offenders = Vec::new();
    for dir in ["crates/ir", "crates/mapping"] {
        for file in files_with_suffix(&root.join(dir).join("src"), ".rs") {
            let text = std::fs::read_to_string(&file).unwrap();
            for word in [
                "tokio::",
                "std::net::",
                "std::fs::",
                "reqwest::",
                "rusqlite::",
            ] {
                if text.contains(word) {
                    offenders.push(format!("{} uses {word}", file.display()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// The modules a crate's top-level module uses (`crate::NAME` outside comments and test
/// modules), by module.
fn module_edges(src: &std::path::Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut edges: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for file in files_with_suffix(src, ".rs") {
        let relative = file.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                let targets = edges.entry(module.clone()).or_default();
                if !name.is_empty() && name != module && !targets.contains(&name) {
                    targets.push(name);
                }
            }
        }
    }
    edges
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let root = repo_root();
    let mut sources = vec![root.join("compiler/src"), root.join("runtime/src")];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        sources.push(entry.unwrap().path().join("src"));
    }
    let mut circles = Vec::new();
    for src in sources {
        let edges = module_edges(&src);
        for (from, targets) in &edges {
            for to in targets {
                // Does `to` reach `from` again?
                let mut stack = vec![to.clone()];
                let mut seen = std::collections::BTreeSet::new();
                while let Some(module) = stack.pop() {
                    if &module == from {
                        circles.push(format!(
                            "{}: {from} -> {to} -> ... -> {from}",
                            src.display()
                        ));
                        break;
                    }
                    if seen.insert(module.clone()) {
                        stack.extend(edges.get(&module).into_iter().flatten().cloned());
                    }
                }
            }
        }
    }
    assert!(circles.is_empty(), "module circles: {circles:#?}");
}

/// Every metric the engine names has a `# HELP` text, and every text names a metric.
#[test]
fn every_metric_has_its_help_text() {
    let root = repo_root();
    let mut named = std::collections::BTreeSet::new();
    for file in files_with_suffix(&root.join("crates/engine/src"), ".rs") {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let Some((_, value)) = line.split_once(": &str = \"omniflow_") else {
                continue;
            };
            if line.trim_start().starts_with("pub const") {
                let name = value.split('"').next().unwrap();
                named.insert(format!("omniflow_{name}"));
            }
        }
    }
    let helped: std::collections::BTreeSet<String> = omniflow_engine::ops::metrics::HELP
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert!(named.len() >= 20, "found only {named:?}");
    assert_eq!(named, helped, "metric names and HELP texts differ");
}
