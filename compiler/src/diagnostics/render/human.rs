//! The human format: miette's graphical report per diagnostic, then a summary line. A
//! diagnostic on a very long line, or one miette cannot draw, gets a plain rendering.

use crate::diagnostics::{Diagnostic, Severity};
use crate::source::{FileId, Sources};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceCode, SourceSpan};
use std::collections::HashMap;
use std::fmt;

/// Longest source line drawn in a snippet; a label on a longer line is shown plainly.
pub const MAX_SHOWN_LINE: usize = 400;

/// Lines kept around a diagnostic's labels for miette (which shows fewer).
const WINDOW_LINES: usize = 4;

struct View<'a> {
    diagnostic: &'a Diagnostic,
    source: Window<'a>,
}

/// The lines of a file around one diagnostic, answering miette with the file's own
/// offsets and line numbers: miette never copies or scans the whole file, so many
/// diagnostics on a large file render in linear time.
struct Window<'a> {
    name: &'a str,
    text: &'a str,
    start: usize,
    end: usize,
    /// 0-based line number of `start`.
    first_line: usize,
}

impl SourceCode for Window<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let offset = span
            .offset()
            .checked_sub(self.start)
            .ok_or(miette::MietteError::OutOfBounds)?;
        let window: &'b str = self
            .text
            .get(self.start..self.end)
            .ok_or(miette::MietteError::OutOfBounds)?;
        let local = SourceSpan::new(offset.into(), span.len());
        let contents = window.read_span(&local, context_lines_before, context_lines_after)?;
        let shown = SourceSpan::new(
            (contents.span().offset() + self.start).into(),
            contents.span().len(),
        );
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.to_string(),
            contents.data(),
            shown,
            contents.line() + self.first_line,
            contents.column(),
            contents.line_count(),
        )))
    }
}

impl fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl fmt::Display for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for View<'_> {}

impl miette::Diagnostic for View<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(format!(
            "{}({})",
            self.diagnostic.code.id, self.diagnostic.code.name
        )))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let file = self.diagnostic.span().file;
        let labels = self
            .diagnostic
            .labels
            .iter()
            .filter(move |label| label.span.file == file)
            .map(|label| {
                let span = SourceSpan::new((label.span.start as usize).into(), label.span.len());
                if label.primary {
                    LabeledSpan::new_primary_with_span(label.message.clone(), span)
                } else {
                    LabeledSpan::new_with_span(label.message.clone(), span)
                }
            });
        Some(Box::new(labels))
    }
}

/// Renders every diagnostic with miette and ends with a count line.
pub fn render(diagnostics: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    let mut line_starts: HashMap<FileId, Vec<usize>> = HashMap::new();
    for diagnostic in diagnostics {
        let file = diagnostic.span().file;
        let starts = line_starts
            .entry(file)
            .or_insert_with(|| line_starts_of(&sources.get(file).text));
        match graphical(&handler, diagnostic, sources, starts) {
            Some(report) => out.push_str(&report),
            None => out.push_str(&plain(diagnostic, sources)),
        }
        out.push('\n');
    }
    out
}

/// miette's report, or `None` when a label sits on a line too long to draw or miette
/// fails (its renderer has panicked on some long lines).
fn graphical(
    handler: &GraphicalReportHandler,
    diagnostic: &Diagnostic,
    sources: &Sources,
    line_starts: &[usize],
) -> Option<String> {
    let file = sources.get(diagnostic.span().file);
    let on_long_line = diagnostic.labels.iter().any(|label| {
        label.span.file == diagnostic.span().file && {
            let (start, end) = line_bounds(&file.text, label.span.start as usize);
            end - start > MAX_SHOWN_LINE
        }
    });
    if on_long_line {
        return None;
    }
    let (first, last) = diagnostic
        .labels
        .iter()
        .filter(|label| label.span.file == diagnostic.span().file)
        .fold((usize::MAX, 0), |(first, last), label| {
            (
                first.min(label.span.start as usize),
                last.max(label.span.end as usize),
            )
        });
    let line_of = |offset: usize| line_starts.partition_point(|start| *start <= offset).max(1) - 1;
    let first_line = line_of(first.min(last)).saturating_sub(WINDOW_LINES);
    let end_line = line_of(last) + WINDOW_LINES + 1;
    let view = View {
        diagnostic,
        source: Window {
            name: &file.name,
            text: &file.text,
            start: line_starts.get(first_line).copied().unwrap_or(0),
            end: line_starts
                .get(end_line)
                .copied()
                .unwrap_or(file.text.len()),
            first_line,
        },
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut report = String::new();
        handler.render_report(&mut report, &view).ok()?;
        Some(report)
    }))
    .ok()
    .flatten()
}

/// The byte offset where each line starts.
fn line_starts_of(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(idx, _)| idx + 1))
        .collect()
}

/// The byte range of the line holding an offset, without its newline.
fn line_bounds(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let start = text.as_bytes()[..offset]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |idx| idx + 1);
    let end = text.as_bytes()[offset..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(text.len(), |idx| offset + idx);
    (start, end)
}

/// A narrow rendering: code, message, position, labels (with a short excerpt) and help.
fn plain(diagnostic: &Diagnostic, sources: &Sources) -> String {
    let span = diagnostic.span();
    let file = sources.get(span.file);
    let (line, col) = sources.line_col(span.file, span.start);
    let mut out = format!(
        "{}({})\n\n  × {}\n  --> {}:{line}:{col}\n",
        diagnostic.code.id, diagnostic.code.name, diagnostic.message, file.name
    );
    let excerpt = excerpt(&file.text, span.start as usize, 60);
    if !excerpt.is_empty() {
        out.push_str(&format!("   | {excerpt}\n"));
    }
    for message in diagnostic.labels.iter().filter_map(|l| l.message.as_ref()) {
        out.push_str(&format!("   = {message}\n"));
    }
    if let Some(help) = &diagnostic.help {
        out.push_str(&format!("  help: {help}\n"));
    }
    out
}

/// Up to `width` characters of the line at `offset`, starting a little before it.
fn excerpt(text: &str, offset: usize, width: usize) -> String {
    let (line_start, line_end) = line_bounds(text, offset);
    let line = text.get(line_start..line_end).unwrap_or("");
    let column = text
        .get(line_start..offset.min(line_end))
        .unwrap_or("")
        .chars()
        .count();
    let skip = column.saturating_sub(width / 4);
    let shown: String = line.chars().skip(skip).take(width).collect();
    let mut out = String::new();
    if skip > 0 {
        out.push_str("...");
    }
    out.push_str(shown.trim_end());
    if line.chars().count() > skip + width {
        out.push_str("...");
    }
    out
}
