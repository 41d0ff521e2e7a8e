//! `omniflowc lsp` spoken to over stdio as an editor does: diagnostics as the text
//! changes, hover, definition across files and into the stdlib, references, completion
//! inside a map, rename, formatting and quick fixes.
// The tests set up a project of real files for the server they run.
#![allow(clippy::disallowed_methods)]

mod lsp_client;

use lsp_client::{position_of, uri, Client};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const COMMON: &str = r#"schema Sale {
  id: string
  store: string
  total: decimal
}

schema Summary {
  id: string
  shop: string
}

table stores: string -> string = file("data/stores.csv", key = "id", value = "name")
"#;

const MAIN: &str = r#"use std.connectors.{file}
use "./lib/common.flow".{Sale, Summary, stores}

connection inbox = file { dir = env("INBOX") }

flow copy_sales {
  source sales = inbox.read { path = "sales/*.jsonl", format = jsonl }
  map sale = sales -> Sale {
    id = $.id
    store = stores[$.store] ?? "unknown"
    total = 0.0
  }
  map summary = sale -> Summary {
    id = $.id
    shop = $.store
  }
  sink out = inbox.write(summary) {
    path = "out.jsonl"
    idempotency_key = id
    dead_letter = "copy_errors"
  }
}
"#;

/// A project on disk: `main.flow` importing `lib/common.flow`.
fn project(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("omniflowc-lsp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("lib/data")).unwrap();
    std::fs::write(dir.join("lib/common.flow"), COMMON).unwrap();
    std::fs::write(dir.join("lib/data/stores.csv"), "id,name\nS1,Soho\n").unwrap();
    std::fs::write(dir.join("main.flow"), MAIN).unwrap();
    let (main, common) = (dir.join("main.flow"), dir.join("lib/common.flow"));
    (dir, main, common)
}

fn at(path: &Path, text: &str, needle: &str, delta: usize) -> Value {
    json!({"textDocument": {"uri": uri(path)}, "position": position_of(text, needle, delta)})
}

fn codes(diagnostics: &[Value]) -> Vec<&str> {
    diagnostics
        .iter()
        .map(|d| d["code"].as_str().unwrap_or(""))
        .collect()
}

#[test]
fn diagnostics_are_published_as_the_text_changes_with_codes_help_and_every_error() {
    let (dir, main, _) = project("diagnostics");
    let mut client = Client::start(&dir);
    client.open(&main, MAIN);
    assert_eq!(client.diagnostics(&main), Vec::<Value>::new());

    // Two errors at once: a misspelled table and a sink without an idempotency key.
    let broken = MAIN
        .replace("stores[$.store]", "stors[$.store]")
        .replace("    idempotency_key = id\n", "");
    client.change(&main, 2, &broken);
    let diagnostics = client.diagnostics(&main);
    // The import the misspelling leaves unused is warned about too.
    assert_eq!(
        codes(&diagnostics),
        ["W0101", "E0114", "E0403"],
        "{diagnostics:#?}"
    );
    assert_eq!(diagnostics[0]["severity"], 2);
    let unknown = &diagnostics[1];
    assert_eq!(unknown["severity"], 1);
    assert_eq!(unknown["source"], "omniflowc");
    assert_eq!(unknown["range"]["start"], position_of(&broken, "stors", 0));
    assert_eq!(unknown["range"]["end"], position_of(&broken, "stors", 5));
    let message = unknown["message"].as_str().unwrap();
    assert!(
        message.contains("help: did you mean `stores`?"),
        "{message}"
    );

    // A syntax error is reported too, and the server keeps serving.
    client.change(
        &main,
        3,
        &MAIN.replace("map summary", "map summary summary"),
    );
    let diagnostics = client.diagnostics(&main);
    assert_eq!(codes(&diagnostics), ["E0001"], "{diagnostics:#?}");

    client.change(&main, 4, MAIN);
    assert_eq!(client.diagnostics(&main), Vec::<Value>::new());
    assert!(client.shutdown());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hover_shows_types_operations_and_declarations() {
    let (dir, main, _) = project("hover");
    let mut client = Client::start(&dir);
    client.open(&main, MAIN);
    client.diagnostics(&main);
    let hover = |client: &mut Client, needle: &str, delta: usize| -> String {
        let answer = client.request("textDocument/hover", at(&main, MAIN, needle, delta));
        answer["result"]["contents"]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("a hover at `{needle}`: {answer}"))
            .to_string()
    };
    // A node read by a sink: its type.
    let shown = hover(&mut client, "write(summary)", 7);
    assert!(shown.contains("Summary"), "{shown}");
    // A record's field: the schema field's type, and where it is declared.
    let shown = hover(&mut client, "shop = ", 1);
    assert!(
        shown.contains("string") && shown.contains("common.flow"),
        "{shown}"
    );
    // A path on a typed input: the field's type.
    let shown = hover(&mut client, "$.store\n  }", 3);
    assert!(shown.contains("string"), "{shown}");
    // A connector operation: its kind and types.
    let shown = hover(&mut client, "inbox.write", 7);
    assert!(shown.contains("sink:"), "{shown}");
    // A table: its declaration.
    let shown = hover(&mut client, "stores[", 2);
    assert!(shown.contains("table stores: string -> string"), "{shown}");
    assert!(client.shutdown());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn definition_and_references_cross_files_and_reach_the_stdlib() {
    let (dir, main, common) = project("definition");
    let mut client = Client::start(&dir);
    client.open(&main, MAIN);
    client.diagnostics(&main);

    let answer = client.request("textDocument/definition", at(&main, MAIN, "-> Sale", 4));
    assert_eq!(answer["result"]["uri"], uri(&common), "{answer}");
    assert_eq!(
        answer["result"]["range"]["start"],
        position_of(COMMON, "Sale", 0)
    );

    // A node used by a later statement.
    let answer = client.request("textDocument/definition", at(&main, MAIN, "= sale ->", 3));
    assert_eq!(answer["result"]["uri"], uri(&main));
    assert_eq!(
        answer["result"]["range"]["start"],
        position_of(MAIN, "sale = sales", 0)
    );

    // The stdlib's connector declaration, written out where the editor can open it.
    let answer = client.request("textDocument/definition", at(&main, MAIN, "{file}", 2));
    let target = answer["result"]["uri"].as_str().unwrap().to_string();
    assert!(target.ends_with("/connectors/file.flow"), "{answer}");
    let written = std::fs::read_to_string(target.trim_start_matches("file://")).unwrap();
    assert!(written.contains("connector file"), "{written}");

    let answer = client.request(
        "textDocument/references",
        json!({
            "textDocument": {"uri": uri(&main)},
            "position": position_of(MAIN, "-> Sale", 4),
            "context": {"includeDeclaration": true}
        }),
    );
    let found: Vec<(String, Value)> = answer["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["uri"].as_str().unwrap().to_string(),
                l["range"]["start"].clone(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (uri(&common), position_of(COMMON, "Sale", 0)),
            (uri(&main), position_of(MAIN, "Sale,", 0)),
            (uri(&main), position_of(MAIN, "-> Sale", 3)),
        ]
    );
    assert!(client.shutdown());
    let _ = std::fs::remove_dir_all(dir);
}

fn labels(answer: &Value) -> Vec<String> {
    let items = answer["result"]
        .as_array()
        .or_else(|| answer["result"]["items"].as_array())
        .unwrap_or_else(|| panic!("completions: {answer}"));
    items
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn completion_offers_input_fields_record_fields_operations_and_functions_while_typing() {
    let (dir, main, _) = project("completion");
    let mut client = Client::start(&dir);
    client.open(&main, MAIN);
    client.diagnostics(&main);

    // `$.` inside the second map reads a `Sale`; the text does not parse while typed.
    let typing = MAIN.replace("    shop = $.store\n", "    shop = $.store\n    x = $.\n");
    client.change(&main, 2, &typing);
    client.diagnostics(&main);
    let answer = client.request("textDocument/completion", at(&main, &typing, "x = $.", 6));
    assert_eq!(labels(&answer), ["id", "store", "total"]);

    // At the start of a line in the record: its fields first, then functions.
    let answer = client.request("textDocument/completion", at(&main, MAIN, "    shop = ", 4));
    let offered = labels(&answer);
    assert_eq!(offered[..2], ["id".to_string(), "shop".to_string()]);
    assert!(offered.contains(&"round".to_string()), "{offered:?}");
    assert!(offered.contains(&"stores".to_string()), "{offered:?}");

    // After a connection's name: its operations.
    let typing = MAIN.replace("inbox.write(summary)", "inbox.");
    client.change(&main, 3, &typing);
    client.diagnostics(&main);
    let answer = client.request("textDocument/completion", at(&main, &typing, "inbox. {", 6));
    let offered = labels(&answer);
    assert!(
        offered.contains(&"read".to_string()) && offered.contains(&"write".to_string()),
        "{offered:?}"
    );
    assert!(client.shutdown());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn rename_changes_every_use_across_files_and_refuses_the_stdlib() {
    let (dir, main, common) = project("rename");
    let mut client = Client::start(&dir);
    client.open(&main, MAIN);
    client.open(&common, COMMON);
    client.diagnostics(&main);

    let answer = client.request("textDocument/prepareRename", at(&main, MAIN, "-> Sale", 5));
    assert_eq!(answer["result"]["start"], position_of(MAIN, "-> Sale", 3));
    let mut params = at(&main, MAIN, "-> Sale", 5);
    params["newName"] = json!("Purchase");
    let answer = client.request("textDocument/rename", params);
    let changes = &answer["result"]["changes"];
    let edits = |path: &Path| -> Vec<Value> {
        changes[uri(path)]
            .as_array()
            .unwrap_or_else(|| panic!("edits of {}: {answer}", path.display()))
            .iter()
            .map(|e| e["range"]["start"].clone())
            .collect()
    };
    assert_eq!(edits(&common), [position_of(COMMON, "Sale", 0)]);
    assert_eq!(
        edits(&main),
        [
            position_of(MAIN, "Sale,", 0),
            position_of(MAIN, "-> Sale", 3)
        ]
    );
    assert!(changes[uri(&main)]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["newText"] == "Purchase"));

    // A declaration no one uses (a flow) may be renamed too; a node with its uses.
    let answer = client.request(
        "textDocument/prepareRename",
        at(&main, MAIN, "copy_sales", 2),
    );
    assert_eq!(
        answer["result"]["start"],
        position_of(MAIN, "copy_sales", 0),
        "{answer}"
    );
    let mut params = at(&main, MAIN, "map summary", 5);
    params["newName"] = json!("digest");
    let answer = client.request("textDocument/rename", params);
    let starts: Vec<Value> = answer["result"]["changes"][uri(&main)]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["range"]["start"].clone())
        .collect();
    assert_eq!(
        starts,
        [
            position_of(MAIN, "summary =", 0),
            position_of(MAIN, "summary) {", 0)
        ],
        "{answer}"
    );

    // A stdlib name, and a name that is not one, are refused.
    let answer = client.request("textDocument/prepareRename", at(&main, MAIN, "{file}", 2));
    assert!(answer.get("error").is_some(), "{answer}");
    for refused in ["9lives", "reject", "a-b"] {
        let mut params = at(&main, MAIN, "-> Sale", 5);
        params["newName"] = json!(refused);
        let answer = client.request("textDocument/rename", params);
        assert!(answer.get("error").is_some(), "{refused}: {answer}");
    }
    assert!(client.shutdown());
    let _ = std::fs::remove_dir_all(dir);
}

/// Applies LSP text edits (each a range and a new text) to a text.
fn apply(text: &str, edits: &[Value]) -> String {
    let offset = |pos: &Value| -> usize {
        let (line, character) = (
            pos["line"].as_u64().unwrap(),
            pos["character"].as_u64().unwrap(),
        );
        let start = text
            .split_inclusive('\n')
            .take(line as usize)
            .map(str::len)
            .sum::<usize>();
        start + character as usize
    };
    let mut edits: Vec<(usize, usize, &str)> = edits
        .iter()
        .map(|e| {
            (
                offset(&e["range"]["start"]),
                offset(&e["range"]["end"]),
                e["newText"].as_str().unwrap(),
            )
        })
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (start, end, new) in edits {
        out.replace_range(start..end, new);
    }
    out
}

#[test]
fn formatting_gives_what_fmt_writes_and_quick_fixes_mend_the_diagnostics() {
    let (dir, main, _) = project("format");
    let mut client = Client::start(&dir);
    let messy = MAIN.replace("    total = 0.0\n", "        total   =   0.0\n");
    client.open(&main, &messy);
    client.diagnostics(&main);
    let answer = client.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri(&main)}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let edits = answer["result"].as_array().unwrap();
    assert_eq!(
        apply(&messy, edits),
        omniflow_compiler::fmt::format_source(&messy).unwrap()
    );
    assert_eq!(apply(&messy, edits), MAIN);

    // The misspelled table and the missing key, each mended by its quick fix.
    let broken = MAIN
        .replace("stores[$.store]", "stors[$.store]")
        .replace("    idempotency_key = id\n", "");
    client.change(&main, 2, &broken);
    let diagnostics = client.diagnostics(&main);
    let mut text = broken;
    let errors = diagnostics.iter().filter(|d| d["severity"] == 1);
    for diagnostic in errors {
        let answer = client.request(
            "textDocument/codeAction",
            json!({
                "textDocument": {"uri": uri(&main)},
                "range": diagnostic["range"],
                "context": {"diagnostics": [diagnostic]}
            }),
        );
        let actions = answer["result"].as_array().unwrap();
        assert_eq!(actions.len(), 1, "{answer}");
        let edits = actions[0]["edit"]["changes"][uri(&main)]
            .as_array()
            .unwrap();
        // The fixes touch different lines: each applies on top of the other.
        text = apply(&text, edits);
    }
    client.change(&main, 3, &text);
    assert_eq!(client.diagnostics(&main), Vec::<Value>::new(), "{text}");
    assert!(text.contains("stores[$.store]") && text.contains("idempotency_key = id"));
    assert!(client.shutdown());
    let _ = std::fs::remove_dir_all(dir);
}
