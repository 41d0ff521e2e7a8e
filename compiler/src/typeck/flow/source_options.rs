//! A source's options: those of its kind (poll, webhook, schedule, file, bus) with their
//! ranges, those its operation declares, the required ones, and paths that stay inside the
//! connection.

use super::duration_text;
use crate::diagnostics::{codes, Diagnostic, Diagnostics};
use crate::source::Span;
use crate::syntax::ast::{Ident, Settings};
use crate::typeck::options::{self, invalid, range};
use crate::typeck::settings::{self, const_value, Const};
use crate::typeck::{limits, OperationInfo};
use serde_json::Value;
use std::collections::BTreeMap;

const POLL_KEYS: &[&str] = &["every", "cursor", "page_size", "lookback"];
const WEBHOOK_KEYS: &[&str] = &["path", "dedupe"];
const SCHEDULE_KEYS: &[&str] = &["every", "cron", "tz"];
const FILE_KEYS: &[&str] = &["path", "format", "max_line_bytes"];
/// The longest line a file source may be set to read whole (256 MiB).
const MAX_LINE_BYTES: u64 = 1 << 28;
const BUS_KEYS: &[&str] = &["subject", "durable"];

fn keys_for(kind: &str) -> &'static [&'static str] {
    match kind {
        "poll" => POLL_KEYS,
        "webhook" => WEBHOOK_KEYS,
        "schedule" => SCHEDULE_KEYS,
        "file" => FILE_KEYS,
        "bus" => BUS_KEYS,
        _ => &[],
    }
}

/// Checks a source's options against its kind and its operation's declared options.
pub(super) fn source_options(
    cx: &options::OptionCx,
    connector: &str,
    op: &OperationInfo,
    settings: &Settings,
    diags: &mut Diagnostics,
) -> BTreeMap<String, Value> {
    let kind = op.kind.as_str();
    let mut allowed: Vec<&str> = keys_for(kind).to_vec();
    for option in &op.options {
        if !allowed.contains(&option.name.as_str()) {
            allowed.push(&option.name);
        }
    }
    settings::duplicate_keys(settings.entries.iter().map(|e| &e.name), "option", diags);
    let mut out = BTreeMap::new();
    for entry in &settings.entries {
        let key = entry.name.name.as_str();
        let declared = op.option(key).filter(|_| !keys_for(kind).contains(&key));
        if let Some(option) = declared {
            if let Some(value) = options::check_value(cx, option, entry, diags) {
                out.insert(key.to_string(), value);
            }
            continue;
        }
        if !allowed.contains(&key) {
            not_a_source_option(kind, &entry.name, &allowed, diags);
            continue;
        }
        let Some(value) = const_value(&entry.value, diags) else {
            continue;
        };
        let span = entry.value.span;
        if !kind_option(connector, op, key, &value, span, diags) {
            invalid(diags, &entry.name, span, kind_option_want(key));
            continue;
        }
        out.insert(key.to_string(), value.to_json());
    }
    required_source_options(op, settings, diags);
    if kind == "schedule" {
        crate::typeck::schedule::check_combination(settings, diags);
    }
    if kind == "schedule" && settings.get("every").is_none() && settings.get("cron").is_none() {
        diags.push(
            Diagnostic::error(
                codes::MISSING_SETTING,
                settings.span,
                "a schedule source needs `every` or `cron`",
            )
            .label("no schedule given")
            .help("add `every = 1h` or `cron = \"0 2 * * *\"`"),
        );
    }
    out
}

/// Reports a key a source of `kind` does not take: an option of another kind (`E0506`),
/// else an unknown one (`E0112`).
fn not_a_source_option(kind: &str, name: &Ident, allowed: &[&str], diags: &mut Diagnostics) {
    let key = name.name.as_str();
    let other_kinds: Vec<&str> = crate::typeck::SOURCE_KINDS
        .iter()
        .copied()
        .filter(|k| keys_for(k).contains(&key))
        .collect();
    if other_kinds.is_empty() {
        settings::unknown_setting(name, allowed, diags);
        return;
    }
    diags.push(
        Diagnostic::error(
            codes::SOURCE_KIND_MISMATCH,
            name.span,
            format!("`{key}` does not apply to a {kind} source"),
        )
        .label(format!(
            "`{key}` is an option of {} sources",
            other_kinds.join(" and ")
        ))
        .help(format!("a {kind} source accepts {}", allowed.join(", "))),
    );
}

/// Checks the value of an option of the source's kind; false when it has the wrong
/// kind of value (reported by the caller), true otherwise (after reporting a value out
/// of range).
fn kind_option(
    connector: &str,
    op: &OperationInfo,
    key: &str,
    value: &Const,
    span: Span,
    diags: &mut Diagnostics,
) -> bool {
    match (key, value) {
        ("every", Const::Duration(ms)) => poll_interval(*ms, span, diags),
        ("lookback", Const::Duration(ms)) => {
            if *ms > limits::MAX_LOOKBACK_MS {
                range(
                    diags,
                    codes::SETTING_OUT_OF_RANGE,
                    span,
                    format!("lookback {} is longer than 365d", duration_text(*ms)),
                    "re-read at most 365d before the watermark",
                );
            }
        }
        ("cursor", Const::Name(n)) if matches!(n.as_str(), "watermark" | "page_token" | "none") => {
        }
        ("page_size", Const::Value(Value::Number(n))) => page_size(connector, op, n, span, diags),
        ("max_line_bytes", Const::Value(Value::Number(n))) => {
            if !n
                .as_u64()
                .is_some_and(|n| (1..=MAX_LINE_BYTES).contains(&n))
            {
                let text = format!("line limit {n} is outside 1 to {MAX_LINE_BYTES} bytes");
                let help = "use a line limit between 1 byte and 256 MiB (268435456)";
                range(diags, codes::SIZE_OUT_OF_RANGE, span, text, help);
            }
        }
        ("format", Const::Name(n)) | ("format", Const::Value(Value::String(n))) => {
            return matches!(n.as_str(), "csv" | "jsonl");
        }
        ("dedupe", Const::Value(Value::Bool(_))) => {}
        ("cron", Const::Value(Value::String(expression))) => {
            crate::typeck::schedule::check_cron(expression, span, diags);
        }
        ("tz", Const::Value(Value::String(zone))) => {
            crate::typeck::schedule::check_time_zone(zone, span, diags);
        }
        ("path", Const::Value(Value::String(path))) => {
            source_path(&op.kind, path, span, diags);
            crate::typeck::templates::plain_option(key, path, span, diags);
        }
        ("subject" | "durable", Const::Value(Value::String(text))) => {
            crate::typeck::templates::plain_option(key, text, span, diags);
        }
        _ => return false,
    }
    true
}

/// What an option of a source kind takes, for `E0505`.
fn kind_option_want(key: &str) -> &'static str {
    match key {
        "every" | "lookback" => "a duration like `2m`",
        "cursor" => "`watermark`, `page_token` or `none`",
        "page_size" | "max_line_bytes" => "an integer",
        "format" => "`csv` or `jsonl`",
        "dedupe" => "`true` or `false`",
        _ => "a string",
    }
}

/// Reports a polling interval outside 1s to 24h.
fn poll_interval(ms: u64, span: Span, diags: &mut Diagnostics) {
    if !(1_000..=86_400_000).contains(&ms) {
        range(
            diags,
            codes::TIMEOUT_OUT_OF_RANGE,
            span,
            format!("interval {} is outside 1s to 24h", duration_text(ms)),
            "poll between every 1s and every 24h",
        );
    }
}

/// Reports a page size outside 1 to the operation's declared `max` (else 1000).
fn page_size(
    connector: &str,
    op: &OperationInfo,
    n: &serde_json::Number,
    span: Span,
    diags: &mut Diagnostics,
) {
    let max = op
        .option("page_size")
        .and_then(|o| o.max)
        .unwrap_or(limits::MAX_PAGE_SIZE);
    if !n.as_u64().is_some_and(|n| (1..=max).contains(&n)) {
        range(
            diags,
            codes::RATE_OUT_OF_RANGE,
            span,
            format!(
                "page size {n} is outside 1 to {max} for `{connector}.{}`",
                op.name
            ),
            &format!("use a page size between 1 and {max}"),
        );
    }
}

/// Reports a file source's pattern that leaves the connection's `dir`, and a webhook
/// path no request could reach.
fn source_path(kind: &str, path: &str, span: Span, diags: &mut Diagnostics) {
    if kind == "file" {
        if let Some(problem) = limits::file_path_problem(path, true) {
            range(
                diags,
                codes::SETTING_OUT_OF_RANGE,
                span,
                format!("file source path `{path}` {problem}"),
                "write a pattern relative to the connection's `dir`, e.g. \"in/*.jsonl\"",
            );
        }
    }
    if kind == "webhook" && !path.starts_with('/') {
        range(
            diags,
            codes::SETTING_OUT_OF_RANGE,
            span,
            format!("webhook path `{path}` does not start with `/`"),
            "no request could reach it: write the path as it appears in the URL, e.g. \"/hooks/orders\"",
        );
    }
}

/// Reports (`E0211`) the options a source must be given: `every` of a poll, `path` of a
/// file, `subject` of a bus source, and those its operation declares required.
fn required_source_options(op: &OperationInfo, settings: &Settings, diags: &mut Diagnostics) {
    let kind = op.kind.as_str();
    let mut required: Vec<&str> = match kind {
        "poll" => vec!["every"],
        "file" => vec!["path"],
        "bus" => vec!["subject"],
        _ => Vec::new(),
    };
    for option in op.options.iter().filter(|o| o.required) {
        if !required.contains(&option.name.as_str()) {
            required.push(&option.name);
        }
    }
    for key in required {
        if settings.get(key).is_none() {
            diags.push(
                Diagnostic::error(
                    codes::MISSING_SETTING,
                    settings.span,
                    format!("a {kind} source needs `{key}`"),
                )
                .label(format!("no `{key}` given"))
                .help(match key {
                    "every" => "add `every = 2m` (how often to poll)".to_string(),
                    other => format!("add `{other} = \"...\"`"),
                }),
            );
        }
    }
}
