//! Completion: fields after `$.` and after a name bound to a record, a connection's
//! operations after its name, and inside a record body its fields, the names in scope and
//! the built-in functions; elsewhere the declarations' keywords and the module's names.
//! Scopes come from the document's last compilation, so completion works while the text
//! being typed does not parse.

use super::{text, Server};
use crate::facts::{Named, Scope, Typed};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionParams, CompletionResponse, Documentation,
    InsertTextFormat,
};
use omniflow_mapping::builtins::{Builtin, BUILTINS};

const KEYWORDS: &[&str] = &[
    "use",
    "schema",
    "enum",
    "connection",
    "connector",
    "table",
    "policy",
    "ledger",
    "flow",
    "source",
    "map",
    "filter",
    "route",
    "sink",
    "test",
];

/// The completions at a position.
pub fn complete(
    server: &Server,
    params: CompletionParams,
) -> Result<Option<CompletionResponse>, String> {
    let position = params.text_document_position;
    let Some(path) = super::path_of(&position.text_document.uri) else {
        return Ok(None);
    };
    let Some(current) = server.overlay.get(&path) else {
        return Ok(None);
    };
    let offset = text::offset(&current, position.position);
    let line_start = current[..offset].rfind('\n').map_or(0, |idx| idx + 1);
    let before = &current[line_start..offset];
    let typed = before
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum::<usize>();
    let head = &before[..before.len() - typed];
    let analysis = server.parsed_analysis(&path);
    let scope = analysis.and_then(|a| {
        let file = a.file(&path)?;
        let compiled = text::offset_before_edit(a.text(file), &current, offset);
        a.facts.scope_at(file, compiled as u32)
    });
    let names: Vec<&Named> = analysis
        .map(|a| a.facts.names.iter().filter(|n| n.module == path).collect())
        .unwrap_or_default();
    let items = match head.strip_suffix('.') {
        Some(base) => after_dot(base, scope, &names),
        None => match scope {
            Some(scope) => in_record(scope, &names),
            None => at_top(&names),
        },
    };
    Ok(Some(CompletionResponse::Array(items)))
}

/// Members of what is written before a `.`.
fn after_dot(base: &str, scope: Option<&Scope>, names: &[&Named]) -> Vec<CompletionItem> {
    if base.ends_with('$') {
        return scope.map_or_else(Vec::new, |s| fields(&s.input, ""));
    }
    let word_len = base
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum::<usize>();
    let word = &base[base.len() - word_len..];
    if let Some(local) = scope.and_then(|s| s.locals.iter().rev().find(|l| l.name == word)) {
        return fields(&local.fields, "");
    }
    match names.iter().find(|n| n.name == word) {
        Some(named) if named.kind == "connection" => named
            .members
            .iter()
            .map(|op| CompletionItem {
                label: op.name.clone(),
                kind: Some(CompletionItemKind::METHOD),
                detail: Some(op.ty.clone()),
                ..Default::default()
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Inside `Schema { ... }`: the record's fields (as `name = `), the names bound so far,
/// the tables and the built-in functions.
fn in_record(scope: &Scope, names: &[&Named]) -> Vec<CompletionItem> {
    let mut items = fields(&scope.output, " = ");
    items.extend(scope.locals.iter().map(|local| CompletionItem {
        label: local.name.clone(),
        kind: Some(CompletionItemKind::VARIABLE),
        detail: Some(local.ty.clone()),
        ..Default::default()
    }));
    items.extend(
        names
            .iter()
            .filter(|n| n.kind == "table")
            .map(|n| named_item(n)),
    );
    items.extend(BUILTINS.iter().map(builtin_item));
    items
}

/// Outside record bodies: keywords and the names the module sees.
fn at_top(names: &[&Named]) -> Vec<CompletionItem> {
    let mut items: Vec<CompletionItem> = KEYWORDS
        .iter()
        .map(|k| CompletionItem {
            label: (*k).to_string(),
            kind: Some(CompletionItemKind::KEYWORD),
            ..Default::default()
        })
        .collect();
    items.extend(names.iter().map(|n| named_item(n)));
    items
}

fn fields(list: &[Typed], suffix: &str) -> Vec<CompletionItem> {
    list.iter()
        .map(|field| CompletionItem {
            label: field.name.clone(),
            kind: Some(CompletionItemKind::FIELD),
            detail: Some(field.ty.clone()),
            insert_text: (!suffix.is_empty()).then(|| format!("{}{suffix}", field.name)),
            ..Default::default()
        })
        .collect()
}

fn named_item(named: &Named) -> CompletionItem {
    let kind = match named.kind {
        "schema" => CompletionItemKind::STRUCT,
        "enum" => CompletionItemKind::ENUM,
        "connection" | "connector" => CompletionItemKind::MODULE,
        "table" => CompletionItemKind::VARIABLE,
        "flow" => CompletionItemKind::CLASS,
        _ => CompletionItemKind::REFERENCE,
    };
    CompletionItem {
        label: named.name.clone(),
        kind: Some(kind),
        detail: Some(named.detail.clone()),
        ..Default::default()
    }
}

fn builtin_item(builtin: &Builtin) -> CompletionItem {
    CompletionItem {
        label: builtin.name.to_string(),
        kind: Some(CompletionItemKind::FUNCTION),
        detail: Some(signature(builtin)),
        documentation: Some(Documentation::String(builtin.doc.to_string())),
        insert_text: Some(format!("{}($0)", builtin.name)),
        insert_text_format: Some(InsertTextFormat::SNIPPET),
        ..Default::default()
    }
}

/// `round(num, int?) -> decimal`.
fn signature(builtin: &Builtin) -> String {
    let count = builtin.params.len();
    let params: Vec<String> = builtin
        .params
        .iter()
        .enumerate()
        .map(|(idx, param)| {
            let mut shown = format!("{param:?}").to_lowercase();
            if idx + builtin.optional >= count {
                shown.push('?');
            }
            if builtin.variadic && idx + 1 == count {
                shown.push_str("...");
            }
            shown
        })
        .collect();
    let ret = match builtin.ret {
        omniflow_mapping::builtins::Ret::Fixed(fixed) => format!("{fixed:?}").to_lowercase(),
        other => format!("{other:?}").to_lowercase(),
    };
    format!("{}({}) -> {ret}", builtin.name, params.join(", "))
}
