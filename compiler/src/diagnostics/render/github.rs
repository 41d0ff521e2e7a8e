//! GitHub Actions workflow commands (`::error file=...::message`), one per line.

use super::region;
use crate::diagnostics::{Diagnostic, Severity};
use crate::source::Sources;

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Renders one annotation per diagnostic.
pub fn render(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        let span = diagnostic.span();
        let (line, col, end_line, end_col) = region(sources, span);
        let level = match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = diagnostic.message.clone();
        if let Some(help) = &diagnostic.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        out.push_str(&format!(
            "::{level} file={},line={line},col={col},endLine={end_line},endColumn={end_col},title={}::{}\n",
            escape_property(&sources.get(span.file).name),
            escape_property(&format!("{} {}", diagnostic.code.id, diagnostic.code.name)),
            escape_data(&message),
        ));
    }
    out
}
