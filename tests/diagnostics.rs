//! Diagnostic snapshots: every fixture under `fixtures/diagnostics/` names its expected code
//! on its first line; the test fails when that code is absent, then pins the source, the
//! no-colour rendering and one line per diagnostic.

use omniflow_compiler::diagnostics::render::{render, render_short, Format};
use std::path::Path;

#[test]
fn diagnostic_fixtures() {
    insta::glob!("fixtures/diagnostics/*.flow", |path| {
        let relative = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(path)
            .to_path_buf();
        let source = std::fs::read_to_string(path).unwrap();
        let expected = expected_code(&source, path);
        let compilation = omniflow_compiler::compile_paths(&[relative]).unwrap();
        let codes: Vec<&str> = compilation.diagnostics.iter().map(|d| d.code.id).collect();
        assert!(
            codes.contains(&expected.as_str()),
            "{}: expected {expected}, got {codes:?}",
            path.display()
        );
        let human = render(
            &compilation.diagnostics,
            &compilation.sources,
            Format::Human,
            false,
        );
        let short = render_short(&compilation.diagnostics);
        insta::assert_snapshot!(format!(
            "{source}\n----- diagnostics -----\n{short}\n----- rendered -----\n{human}"
        ));
    });
}

/// The code named by the fixture's first line: `// E0203: ...`.
fn expected_code(source: &str, path: &Path) -> String {
    let first = source.lines().next().unwrap_or("");
    let code = first
        .trim_start_matches("//")
        .trim()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("");
    assert!(
        omniflow_compiler::diagnostics::codes::by_id(code).is_some(),
        "{}: the first line must name a diagnostic code, found {first:?}",
        path.display()
    );
    code.to_string()
}
