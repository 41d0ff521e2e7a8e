//! The human format: miette's graphical report per diagnostic, then a summary line. A
//! diagnostic on a very long line, or one miette cannot draw, gets a plain rendering.

use crate::diagnostics::{Diagnostic, Severity};
use crate::source::Sources;
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceCode, SourceSpan};
use std::fmt;

/// Longest source line drawn in a snippet; a label on a longer line is shown plainly.
pub const MAX_SHOWN_LINE: usize = 400;

/// Lines kept around a diagnostic's labels for miette (which shows fewer).
const WINDOW_LINES: usize = 4;

/// Most lines between a diagnostic's first and last label drawn as one snippet; labels
/// further apart (a name declared twice, far from the first) are shown plainly, each with
/// its position, so the text between them is never read.
const MAX_SNIPPET_LINES: usize = 40;

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
    for diagnostic in diagnostics {
        let starts = sources.get(diagnostic.span().file).line_starts();
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
            let (start, end) = file.line_bounds(label.span.start as usize);
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
    if line_of(last) - line_of(first.min(last)) > MAX_SNIPPET_LINES {
        return None;
    }
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

/// A narrow rendering: code, message, position, labels (with a short excerpt) and help.
fn plain(diagnostic: &Diagnostic, sources: &Sources) -> String {
    let span = diagnostic.span();
    let file = sources.get(span.file);
    let (line, col) = sources.line_col(span.file, span.start);
    let mut out = format!(
        "{}({})\n\n  × {}\n  --> {}:{line}:{col}\n",
        diagnostic.code.id, diagnostic.code.name, diagnostic.message, file.name
    );
    let excerpt = excerpt(file, span.start as usize, 60);
    if !excerpt.is_empty() {
        out.push_str(&format!("   | {excerpt}\n"));
    }
    for label in &diagnostic.labels {
        let Some(message) = &label.message else {
            continue;
        };
        match label.primary {
            true => out.push_str(&format!("   = {message}\n")),
            false => {
                let (line, col) = sources.line_col(label.span.file, label.span.start);
                let name = &sources.get(label.span.file).name;
                out.push_str(&format!("   = {message} ({name}:{line}:{col})\n"));
            }
        }
    }
    if let Some(help) = &diagnostic.help {
        out.push_str(&format!("  help: {help}\n"));
    }
    out
}

/// Up to `width` characters of the line at `offset`, starting a little before it; reads
/// only those characters, however long the line.
fn excerpt(file: &crate::source::SourceFile, offset: usize, width: usize) -> String {
    let text = &*file.text;
    let (line_start, line_end) = file.line_bounds(offset);
    let mut offset = offset.clamp(line_start, line_end);
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[line_start..offset];
    let from = before
        .char_indices()
        .rev()
        .nth(width / 4 - 1)
        .map_or(line_start, |(idx, _)| line_start + idx);
    let rest = &text[from..line_end];
    let shown_end = rest
        .char_indices()
        .nth(width)
        .map_or(rest.len(), |(idx, _)| idx);
    let mut out = String::new();
    if from > line_start {
        out.push_str("...");
    }
    out.push_str(rest[..shown_end].trim_end());
    if shown_end < rest.len() {
        out.push_str("...");
    }
    out
}
