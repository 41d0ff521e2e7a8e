//! Template variables against types: every `a.b.c` a minijinja template reads is checked
//! against the type of `a`, so a template that names a field the message does not have
//! is refused (`E0304`) instead of rendering empty or dead-lettering every message.
//! Connector options (an http sink's `path` and `body`, a bus `subject`, an OData
//! `path`) are rendered over the message itself, so their variables are its fields.

use super::types::Ty;
use super::Env;
use crate::diagnostics::{codes, suggest, Diagnostic, Diagnostics};
use crate::resolve::Program;
use crate::source::Span;

/// Functions minijinja offers every template; they are not variables.
pub(super) const GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "lipsum",
    "cycler",
    "joiner",
];

/// True when `text` would be rendered as a template.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// Reports (`E0308`) a template longer than [`crate::ir::expr::MAX_TEMPLATE_BYTES`], and
/// answers true then: minijinja's parser recurses over a template's nesting (a long enough
/// one overflows the stack) and its checks slow down faster than it grows, so no template
/// of any kind is compiled past the limit. `help` says how to shorten one in its place.
pub fn too_large(text: &str, span: Span, help: &str, diags: &mut Diagnostics) -> bool {
    let limit = crate::ir::expr::MAX_TEMPLATE_BYTES;
    if text.len() <= limit {
        return false;
    }
    diags.push(
        Diagnostic::error(
            codes::TEMPLATE_TOO_LARGE,
            span,
            format!(
                "template of {} bytes, over the {limit} byte limit",
                text.len()
            ),
        )
        .label("too large a template")
        .help(help.to_string()),
    );
    true
}

/// The help of [`too_large`] for a template rendered over a message or a record: the long
/// parts belong in the mapping before it.
pub const SHORTEN_OPTION: &str =
    "compute the long parts into fields of the record in a map before this step, and render those fields here";

/// The variable paths a template reads (`input.id` as `["input", "id"]`), sorted; the
/// parse error when it does not parse.
pub fn variable_paths(text: &str) -> Result<Vec<Vec<String>>, minijinja::Error> {
    Ok(paths_of(&template_env().template_from_str(text)?))
}

/// [`variable_paths`] of a template already compiled.
pub fn paths_of(template: &minijinja::Template<'_, '_>) -> Vec<Vec<String>> {
    let mut paths: Vec<Vec<String>> = template
        .undeclared_variables(true)
        .into_iter()
        .map(|path| path.split('.').map(String::from).collect())
        .collect();
    paths.sort();
    paths
}

/// The filters a template applies (`x | name`) that minijinja does not know: the runtime
/// renders with the same environment, where each would fail every message.
pub fn unknown_filters(text: &str) -> Vec<String> {
    let mut unknown: Vec<String> = Vec::new();
    for name in filter_names(text) {
        let probe = format!("{{{{ none | {name} }}}}");
        let missing = template_env()
            .render_str(&probe, ())
            .is_err_and(|err| err.kind() == minijinja::ErrorKind::UnknownFilter);
        if missing && !unknown.contains(&name) {
            unknown.push(name);
        }
    }
    unknown
}

/// The names after each `|` inside the template's `{{ }}` and `{% %}` blocks, skipping
/// quoted strings.
fn filter_names(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut names = Vec::new();
    let (mut at, mut in_block, mut quote) = (0, false, None::<u8>);
    while at < bytes.len() {
        let byte = bytes[at];
        match quote {
            Some(_) if byte == b'\\' => at += 1,
            Some(q) if byte == q => quote = None,
            Some(_) => {}
            None if !in_block
                && (bytes[at..].starts_with(b"{{") || bytes[at..].starts_with(b"{%")) =>
            {
                in_block = true;
                at += 1;
            }
            None if in_block
                && (bytes[at..].starts_with(b"}}") || bytes[at..].starts_with(b"%}")) =>
            {
                in_block = false;
                at += 1;
            }
            None if in_block && (byte == b'"' || byte == b'\'') => quote = Some(byte),
            None if in_block && byte == b'|' => {
                let rest = &text[at + 1..];
                let trimmed = rest.trim_start();
                let name: String = trimmed
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.push(name);
                }
            }
            None => {}
        }
        at += 1;
    }
    names
}

/// Reports (`E0302`) each filter of `text` minijinja does not know.
pub fn check_filters(text: &str, span: Span, diags: &mut Diagnostics) {
    for name in unknown_filters(text) {
        diags.push(
            Diagnostic::error(
                codes::INVALID_TEMPLATE,
                span,
                format!("invalid template: unknown filter `{name}`"),
            )
            .label("no such filter")
            .help("use one of minijinja's built-in filters: `upper`, `lower`, `trim`, `replace`, `default`, `urlencode`, `tojson`, ..."),
        );
    }
}

/// Reports (`E0305`) a template in an option the runtime uses as plain text.
pub fn plain_option(key: &str, text: &str, span: Span, diags: &mut Diagnostics) {
    if !is_template(text) {
        return;
    }
    diags.push(
        Diagnostic::error(
            codes::TEMPLATE_NOT_RENDERED,
            span,
            format!("`{key}` is not rendered as a template"),
        )
        .label("the runtime uses this text as written, braces included")
        .help(format!(
            "write `{key}` as plain text; templates work in an http sink's `path` and `body`, a bus `subject` and an OData `path`"
        )),
    );
}

/// Checks a connector option rendered over the message (of type `message`): each
/// variable must be one of its fields (`E0303`), each path a field of its type (`E0304`).
pub fn message_option(
    program: &Program,
    env: &Env,
    message: &Ty,
    key: &str,
    text: &str,
    span: Span,
    diags: &mut Diagnostics,
) {
    if !is_template(text) || too_large(text, span, SHORTEN_OPTION, diags) {
        return;
    }
    let paths = match variable_paths(text) {
        Ok(paths) => paths,
        Err(err) => return invalid(&err, text, span, diags),
    };
    check_filters(text, span, diags);
    let Ty::Record(item) = message else {
        return;
    };
    let Some(schema) = env.schemas.get(item) else {
        return;
    };
    for path in paths {
        let root = path[0].as_str();
        if GLOBALS.contains(&root) {
            continue;
        }
        let Some(field) = schema.field(root) else {
            let near = |name: &str| {
                schema
                    .field(name)
                    .map(|f| f.name.as_str())
                    .or_else(|| suggest::nearest(name, schema.field_names()))
            };
            let help = match (root, path.get(1).and_then(|first| near(first))) {
                ("input", Some(field)) => format!(
                    "`{key}` is rendered over the message itself: write `{{{{ {} }}}}`",
                    std::iter::once(field)
                        .chain(path[2..].iter().map(String::as_str))
                        .collect::<Vec<_>>()
                        .join(".")
                ),
                _ => suggest::did_you_mean(
                    root,
                    schema.field_names(),
                    &format!(
                        "`{key}` is rendered over the message; `{}` has the fields {}",
                        schema.name,
                        schema.field_names().join(", ")
                    ),
                ),
            };
            diags.push(
                Diagnostic::error(
                    codes::UNKNOWN_TEMPLATE_VARIABLE,
                    variable_span(text, span, root),
                    format!("template uses unknown variable `{root}`"),
                )
                .label(format!("`{}` messages have no field `{root}`", schema.name))
                .help(help),
            );
            continue;
        };
        walk(program, env, &field.ty, &path, text, span, diags);
    }
}

/// Follows `path[1..]` through `ty` (the type of `path[0]`), reporting the first step
/// the type does not have (`E0304`).
pub fn walk(
    program: &Program,
    env: &Env,
    ty: &Ty,
    path: &[String],
    text: &str,
    span: Span,
    diags: &mut Diagnostics,
) {
    let mut ty = ty.clone();
    for (depth, step) in path.iter().enumerate().skip(1) {
        let (owner, fields): (String, Vec<&str>) = match &ty {
            Ty::Json | Ty::Error | Ty::Never | Ty::Null => return,
            Ty::Record(item) => match env.schemas.get(item) {
                Some(schema) => match schema.field(step) {
                    Some(field) => {
                        ty = field.ty.clone();
                        continue;
                    }
                    None => (format!("`{}`", schema.name), schema.field_names()),
                },
                None => return,
            },
            Ty::Money => match step.as_str() {
                "amount" => {
                    ty = Ty::Int;
                    continue;
                }
                "currency" => {
                    ty = Ty::String;
                    continue;
                }
                _ => ("money".to_string(), vec!["amount", "currency"]),
            },
            Ty::List(elem) if step.parse::<usize>().is_ok() => {
                ty = (**elem).clone();
                continue;
            }
            other => (other.display(program), Vec::new()),
        };
        let read = path[..depth].join(".");
        let help = if fields.is_empty() {
            format!("`{read}` is {owner}, which has no fields; use `{{{{ {read} }}}}`")
        } else {
            suggest::did_you_mean(
                step,
                fields.iter().copied(),
                &format!("{owner} has the fields {}", fields.join(", ")),
            )
        };
        diags.push(
            Diagnostic::error(
                codes::UNKNOWN_TEMPLATE_FIELD,
                variable_span(text, span, &format!("{read}.{step}")),
                format!("template reads `{read}.{step}`, but {owner} has no field `{step}`"),
            )
            .label(format!("not a field of {owner}"))
            .help(help),
        );
        return;
    }
}

/// Reports (`E0302`) a template that does not parse, at the error's place when the
/// literal is written verbatim.
pub(super) fn invalid(err: &minijinja::Error, text: &str, span: Span, diags: &mut Diagnostics) {
    let detail = err.detail().unwrap_or("syntax error");
    let verbatim = literal_is_verbatim(text, span);
    let at = match err.range() {
        Some(range) if verbatim && range.start < text.len() => {
            let start = span.start as usize + 1 + range.start;
            let end = span.start as usize + 1 + range.end.min(text.len()).max(range.start + 1);
            Span::new(span.file, start, end)
        }
        _ => span,
    };
    diags.push(
        Diagnostic::error(codes::INVALID_TEMPLATE, at, format!("invalid template: {detail}"))
            .label("this template does not parse")
            .help("templates use minijinja syntax: `{{ name }}`, `{{ value | upper }}`, `{% if x %}...{% endif %}`"),
    );
}

/// True when a string literal's source is its value between quotes (no escapes), so
/// offsets in the value map one to one onto the source.
fn literal_is_verbatim(value: &str, span: Span) -> bool {
    span.len() == value.len() + 2
}

/// The span of a template variable's first use inside `{{ }}` or `{% %}`, or the whole
/// literal when the position cannot be mapped.
pub(super) fn variable_span(value: &str, span: Span, name: &str) -> Span {
    if !literal_is_verbatim(value, span) {
        return span;
    }
    let bytes = value.as_bytes();
    let mut search = 0;
    while let Some(found) = value[search..].find(name) {
        let start = search + found;
        let end = start + name.len();
        let before_ok = start == 0
            || !(bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b'.');
        let after_ok =
            end == bytes.len() || !(bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_');
        let inside = value[..start]
            .rfind("{{")
            .or(value[..start].rfind("{%"))
            .is_some_and(|open| {
                !value[open..start].contains("}}") && !value[open..start].contains("%}")
            });
        if before_ok && after_ok && inside {
            return Span::new(
                span.file,
                span.start as usize + 1 + start,
                span.start as usize + 1 + end,
            );
        }
        search = end;
    }
    span
}

/// One shared minijinja environment for syntax checks (building one is not free).
pub(super) fn template_env() -> &'static minijinja::Environment<'static> {
    static ENV: std::sync::OnceLock<minijinja::Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(omniflow_mapping::templates::environment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_before_a_block_may_be_any_language() {
        assert!(unknown_filters("Commande refusée : {{ answer.error | upper }}").is_empty());
        assert_eq!(
            unknown_filters("Zurück {{ x | nope }} — {% if y %}ü{% endif %}"),
            ["nope"]
        );
    }
}
