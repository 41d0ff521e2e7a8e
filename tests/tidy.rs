//! Tidy checks: every diagnostic code has a fixture and a `docs/language.md` entry, every
//! stdlib file is embedded, every operation the stdlib declares runs in the runtime, every
//! `.rs` file opens with a `//!` doc comment.

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
    for dir in ["compiler", "runtime", "tests"] {
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

#[test]
fn every_stdlib_operation_has_a_runtime_implementation() {
    use omniflow_compiler::diagnostics::Diagnostics;
    use omniflow_compiler::source::FileId;
    use omniflow_compiler::syntax::{ast::Item, parse_module};
    let mut declared = 0;
    let mut missing = Vec::new();
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
                declared += 1;
                if !omniflow_runtime::connectors::implements(connector_name, operation, kind) {
                    missing.push(format!("{connector_name}.{operation} ({kind})"));
                }
            }
        }
    }
    assert!(declared > 40, "the stdlib declares {declared} operations");
    assert!(
        missing.is_empty(),
        "declared in stdlib/connectors but not run by the runtime: {}",
        missing.join(", ")
    );
}
