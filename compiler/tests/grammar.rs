//! The editors' TextMate grammar (`editors/vscode/syntaxes/omniflow.tmLanguage.json`),
//! tokenized as VS Code does (vscode-textmate with Oniguruma, from npm; `.ci/run`
//! installs them) over every reference flow and stdlib file: comments, strings,
//! declarations, node statements and every keyword of the compiler's grammar get their
//! scopes, and plain names get none.
#![allow(clippy::disallowed_methods)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn node_modules() -> PathBuf {
    let dir = std::env::var_os("OMNIFLOW_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/omniflow/node/node_modules")
        });
    assert!(
        dir.join("vscode-textmate").is_dir() && dir.join("vscode-oniguruma").is_dir(),
        "vscode-textmate and vscode-oniguruma are not installed in {} (bash .ci/run installs them)",
        dir.display()
    );
    dir
}

/// One token: its text and its scopes (outermost first, the file's scope left out).
struct Token {
    text: String,
    scopes: Vec<String>,
}

impl Token {
    fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s.starts_with(scope))
    }
}

/// Every line's tokens of each file.
fn tokenize(files: &[PathBuf]) -> Vec<(PathBuf, Vec<Vec<Token>>)> {
    let output = Command::new("node")
        .arg(repo().join("compiler/tests/grammar/tokenize.js"))
        .arg(repo().join("editors/vscode/syntaxes/omniflow.tmLanguage.json"))
        .args(files)
        .env("NODE_PATH", node_modules())
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: Value = serde_json::from_slice(&output.stdout).expect("tokens as JSON");
    parsed
        .as_array()
        .unwrap()
        .iter()
        .map(|file| {
            let lines = file["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|line| {
                    line.as_array()
                        .unwrap()
                        .iter()
                        .map(|t| Token {
                            text: t["text"].as_str().unwrap().to_string(),
                            scopes: t["scopes"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|s| s.as_str().unwrap().to_string())
                                .collect(),
                        })
                        .collect()
                })
                .collect();
            (PathBuf::from(file["file"].as_str().unwrap()), lines)
        })
        .collect()
}

fn flow_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            flow_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "flow") {
            out.push(path);
        }
    }
}

/// The compiler's reserved words (no name may be one).
fn reserved_words() -> Vec<String> {
    omniflow_compiler::syntax::KEYWORDS
        .iter()
        .map(|w| w.to_string())
        .collect()
}

#[test]
fn the_reference_flows_and_the_stdlib_are_highlighted_by_what_they_are() {
    let mut files = Vec::new();
    flow_files(&repo().join("flows"), &mut files);
    flow_files(&repo().join("stdlib"), &mut files);
    files.sort();
    assert!(files.len() > 10, "{files:?}");
    let (mut declarations, mut nodes, mut strings, mut comments) = (0, 0, 0, 0);
    for (file, lines) in tokenize(&files) {
        for (number, tokens) in lines.iter().enumerate() {
            let at = format!("{}:{}", file.display(), number + 1);
            let words: Vec<&Token> = tokens
                .iter()
                .filter(|t| !t.text.trim().is_empty())
                .collect();
            let Some(first) = words.first() else { continue };
            if first.text.starts_with("//") {
                assert!(first.has("comment.line"), "{at}: {:?}", first.scopes);
                comments += 1;
                continue;
            }
            let declares = [
                "schema",
                "enum",
                "connection",
                "connector",
                "table",
                "policy",
                "ledger",
                "flow",
            ];
            if declares.contains(&first.text.as_str()) && words.len() > 1 {
                assert!(
                    first.has("storage.type"),
                    "{at}: {} {:?}",
                    first.text,
                    first.scopes
                );
                assert!(
                    words[1].has("entity.name.type"),
                    "{at}: {} {:?}",
                    words[1].text,
                    words[1].scopes
                );
                declarations += 1;
            }
            let statements = ["source", "map", "filter", "route", "split", "sink"];
            if statements.contains(&first.text.as_str())
                && words.len() > 2
                && words[2].text.starts_with('=')
            {
                assert!(first.has("keyword.other.node"), "{at}: {:?}", first.scopes);
                assert!(
                    words[1].has("entity.name.function"),
                    "{at}: {:?}",
                    words[1].scopes
                );
                nodes += 1;
            }
            for token in &words {
                if token.text.starts_with('"') {
                    assert!(
                        token.has("string.quoted"),
                        "{at}: {} {:?}",
                        token.text,
                        token.scopes
                    );
                    strings += 1;
                }
                if token.text.starts_with("//") {
                    assert!(token.has("comment.line"), "{at}: {:?}", token.scopes);
                }
            }
        }
    }
    assert!(
        declarations > 50 && nodes > 30 && strings > 100 && comments > 20,
        "{declarations} {nodes} {strings} {comments}"
    );
}

#[test]
fn every_reserved_word_is_a_keyword_and_plain_names_are_not() {
    let words = reserved_words();
    assert!(
        words.len() >= 10 && words.contains(&"reject".to_string()),
        "{words:?}"
    );
    let dir = std::env::temp_dir().join(format!("omniflowc-grammar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sample = dir.join("words.flow");
    let mut text = String::new();
    for word in &words {
        text.push_str(&format!("x = {word} orders\n"));
    }
    std::fs::write(&sample, &text).unwrap();
    let tokenized = tokenize(std::slice::from_ref(&sample));
    let _ = std::fs::remove_dir_all(&dir);
    for (word, tokens) in words.iter().zip(&tokenized[0].1) {
        let token = tokens
            .iter()
            .find(|t| t.text.trim() == word)
            .unwrap_or_else(|| panic!("`{word}` is one token"));
        assert!(
            token.has("keyword.") || token.has("constant.language"),
            "`{word}`: {:?}",
            token.scopes
        );
        let name = tokens
            .iter()
            .find(|t| t.text.trim() == "orders")
            .expect("`orders` is one token");
        assert!(name.scopes.is_empty(), "`orders`: {:?}", name.scopes);
    }
}
