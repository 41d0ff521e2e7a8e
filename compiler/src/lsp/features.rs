//! Hover, go to definition, find references, rename and formatting.

use super::analysis::{Analysis, Place};
use super::{convert, text, Server};
use crate::source::{FileId, Span};
use lsp_types::{
    CompletionOptions, HoverContents, HoverParams, HoverProviderCapability, Location,
    MarkupContent, MarkupKind, OneOf, PrepareRenameResponse, ReferenceParams, RenameOptions,
    RenameParams, ServerCapabilities, TextDocumentPositionParams, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextEdit, Url, WorkspaceEdit,
};
use std::collections::HashMap;

/// What the server offers.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "$".into()]),
            ..Default::default()
        }),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(lsp_types::CodeActionProviderCapability::Simple(true)),
        ..Default::default()
    }
}

/// A position in an open document, resolved against its analysis.
pub struct At<'a> {
    pub analysis: &'a Analysis,
    pub file: FileId,
    pub offset: usize,
}

impl<'a> At<'a> {
    pub fn new(server: &'a Server, params: &TextDocumentPositionParams) -> Option<At<'a>> {
        let (analysis, path) = server.analysis(&params.text_document.uri)?;
        let file = analysis.file(&path)?;
        let offset = text::offset(analysis.text(file), params.position);
        Some(At {
            analysis,
            file,
            offset,
        })
    }

    pub fn text(&self) -> &str {
        self.analysis.text(self.file)
    }

    /// The declaration of the name at this position.
    fn definition(&self) -> Option<Span> {
        self.analysis
            .facts
            .definition_at(self.file, self.offset as u32)
    }
}

/// The type of the expression under the cursor, and the declaration of the name there.
pub fn hover(server: &Server, params: HoverParams) -> Result<Option<lsp_types::Hover>, String> {
    let Some(at) = At::new(server, &params.text_document_position_params) else {
        return Ok(None);
    };
    let mut parts = Vec::new();
    let mut range = None;
    if let Some((span, ty)) = at.analysis.facts.type_at(at.file, at.offset as u32) {
        parts.push(format!("```omniflow\n{ty}\n```"));
        range = Some(text::range(
            at.text(),
            span.start as usize,
            span.end as usize,
        ));
    }
    if let Some(definition) = at.definition() {
        let shown = declaration_text(at.analysis, definition);
        let place = at.analysis.place(definition);
        let file_name = place
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        parts.push(format!("```omniflow\n{shown}\n```\n*{file_name}*"));
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(lsp_types::Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: parts.join("\n\n"),
        }),
        range,
    }))
}

/// The declaration's text: its line, or a block up to its closing brace (at most 20
/// lines).
fn declaration_text(analysis: &Analysis, definition: Span) -> String {
    let file_text = analysis.text(definition.file);
    let start = file_text[..definition.start as usize]
        .rfind('\n')
        .map_or(0, |idx| idx + 1);
    let mut depth = 0i32;
    let mut shown = Vec::new();
    for line in file_text[start..].lines().take(20) {
        shown.push(line.trim_end());
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if depth <= 0 {
            break;
        }
    }
    let indent = shown
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    shown
        .iter()
        .map(|l| l.get(indent..).unwrap_or(l.trim_start()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where the name under the cursor is declared (in another file or the stdlib too).
pub fn definition(
    server: &Server,
    params: lsp_types::GotoDefinitionParams,
) -> Result<Option<lsp_types::GotoDefinitionResponse>, String> {
    let Some(at) = At::new(server, &params.text_document_position_params) else {
        return Ok(None);
    };
    let Some(definition) = at.definition() else {
        return Ok(None);
    };
    let place = at.analysis.place(definition);
    Ok(convert::location(at.analysis, &place).map(lsp_types::GotoDefinitionResponse::Scalar))
}

/// Every use of the name under the cursor in the open documents and what they import.
pub fn references(server: &Server, params: ReferenceParams) -> Result<Vec<Location>, String> {
    let Some(at) = At::new(server, &params.text_document_position) else {
        return Ok(Vec::new());
    };
    let Some(definition) = at.definition() else {
        return Ok(Vec::new());
    };
    let declaration = at.analysis.place(definition);
    let mut found = uses(server, &declaration);
    if !params.context.include_declaration {
        found.retain(|(place, _)| *place != declaration);
    }
    Ok(found.into_iter().map(|(_, location)| location).collect())
}

/// The uses of a declaration across every analysis, each once, in file order.
fn uses(server: &Server, declaration: &Place) -> Vec<(Place, Location)> {
    let mut found: Vec<(Place, Location)> = Vec::new();
    let mut analyses: Vec<_> = server.analyses.iter().collect();
    analyses.sort_by(|a, b| a.0.cmp(b.0));
    for (_, analysis) in analyses {
        let analysis = analysis.as_ref();
        for place in analysis.uses_of(declaration) {
            if found.iter().any(|(p, _)| *p == place) {
                continue;
            }
            if let Some(location) = convert::location(analysis, &place) {
                found.push((place, location));
            }
        }
    }
    found.sort_by(|a, b| (&a.0.path, a.0.start).cmp(&(&b.0.path, b.0.start)));
    found
}

/// The declaration a rename at this position would change, when it may be renamed: a
/// schema, table, connection, policy, flow or node declared in a user file.
fn renamable(server: &Server, at: &At) -> Option<(Span, Place)> {
    let definition = at.definition()?;
    if !at.analysis.facts.declarations.contains(&definition) {
        return None;
    }
    let place = at.analysis.place(definition);
    (!server.is_stdlib(&place.path)).then_some((definition, place))
}

/// The range of the name under the cursor, if it may be renamed.
pub fn prepare_rename(
    server: &Server,
    params: TextDocumentPositionParams,
) -> Result<Option<PrepareRenameResponse>, String> {
    let Some(at) = At::new(server, &params) else {
        return Ok(None);
    };
    if renamable(server, &at).is_none() {
        return Err("only names declared in your own files can be renamed".into());
    }
    Ok(text::word_at(at.text(), at.offset)
        .map(|(start, end)| PrepareRenameResponse::Range(text::range(at.text(), start, end))))
}

/// Renames a declaration and every use of it.
pub fn rename(server: &Server, params: RenameParams) -> Result<Option<WorkspaceEdit>, String> {
    let Some(at) = At::new(server, &params.text_document_position) else {
        return Ok(None);
    };
    let new_name = params.new_name;
    let mut chars = new_name.chars();
    let is_name = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !is_name {
        return Err(format!(
            "`{new_name}` is not a name (letters, digits and `_`, not first a digit)"
        ));
    }
    if crate::syntax::KEYWORDS.contains(&new_name.as_str()) {
        return Err(format!("`{new_name}` is a reserved word"));
    }
    let Some((definition, declaration)) = renamable(server, &at) else {
        return Err("only names declared in your own files can be renamed".into());
    };
    let old_name = at
        .analysis
        .compilation
        .sources
        .slice(definition)
        .to_string();
    let mut changes: HashMap<Url, Vec<TextEdit>> = HashMap::new();
    for (place, location) in uses(server, &declaration) {
        if server.is_stdlib(&place.path) {
            return Err(format!("`{old_name}` is used in the stdlib; not renamed"));
        }
        changes.entry(location.uri).or_default().push(TextEdit {
            range: location.range,
            new_text: new_name.clone(),
        });
    }
    Ok(Some(WorkspaceEdit {
        changes: Some(changes),
        ..Default::default()
    }))
}

/// The document formatted as `omniflowc fmt` would write it: one edit of the whole text,
/// none when it is formatted already.
pub fn format(
    server: &Server,
    params: lsp_types::DocumentFormattingParams,
) -> Result<Option<Vec<TextEdit>>, String> {
    let Some(path) = super::path_of(&params.text_document.uri) else {
        return Ok(None);
    };
    let Some(current) = server.overlay.get(&path) else {
        return Ok(None);
    };
    let formatted =
        crate::fmt::format_source(&current).map_err(|err| format!("not formatted: {err}"))?;
    if formatted == *current {
        return Ok(Some(Vec::new()));
    }
    Ok(Some(vec![TextEdit {
        range: text::range(&current, 0, current.len()),
        new_text: formatted,
    }]))
}
