//! Settings blocks: constant values, `env(...)`/`secret(...)`, and range checks for
//! connections, quotas, retry policies, source options and sink settings.

use crate::diagnostics::{codes, Diagnostic, Diagnostics};
use crate::ir::{Backoff, Quota, RetryPolicy, SettingValue};
use crate::source::Span;
use crate::syntax::ast::{Expr, ExprKind, Ident, Literal, Settings};
use serde_json::Value;

/// A settings value evaluated at compile time.
#[derive(Debug, Clone, PartialEq)]
pub enum Const {
    Value(Value),
    Duration(u64),
    Rate { count: u64, per_secs: u64 },
    Percent(f64),
    Name(String),
    Env(String),
    Secret(String),
    List(Vec<Const>),
}

impl Const {
    /// A short description for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Const::Value(Value::String(_)) => "a string",
            Const::Value(Value::Number(_)) => "a number",
            Const::Value(Value::Bool(_)) => "a boolean",
            Const::Value(Value::Null) => "null",
            Const::Value(_) => "a value",
            Const::Duration(_) => "a duration",
            Const::Rate { .. } => "a rate",
            Const::Percent(_) => "a percentage",
            Const::Name(_) => "a name",
            Const::Env(_) => "env(...)",
            Const::Secret(_) => "secret(...)",
            Const::List(_) => "a list",
        }
    }

    /// As a setting value for the IR.
    pub fn to_setting(&self) -> SettingValue {
        match self {
            Const::Env(name) => SettingValue::Env(name.clone()),
            Const::Secret(name) => SettingValue::Secret(name.clone()),
            other => SettingValue::Value(other.to_json()),
        }
    }

    /// As plain JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Const::Value(v) => v.clone(),
            Const::Duration(ms) => Value::from(*ms),
            Const::Rate { count, per_secs } => {
                serde_json::json!({ "count": count, "per_secs": per_secs })
            }
            Const::Percent(p) => Value::from(*p),
            Const::Name(n) => Value::String(n.clone()),
            Const::Env(n) => serde_json::json!({ "env": n }),
            Const::Secret(n) => serde_json::json!({ "secret": n }),
            Const::List(items) => Value::Array(items.iter().map(Const::to_json).collect()),
        }
    }
}

/// Most decimal places the runtime keeps exactly (its `decimal::MAX_SCALE`).
pub const MAX_DECIMAL_PLACES: usize = 18;

/// Most milliseconds a duration may span: the runtime's clocks count in signed 64 bits.
pub const MAX_DURATION_MS: u64 = i64::MAX as u64;

/// Reports (`E0508`) a decimal or duration literal the runtime cannot hold exactly: a
/// decimal whose digits overflow its 128-bit mantissa or with more than 18 places (it
/// would be rounded), a duration past `i64::MAX` milliseconds. True when it fits.
pub fn literal_fits(lit: &Literal, span: Span, diags: &mut Diagnostics) -> bool {
    let problem = match lit {
        Literal::Decimal(text) => decimal_problem(text),
        Literal::Duration(_, text) => duration_ms(text)
            .filter(|ms| *ms <= MAX_DURATION_MS)
            .is_none()
            .then(|| {
                (
                    format!("duration `{text}` overflows"),
                    "durations are counted in milliseconds up to about 292 million years"
                        .to_string(),
                    "write a shorter duration".to_string(),
                )
            }),
        _ => None,
    };
    let Some((message, label, help)) = problem else {
        return true;
    };
    diags.push(
        Diagnostic::error(codes::LITERAL_OUT_OF_RANGE, span, message)
            .label(label)
            .help(help),
    );
    false
}

/// Why the runtime's exact decimal cannot hold `text` (`digits.digits`), if it cannot.
fn decimal_problem(text: &str) -> Option<(String, String, String)> {
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
    let significant = format!("{int_part}{frac_part}");
    let significant = significant.trim_start_matches('0');
    if significant.len() > 38 && significant.parse::<i128>().is_err() {
        return Some((
            format!("decimal literal `{text}` has too many digits"),
            format!("{} digits; decimals keep at most 38", significant.len()),
            "write fewer digits, or keep the number as a string".to_string(),
        ));
    }
    if frac_part.len() > MAX_DECIMAL_PLACES {
        return Some((
            format!("decimal literal `{text}` has more than {MAX_DECIMAL_PLACES} places"),
            format!("{} decimal places would be rounded", frac_part.len()),
            format!("write at most {MAX_DECIMAL_PLACES} decimal places"),
        ));
    }
    None
}

/// A decimal literal as the JSON number a setting, table entry or default carries (a
/// double), `None` when the double would not keep every digit written.
pub fn constant_decimal(text: &str) -> Option<Value> {
    let number = text.parse::<f64>().ok().filter(|n| n.is_finite())?;
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
    let int_part = match int_part.trim_start_matches('0') {
        "" => "0",
        digits => digits,
    };
    let written = match frac_part.trim_end_matches('0') {
        "" => int_part.to_string(),
        frac => format!("{int_part}.{frac}"),
    };
    (number.to_string() == written).then(|| Value::from(number))
}

/// Reports (`E0508`) a decimal constant with more digits than its double keeps.
pub fn lossy_decimal(text: &str, span: Span, diags: &mut Diagnostics) {
    diags.push(
        Diagnostic::error(
            codes::LITERAL_OUT_OF_RANGE,
            span,
            format!("decimal constant `{text}` would lose digits"),
        )
        .label("settings, table entries and defaults keep about 15 significant digits")
        .help("write fewer digits, or keep the value as a string and read it with `to_decimal(...)` in the mapping"),
    );
}

/// A duration literal's milliseconds, `None` when they overflow 64 bits.
fn duration_ms(text: &str) -> Option<u64> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let unit_ms: u64 = match &text[digits_end..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => 86_400_000,
    };
    text[..digits_end].parse::<u64>().ok()?.checked_mul(unit_ms)
}

/// Evaluates a settings value; `None` (after a report) when it is not a constant.
pub fn const_value(expr: &Expr, diags: &mut Diagnostics) -> Option<Const> {
    if let ExprKind::Lit(lit) = &expr.kind {
        if !literal_fits(lit, expr.span, diags) {
            return None;
        }
    }
    let value = match &expr.kind {
        ExprKind::Lit(lit) => match lit {
            Literal::Null => Const::Value(Value::Null),
            Literal::Bool(b) => Const::Value(Value::Bool(*b)),
            Literal::Int(i) => Const::Value(Value::from(*i)),
            Literal::Decimal(d) => match constant_decimal(d) {
                Some(value) => Const::Value(value),
                None => {
                    lossy_decimal(d, expr.span, diags);
                    return None;
                }
            },
            Literal::Str(s) => Const::Value(Value::String(s.clone())),
            Literal::Duration(ms, _) => Const::Duration(*ms),
            Literal::Rate {
                count, per_secs, ..
            } => Const::Rate {
                count: *count,
                per_secs: *per_secs,
            },
            Literal::Percent(p) => Const::Percent(p.parse().unwrap_or(0.0)),
        },
        ExprKind::Var(ident) => Const::Name(ident.name.clone()),
        ExprKind::Unary(crate::syntax::ast::UnOp::Neg, inner) => match const_value(inner, diags)? {
            Const::Value(Value::Number(n)) => match n.as_i64() {
                Some(i) => Const::Value(Value::from(-i)),
                None => Const::Value(Value::from(-n.as_f64().unwrap_or(0.0))),
            },
            Const::Duration(_) => {
                diags.push(
                    Diagnostic::error(
                        codes::TIMEOUT_OUT_OF_RANGE,
                        expr.span,
                        "a duration cannot be negative",
                    )
                    .label("negative duration")
                    .help("write a positive duration, e.g. `30s`"),
                );
                return None;
            }
            Const::Rate { .. } => {
                diags.push(
                    Diagnostic::error(
                        codes::RATE_OUT_OF_RANGE,
                        expr.span,
                        "a rate cannot be negative",
                    )
                    .label("negative rate")
                    .help("write a positive rate, e.g. `10/s`"),
                );
                return None;
            }
            _ => return not_constant(expr, diags),
        },
        ExprKind::Call(name, args) if matches!(name.name.as_str(), "env" | "secret") => {
            let arg = match args.as_slice() {
                [Expr {
                    kind: ExprKind::Lit(Literal::Str(s)),
                    ..
                }] => s.clone(),
                _ => {
                    diags.push(
                        Diagnostic::error(
                            codes::INVALID_SETTING,
                            expr.span,
                            format!("`{}` takes one string: the name to read", name.name),
                        )
                        .label("expected one string argument")
                        .help(format!("write `{}(\"NAME\")`", name.name)),
                    );
                    return None;
                }
            };
            if name.name == "env" {
                Const::Env(arg)
            } else {
                Const::Secret(arg)
            }
        }
        ExprKind::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(const_value(item, diags)?);
            }
            Const::List(out)
        }
        _ => return not_constant(expr, diags),
    };
    Some(value)
}

fn not_constant(expr: &Expr, diags: &mut Diagnostics) -> Option<Const> {
    diags.push(
        Diagnostic::error(
            codes::INVALID_SETTING,
            expr.span,
            "settings take constant values",
        )
        .label("computed here")
        .help("use a literal, a name, `env(\"NAME\")` or `secret(\"NAME\")`"),
    );
    None
}

/// Reports keys given twice in one block (the later ones).
pub fn duplicate_keys<'n>(
    names: impl IntoIterator<Item = &'n Ident>,
    what: &str,
    diags: &mut Diagnostics,
) {
    let mut seen: Vec<&Ident> = Vec::new();
    for name in names {
        match seen.iter().find(|s| s.name == name.name) {
            Some(first) => diags.push(
                Diagnostic::error(
                    codes::DUPLICATE_DEFINITION,
                    name.span,
                    format!("{what} `{}` is given twice", name.name),
                )
                .label("given again here")
                .secondary(first.span, "first given here")
                .help("keep one of the two"),
            ),
            None => seen.push(name),
        }
    }
}

/// Names that always hold credentials, whatever type the setting declares; not those that
/// say where a credential goes or comes from (`token_url`, `token_path`, `token_header`).
pub fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let place = ["_url", "_endpoint", "_path", "_header"];
    if place.iter().any(|suffix| name.ends_with(suffix)) {
        return false;
    }
    [
        "token",
        "password",
        "secret",
        "api_key",
        "apikey",
        "private_key",
    ]
    .iter()
    .any(|part| name.contains(part))
}

/// Reports a literal where a secret belongs.
pub fn literal_secret(name: &Ident, span: Span, diags: &mut Diagnostics) {
    diags.push(
        Diagnostic::error(
            codes::LITERAL_SECRET,
            span,
            format!("`{}` is a secret written as a literal", name.name),
        )
        .label("this value would be committed with the flow")
        .help(format!(
            "read it at run time: `{} = secret(\"NAME\")` or `env(\"NAME\")`",
            name.name
        )),
    );
}

fn out_of_range(
    code: crate::diagnostics::Code,
    span: Span,
    message: String,
    help: &str,
    diags: &mut Diagnostics,
) {
    diags.push(
        Diagnostic::error(code, span, message)
            .label("out of range")
            .help(help.to_string()),
    );
}

fn wrong_kind(name: &Ident, span: Span, want: &str, found: &Const, diags: &mut Diagnostics) {
    diags.push(
        Diagnostic::error(
            codes::INVALID_SETTING,
            span,
            format!("`{}` must be {want}, found {}", name.name, found.describe()),
        )
        .label(format!("expected {want}"))
        .help(format!("write {want} here")),
    );
}

/// Parses a quota block (`rate`, `burst`, `concurrency`).
pub fn quota(settings: &Settings, diags: &mut Diagnostics) -> Quota {
    let mut quota = Quota::default();
    for entry in &settings.entries {
        let Some(value) = const_value(&entry.value, diags) else {
            continue;
        };
        match (entry.name.name.as_str(), &value) {
            ("rate", Const::Rate { count, per_secs }) => {
                quota.rate_per_sec = Some(*count as f64 / (*per_secs).max(1) as f64)
            }
            ("burst", Const::Value(v)) if v.is_u64() => quota.burst = v.as_u64(),
            ("concurrency", Const::Value(v)) if v.is_u64() => quota.concurrency = v.as_u64(),
            ("rate" | "burst" | "concurrency", other) => wrong_kind(
                &entry.name,
                entry.value.span,
                "a rate like `2/s` or a count",
                other,
                diags,
            ),
            _ => unknown_setting(&entry.name, &["rate", "burst", "concurrency"], diags),
        }
    }
    quota
}

/// Reports an unknown key with the nearest allowed one.
pub fn unknown_setting(name: &Ident, allowed: &[&str], diags: &mut Diagnostics) {
    let help = crate::diagnostics::suggest::did_you_mean(
        &name.name,
        allowed.iter().copied(),
        &format!("allowed here: {}", allowed.join(", ")),
    );
    diags.push(
        Diagnostic::error(
            codes::UNKNOWN_SETTING,
            name.span,
            format!("unknown setting `{}`", name.name),
        )
        .label("not accepted here")
        .help(help),
    );
}

const POLICY_KEYS: &[&str] = &[
    "attempts",
    "backoff",
    "initial",
    "max_delay",
    "jitter",
    "transient",
    "retry_after",
];

/// Failure classes a policy may name without quotes.
pub const FAILURE_CLASSES: &[&str] = &[
    "timeout",
    "connect",
    "rate_limited",
    "server_error",
    "unreadable_answer",
];

/// Checks a `policy retry` block and returns it with defaults filled in.
pub fn retry_policy(name: &str, settings: &Settings, diags: &mut Diagnostics) -> RetryPolicy {
    duplicate_keys(settings.entries.iter().map(|e| &e.name), "setting", diags);
    let mut policy = RetryPolicy {
        name: name.to_string(),
        attempts: 5,
        backoff: Backoff::Exponential,
        initial_ms: 500,
        max_delay_ms: 30_000,
        jitter: 0.2,
        transient: FAILURE_CLASSES.iter().map(|c| c.to_string()).collect(),
        retry_after: true,
    };
    let mut initial_span = None;
    for entry in &settings.entries {
        let Some(value) = const_value(&entry.value, diags) else {
            continue;
        };
        let span = entry.value.span;
        match entry.name.name.as_str() {
            "attempts" => match value.to_json().as_i64() {
                Some(n) if (1..=100).contains(&n) => policy.attempts = n as u32,
                Some(n) => out_of_range(
                    codes::POLICY_OUT_OF_RANGE,
                    span,
                    format!("`attempts` is {n}, allowed 1 to 100"),
                    "use between 1 (no retry) and 100 attempts",
                    diags,
                ),
                None => wrong_kind(&entry.name, span, "an integer", &value, diags),
            },
            "backoff" => match &value {
                Const::Name(n) if n == "fixed" => policy.backoff = Backoff::Fixed,
                Const::Name(n) if n == "exponential" => policy.backoff = Backoff::Exponential,
                other => wrong_kind(&entry.name, span, "`fixed` or `exponential`", other, diags),
            },
            "initial" | "max_delay" => match &value {
                Const::Duration(ms) if *ms >= 1 && *ms <= 3_600_000 => {
                    if entry.name.name == "initial" {
                        policy.initial_ms = *ms;
                        initial_span = Some(span);
                    } else {
                        policy.max_delay_ms = *ms;
                    }
                }
                Const::Duration(ms) => out_of_range(
                    codes::POLICY_OUT_OF_RANGE,
                    span,
                    format!("`{}` is {ms}ms, allowed 1ms to 1h", entry.name.name),
                    "use a delay between 1ms and 1h",
                    diags,
                ),
                other => wrong_kind(
                    &entry.name,
                    span,
                    "a duration like `500ms` or `30s`",
                    other,
                    diags,
                ),
            },
            "jitter" => match &value {
                Const::Percent(p) if (0.0..=100.0).contains(p) => policy.jitter = p / 100.0,
                Const::Percent(p) => out_of_range(
                    codes::POLICY_OUT_OF_RANGE,
                    span,
                    format!("`jitter` is {p}%, allowed 0% to 100%"),
                    "use a jitter between 0% and 100%",
                    diags,
                ),
                other => wrong_kind(&entry.name, span, "a percentage like `20%`", other, diags),
            },
            "transient" => {
                match &value {
                    Const::List(items) => {
                        let mut classes = Vec::new();
                        for (idx, item) in items.iter().enumerate() {
                            match item {
                                Const::Name(n) if FAILURE_CLASSES.contains(&n.as_str()) => {
                                    classes.push(n.clone())
                                }
                                Const::Value(Value::String(s)) => classes.push(s.clone()),
                                other => {
                                    let item_span = match &entry.value.kind {
                                        ExprKind::List(exprs) => {
                                            exprs.get(idx).map_or(span, |e| e.span)
                                        }
                                        _ => span,
                                    };
                                    let help = match other {
                                    Const::Name(n) => crate::diagnostics::suggest::did_you_mean(n, FAILURE_CLASSES.iter().copied(), "name a connector error as a string, e.g. \"UserError\""),
                                    _ => "list failure classes or connector error names".to_string(),
                                };
                                    diags.push(
                                        Diagnostic::error(
                                            codes::INVALID_SETTING,
                                            item_span,
                                            "unknown failure class".to_string(),
                                        )
                                        .label(format!(
                                            "the classes are {}",
                                            FAILURE_CLASSES.join(", ")
                                        ))
                                        .help(help),
                                    );
                                }
                            }
                        }
                        policy.transient = classes;
                    }
                    other => wrong_kind(
                        &entry.name,
                        span,
                        "a list like `[timeout, rate_limited]`",
                        other,
                        diags,
                    ),
                }
            }
            "retry_after" => match &value {
                Const::Value(Value::Bool(b)) => policy.retry_after = *b,
                other => wrong_kind(&entry.name, span, "`true` or `false`", other, diags),
            },
            _ => unknown_setting(&entry.name, POLICY_KEYS, diags),
        }
    }
    if policy.max_delay_ms < policy.initial_ms {
        let span = settings
            .get("max_delay")
            .map(|s| s.value.span)
            .or(initial_span)
            .unwrap_or(settings.span);
        out_of_range(
            codes::POLICY_OUT_OF_RANGE,
            span,
            format!(
                "`max_delay` ({}ms) is shorter than `initial` ({}ms)",
                policy.max_delay_ms, policy.initial_ms
            ),
            "make `max_delay` at least as long as `initial`",
            diags,
        );
    }
    policy
}
