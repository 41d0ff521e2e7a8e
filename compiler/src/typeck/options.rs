//! The options a connector operation declares (`option NAME: TYPE [= DEFAULT] [max N]` in
//! its body) and the checks of the values source and sink statements give them. The
//! declaration says which options exist, their types and limits; the types say how the
//! runtime reads a value (plain text, a template over the message, a bus subject, ...).

use super::settings::{self, const_value, Const};
use super::types::Ty;
use super::{limits, literal_json, Env};
use crate::diagnostics::{codes, Diagnostic, Diagnostics};
use crate::resolve::Program;
use crate::source::Span;
use crate::syntax::ast::{ExprKind, Ident, Literal, OperationBody, Setting, TypeKind};
use serde_json::Value;

/// How the runtime reads an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionType {
    /// Plain text, used as written (a template in it is `E0305`).
    String,
    Int,
    Bool,
    Duration,
    /// Text rendered over the message as a template.
    Template,
    /// A bus subject to publish on: a template over the message, without wildcards.
    BusSubject,
    /// A file name below the connection's `dir`.
    FileName,
    /// The HTTP method of a call: `post`, `put` or `patch`.
    HttpMethod,
    /// The format a file sink writes: `jsonl`.
    WriteFormat,
    /// A channel of the ledger behind the connection, a string literal.
    LedgerChannel,
    /// What a reservation does with a shortage: `"reject"` or `"backorder"`.
    Shortage,
    /// A simple JSONPath into an answer (`$.data.orders[*]`).
    JsonPath,
    /// How a poll pages: `link`, `next_url`, `next_token`, `offset` or `page`.
    PagingKind,
    /// The method of a poll's request: `get` or `post`.
    ReadMethod,
}

/// The settings every sink takes, besides its operation's options.
pub const SINK_SETTINGS: &[&str] = &[
    "idempotency_key",
    "retry",
    "rate",
    "burst",
    "concurrency",
    "timeout",
    "dead_letter",
    "order_by",
];

/// The option types by the names declarations use.
pub const OPTION_TYPES: &[(&str, OptionType)] = &[
    ("string", OptionType::String),
    ("int", OptionType::Int),
    ("bool", OptionType::Bool),
    ("duration", OptionType::Duration),
    ("template", OptionType::Template),
    ("bus_subject", OptionType::BusSubject),
    ("file_name", OptionType::FileName),
    ("http_method", OptionType::HttpMethod),
    ("write_format", OptionType::WriteFormat),
    ("ledger_channel", OptionType::LedgerChannel),
    ("shortage", OptionType::Shortage),
    ("jsonpath", OptionType::JsonPath),
    ("paging_kind", OptionType::PagingKind),
    ("read_method", OptionType::ReadMethod),
];

/// The paging kinds a `paging_kind` option takes.
pub const PAGING_KINDS: &[&str] = &["link", "next_url", "next_token", "offset", "page"];

impl OptionType {
    /// The type with this name.
    pub fn from_name(name: &str) -> Option<OptionType> {
        OPTION_TYPES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, ty)| *ty)
    }

    /// What a value of the type is, for messages.
    pub fn want(self) -> &'static str {
        match self {
            OptionType::Int => "an integer",
            OptionType::Bool => "`true` or `false`",
            OptionType::Duration => "a duration like `2m`",
            OptionType::LedgerChannel => "a channel name string, e.g. `\"web\"`",
            OptionType::Shortage => "`\"reject\"` or `\"backorder\"`",
            _ => "a string",
        }
    }

    fn is_text(self) -> bool {
        !matches!(
            self,
            OptionType::Int | OptionType::Bool | OptionType::Duration
        )
    }
}

/// One option an operation declares.
#[derive(Debug, Clone)]
pub struct OptionInfo {
    pub name: String,
    pub ty: OptionType,
    /// Neither optional (`?`) nor defaulted: a statement must give it.
    pub required: bool,
    /// What the runtime uses when the option is left out (written into the IR).
    pub default: Option<Value>,
    /// The largest value accepted (`max N`).
    pub max: Option<u64>,
}

/// The options an operation body declares, checked: known types, literal defaults of
/// the option's type, integer maxima, no name of a setting every statement of its kind
/// takes (`reserved`).
pub fn option_infos(
    body: &OperationBody,
    reserved: &[&str],
    diags: &mut Diagnostics,
) -> Vec<OptionInfo> {
    settings::duplicate_keys(body.options.iter().map(|o| &o.name), "option", diags);
    let mut out: Vec<OptionInfo> = Vec::new();
    for sig in &body.options {
        if out.iter().any(|o| o.name == sig.name.name) {
            continue;
        }
        if reserved.contains(&sig.name.name.as_str()) {
            diags.push(
                Diagnostic::error(
                    codes::DUPLICATE_DEFINITION,
                    sig.name.span,
                    format!("option `{}` is a setting every sink takes", sig.name.name),
                )
                .label("declared again here")
                .help(format!(
                    "give the option another name than {}",
                    reserved.join(", ")
                )),
            );
            continue;
        }
        let ty = match &sig.ty.kind {
            TypeKind::Named(name) => OptionType::from_name(&name.name).ok_or(name.span),
            TypeKind::List(_) => Err(sig.ty.span),
        };
        let ty = match ty {
            Ok(ty) => ty,
            Err(span) => {
                unknown_option_type(span, diags);
                continue;
            }
        };
        let default = sig.default.as_ref().and_then(|expr| {
            let value = literal_json(expr);
            let fits = match (ty, &value) {
                (OptionType::Int, Some(Value::Number(n))) => n.is_i64(),
                (OptionType::Bool, Some(Value::Bool(_))) => true,
                (OptionType::Duration, Some(Value::Number(_))) => {
                    matches!(expr.kind, ExprKind::Lit(Literal::Duration(..)))
                }
                (_, Some(Value::String(_))) => ty.is_text(),
                _ => false,
            };
            if !fits {
                invalid(diags, &sig.name, expr.span, ty.want());
            }
            value.filter(|_| fits)
        });
        let max = sig.max.as_ref().and_then(|expr| match literal_json(expr) {
            Some(Value::Number(n)) if ty == OptionType::Int && n.as_u64() > Some(0) => n.as_u64(),
            _ => {
                invalid(diags, &sig.name, expr.span, "a positive integer maximum");
                None
            }
        });
        out.push(OptionInfo {
            name: sig.name.name.clone(),
            ty,
            required: !sig.ty.optional && sig.default.is_none(),
            default,
            max,
        });
    }
    out
}

fn unknown_option_type(span: Span, diags: &mut Diagnostics) {
    let names: Vec<&str> = OPTION_TYPES.iter().map(|(n, _)| *n).collect();
    diags.push(
        Diagnostic::error(codes::UNKNOWN_TYPE, span, "unknown option type")
            .label("not an option type")
            .help(format!("option types are {}", names.join(", "))),
    );
}

/// The statement an option value is given in.
pub struct OptionCx<'a> {
    pub program: &'a Program,
    pub env: &'a Env,
    /// The connection the statement uses.
    pub connection: &'a str,
    /// The message type a sink's templates render over; `None` for a source.
    pub message: Option<&'a Ty>,
}

/// Checks the value `entry` gives a declared option; its JSON for the IR, `None` when it
/// has the wrong type (after a report). Text the runtime would refuse is reported but
/// kept, as the option was given.
pub fn check_value(
    cx: &OptionCx,
    option: &OptionInfo,
    entry: &Setting,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let span = entry.value.span;
    if matches!(option.ty, OptionType::LedgerChannel | OptionType::Shortage) {
        return word(cx, option, entry, diags);
    }
    let value = const_value(&entry.value, diags)?;
    let text = match (option.ty, value) {
        (OptionType::Int, Const::Value(Value::Number(n))) if n.is_i64() => {
            if let (Some(max), Some(given)) = (option.max, n.as_i64()) {
                if given > max as i64 {
                    range(
                        diags,
                        codes::SETTING_OUT_OF_RANGE,
                        span,
                        format!("`{}` is {given}, at most {max}", option.name),
                        &format!("use at most {max}"),
                    );
                }
            }
            return Some(Value::Number(n));
        }
        (OptionType::Bool, Const::Value(Value::Bool(b))) => return Some(Value::Bool(b)),
        (OptionType::Duration, Const::Duration(ms)) => return Some(Value::from(ms)),
        (ty, Const::Value(Value::String(text))) if ty.is_text() => text,
        // A sink reads a bare name as the string it spells (`format = jsonl`).
        (ty, Const::Name(text)) if ty.is_text() && cx.message.is_some() => text,
        _ => {
            invalid(diags, &entry.name, span, option.ty.want());
            return None;
        }
    };
    check_text(cx, option.ty, &entry.name, &text, span, diags);
    Some(Value::String(text))
}

/// A ledger channel or shortage word: a string literal, as the ledger reads it.
fn word(
    cx: &OptionCx,
    option: &OptionInfo,
    entry: &Setting,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let span = entry.value.span;
    match (&entry.value.kind, option.ty) {
        (ExprKind::Lit(Literal::Str(name)), OptionType::LedgerChannel) => {
            super::ledger::check_reserve_channel(cx.env, cx.connection, name, span, diags);
            Some(Value::String(name.clone()))
        }
        (ExprKind::Lit(Literal::Str(word)), OptionType::Shortage)
            if matches!(word.as_str(), "reject" | "backorder") =>
        {
            Some(Value::String(word.clone()))
        }
        _ => {
            invalid(diags, &entry.name, span, option.ty.want());
            None
        }
    }
}

/// Checks a text option as the runtime reads it.
fn check_text(
    cx: &OptionCx,
    ty: OptionType,
    key: &Ident,
    text: &str,
    span: Span,
    diags: &mut Diagnostics,
) {
    match (ty, cx.message) {
        (OptionType::BusSubject, _) if limits::publish_subject_problem(text).is_some() => {
            let why = limits::publish_subject_problem(text).unwrap_or_default();
            diags.push(
                Diagnostic::error(
                    codes::SETTING_OUT_OF_RANGE,
                    span,
                    format!("subject `{text}` {why}"),
                )
                .label("no message could be published on it")
                .help("write dot-separated tokens without spaces or wildcards, e.g. \"orders.{{ channel }}\""),
            )
        }
        (OptionType::Template | OptionType::BusSubject, Some(message)) => {
            super::templates::message_option(
                cx.program, cx.env, message, &key.name, text, span, diags,
            )
        }
        (OptionType::HttpMethod, _)
            if !["post", "put", "patch"]
                .iter()
                .any(|m| m.eq_ignore_ascii_case(text)) =>
        {
            diags.push(
                Diagnostic::error(
                    codes::INVALID_SETTING,
                    span,
                    format!("`method` must be post, put or patch, found `{text}`"),
                )
                .label("the http sink sends POST, PUT or PATCH")
                .help("write `method = \"put\"` or `\"patch\"`, or leave it out to use the operation's"),
            )
        }
        (OptionType::JsonPath, _) if omniflow_ir::path::simple_path(text).is_none() => diags
            .push(
                Diagnostic::error(
                    codes::INVALID_JSONPATH,
                    span,
                    format!("invalid JSONPath for `{}`: `{text}`", key.name),
                )
                .label("not a path the connector reads")
                .help("write a path of `.name`, `['name']`, `[N]` and `[*]` steps, such as `$.data.orders[*]`"),
            ),
        (OptionType::PagingKind, _) if !PAGING_KINDS.contains(&text) => diags.push(
            Diagnostic::error(
                codes::INVALID_SETTING,
                span,
                format!("unknown paging `{text}`"),
            )
            .label("not a paging kind")
            .help(format!("paging is one of {}", PAGING_KINDS.join(", "))),
        ),
        (OptionType::ReadMethod, _) if !["get", "post"].iter().any(|m| m.eq_ignore_ascii_case(text)) => {
            diags.push(
                Diagnostic::error(
                    codes::INVALID_SETTING,
                    span,
                    format!("`method` must be get or post, found `{text}`"),
                )
                .label("a poll reads with GET, or POST for search APIs")
                .help("write `method = \"post\"` or leave it out"),
            )
        }
        (OptionType::FileName, _) if limits::file_path_problem(text, false).is_some() => {
            let problem = limits::file_path_problem(text, false).unwrap_or_default();
            range(
                diags,
                codes::SETTING_OUT_OF_RANGE,
                span,
                format!("file sink path `{text}` {problem}"),
                "write a file name relative to the connection's `dir`, e.g. \"out/orders.jsonl\"",
            );
        }
        (OptionType::WriteFormat, _) if text != "jsonl" => diags.push(
            Diagnostic::error(
                codes::SETTING_OUT_OF_RANGE,
                span,
                format!("a file sink cannot write `{text}`"),
            )
            .label("file sinks append one JSON line per message")
            .help("write `format = jsonl`, or leave `format` out"),
        ),
        _ => super::templates::plain_option(&key.name, text, span, diags),
    }
}

/// Reports (`E0505`) a value of the wrong kind.
pub fn invalid(diags: &mut Diagnostics, name: &Ident, span: Span, want: &str) {
    diags.push(
        Diagnostic::error(
            codes::INVALID_SETTING,
            span,
            format!("`{}` must be {want}", name.name),
        )
        .label(format!("expected {want}"))
        .help(format!("write {want} here")),
    );
}

/// Reports a value out of its range.
pub fn range(
    diags: &mut Diagnostics,
    code: crate::diagnostics::Code,
    span: Span,
    message: String,
    help: &str,
) {
    diags.push(
        Diagnostic::error(code, span, message)
            .label("out of range")
            .help(help.to_string()),
    );
}
