//! The `omniflowc` command line: exit codes, output formats and subcommands.

use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_omniflowc");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn omniflowc(args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(repo())
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const BAD: &str = "tests/fixtures/diagnostics/E0203-missing-required-field.flow";

#[test]
fn check_exit_codes() {
    let clean = omniflowc(&["check", "flows/"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));
    assert!(stdout(&clean).contains("0 errors, 0 warnings"));
    assert_eq!(omniflowc(&["check", BAD]).status.code(), Some(1));
    let warning_only = omniflowc(&[
        "check",
        "tests/fixtures/diagnostics/W0403-route-without-otherwise.flow",
    ]);
    assert_eq!(
        warning_only.status.code(),
        Some(0),
        "warnings never change the exit code"
    );
    assert_eq!(omniflowc(&["check", "no/such/dir"]).status.code(), Some(2));
    assert_eq!(
        omniflowc(&["check", "--format", "yaml", "flows/"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(omniflowc(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn human_output_is_pinned() {
    let output = omniflowc(&["check", BAD]);
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn machine_formats() {
    let json: serde_json::Value =
        serde_json::from_slice(&omniflowc(&["check", "--format", "json", BAD]).stdout).unwrap();
    let first = &json.as_array().unwrap()[0];
    assert_eq!(first["code"], "E0203");
    assert_eq!(first["severity"], "error");
    assert!(first["line"].as_u64().unwrap() > 1);
    assert!(first["help"].as_str().is_some());

    let sarif: serde_json::Value =
        serde_json::from_slice(&omniflowc(&["check", "--format", "sarif", BAD]).stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "E0203");
    assert_eq!(result["level"], "error");
    assert!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .is_some()
    );

    let github = stdout(&omniflowc(&["check", "--format", "github", BAD]));
    assert!(github.starts_with("::error file="), "{github}");
    assert!(
        github.contains("title=E0203 missing-required-field::"),
        "{github}"
    );
}

#[test]
fn build_graph_and_fmt() {
    let out = std::env::temp_dir().join(format!("omniflow-graph-{}.json", std::process::id()));
    let built = omniflowc(&["build", "flows/bench", "-o", out.to_str().unwrap()]);
    assert_eq!(
        built.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let graph =
        omniflow_compiler::ir::Graph::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(graph.flows[0].name, "shopify_canonical");
    let _ = std::fs::remove_file(&out);
    assert_eq!(
        omniflowc(&["build", BAD, "-o", "/dev/null"]).status.code(),
        Some(1)
    );

    let mermaid = stdout(&omniflowc(&["graph", "flows/bench", "--format", "mermaid"]));
    assert!(mermaid.starts_with("flowchart LR"), "{mermaid}");
    assert!(
        mermaid.contains("by_priority -->|when 1| priority"),
        "{mermaid}"
    );
    let dot = stdout(&omniflowc(&["graph", "flows/bench", "--format", "dot"]));
    assert!(dot.starts_with("digraph"), "{dot}");

    assert_eq!(
        omniflowc(&["fmt", "--check", "flows/", "stdlib/"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn graph_ir_from_another_version_is_refused() {
    let err = omniflow_compiler::ir::Graph::from_json(
        r#"{"compiler_version": "0.0.0-other", "flows": []}"#,
    )
    .unwrap_err();
    assert!(err.contains("rebuild"), "{err}");
}
