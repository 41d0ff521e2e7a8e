//! Quick fixes for the diagnostics that carry a suggestion: a did-you-mean replaces the
//! misspelled name, a sink without `idempotency_key` or `dead_letter` gets the setting its
//! help names.

use super::analysis::Analysis;
use super::{convert, text, Server};
use crate::diagnostics::{codes, Diagnostic};
use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, TextEdit, Url, WorkspaceEdit,
};
use std::collections::HashMap;

/// The fixes for the diagnostics in the requested range.
pub fn code_actions(
    server: &Server,
    params: CodeActionParams,
) -> Result<Option<Vec<CodeActionOrCommand>>, String> {
    let uri = params.text_document.uri;
    let Some((analysis, path)) = server.analysis(&uri) else {
        return Ok(None);
    };
    let Some(file) = analysis.file(&path) else {
        return Ok(None);
    };
    let file_text = analysis.text(file);
    // Edits are placed in the compiled text: none while newer text waits to be compiled.
    if server.overlay.get(&path).as_deref() != Some(file_text) {
        return Ok(Some(Vec::new()));
    }
    let start = text::offset(file_text, params.range.start);
    let end = text::offset(file_text, params.range.end);
    let mut actions = Vec::new();
    for diagnostic in analysis.diagnostics_in(file) {
        let span = diagnostic.span();
        if (span.end as usize) < start || (span.start as usize) > end {
            continue;
        }
        let Some((title, edit)) = fix(file_text, diagnostic) else {
            continue;
        };
        actions.push(CodeActionOrCommand::CodeAction(action(
            analysis, &uri, diagnostic, title, edit,
        )));
    }
    Ok(Some(actions))
}

fn action(
    analysis: &Analysis,
    uri: &Url,
    diagnostic: &Diagnostic,
    title: String,
    edit: TextEdit,
) -> CodeAction {
    CodeAction {
        title,
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: Some(vec![convert::diagnostic(analysis, diagnostic)]),
        edit: Some(WorkspaceEdit {
            changes: Some(HashMap::from([(uri.clone(), vec![edit])])),
            ..Default::default()
        }),
        is_preferred: Some(true),
        ..Default::default()
    }
}

/// The fix a diagnostic suggests, as a title and one edit of `file_text`.
pub fn fix(file_text: &str, diagnostic: &Diagnostic) -> Option<(String, TextEdit)> {
    let help = diagnostic.help.as_deref()?;
    let span = diagnostic.span();
    let (start, end) = (span.start as usize, span.end as usize);
    if let Some(name) = quoted_after(help, "did you mean `") {
        let written = file_text.get(start..end)?;
        let is_name =
            !written.is_empty() && written.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !is_name {
            return None;
        }
        return Some((
            format!("Replace `{written}` with `{name}`"),
            TextEdit {
                range: text::range(file_text, start, end),
                new_text: name.to_string(),
            },
        ));
    }
    let adds_setting = diagnostic.code == codes::MISSING_IDEMPOTENCY_KEY
        || diagnostic.code == codes::MISSING_ERROR_PATH;
    if !adds_setting {
        return None;
    }
    let setting = quoted_after(help, "add `")?;
    let (at, new_text) = setting_insertion(file_text, end, setting);
    Some((
        format!("Add `{setting}`"),
        TextEdit {
            range: text::range(file_text, at, at),
            new_text,
        },
    ))
}

/// The text between `prefix` and the next backtick.
fn quoted_after<'a>(help: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &help[help.find(prefix)? + prefix.len()..];
    Some(&rest[..rest.find('`')?])
}

/// Where and what to insert so that the statement whose name ends at `after` gets
/// `setting`: first in its settings block, or a new block at the end of its line.
fn setting_insertion(file_text: &str, after: usize, setting: &str) -> (usize, String) {
    let line_start = file_text[..after].rfind('\n').map_or(0, |idx| idx + 1);
    let indent: String = file_text[line_start..]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    let line_end = file_text[after..]
        .find('\n')
        .map_or(file_text.len(), |idx| after + idx);
    let line = &file_text[after..line_end];
    let code_end = line.find("//").map_or(line_end, |idx| after + idx);
    match file_text[after..code_end].find('{') {
        Some(idx) => {
            let open = after + idx + 1;
            if file_text[open..code_end].trim().is_empty() {
                (open, format!("\n{indent}  {setting}"))
            } else {
                (open, format!(" {setting},"))
            }
        }
        None => {
            let end = after + file_text[after..code_end].trim_end().len();
            (end, format!(" {{ {setting} }}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_goes_first_into_the_block_or_into_a_new_one() {
        let text = "  sink out = c.write(x) {\n    path = \"a\"\n  }\n";
        let after = text.find("out").unwrap() + 3;
        let (at, new) = setting_insertion(text, after, "idempotency_key = id");
        let fixed = format!("{}{new}{}", &text[..at], &text[at..]);
        assert_eq!(
            fixed,
            "  sink out = c.write(x) {\n    idempotency_key = id\n    path = \"a\"\n  }\n"
        );

        let text = "  sink out = c.write(x) { path = \"a\" }\n";
        let (at, new) = setting_insertion(text, after, "idempotency_key = id");
        let fixed = format!("{}{new}{}", &text[..at], &text[at..]);
        assert_eq!(
            fixed,
            "  sink out = c.write(x) { idempotency_key = id, path = \"a\" }\n"
        );

        let text = "  sink out = c.write(x) // the copy\n";
        let (at, new) = setting_insertion(text, after, "idempotency_key = id");
        let fixed = format!("{}{new}{}", &text[..at], &text[at..]);
        assert_eq!(
            fixed,
            "  sink out = c.write(x) { idempotency_key = id } // the copy\n"
        );
    }
}
