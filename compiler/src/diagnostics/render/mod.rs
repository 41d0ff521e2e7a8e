//! Renderers: one small module per output format, all reading the same [`Diagnostic`] data.

mod github;
mod human;
mod json;
mod sarif;

use super::Diagnostic;
use crate::source::{Sources, Span};

/// Output format of `omniflowc check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Sarif,
    Github,
}

/// Renders diagnostics in one format. `color` applies to the human format only.
pub fn render(
    diagnostics: &[Diagnostic],
    sources: &Sources,
    format: Format,
    color: bool,
) -> String {
    match format {
        Format::Human => human::render(diagnostics, sources, color),
        Format::Json => json::render(diagnostics, sources),
        Format::Sarif => sarif::render(diagnostics, sources),
        Format::Github => github::render(diagnostics, sources),
    }
}

/// One diagnostic per line: `E0203 error 120..131 message`, for snapshots and logs.
pub fn render_short(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        let span = diagnostic.span();
        out.push_str(&format!(
            "{} {} {}..{} {}\n",
            diagnostic.code.id,
            severity_word(diagnostic),
            span.start,
            span.end,
            diagnostic.message
        ));
    }
    out
}

fn severity_word(diagnostic: &Diagnostic) -> &'static str {
    match diagnostic.severity {
        super::Severity::Error => "error",
        super::Severity::Warning => "warning",
    }
}

/// 1-based start and end positions of a span: (line, col, end_line, end_col).
fn region(sources: &Sources, span: Span) -> (usize, usize, usize, usize) {
    let (line, col) = sources.line_col(span.file, span.start);
    let (end_line, end_col) = sources.line_col(span.file, span.end);
    (line, col, end_line, end_col)
}
