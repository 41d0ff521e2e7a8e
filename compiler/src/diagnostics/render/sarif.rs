//! SARIF 2.1.0, for code-scanning dashboards.

use super::region;
use crate::diagnostics::{codes, Diagnostic, Severity};
use crate::source::Sources;
use serde_json::{json, Value};

/// Renders diagnostics as one SARIF log with one run.
pub fn render(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let rules: Vec<Value> = codes::ALL
        .iter()
        .map(|code| {
            json!({
                "id": code.id,
                "name": code.name,
                "shortDescription": { "text": code.summary },
                "helpUri": format!("docs/language.md#{}-{}", code.id.to_lowercase(), code.name),
            })
        })
        .collect();
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|diagnostic| {
            let span = diagnostic.span();
            let (line, column, end_line, end_column) = region(sources, span);
            let mut text = diagnostic.message.clone();
            if let Some(help) = &diagnostic.help {
                text.push_str("\nhelp: ");
                text.push_str(help);
            }
            json!({
                "ruleId": diagnostic.code.id,
                "ruleIndex": codes::ALL.iter().position(|c| *c == diagnostic.code),
                "level": match diagnostic.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": sources.get(span.file).name },
                        "region": {
                            "startLine": line, "startColumn": column,
                            "endLine": end_line, "endColumn": end_column,
                            "byteOffset": span.start, "byteLength": span.len(),
                        }
                    }
                }],
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "omniflowc",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/omniflow/omniflow",
                "rules": rules,
            }},
            "results": results,
        }],
    });
    let mut out = serde_json::to_string_pretty(&log).unwrap_or_default();
    out.push('\n');
    out
}
