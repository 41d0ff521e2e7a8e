//! The `omniflowc` command line: exit codes, output formats and subcommands.
// The tests set up and inspect real files around the binary they run.
#![allow(clippy::disallowed_methods)]

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
    assert!(
        matches!(&err, omniflow_compiler::ir::json::GraphError::Version { found } if found == "0.0.0-other"),
        "{err}"
    );
    assert!(err.to_string().contains("rebuild"), "{err}");
}

/// Runs `omniflowc` in `dir`, killing it (and failing) if it has not finished in a minute.
fn omniflowc_within(dir: &std::path::Path, args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(child.wait_with_output());
    });
    match receive.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("omniflowc {args:?} hung");
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("omniflowc-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn fmt_never_writes_through_a_symlink_and_fifos_exit_2() {
    let outside = scratch("outside");
    let target = outside.join("real.flow");
    let unformatted = "schema   A {x:string}\n";
    std::fs::write(&target, unformatted).unwrap();
    let dir = scratch("fmt-symlink");
    std::os::unix::fs::symlink(&target, dir.join("link.flow")).unwrap();
    let formatted = omniflowc_within(&dir, &["fmt", "link.flow"]);
    assert_eq!(formatted.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&formatted.stderr).contains("symlink"));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), unformatted);

    let made = Command::new("mkfifo").arg(dir.join("piped.flow")).status();
    assert!(made.unwrap().success());
    for command in ["check", "fmt", "build"] {
        let mut args = vec![command, "piped.flow"];
        if command == "build" {
            args.extend(["-o", "graph.json"]);
        }
        let output = omniflowc_within(&dir, &args);
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("FIFO"));
    }
}

#[test]
fn built_graph_grows_linearly_with_nesting() {
    let dir = scratch("graph-size");
    let size = |depth: usize| {
        let flow = format!(
            "use std.connectors.{{file}}\nconnection inbox = file {{ dir = \"in\" }}\nschema Out {{ v: string }}\n\
             flow copy {{\n  source orders = inbox.read {{ path = \"*.jsonl\", format = jsonl }}\n  \
             map m = orders -> Out {{ v = {}\"a\"{} }}\n  \
             sink out = inbox.write(m) {{ path = \"o.jsonl\", idempotency_key = v, dead_letter = \"copy_errors\" }}\n}}\n",
            "if true then ".repeat(depth),
            " else \"b\"".repeat(depth)
        );
        std::fs::write(dir.join("main.flow"), flow).unwrap();
        let built = omniflowc_within(&dir, &["build", "main.flow", "-o", "graph.json"]);
        assert_eq!(
            built.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        std::fs::metadata(dir.join("graph.json")).unwrap().len()
    };
    let (base, single, double) = (size(0), size(60), size(120));
    assert!(
        double - base <= 2 * (single - base) + 1024,
        "graph.json: {base} bytes flat, {single} at 60 levels, {double} at 120"
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_instead_of_panicking() {
    // Far more than a pipe holds (64 KiB), so writing must meet the closed end.
    let dir = scratch("closed-pipe");
    let mut flow = String::new();
    for i in 0..3000 {
        flow.push_str(&format!("schema S{i} {{ id: Nope{i} }}\n"));
    }
    std::fs::write(dir.join("many.flow"), flow).unwrap();
    let mut child = Command::new(BIN)
        .args(["check", "--format", "json"])
        .arg(dir.join("many.flow"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(141), "{stderr}");
}
