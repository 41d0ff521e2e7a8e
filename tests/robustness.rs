//! Robustness: truncated, mutated and random inputs never panic, and input that does not
//! parse always yields at least one diagnostic.

use omniflow_compiler::diagnostics::Diagnostics;
use omniflow_compiler::source::FileId;
use omniflow_tests::{files_with_suffix, repo_root};
use proptest::prelude::*;
use std::sync::OnceLock;

fn corpus() -> &'static Vec<String> {
    static CORPUS: OnceLock<Vec<String>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = repo_root();
        let mut files = files_with_suffix(&root.join("flows"), ".flow");
        files.extend(files_with_suffix(&root.join("stdlib"), ".flow"));
        files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .collect()
    })
}

/// Runs the whole front end on text written to a temporary file.
fn compile_text(text: &str) -> Vec<String> {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("omniflow-robustness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("case{n}.flow"));
    std::fs::write(&path, text).unwrap();
    let compilation = omniflow_compiler::compile_paths(std::slice::from_ref(&path)).unwrap();
    let _ = std::fs::remove_file(&path);
    compilation
        .diagnostics
        .iter()
        .map(|d| d.code.id.to_string())
        .collect()
}

fn parses(text: &str) -> bool {
    let mut diags = Diagnostics::default();
    omniflow_compiler::syntax::parse_module(FileId(0), text, &mut diags);
    !diags.has_errors()
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\"",
    ",",
    ".",
    "=",
    "->",
    "$",
    "$.",
    "*",
    "?",
    "??",
    "//",
    "\n",
    " ",
    "when",
    "otherwise",
    "map",
    "sink",
    "flow",
    "schema",
    "let",
    "if",
    "then",
    "else",
    "reject",
    "as",
    "where",
    "{{",
    "}}",
    "{%",
    "1",
    "1.5",
    "10/s",
    "30s",
    "20%",
    "-",
    "not",
    "in",
];

fn mutate(text: &str, edits: &[(usize, usize, usize)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(kind, pos, token) in edits {
        if chars.is_empty() {
            break;
        }
        let pos = pos % chars.len();
        match kind % 3 {
            0 => {
                chars.remove(pos);
            }
            1 => {
                let token = TOKENS[token % TOKENS.len()];
                for (offset, c) in token.chars().enumerate() {
                    chars.insert(pos + offset, c);
                }
            }
            _ => {
                let end = (pos + 1 + token % 20).min(chars.len());
                chars.drain(pos..end);
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn truncated_files_never_panic(file in 0usize..64, cut in 0usize..100_000) {
        let corpus = corpus();
        let text = &corpus[file % corpus.len()];
        let mut cut = cut % (text.len() + 1);
        while !text.is_char_boundary(cut) { cut -= 1; }
        let truncated = &text[..cut];
        let codes = compile_text(truncated);
        if !parses(truncated) {
            prop_assert!(!codes.is_empty());
        }
    }

    #[test]
    fn mutated_files_never_panic(file in 0usize..64, edits in proptest::collection::vec((0usize..3, 0usize..100_000, 0usize..64), 1..8)) {
        let corpus = corpus();
        let text = mutate(&corpus[file % corpus.len()], &edits);
        let codes = compile_text(&text);
        if !parses(&text) {
            prop_assert!(!codes.is_empty());
        }
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        let codes = compile_text(&text);
        if !parses(&text) {
            prop_assert!(!codes.is_empty());
        }
    }

    #[test]
    fn formatter_never_panics(file in 0usize..64, edits in proptest::collection::vec((0usize..3, 0usize..100_000, 0usize..64), 0..4)) {
        let corpus = corpus();
        let text = mutate(&corpus[file % corpus.len()], &edits);
        if let Ok(once) = omniflow_compiler::fmt::format_source(&text) {
            prop_assert_eq!(omniflow_compiler::fmt::format_source(&once).ok(), Some(once));
        }
    }
}

#[test]
fn deep_nesting_is_a_diagnostic() {
    let text = format!(
        "schema A {{ x: int = {}1{} }}\n",
        "(".repeat(5_000),
        ")".repeat(5_000)
    );
    let codes = compile_text(&text);
    assert!(codes.contains(&"E0001".to_string()), "{codes:?}");
}
