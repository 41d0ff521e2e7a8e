//! The formatter over every file in `flows/` and `stdlib/`: idempotent, and the tree of
//! the formatted text equals the tree of the original.

use omniflow_compiler::diagnostics::Diagnostics;
use omniflow_compiler::fmt::format_source;
use omniflow_compiler::source::FileId;
use omniflow_compiler::syntax::parse_module;
use omniflow_tests::{files_with_suffix, repo_root};

fn tree(text: &str) -> serde_json::Value {
    let mut diags = Diagnostics::default();
    let module = parse_module(FileId(0), text, &mut diags);
    assert!(!diags.has_errors(), "{:?}", diags.as_slice());
    serde_json::to_value(&module).unwrap()
}

#[test]
fn fmt_is_idempotent_and_keeps_the_tree() {
    let root = repo_root();
    let mut files = files_with_suffix(&root.join("flows"), ".flow");
    files.extend(files_with_suffix(&root.join("stdlib"), ".flow"));
    assert!(
        files.len() >= 10,
        "expected the stdlib and reference flows, found {files:?}"
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let once = format_source(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let twice = format_source(&once).unwrap();
        assert_eq!(once, twice, "{}: fmt is not idempotent", file.display());
        assert_eq!(
            tree(&text),
            tree(&once),
            "{}: fmt changed the tree",
            file.display()
        );
        let comments = |t: &str| omniflow_compiler::syntax::comments::scan(t).len();
        assert_eq!(
            comments(&text),
            comments(&once),
            "{}: fmt lost a comment",
            file.display()
        );
    }
}

#[test]
fn stdlib_checks_clean() {
    let mut sources = omniflow_compiler::source::Sources::default();
    let mut diags = Diagnostics::default();
    for file in omniflow_compiler::stdlib::FILES {
        let id = sources.add(file.path.to_string(), None, file.text);
        parse_module(id, file.text, &mut diags);
    }
    assert!(diags.as_slice().is_empty(), "{:?}", diags.as_slice());
}
