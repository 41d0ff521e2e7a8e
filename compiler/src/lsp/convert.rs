//! The compiler's diagnostics and places in the protocol's terms.

use super::analysis::{Analysis, Place};
use super::text;
use crate::diagnostics::{Diagnostic, Severity};
use lsp_types::{
    DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Position, Range,
    Url,
};
use std::path::Path;

/// The diagnostics of the document at `path`.
pub fn diagnostics(analysis: &Analysis, path: &Path) -> Vec<lsp_types::Diagnostic> {
    let Some(file) = analysis.file(path) else {
        return Vec::new();
    };
    analysis
        .diagnostics_in(file)
        .map(|d| diagnostic(analysis, d))
        .collect()
}

/// One compiler diagnostic: the primary label's span, the code, the message with its
/// label and help, and the secondary labels as related places.
pub fn diagnostic(analysis: &Analysis, d: &Diagnostic) -> lsp_types::Diagnostic {
    let span = d.span();
    let file_text = analysis.text(span.file);
    let mut message = d.message.clone();
    if let Some(label) = d
        .labels
        .iter()
        .find(|l| l.primary)
        .and_then(|l| l.message.as_ref())
    {
        message.push_str(&format!("\n{label}"));
    }
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .filter(|l| !l.primary)
        .filter_map(|l| {
            Some(DiagnosticRelatedInformation {
                location: location(analysis, &analysis.place(l.span))?,
                message: l.message.clone().unwrap_or_default(),
            })
        })
        .collect();
    lsp_types::Diagnostic {
        range: text::range(file_text, span.start as usize, span.end as usize),
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.id.to_string())),
        source: Some("omniflowc".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..Default::default()
    }
}

/// A file the compiler could not read at all, reported on its first line.
pub fn whole_file_error(reason: &str) -> lsp_types::Diagnostic {
    lsp_types::Diagnostic {
        range: Range::new(Position::new(0, 0), Position::new(0, 0)),
        severity: Some(DiagnosticSeverity::ERROR),
        source: Some("omniflowc".into()),
        message: reason.to_string(),
        ..Default::default()
    }
}

/// A place as a protocol location, its range counted in the text the compiler read.
pub fn location(analysis: &Analysis, place: &Place) -> Option<Location> {
    let span = analysis.span(place)?;
    let file_text = analysis.text(span.file);
    Some(Location {
        uri: Url::from_file_path(&place.path).ok()?,
        range: text::range(file_text, place.start, place.end),
    })
}
