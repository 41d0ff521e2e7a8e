//! Hostile input for the compiler and the runtime's loader: flows that reach outside
//! their directory or into special files, expressions nested or chained past the limits,
//! costly JSONPath, and diagnostics on enormous lines. Every input is generated here.

use omniflow_compiler::diagnostics::render::{render, Format};
use omniflow_compiler::Compilation;
use omniflow_ir::{json as ir_json, Graph};
use omniflow_mapping::{json_in, pipeline::Pipeline};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// A fresh directory for one case.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("omniflow-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles on another thread and gives up after a minute, so a hang fails the test
/// instead of stalling the suite.
fn compile_within(paths: Vec<PathBuf>) -> Result<Compilation, String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(omniflow_compiler::compile_paths(&paths).map_err(|err| err.to_string()));
    });
    receive
        .recv_timeout(Duration::from_secs(60))
        .expect("the compiler hung (or crashed) on this input")
}

fn codes(compilation: &Compilation) -> Vec<&'static str> {
    compilation.diagnostics.iter().map(|d| d.code.id).collect()
}

/// A flow file mapping each input message with `value = EXPR`, plus extra items.
fn flow_text(expr: &str, extra: &str) -> String {
    format!(
        r#"use std.connectors.{{file}}
connection inbox = file {{ dir = "in" }}
schema Out {{ v: string }}
{extra}
flow copy {{
  source orders = inbox.read {{ path = "*.jsonl", format = jsonl }}
  map m = orders -> Out {{ v = {expr} }}
  sink out = inbox.write(m) {{
    path = "out.jsonl"
    idempotency_key = v
    dead_letter = "copy_errors"
  }}
}}
"#
    )
}

fn write_flow(dir: &Path, expr: &str, extra: &str) -> PathBuf {
    let path = dir.join("main.flow");
    std::fs::write(&path, flow_text(expr, extra)).unwrap();
    path
}

/// Runs flow `copy` of a graph on one message, on a thread with a small stack (as a
/// runtime worker may have); returns the mapped `v` or the rejection.
fn run_small_stack(graph: Graph, message: &'static str) -> Result<String, String> {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let pipeline = Pipeline::new(graph).map_err(|e| e.to_string())?;
            let flow = pipeline.flow("copy").ok_or("no flow")?;
            let (source, projection) = pipeline.first_source(flow).ok_or("no source")?;
            let input = json_in::parse(message.as_bytes(), projection)?;
            match pipeline.process(flow, source, input, true, true) {
                Ok(outcome) => Ok(format!("{} deliveries", outcome.deliveries.len())),
                Err(rejected) => Err(rejected.reason),
            }
        })
        .unwrap()
        .join()
        .expect("the runtime crashed evaluating the graph")
}

#[test]
fn a_table_symlinked_outside_the_directory_is_refused() {
    let outside = scratch("outside-secret");
    std::fs::write(outside.join("secret.csv"), "sku,item\nSECRET-ROW,leaked\n").unwrap();
    let dir = scratch("symlinked-table");
    std::os::unix::fs::symlink(outside.join("secret.csv"), dir.join("skus.csv")).unwrap();
    let extra = r#"table skus: string -> string = file("skus.csv", key = "sku", value = "item")"#;
    let flow = write_flow(&dir, r#"skus[$.id] ?? "none""#, extra);
    let compilation = compile_within(vec![flow]).unwrap();
    assert!(
        codes(&compilation).contains(&"E0117"),
        "{:?}",
        codes(&compilation)
    );
    let graph = ir_json::to_text(&compilation.graph).unwrap();
    assert!(
        !graph.contains("SECRET-ROW"),
        "the outside file reached the graph"
    );
}

#[test]
fn imports_and_fixtures_symlinked_outside_are_refused() {
    let outside = scratch("outside-lib");
    std::fs::write(outside.join("lib.flow"), "schema Leak { x: string }\n").unwrap();
    std::fs::write(outside.join("order.json"), r#"{"id": "1"}"#).unwrap();
    let dir = scratch("symlinked-import");
    std::os::unix::fs::symlink(outside.join("lib.flow"), dir.join("lib.flow")).unwrap();
    std::os::unix::fs::symlink(outside.join("order.json"), dir.join("order.json")).unwrap();
    let text = flow_text(r#""x""#, r#"use "./lib.flow""#).replace(
        "  sink out",
        "  test \"t\" {\n    input = file(\"order.json\")\n    sinks = [out]\n  }\n  sink out",
    );
    std::fs::write(dir.join("main.flow"), text).unwrap();
    let compilation = compile_within(vec![dir.join("main.flow")]).unwrap();
    let found = codes(&compilation);
    assert_eq!(
        found.iter().filter(|c| **c == "E0117").count(),
        2,
        "{found:?}"
    );
}

#[test]
fn fifos_are_refused_without_waiting_on_them() {
    let dir = scratch("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(dir.join("skus.csv"))
        .arg(dir.join("piped.flow"))
        .status()
        .unwrap();
    assert!(made.success());
    let extra = r#"table skus: string -> string = file("skus.csv", key = "sku", value = "item")"#;
    let flow = write_flow(&dir, r#"skus[$.id] ?? "none""#, extra);
    let compilation = compile_within(vec![flow]).unwrap();
    assert!(
        codes(&compilation).contains(&"E0118"),
        "{:?}",
        codes(&compilation)
    );
    // A FIFO named on the command line is a usage error (exit 2), not a wait.
    let err = compile_within(vec![dir.join("piped.flow")]).unwrap_err();
    assert!(err.contains("FIFO"), "{err}");
    // Among a directory's `.flow` files, it is one error beside the others' diagnostics
    // (all errors in one run), as are a file that is not UTF-8 and a dangling link.
    std::fs::write(dir.join("latin.flow"), b"schema B { x: string }\n\xff\n").unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere.flow"), dir.join("dangling.flow")).unwrap();
    std::os::unix::fs::symlink(dir.join("loop1"), dir.join("loop2")).unwrap();
    std::os::unix::fs::symlink(dir.join("loop2"), dir.join("loop1")).unwrap();
    let compilation = compile_within(vec![dir.clone()]).unwrap();
    let found = codes(&compilation);
    assert_eq!(
        found.iter().filter(|c| **c == "E0118").count(),
        2,
        "{found:?}"
    );
    assert_eq!(
        found.iter().filter(|c| **c == "E0116").count(),
        2,
        "{found:?}"
    );
    let shown = render(
        &compilation.diagnostics,
        &compilation.sources,
        Format::Human,
        false,
    );
    for name in ["piped.flow", "latin.flow", "dangling.flow", "skus.csv"] {
        assert!(shown.contains(name), "{name}: {shown}");
    }
}

#[test]
fn table_files_over_the_limit_are_refused() {
    let dir = scratch("big-table");
    let limit = omniflow_compiler::source::MAX_DATA_FILE_BYTES as usize;
    let mut data = String::with_capacity(limit + 64);
    data.push_str("sku,item\n");
    while data.len() <= limit {
        data.push_str("ABCDEFGHIJ,0123456789\n");
    }
    std::fs::write(dir.join("skus.csv"), data).unwrap();
    let extra = r#"table skus: string -> string = file("skus.csv", key = "sku", value = "item")"#;
    let flow = write_flow(&dir, r#"skus[$.id] ?? "none""#, extra);
    let compilation = compile_within(vec![flow]).unwrap();
    assert!(
        codes(&compilation).contains(&"E0118"),
        "{:?}",
        codes(&compilation)
    );
}

#[test]
fn a_long_operator_chain_is_refused_and_a_shorter_one_runs() {
    let dir = scratch("chain");
    let long = vec![r#""a""#; 5_000].join(" + ");
    let compilation = compile_within(vec![write_flow(&dir, &long, "")]).unwrap();
    assert!(
        codes(&compilation).contains(&"E0004"),
        "{:?}",
        codes(&compilation)
    );
    // Just under the limit: checks clean, survives graph.json and runs on a small stack.
    let short = vec![r#""a""#; 250].join(" + ");
    let compilation = compile_within(vec![write_flow(&dir, &short, "")]).unwrap();
    assert!(!compilation.has_errors(), "{:?}", codes(&compilation));
    let text = ir_json::to_text(&compilation.graph).unwrap();
    let graph = Graph::from_json(&text).unwrap();
    assert_eq!(
        run_small_stack(graph, r#"{"id": "1"}"#),
        Ok("1 deliveries".into())
    );
}

#[test]
fn every_recursive_construct_is_refused_past_its_depth() {
    let dir = scratch("nesting");
    let else_ifs = format!(
        "{}\"z\"",
        "if $.id == \"x\" then \"a\" else ".repeat(40_000)
    );
    let nested_ifs = format!(
        "{}\"b\"{}",
        "if true then (".repeat(20_000),
        ") else \"c\"".repeat(20_000)
    );
    let then_ifs = format!(
        "{}\"b\"{}",
        "if true then ".repeat(20_000),
        " else \"c\"".repeat(20_000)
    );
    let nots = format!("if {}true then \"a\" else \"b\"", "not ".repeat(100_000));
    let negations = format!("to_string({}1)", "-".repeat(100_000));
    let coalesce = vec!["$.id"; 20_000].join(" ?? ");
    let each = format!("to_string({}\"x\")", "[1] as v -> ".repeat(20_000));
    let lists = format!("to_string({}1{})", "[".repeat(20_000), "]".repeat(20_000));
    let cases = [
        ("else-if", else_ifs),
        ("parenthesised if", nested_ifs),
        ("if in then", then_ifs),
        ("not", nots),
        ("negation", negations),
        ("??", coalesce),
        ("as", each),
        ("lists", lists),
    ];
    for (name, expr) in cases {
        let compilation = compile_within(vec![write_flow(&dir, &expr, "")]).unwrap();
        let found = codes(&compilation);
        assert!(
            found.iter().any(|c| matches!(*c, "E0004" | "E0001")),
            "{name}: {found:?}"
        );
        let shown = render(
            &compilation.diagnostics,
            &compilation.sources,
            Format::Human,
            false,
        );
        assert!(shown.contains("E0004") || shown.contains("E0001"), "{name}");
    }
    // A test's inline JSON nested past the bracket limit.
    let json = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let text = flow_text(r#""x""#, "").replace(
        "  sink out",
        &format!("  test \"t\" {{\n    input = {json}\n    sinks = [out]\n  }}\n  sink out"),
    );
    std::fs::write(dir.join("main.flow"), text).unwrap();
    let compilation = compile_within(vec![dir.join("main.flow")]).unwrap();
    assert!(
        codes(&compilation).contains(&"E0001"),
        "{:?}",
        codes(&compilation)
    );
}

#[test]
fn formatting_deep_input_refuses_instead_of_crashing() {
    let expr = vec![r#""a""#; 100_000].join(" + ");
    let text = flow_text(&expr, "");
    let (send, receive) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let _ = send.send(omniflow_compiler::fmt::format_source(&text));
        })
        .unwrap();
    let result = receive.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(result.is_err());
}

#[test]
fn graph_ir_grows_linearly_with_nesting() {
    let dir = scratch("ir-size");
    let size = |depth: usize| {
        let expr = format!("to_string({}true)", "not ".repeat(depth));
        let compilation = compile_within(vec![write_flow(&dir, &expr, "")]).unwrap();
        assert!(!compilation.has_errors(), "{:?}", codes(&compilation));
        ir_json::to_text(&compilation.graph).unwrap().len()
    };
    let (base, single, double) = (size(0), size(100), size(200));
    let (grown_once, grown_twice) = (single - base, double - base);
    assert!(
        grown_twice <= 2 * grown_once + 1024,
        "graph.json grew {grown_once} bytes for 100 levels but {grown_twice} for 200"
    );
}

#[test]
fn costly_jsonpath_is_refused() {
    let dir = scratch("jsonpath");
    for path in [
        "$..a..a..a",
        "$[99999999999999]",
        "$.items[0:9999999999999:1]",
    ] {
        let expr = format!("to_string({path})");
        let compilation = compile_within(vec![write_flow(&dir, &expr, "")]).unwrap();
        assert!(
            codes(&compilation).contains(&"E0307"),
            "{path}: {:?}",
            codes(&compilation)
        );
    }
    let compilation = compile_within(vec![write_flow(&dir, "to_string($..sku)", "")]).unwrap();
    assert!(!compilation.has_errors(), "{:?}", codes(&compilation));
}

#[test]
fn oversized_templates_are_refused_quickly() {
    let dir = scratch("template");
    for template in [
        format!("\"{{{{ {}input }}}}\"", "not ".repeat(100_000)),
        format!("\"{{{{ input{} }}}}\"", " ~ input".repeat(100_000)),
    ] {
        let compilation = compile_within(vec![write_flow(&dir, &template, "")]).unwrap();
        assert!(
            codes(&compilation).contains(&"E0308"),
            "{:?}",
            codes(&compilation)
        );
    }
    // Templates rendered over a message (an http sink's `path`) or declared in a connector
    // are bounded too: a million filters in a row overflowed minijinja's parser's stack, a
    // long `+` chain took minutes.
    let filters = format!("{{{{ v{} }}}}", "|e".repeat(1_500_000));
    let sums = format!("{{{{ v{} }}}}", " + 1".repeat(60_000));
    for template in [&filters, &sums] {
        let option = format!(
            r#"use std.connectors.{{file, http}}
connection inbox = file {{ dir = "in" }}
connection desk = http {{ base_url = "https://x.example" }}
schema Out {{ v: string }}
flow copy {{
  source orders = inbox.read {{ path = "*.jsonl", format = jsonl }}
  map m = orders -> Out {{ v = "a" }}
  sink out = desk.post(m) {{ path = "{template}", idempotency_key = v, dead_letter = "copy_errors" }}
}}
"#
        );
        let declared = format!(
            "connector c {{\n  source orders: poll -> json {{\n    request {{ path = \"{template}\" }}\n  }}\n}}\n"
        );
        for (name, text) in [("option.flow", option), ("declared.flow", declared)] {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            let compilation = compile_within(vec![path]).unwrap();
            assert!(
                codes(&compilation).contains(&"E0308"),
                "{name}: {:?}",
                codes(&compilation)
            );
        }
    }
}

#[test]
fn diagnostics_render_on_a_two_megabyte_line() {
    let dir = scratch("long-line");
    let fields: Vec<String> = (0..150_000).map(|idx| format!("f{idx}: string")).collect();
    let text = format!("schema A {{ {} x: }}\n", fields.join(" "));
    assert!(text.len() > 2 << 20);
    std::fs::write(dir.join("main.flow"), &text).unwrap();
    let compilation = compile_within(vec![dir.join("main.flow")]).unwrap();
    let shown = render(
        &compilation.diagnostics,
        &compilation.sources,
        Format::Human,
        false,
    );
    assert!(shown.contains("E0001"), "{shown}");
    assert!(
        shown.len() < 4096,
        "the rendering copies the long line: {} bytes",
        shown.len()
    );
}

/// One way to wrap a string expression in another one.
#[derive(Debug, Clone, Copy)]
enum Wrap {
    Plus,
    Paren,
    IfThen,
    ElseIf,
    Not,
    Coalesce,
    Index,
    Call,
    Each,
    Record,
}

fn wrap(expr: String, how: Wrap) -> String {
    match how {
        Wrap::Plus => format!("{expr} + \"a\""),
        Wrap::Paren => format!("({expr})"),
        Wrap::IfThen => format!("if true then {expr} else \"b\""),
        Wrap::ElseIf => format!("if $.id == \"x\" then \"c\" else {expr}"),
        Wrap::Not => format!("if not not true then {expr} else \"d\""),
        Wrap::Coalesce => format!("{expr} ?? \"e\""),
        Wrap::Index => format!("[{expr}][0]"),
        Wrap::Call => format!("upper({expr})"),
        Wrap::Each => format!("join([{expr}] as item -> item, \",\")"),
        Wrap::Record => format!("Out {{ v = {expr} }}.v"),
    }
}

fn wraps() -> impl proptest::strategy::Strategy<Value = Vec<Wrap>> {
    use proptest::prelude::*;
    let one = prop_oneof![
        Just(Wrap::Plus),
        Just(Wrap::Paren),
        Just(Wrap::IfThen),
        Just(Wrap::ElseIf),
        Just(Wrap::Not),
        Just(Wrap::Coalesce),
        Just(Wrap::Index),
        Just(Wrap::Call),
        Just(Wrap::Each),
        Just(Wrap::Record),
    ];
    // Long runs of one construct, mixed: from shallow to well past every limit.
    proptest::collection::vec((one, 1usize..80), 0..10).prop_map(|runs| {
        runs.into_iter()
            .flat_map(|(how, n)| std::iter::repeat_n(how, n))
            .collect()
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Deep and long expressions through check, graph.json and the runtime: either a
    /// clean result or a coded refusal, never a crash.
    #[test]
    fn generated_expressions_check_build_and_run(plan in wraps()) {
        let expr = plan.iter().fold("to_string($.id)".to_string(), |expr, how| wrap(expr, *how));
        let dir = scratch(&format!("generated-{}", expr.len()));
        let compilation = compile_within(vec![write_flow(&dir, &expr, "")]).unwrap();
        if compilation.has_errors() {
            let found = codes(&compilation);
            proptest::prop_assert!(
                found.iter().all(|c| matches!(*c, "E0004" | "E0001")),
                "{found:?} for {expr}"
            );
        } else {
            let text = ir_json::to_text(&compilation.graph).unwrap();
            let graph = Graph::from_json(&text).unwrap();
            let ran = run_small_stack(graph, r#"{"id": "1"}"#);
            proptest::prop_assert_eq!(ran, Ok("1 deliveries".to_string()));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
