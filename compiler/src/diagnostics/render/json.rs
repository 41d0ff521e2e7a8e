//! The JSON format: an array with one object per diagnostic.

use super::region;
use crate::diagnostics::Diagnostic;
use crate::source::Sources;
use serde_json::{json, Value};

/// Renders diagnostics as a JSON array.
pub fn render(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let items: Vec<Value> = diagnostics
        .iter()
        .map(|diagnostic| {
            let span = diagnostic.span();
            let (line, column, end_line, end_column) = region(sources, span);
            let labels: Vec<Value> = diagnostic
                .labels
                .iter()
                .map(|label| {
                    json!({
                        "file": sources.get(label.span.file).name,
                        "start": label.span.start,
                        "end": label.span.end,
                        "message": label.message,
                        "primary": label.primary,
                    })
                })
                .collect();
            json!({
                "code": diagnostic.code.id,
                "name": diagnostic.code.name,
                "severity": diagnostic.severity,
                "message": diagnostic.message,
                "file": sources.get(span.file).name,
                "start": span.start,
                "end": span.end,
                "line": line,
                "column": column,
                "end_line": end_line,
                "end_column": end_column,
                "labels": labels,
                "help": diagnostic.help,
            })
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&Value::Array(items)).unwrap_or_default();
    out.push('\n');
    out
}
