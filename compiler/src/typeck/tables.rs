//! Lookup tables: inline entries, or data loaded from a JSON or CSV file beside the flow.

use super::types::{resolve_type, Ty};
use super::{Env, TableInfo};
use crate::diagnostics::{codes, Diagnostic, Diagnostics};
use crate::resolve::{ModuleId, Program};
use crate::source::Span;
use crate::syntax::ast::{Expr, ExprKind, Literal, Setting, StringLit, TableDecl, TableSource};
pub use omniflow_ir::path::csv_fields;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Resolves a table's types and loads its entries.
pub fn table_info(
    program: &Program,
    env: &Env,
    module: ModuleId,
    decl: &TableDecl,
    diags: &mut Diagnostics,
) -> TableInfo {
    let key_ty = resolve_type(program, module, &decl.key_ty, diags);
    let value_ty = resolve_type(program, module, &decl.value_ty, diags);
    if !matches!(key_ty, Ty::String | Ty::Int | Ty::Error) {
        diags.push(
            Diagnostic::error(
                codes::TYPE_MISMATCH,
                decl.key_ty.span,
                "table keys must be string or int",
            )
            .label("not a key type")
            .help("declare the table as `table name: string -> T = ...`"),
        );
    }
    let entries = match &decl.source {
        TableSource::Inline(items) => inline_entries(program, env, module, items, &value_ty, diags),
        TableSource::File { path, options } => {
            file_entries(program, module, path, options, &value_ty, diags)
        }
    };
    TableInfo {
        key_ty,
        value_ty,
        entries,
    }
}

/// The entries of an inline table, each a literal of the value type.
fn inline_entries(
    program: &Program,
    env: &Env,
    module: ModuleId,
    items: &[(StringLit, Expr)],
    value_ty: &Ty,
    diags: &mut Diagnostics,
) -> BTreeMap<String, Value> {
    let mut entries = BTreeMap::new();
    for (key, value) in items {
        if let ExprKind::Lit(Literal::Decimal(text)) = &value.kind {
            if super::settings::constant_decimal(text).is_none() {
                super::settings::lossy_decimal(text, value.span, diags);
                continue;
            }
        }
        let mut cx = super::expr::ExprCx::new(program, env, module, Ty::Null, diags);
        cx.expect(
            value,
            value_ty,
            false,
            &format!("table entry `{}`", key.value),
        );
        if super::literal_json(value).is_none() {
            diags.push(
                Diagnostic::error(
                    codes::INVALID_TABLE,
                    value.span,
                    format!("table entry `{}` is not a literal", key.value),
                )
                .label("computed here")
                .help("inline table values are fixed: a string, number, boolean or null"),
            );
        }
        if let Some(json) = super::literal_json(value) {
            if entries.insert(key.value.clone(), json).is_some() {
                diags.push(
                    Diagnostic::error(
                        codes::DUPLICATE_DEFINITION,
                        key.span,
                        format!("table key `{}` is given twice", key.value),
                    )
                    .label("given again here")
                    .help("keep one entry per key"),
                );
            }
        }
    }
    entries
}

/// The entries of a table loaded from a JSON or CSV file beside the flow, checked against
/// the value type; none when the file cannot be read or parsed.
fn file_entries(
    program: &Program,
    module: ModuleId,
    path: &StringLit,
    options: &[Setting],
    value_ty: &Ty,
    diags: &mut Diagnostics,
) -> BTreeMap<String, Value> {
    let Some(text) = super::read_beside(program, module, path, "table file", diags) else {
        return BTreeMap::new();
    };
    let option = |name: &str| {
        options
            .iter()
            .find(|o| o.name.name == name)
            .and_then(|o| match &o.value.kind {
                ExprKind::Lit(Literal::Str(s)) => Some(s.clone()),
                _ => None,
            })
    };
    for opt in options {
        if !matches!(opt.name.name.as_str(), "key" | "value") {
            super::settings::unknown_setting(&opt.name, &["key", "value"], diags);
        }
    }
    let loaded = if path.value.ends_with(".csv") {
        load_csv(&text, option("key"), option("value"))
    } else {
        load_json(&text, option("key"), option("value"))
    };
    let entries = match loaded {
        Ok(Loaded {
            entries: mut loaded,
            duplicates,
        }) => {
            report_duplicates(&path.value, path.span, &duplicates, diags);
            // CSV cells are text; read them as the declared value type.
            if path.value.ends_with(".csv") {
                for value in loaded.values_mut() {
                    if let (Ty::Int, Value::String(text)) = (value_ty, &*value) {
                        if let Ok(n) = text.trim().parse::<i64>() {
                            *value = Value::from(n);
                        }
                    }
                    if let (Ty::Bool, Value::String(text)) = (value_ty, &*value) {
                        if let Ok(b) = text.trim().parse::<bool>() {
                            *value = Value::Bool(b);
                        }
                    }
                }
            }
            loaded
        }
        Err(reason) => {
            diags.push(
                Diagnostic::error(codes::INVALID_TABLE, path.span, format!("invalid table data in `{}`: {reason}", path.value))
                    .label("loaded from here")
                    .help("a JSON table is an object of key to value (or an array of objects with `key`/`value` options); a CSV table needs a header row and `key`/`value` column options"),
            );
            BTreeMap::new()
        }
    };
    check_loaded_values(program, path, &entries, value_ty, diags);
    entries
}

/// Reports (`E0210`) the first loaded value that is not a variant of the table's enum,
/// and the first that does not fit its value type.
fn check_loaded_values(
    program: &Program,
    path: &StringLit,
    entries: &BTreeMap<String, Value>,
    value_ty: &Ty,
    diags: &mut Diagnostics,
) {
    if let Ty::Enum(enum_ref) = value_ty {
        if let crate::syntax::ast::Item::Enum(decl) = program.item(*enum_ref) {
            let bad = entries.iter().find(|(_, v)| {
                v.as_str()
                    .is_some_and(|text| !decl.variants.iter().any(|var| var.name == text))
            });
            if let Some((key, value)) = bad {
                diags.push(
                    Diagnostic::error(
                        codes::INVALID_TABLE,
                        path.span,
                        format!(
                            "table entry `{key}` is {value}, not a variant of `{}`",
                            decl.name.name
                        ),
                    )
                    .label("loaded from here")
                    .help(format!(
                        "`{}` has the variants {}",
                        decl.name.name,
                        decl.variants
                            .iter()
                            .map(|v| format!("`{}`", v.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
        }
    }
    if let Some((key, value)) = entries.iter().find(|(_, v)| !value_fits(value_ty, v)) {
        diags.push(
            Diagnostic::error(
                codes::INVALID_TABLE,
                path.span,
                format!(
                    "table entry `{key}` is {value}, not {}",
                    value_ty.display(program)
                ),
            )
            .label("loaded from here")
            .help("fix the data file or the table's declared value type"),
        );
    }
}

fn value_fits(ty: &Ty, value: &Value) -> bool {
    match ty {
        Ty::String | Ty::Enum(_) | Ty::Datetime | Ty::Date => value.is_string(),
        Ty::Int => value.is_i64(),
        Ty::Decimal => value.is_number() || value.is_string(),
        Ty::Bool => value.is_boolean(),
        Ty::List(_) => value.is_array(),
        Ty::Record(_) | Ty::Money => value.is_object(),
        _ => true,
    }
}

fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A table file's entries, and the keys it gives more than once.
struct Loaded {
    entries: BTreeMap<String, Value>,
    duplicates: Vec<Duplicate>,
}

/// A key given twice: where first and where again (`line 3`, `row 2`).
struct Duplicate {
    key: String,
    first: String,
    again: String,
}

/// Most duplicate keys reported per table file.
const MAX_DUPLICATES_REPORTED: usize = 20;

fn report_duplicates(file: &str, span: Span, duplicates: &[Duplicate], diags: &mut Diagnostics) {
    for dup in duplicates.iter().take(MAX_DUPLICATES_REPORTED) {
        diags.push(
            Diagnostic::error(
                codes::DUPLICATE_TABLE_KEY,
                span,
                format!(
                    "table file `{file}` gives key `{}` twice ({} and {})",
                    dup.key, dup.first, dup.again
                ),
            )
            .label("loaded from here")
            .help(format!(
                "keep one entry per key in `{file}`: a lookup returns one value, the other would be lost"
            )),
        );
    }
    if duplicates.len() > MAX_DUPLICATES_REPORTED {
        diags.push(
            Diagnostic::error(
                codes::DUPLICATE_TABLE_KEY,
                span,
                format!(
                    "table file `{file}` gives {} more keys twice",
                    duplicates.len() - MAX_DUPLICATES_REPORTED
                ),
            )
            .label("loaded from here")
            .help(format!("keep one entry per key in `{file}`")),
        );
    }
}

/// Remembers where each key was first seen and collects the ones seen again.
#[derive(Default)]
struct Seen {
    first: HashMap<String, String>,
    duplicates: Vec<Duplicate>,
}

impl Seen {
    fn add(&mut self, key: &str, at: String) {
        match self.first.get(key) {
            Some(first) => self.duplicates.push(Duplicate {
                key: key.to_string(),
                first: first.clone(),
                again: at,
            }),
            None => {
                self.first.insert(key.to_string(), at);
            }
        }
    }
}

/// The keys of a JSON document's top-level object with their 1-based line numbers, in
/// order (serde_json keeps only the last value of a repeated key).
fn top_level_keys(text: &str) -> Vec<(String, usize)> {
    let bytes = text.as_bytes();
    let (mut depth, mut line, mut idx) = (0usize, 1usize, 0usize);
    let mut keys = Vec::new();
    while idx < bytes.len() {
        match bytes[idx] {
            b'\n' => line += 1,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let start = idx;
                idx += 1;
                while idx < bytes.len() && bytes[idx] != b'"' {
                    idx += if bytes[idx] == b'\\' { 2 } else { 1 };
                }
                let end = (idx + 1).min(bytes.len());
                let rest = text[end..].trim_start();
                if depth == 1 && rest.starts_with(':') {
                    if let Ok(key) = serde_json::from_str::<String>(&text[start..end]) {
                        keys.push((key, line));
                    }
                }
            }
            _ => {}
        }
        idx += 1;
    }
    keys
}

fn load_json(text: &str, key: Option<String>, value: Option<String>) -> Result<Loaded, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON ({e})"))?;
    match doc {
        Value::Object(map) => {
            let mut seen = Seen::default();
            for (key, line) in top_level_keys(text) {
                seen.add(&key, format!("line {line}"));
            }
            Ok(Loaded {
                entries: map.into_iter().collect(),
                duplicates: seen.duplicates,
            })
        }
        Value::Array(rows) => {
            let (Some(key), Some(value)) = (key, value) else {
                return Err(
                    "an array table needs `key = \"...\"` and `value = \"...\"` options".into(),
                );
            };
            let mut out = BTreeMap::new();
            let mut seen = Seen::default();
            for (idx, row) in rows.iter().enumerate() {
                let k = row
                    .get(&key)
                    .and_then(key_text)
                    .ok_or(format!("row {idx} has no `{key}`"))?;
                let v = row
                    .get(&value)
                    .cloned()
                    .ok_or(format!("row {idx} has no `{value}`"))?;
                seen.add(&k, format!("row {}", idx + 1));
                out.insert(k, v);
            }
            Ok(Loaded {
                entries: out,
                duplicates: seen.duplicates,
            })
        }
        _ => Err("expected an object or an array".into()),
    }
}

fn load_csv(text: &str, key: Option<String>, value: Option<String>) -> Result<Loaded, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header = csv_fields(lines.next().ok_or("the file is empty")?.1)
        .map_err(|why| format!("the header: {why}"))?;
    let column = |name: &Option<String>, fallback: usize| match name {
        Some(name) => header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or(format!("no column `{name}` in the header")),
        None => Ok(fallback),
    };
    let (key_col, value_col) = (column(&key, 0)?, column(&value, 1)?);
    let mut out = BTreeMap::new();
    let mut seen = Seen::default();
    for (idx, line) in lines {
        let fields = csv_fields(line).map_err(|why| format!("line {}: {why}", idx + 1))?;
        let k = fields
            .get(key_col)
            .ok_or(format!("line {} has no key column", idx + 1))?;
        let v = fields
            .get(value_col)
            .ok_or(format!("line {} has no value column", idx + 1))?;
        seen.add(k, format!("line {}", idx + 1));
        out.insert(k.clone(), Value::String(v.clone()));
    }
    Ok(Loaded {
        entries: out,
        duplicates: seen.duplicates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_keys_skip_nested_objects_and_escapes() {
        let text = "{\n  \"a\": {\"a\": 1},\n  \"b\\\"c\": [\"a\"],\n  \"a\": 2\n}";
        let keys = top_level_keys(text);
        assert_eq!(
            keys,
            vec![
                ("a".to_string(), 2),
                ("b\"c".to_string(), 3),
                ("a".to_string(), 4)
            ]
        );
    }

    #[test]
    fn csv_duplicates_name_their_lines() {
        let loaded = load_csv("k,v\nx,1\n\ny,2\nx,3\n", None, None).unwrap();
        assert_eq!(loaded.duplicates.len(), 1);
        assert_eq!(loaded.duplicates[0].first, "line 2");
        assert_eq!(loaded.duplicates[0].again, "line 5");
    }
}
