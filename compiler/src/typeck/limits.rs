//! What the runtime accepts of the standard connectors' settings and options: a value it
//! would refuse at start, ignore or silently cap is refused here first, so a flow that
//! checks clean is one `omniflow run` starts as written.

use super::settings::Const;
use super::SettingInfo;
use crate::diagnostics::{codes, Diagnostic, Diagnostics};
use crate::ir::webhook::WebhookScheme;
use crate::ir::{SettingValue, MAX_WEBHOOK_BODY_BYTES};
use crate::source::Span;
use crate::syntax::ast::Ident;
pub use omniflow_ir::path::file_path_problem;
use serde_json::Value;
use std::collections::BTreeMap;

/// Longest `lookback` of a poll source: the pagers subtract it from a timestamp.
pub const MAX_LOOKBACK_MS: u64 = 365 * 86_400_000;

/// Why the literal parts of a bus sink's `subject` (a template over the message) cannot be
/// published: an empty token, a wildcard, or white space.
pub fn publish_subject_problem(subject: &str) -> Option<&'static str> {
    let literal = without_templates(subject);
    if literal.split('.').any(str::is_empty) {
        Some("has an empty token")
    } else if literal.split('.').any(|token| token == "*" || token == ">") {
        Some("has a wildcard; a message is published on one subject")
    } else if literal.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains white space")
    } else {
        None
    }
}

/// `text` with each `{{ ... }}` and `{% ... %}` replaced by one placeholder letter.
fn without_templates(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{").into_iter().chain(rest.find("{%")).min() {
        out.push_str(&rest[..open]);
        let close = if rest[open..].starts_with("{{") {
            "}}"
        } else {
            "%}"
        };
        match rest[open..].find(close) {
            Some(end) => {
                out.push('x');
                rest = &rest[open + end + close.len()..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The largest `page_size` the runtime sends for a poll operation whose declaration
/// gives none (`option page_size: int? max N` gives the vendor's own maximum); larger
/// values would be capped.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// Checks one literal setting of a connection to a standard connector against what the
/// runtime accepts; reports `E0509` and returns false when it would be refused or capped.
pub fn connection_setting(
    connector: &str,
    sig: &SettingInfo,
    name: &Ident,
    value: &Const,
    span: Span,
    diags: &mut Diagnostics,
) -> bool {
    let problem = match (connector, name.name.as_str(), value) {
        (_, _, Const::Value(Value::String(text))) if sig.required && text.is_empty() => Some((
            format!("`{}` is empty", name.name),
            "the runtime refuses to start a connection without it".to_string(),
            format!(
                "give `{}` a value, or read it with `env(\"NAME\")`",
                name.name
            ),
        )),
        ("http" | "webhook", "max_body_bytes", Const::Value(Value::Number(n))) => {
            let max = if connector == "webhook" {
                MAX_WEBHOOK_BODY_BYTES
            } else {
                i64::MAX as u64
            };
            let fits = n.as_i64().is_some_and(|b| b >= 1 && b as u64 <= max);
            (!fits).then(|| {
                let label = if connector == "webhook" {
                    format!("the webhook server reads at most {max} bytes")
                } else {
                    "a limit needs at least one byte".to_string()
                };
                (
                    format!("`max_body_bytes` is {n}, allowed 1 to {max}"),
                    label,
                    format!("use a body limit between 1 and {max} bytes"),
                )
            })
        }
        (_, setting, Const::Value(Value::String(url))) if sig.url => {
            http_url_problem(url).map(|why| {
                (
                    format!("`{setting}` `{url}` {why}"),
                    format!("the {connector} connector calls this URL"),
                    "write an absolute URL like \"https://api.example.com\"".to_string(),
                )
            })
        }
        ("webhook", "path", Const::Value(Value::String(path))) if !path.starts_with('/') => Some((
            format!("webhook path `{path}` does not start with `/`"),
            "no request could reach it".to_string(),
            "write the path as it appears in the URL, e.g. \"/hooks/orders\"".to_string(),
        )),
        ("http", "token_header" | "key_header", Const::Value(Value::String(header)))
            if header.is_empty()
                || !header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) =>
        {
            Some((
                format!("`{}` `{header}` is not a header name", name.name),
                "no request could carry it".to_string(),
                "write a header name such as \"X-Api-Token\"".to_string(),
            ))
        }
        ("http", "token_path" | "expires_path", Const::Value(Value::String(path)))
            if omniflow_ir::path::simple_path(path).is_none() =>
        {
            Some((
                format!(
                    "`{}` `{path}` is not a JSONPath the connector reads",
                    name.name
                ),
                "the login's answer is read at this path".to_string(),
                "write a path of `.name`, `['name']` and `[N]` steps, such as `$.access_token`"
                    .to_string(),
            ))
        }
        ("bus", "url", Const::Value(Value::String(url)))
            if !(url.starts_with("embedded") || url.starts_with("nats://")) =>
        {
            Some((
                format!("bus url `{url}` is neither embedded nor NATS"),
                "the runtime has no bus at this address".to_string(),
                "use `embedded:` (in-process) or `nats://host:port` (JetStream)".to_string(),
            ))
        }
        ("webhook", "scheme", Const::Value(Value::String(scheme)))
            if WebhookScheme::parse(scheme).is_none() =>
        {
            Some((
                format!("unknown webhook signature scheme `{scheme}`"),
                "deliveries could not be verified".to_string(),
                crate::diagnostics::suggest::did_you_mean(
                    scheme,
                    WebhookScheme::names(),
                    &format!(
                        "the schemes are {}",
                        WebhookScheme::names().collect::<Vec<_>>().join(", ")
                    ),
                ),
            ))
        }
        _ => None,
    };
    let Some((message, label, help)) = problem else {
        return true;
    };
    diags.push(
        Diagnostic::error(codes::SETTING_OUT_OF_RANGE, span, message)
            .label(label)
            .help(help),
    );
    false
}

/// Why `url` is not an absolute `http`/`https` URL with a host, as the runtime's http
/// client parses it.
pub fn http_url_problem(url: &str) -> Option<&'static str> {
    match url.parse::<http::Uri>() {
        Err(_) => Some("is not a URL"),
        Ok(uri) => match (uri.scheme_str(), uri.host()) {
            (Some("http" | "https"), Some(host)) if !host.is_empty() => None,
            _ => Some("is not an http or https URL"),
        },
    }
}

/// The settings a source of the `webhook` connector needs to verify deliveries with the
/// signature scheme its connection sets (the default scheme needs the `secret`).
pub fn scheme_secrets(settings: &BTreeMap<String, SettingValue>) -> &'static [&'static str] {
    match settings.get("scheme") {
        Some(SettingValue::Value(Value::String(scheme))) => match scheme.as_str() {
            "hmac_sha256_url_body" => &["secret", "notification_url"],
            "none" => &[],
            _ => &["secret"],
        },
        // Read at run time: which secrets it needs is known only then.
        Some(_) => &[],
        None => &["secret"],
    }
}

/// The settings among `needed` that `settings` lacks or leaves empty (the runtime
/// refuses to start the operation without them).
pub fn missing_settings<'n>(
    needed: impl IntoIterator<Item = &'n str>,
    settings: &BTreeMap<String, SettingValue>,
) -> Vec<&'n str> {
    needed
        .into_iter()
        .filter(|name| match settings.get(*name) {
            None => true,
            Some(SettingValue::Value(Value::String(text))) => text.is_empty(),
            Some(SettingValue::Value(Value::Null)) => true,
            Some(_) => false,
        })
        .collect()
}

/// The settings that come together on an `http` connection: OAuth 2 needs `client_id` and
/// `client_secret` with its `token_url`, a login `token_path` with its `login_path`, and
/// only one of them. Reports `E0211` for what is missing and `E0505` for both.
pub fn http_credentials(given: &[&str], span: Span, diags: &mut Diagnostics) {
    let has = |name: &str| given.contains(&name);
    let mut missing = Vec::new();
    if has("token_url") {
        missing.extend(
            ["client_id", "client_secret"]
                .into_iter()
                .filter(|n| !has(n)),
        );
    }
    if has("login_path") && !has("token_path") {
        missing.push("token_path");
    }
    let fetched = has("token_url") || has("login_path");
    if !fetched && has("token_header") {
        missing.push("token_url` or `login_path");
    }
    for (setting, with) in [
        ("client_id", "token_url"),
        ("client_secret", "token_url"),
        ("refresh_token", "token_url"),
        ("scope", "token_url"),
        ("login_body", "login_path"),
        ("token_path", "login_path"),
        ("expires_path", "login_path"),
    ] {
        if has(setting) && !has(with) {
            missing.push(with);
        }
    }
    missing.dedup();
    if !missing.is_empty() {
        let list = missing
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        diags.push(
            Diagnostic::error(
                codes::MISSING_SETTING,
                span,
                format!("the http connection's token settings also need {list}"),
            )
            .label("a token could not be fetched")
            .help("OAuth 2 takes `token_url`, `client_id` and `client_secret`; a login `login_path` and `token_path`"),
        );
    }
    if let Some(fixed) = ["auth_header", "bearer_token", "basic_username"]
        .into_iter()
        .find(|n| fetched && has(n))
    {
        diags.push(
            Diagnostic::error(
                codes::INVALID_SETTING,
                span,
                format!("the http connection has `{fixed}` and fetches a token too"),
            )
            .label("two credentials for one Authorization header")
            .help("keep the fetched token's settings, or the fixed credential's"),
        );
    }
    if has("token_url") && has("login_path") {
        diags.push(
            Diagnostic::error(
                codes::INVALID_SETTING,
                span,
                "the http connection has both `token_url` (OAuth 2) and `login_path` (a login)",
            )
            .label("one way to fetch a token")
            .help("keep the settings of one of them"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_checked_outside_their_templates() {
        assert_eq!(publish_subject_problem("orders.{{ channel }}"), None);
        assert_eq!(
            publish_subject_problem("orders.{{ a.b }}.{% if x %}y{% endif %}"),
            None
        );
        assert!(publish_subject_problem("orders.*").is_some());
        assert!(publish_subject_problem("orders.>").is_some());
        assert!(publish_subject_problem("orders..x").is_some());
        assert!(publish_subject_problem("orders created").is_some());
        assert!(publish_subject_problem("orders.{{ x ").is_some());
    }

    #[test]
    fn urls_are_parsed_as_the_http_client_parses_them() {
        assert_eq!(http_url_problem("https://api.example.com"), None);
        assert_eq!(http_url_problem("http://127.0.0.1:8080/base"), None);
        assert!(http_url_problem("api.example.com").is_some());
        assert!(http_url_problem("ftp://example.com").is_some());
        assert!(http_url_problem("https://exa mple.com").is_some());
    }
}
