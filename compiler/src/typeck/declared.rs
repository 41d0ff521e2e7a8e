//! Connectors declared in flow files: their `auth`, `request`, `records`, `paging`,
//! `watermark`, `rule` and `lookup` blocks are checked here (unknown entries, missing
//! ones, values of the wrong kind, JSONPaths, templates and their variables, GraphQL
//! operations) and written into the IR ([`crate::ir::declared`]) the runtime runs.

use super::templates::{self, variable_paths};
use super::types::Ty;
use super::{ConnectorInfo, Env};
use crate::diagnostics::{codes, suggest, Diagnostic, Diagnostics};
use crate::ir::declared::{
    Auth, Body, Declared, Lookup, Operation, Paging, Request, Rule, Then, Watermark,
};
use crate::resolve::Program;
use crate::source::Span;
use crate::syntax::ast::{
    Block, BlockEntry, BlockValue, ConnectorDecl, ExprKind, JsonLit, Literal, OperationBody,
};
use serde_json::Value;

mod graphql;

/// The auth kinds and the entries each takes (required ones first, then `?` optional).
const AUTH: &[(&str, &[&str], &[&str])] = &[
    ("header", &["name", "value"], &[]),
    ("bearer", &["token"], &[]),
    ("basic", &["username", "password"], &[]),
    ("query", &["name", "value"], &[]),
    (
        "oauth2",
        &["token_url", "client_id", "client_secret"],
        &["refresh_token", "scope", "header", "value"],
    ),
    (
        "login",
        &["path"],
        &[
            "token",
            "token_header",
            "method",
            "query",
            "headers",
            "body",
            "form",
            "graphql",
            "variables",
            "expires_in",
            "header",
            "value",
        ],
    ),
];

const REQUEST: &[&str] = &[
    "method",
    "path",
    "query",
    "headers",
    "body",
    "form",
    "graphql",
    "variables",
];
const PAGING: &[&str] = &[
    "kind",
    "next",
    "param",
    "size",
    "size_param",
    "start",
    "page_info",
];
const PAGING_KINDS: &[&str] = &[
    "none",
    "link",
    "next_url",
    "next_token",
    "offset",
    "page",
    "graphql",
];
const WATERMARK: &[&str] = &["field", "tie", "lookback", "start"];
const RULE: &[&str] = &[
    "status",
    "when",
    "equals",
    "then",
    "reason",
    "wait_header",
    "wait",
];
const SOURCE_ENTRIES: &[&str] = &[
    "request",
    "records",
    "absent_is_empty",
    "key",
    "paging",
    "watermark",
    "rule",
];
const SINK_ENTRIES: &[&str] = &["request", "rule", "idempotency", "lookup", "document"];
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// What a template may read, by where it is rendered.
#[derive(Clone, Copy)]
enum Scope<'t> {
    /// Auth entries: `settings`.
    Auth,
    /// A login's header value: `settings`, `token`, `login`.
    LoginValue,
    /// A source's request: `settings`, `cursor`, `page`.
    Source,
    /// A sink's request or lookup: `settings`, `message` (of this type), `key`.
    Sink(&'t Ty),
    /// A rule's reason: `answer`, `status`, `settings`.
    Reason,
}

impl Scope<'_> {
    fn roots(&self) -> &'static [&'static str] {
        match self {
            Scope::Auth => &["settings"],
            Scope::LoginValue => &["settings", "token", "login"],
            Scope::Source => &["settings", "cursor", "page"],
            Scope::Sink(_) => &["settings", "message", "key"],
            Scope::Reason => &["answer", "status", "settings"],
        }
    }
}

/// Checks one declaration.
struct Check<'a> {
    program: &'a Program,
    env: &'a Env,
    settings: Vec<&'a str>,
    diags: &'a mut Diagnostics,
}

/// Checks a connector declared in a flow file and returns how it runs; `None` when it
/// has errors (they are reported) or declares no implementation at all.
pub fn check(
    program: &Program,
    env: &Env,
    info: &ConnectorInfo,
    decl: &ConnectorDecl,
    diags: &mut Diagnostics,
) -> Option<Declared> {
    let before = diags.error_count();
    let mut cx = Check {
        program,
        env,
        settings: info.settings.iter().map(|s| s.name.as_str()).collect(),
        diags,
    };
    let auth = decl
        .auth
        .as_ref()
        .and_then(|a| cx.auth(&a.kind.name, a.kind.span, &a.block));
    let rules = decl.rules.iter().filter_map(|r| cx.rule(r)).collect();
    let mut operations = std::collections::BTreeMap::new();
    for source in &decl.sources {
        if source.kind.name != "poll" && source.kind.name != "schedule" {
            cx.diags.push(
                Diagnostic::error(
                    codes::INVALID_CONNECTOR,
                    source.kind.span,
                    format!("a declared connector's source cannot be `{}`", source.kind.name),
                )
                .label("declared sources are read by polling")
                .help("declare the source `poll` (or `schedule`); webhooks are received by the standard `webhook` connector"),
            );
            continue;
        }
        if let Some(op) = cx.operation(&source.name.name, source.name.span, &source.body, None) {
            operations.insert(source.name.name.clone(), op);
        }
    }
    for sink in &decl.sinks {
        let input = info
            .sinks
            .iter()
            .find(|s| s.name == sink.name.name)
            .map_or(Ty::Json, |s| s.input.clone());
        if let Some(op) = cx.operation(&sink.name.name, sink.name.span, &sink.body, Some(&input)) {
            operations.insert(sink.name.name.clone(), op);
        }
    }
    (cx.diags.error_count() == before).then(|| Declared {
        name: decl.name.name.clone(),
        auth,
        rules,
        operations,
    })
}

/// True when a declaration says how some operation runs (else it is a bare signature).
pub fn has_implementation(decl: &ConnectorDecl) -> bool {
    decl.auth.is_some()
        || decl
            .sources
            .iter()
            .map(|s| &s.body)
            .chain(decl.sinks.iter().map(|s| &s.body))
            .any(|b| !b.implementation.is_empty())
}

/// A number of a JSON literal that JSON's 64-bit numbers cannot hold exactly (an integer
/// beyond 64 bits, or out of a float's range).
fn wide_number(json: &JsonLit) -> Option<&str> {
    match json {
        JsonLit::Number(text) => {
            let integer = !text.contains(['.', 'e', 'E']);
            let fits = if integer {
                text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok()
            } else {
                text.parse::<f64>().is_ok_and(f64::is_finite)
            };
            (!fits).then_some(text.as_str())
        }
        JsonLit::Array(items) => items.iter().find_map(wide_number),
        JsonLit::Object(members) => members.iter().find_map(|(_, v)| wide_number(v)),
        _ => None,
    }
}

impl Check<'_> {
    fn error(&mut self, span: Span, message: String, label: &str, help: String) {
        self.diags.push(
            Diagnostic::error(codes::INVALID_CONNECTOR, span, message)
                .label(label.to_string())
                .help(help),
        );
    }

    /// Reports entries not in `known`, and entries given twice.
    fn known(&mut self, what: &str, entries: &[BlockEntry], known: &[&str]) {
        for (idx, entry) in entries.iter().enumerate() {
            let name = entry.name.name.as_str();
            if !known.contains(&name) {
                self.diags.push(
                    Diagnostic::error(
                        codes::UNKNOWN_SETTING,
                        entry.name.span,
                        format!("{what} has no entry `{name}`"),
                    )
                    .label("unknown entry")
                    .help(suggest::did_you_mean(
                        name,
                        known.iter().copied(),
                        &format!("{what} takes {}", known.join(", ")),
                    )),
                );
            } else if entries[..idx].iter().any(|e| e.name.name == name) {
                self.error(
                    entry.name.span,
                    format!("{what} gives `{name}` twice"),
                    "given again here",
                    "give each entry once".into(),
                );
            }
        }
    }

    fn entry<'e>(entries: &'e [BlockEntry], name: &str) -> Option<&'e BlockEntry> {
        entries.iter().find(|e| e.name.name == name)
    }

    /// A string entry (`None` when absent; reported when of another kind).
    fn string(&mut self, entries: &[BlockEntry], name: &str) -> Option<(String, Span)> {
        let entry = Self::entry(entries, name)?;
        if let BlockValue::Expr(e) = &entry.value {
            match &e.kind {
                ExprKind::Lit(Literal::Str(s)) => return Some((s.clone(), e.span)),
                // A list of strings is one text, a line each (a long GraphQL query).
                ExprKind::List(items) => {
                    let lines: Option<Vec<&str>> = items
                        .iter()
                        .map(|i| match &i.kind {
                            ExprKind::Lit(Literal::Str(s)) => Some(s.as_str()),
                            _ => None,
                        })
                        .collect();
                    if let Some(lines) = lines {
                        return Some((lines.join("\n"), e.span));
                    }
                }
                _ => {}
            }
        }
        self.error(
            entry.value.span(),
            format!("`{name}` must be a string"),
            "not a string",
            format!("write `{name} = \"...\"`"),
        );
        None
    }

    fn required(&mut self, what: &str, span: Span, entries: &[BlockEntry], name: &str) -> bool {
        if Self::entry(entries, name).is_some() {
            return true;
        }
        self.error(
            span,
            format!("{what} needs `{name}`"),
            &format!("no `{name}` here"),
            format!("add `{name} = ...` to the block"),
        );
        false
    }

    /// A header name entry: reported when it is not a valid HTTP header name.
    fn header_name(&mut self, entries: &[BlockEntry], name: &str) -> Option<String> {
        let (text, span) = self.string(entries, name)?;
        self.check_header(&text, span);
        Some(text)
    }

    fn check_header(&mut self, text: &str, span: Span) {
        if http::HeaderName::from_bytes(text.as_bytes()).is_err() {
            self.error(
                span,
                format!("`{text}` is not an HTTP header name"),
                "not a header name",
                "a header name is letters, digits and `-` (such as `Idempotency-Key`)".into(),
            );
        }
    }

    /// A template string entry, its variables checked against `scope`.
    fn template(&mut self, entries: &[BlockEntry], name: &str, scope: Scope) -> Option<String> {
        let (text, span) = self.string(entries, name)?;
        self.check_template(&text, span, scope);
        Some(text)
    }

    fn check_template(&mut self, text: &str, span: Span, scope: Scope) {
        if !templates::is_template(text)
            || templates::too_large(
                text,
                span,
                "pass long text in as a setting or a field of the record, and render that name here",
                self.diags,
            )
        {
            return;
        }
        let paths = match variable_paths(text) {
            Ok(paths) => paths,
            Err(err) => return templates::invalid(&err, text, span, self.diags),
        };
        templates::check_filters(text, span, self.diags);
        for path in paths {
            let root = path[0].as_str();
            if templates::GLOBALS.contains(&root) {
                continue;
            }
            let roots = scope.roots();
            if !roots.contains(&root) {
                self.diags.push(
                    Diagnostic::error(
                        codes::UNKNOWN_TEMPLATE_VARIABLE,
                        templates::variable_span(text, span, root),
                        format!("template uses unknown variable `{root}`"),
                    )
                    .label("not in scope here")
                    .help(suggest::did_you_mean(
                        root,
                        roots.iter().copied(),
                        &format!("here a template reads {}", roots.join(", ")),
                    )),
                );
                continue;
            }
            let fields: &[&str] = match root {
                "settings" => &self.settings.clone(),
                "cursor" => &["since", "watermark", "tie"],
                "page" => &["token", "offset", "number", "size", "after"],
                _ => &[],
            };
            if let (false, Some(step)) = (fields.is_empty(), path.get(1)) {
                if !fields.contains(&step.as_str()) {
                    let read = format!("{root}.{step}");
                    self.diags.push(
                        Diagnostic::error(
                            codes::UNKNOWN_TEMPLATE_FIELD,
                            templates::variable_span(text, span, &read),
                            format!("template reads `{read}`, which `{root}` does not have"),
                        )
                        .label(format!("not a field of `{root}`"))
                        .help(suggest::did_you_mean(
                            step,
                            fields.iter().copied(),
                            &format!("`{root}` has {}", fields.join(", ")),
                        )),
                    );
                }
            }
            if let (Scope::Sink(ty), "message") = (scope, root) {
                templates::walk(self.program, self.env, ty, &path, text, span, self.diags);
            }
        }
    }

    /// A JSONPath entry (as written); reported when it is not a simple path.
    fn path(&mut self, entries: &[BlockEntry], name: &str) -> Option<String> {
        let entry = Self::entry(entries, name)?;
        let (text, span) = match &entry.value {
            BlockValue::Expr(e) => match &e.kind {
                ExprKind::JsonPath(p) => (p.clone(), e.span),
                ExprKind::Lit(Literal::Str(s)) => (s.clone(), e.span),
                _ => (String::new(), e.span),
            },
            other => (String::new(), other.span()),
        };
        if omniflow_ir::path::simple_path(&text).is_some() {
            return Some(text);
        }
        self.diags.push(
            Diagnostic::error(
                codes::INVALID_JSONPATH,
                span,
                format!("invalid JSONPath for `{name}`: `{text}`"),
            )
            .label("not a path a declared connector reads")
            .help("write a path of `.name`, `['name']`, `[N]` and `[*]` steps, such as `$.data.orders[*]`"),
        );
        None
    }

    /// Pairs of a `query`/`headers`/`form` entry: a block of `name = "template"` or a
    /// JSON object of string values.
    fn pairs(&mut self, entries: &[BlockEntry], name: &str, scope: Scope) -> Vec<(String, String)> {
        let Some(entry) = Self::entry(entries, name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match &entry.value {
            BlockValue::Block(block) => {
                for e in &block.entries {
                    if let Some(text) = self.template(std::slice::from_ref(e), &e.name.name, scope)
                    {
                        out.push((e.name.name.clone(), text));
                    }
                }
            }
            BlockValue::Json(JsonLit::Object(members), span) => {
                for (key, value) in members {
                    match value {
                        JsonLit::Str(text) => {
                            self.check_template(text, *span, scope);
                            out.push((key.clone(), text.clone()));
                        }
                        JsonLit::Number(n) => out.push((key.clone(), n.clone())),
                        _ => self.error(
                            *span,
                            format!("`{name}` value `{key}` must be a string"),
                            "not a string",
                            format!("write `\"{key}\": \"...\"`"),
                        ),
                    }
                }
            }
            other => self.error(
                other.span(),
                format!("`{name}` must be a block or a JSON object"),
                "not a block",
                format!(
                    "write `{name} {{ name = \"value\" }}` or `{name} = {{\"Name\": \"value\"}}`"
                ),
            ),
        }
        out
    }

    /// A JSON value whose strings are templates (a body, GraphQL variables).
    fn json(&mut self, entries: &[BlockEntry], name: &str, scope: Scope) -> Option<Value> {
        let entry = Self::entry(entries, name)?;
        match &entry.value {
            BlockValue::Json(json, span) => {
                if let Some(number) = wide_number(json) {
                    self.error(
                        *span,
                        format!("the number `{number}` does not fit in 64 bits"),
                        "would be sent rounded",
                        "write it as a string, or take it from the message with a template".into(),
                    );
                }
                let value = json.to_value();
                self.json_templates(&value, *span, scope);
                Some(value)
            }
            BlockValue::Expr(e) => match &e.kind {
                ExprKind::Lit(Literal::Str(s)) => {
                    self.check_template(s, e.span, scope);
                    Some(Value::String(s.clone()))
                }
                _ => {
                    self.error(
                        e.span,
                        format!("`{name}` must be a JSON object or a string"),
                        "not JSON",
                        format!("write `{name} = {{\"field\": \"{{{{ message.field }}}}\"}}`"),
                    );
                    None
                }
            },
            BlockValue::Block(b) => {
                self.error(
                    b.span,
                    format!("`{name}` must be a JSON object or a string"),
                    "a block, not JSON",
                    format!("write `{name} = {{\"field\": \"value\"}}` (with `=` and quoted keys)"),
                );
                None
            }
        }
    }

    fn json_templates(&mut self, value: &Value, span: Span, scope: Scope) {
        match value {
            Value::String(s) => self.check_template(s, span, scope),
            Value::Array(items) => items
                .iter()
                .for_each(|i| self.json_templates(i, span, scope)),
            Value::Object(map) => map
                .values()
                .for_each(|v| self.json_templates(v, span, scope)),
            _ => {}
        }
    }

    /// A request from `entries` (a `request` block, or a login or lookup block).
    fn request(
        &mut self,
        what: &str,
        span: Span,
        entries: &[BlockEntry],
        scope: Scope,
        default: &str,
    ) -> Option<Request> {
        if !self.required(what, span, entries, "path") {
            return None;
        }
        let method = match self.string(entries, "method") {
            Some((m, span)) => {
                let upper = m.to_ascii_uppercase();
                if !METHODS.contains(&upper.as_str()) {
                    self.error(
                        span,
                        format!("unknown method `{m}`"),
                        "not an HTTP method",
                        format!("methods are {}", METHODS.join(", ")),
                    );
                }
                upper
            }
            None => default.to_string(),
        };
        let path = self.template(entries, "path", scope)?;
        let query = self.pairs(entries, "query", scope);
        let headers = self.pairs(entries, "headers", scope);
        if let Some(entry) = Self::entry(entries, "headers") {
            for (name, value) in &headers {
                self.check_header(name, entry.value.span());
                if !templates::is_template(value) && http::HeaderValue::from_str(value).is_err() {
                    self.error(
                        entry.value.span(),
                        format!("the value of header `{name}` cannot be sent"),
                        "not a header value",
                        "a header value is visible ASCII text on one line".into(),
                    );
                }
            }
        }
        let absolute = ["http://", "https://", "{{"]
            .iter()
            .any(|p| path.starts_with(p));
        if !absolute && !self.settings.contains(&"base_url") {
            let path_span = Self::entry(entries, "path").map_or(span, |e| e.value.span());
            self.error(
                path_span,
                format!("{what} has a relative `path` but the connector has no `base_url` setting"),
                "relative to nothing",
                "add `setting base_url: url`, or give an absolute URL".into(),
            );
        }
        let given: Vec<&str> = ["body", "form", "graphql"]
            .into_iter()
            .filter(|b| Self::entry(entries, b).is_some())
            .collect();
        if given.len() > 1 {
            self.error(
                span,
                format!("{what} gives both `{}` and `{}`", given[0], given[1]),
                "one body only",
                "a request has one body: JSON (`body`), form fields (`form`) or a GraphQL operation (`graphql`)".into(),
            );
        }
        let body = if let Some(json) = self.json(entries, "body", scope) {
            Some(match json {
                Value::String(text) => Body::Text(text),
                other => Body::Json(other),
            })
        } else if Self::entry(entries, "form").is_some() {
            Some(Body::Form(self.pairs(entries, "form", scope)))
        } else if let Some((query, qspan)) = self.string(entries, "graphql") {
            let variables = self
                .json(entries, "variables", scope)
                .unwrap_or(Value::Object(Default::default()));
            if let Err(problem) = graphql::check(&query, &variables) {
                self.diags.push(
                    Diagnostic::error(codes::INVALID_GRAPHQL, qspan, format!("invalid GraphQL operation: {problem}"))
                        .label("in this operation")
                        .help("write one operation, such as `query Orders($after: String) { orders(first: 50, after: $after) { nodes { id } } }`, and give each of its variables in `variables`"),
                );
            }
            Some(Body::Graphql { query, variables })
        } else {
            None
        };
        if body.is_some() && method == "GET" {
            self.error(
                span,
                format!("{what} sends a body with GET"),
                "GET requests have no body",
                "give `method = \"POST\"` (GraphQL is sent by POST)".into(),
            );
        }
        Some(Request {
            method,
            path,
            query,
            headers,
            body,
        })
    }

    fn block<'e>(&mut self, entry: &'e BlockEntry) -> Option<&'e Block> {
        match &entry.value {
            BlockValue::Block(b) => Some(b),
            other => {
                let name = &entry.name.name;
                self.error(
                    other.span(),
                    format!("`{name}` must be a block"),
                    "not a block",
                    format!("write `{name} {{ ... }}`"),
                );
                None
            }
        }
    }

    fn auth(&mut self, kind: &str, span: Span, block: &Block) -> Option<Auth> {
        let Some((_, required, optional)) = AUTH.iter().find(|(k, ..)| *k == kind) else {
            self.error(
                span,
                format!("unknown auth kind `{kind}`"),
                "not an auth kind",
                suggest::did_you_mean(
                    kind,
                    AUTH.iter().map(|(k, ..)| *k),
                    &format!(
                        "auth kinds are {}",
                        AUTH.iter().map(|(k, ..)| *k).collect::<Vec<_>>().join(", ")
                    ),
                ),
            );
            return None;
        };
        let known: Vec<&str> = required.iter().chain(optional.iter()).copied().collect();
        let what = format!("auth `{kind}`");
        self.known(&what, &block.entries, &known);
        let mut complete = true;
        for name in *required {
            complete &= self.required(&what, span, &block.entries, name);
        }
        if !complete {
            return None;
        }
        let e = &block.entries;
        let t = |cx: &mut Self, name: &str| cx.template(e, name, Scope::Auth);
        Some(match kind {
            "header" => Auth::Header {
                name: self.header_name(e, "name")?,
                value: t(self, "value")?,
            },
            "bearer" => Auth::Bearer {
                token: t(self, "token")?,
            },
            "basic" => Auth::Basic {
                username: t(self, "username")?,
                password: t(self, "password")?,
            },
            "query" => Auth::Query {
                name: self.string(e, "name")?.0,
                value: t(self, "value")?,
            },
            "oauth2" => Auth::Oauth2 {
                token_url: t(self, "token_url")?,
                client_id: t(self, "client_id")?,
                client_secret: t(self, "client_secret")?,
                refresh_token: t(self, "refresh_token"),
                scope: t(self, "scope"),
                header: self.header_name(e, "header"),
                value: self.template(e, "value", Scope::LoginValue),
            },
            _ => Auth::Login {
                request: self.request(&what, span, e, Scope::Auth, "POST")?,
                token_header: match (Self::entry(e, "token"), Self::entry(e, "token_header")) {
                    (None, None) | (Some(_), Some(_)) => {
                        self.error(
                            span,
                            "a login names where its token is: `token` or `token_header`".into(),
                            "one of them is needed",
                            "write `token = $.access_token` (a path in the answer's body) or `token_header = \"auth-token\"` (an answer header)".into(),
                        );
                        return None;
                    }
                    (_, Some(_)) => Some(self.header_name(e, "token_header")?),
                    _ => None,
                },
                token: match Self::entry(e, "token") {
                    Some(_) => Some(self.path(e, "token")?),
                    None => None,
                },
                expires_in: self.path(e, "expires_in"),
                header: self
                    .header_name(e, "header")
                    .unwrap_or_else(|| "Authorization".to_string()),
                value: self
                    .template(e, "value", Scope::LoginValue)
                    .unwrap_or_else(|| "Bearer {{ token }}".to_string()),
            },
        })
    }

    fn rule(&mut self, block: &Block) -> Option<Rule> {
        let e = &block.entries;
        self.known("a rule", e, RULE);
        if !self.required("a rule", block.span, e, "then") {
            return None;
        }
        let (then_text, then_span) = self.string(e, "then")?;
        let Some(then) = Then::parse(&then_text) else {
            self.error(
                then_span,
                format!("unknown outcome `{then_text}`"),
                "not an outcome",
                format!("a rule's `then` is one of {}", Then::NAMES.join(", ")),
            );
            return None;
        };
        let mut status = Vec::new();
        if let Some(entry) = Self::entry(e, "status") {
            let items: Vec<&crate::syntax::ast::Expr> = match &entry.value {
                BlockValue::Expr(x) => match &x.kind {
                    ExprKind::List(items) => items.iter().collect(),
                    _ => vec![x],
                },
                _ => Vec::new(),
            };
            for item in &items {
                match &item.kind {
                    ExprKind::Lit(Literal::Int(n)) if (100..=599).contains(n) => {
                        status.push((*n as u16, *n as u16))
                    }
                    ExprKind::Lit(Literal::Str(s))
                        if s.len() == 3
                            && s.ends_with("xx")
                            && matches!(s.as_bytes()[0], b'1'..=b'5') =>
                    {
                        let base = u16::from(s.as_bytes()[0] - b'0') * 100;
                        status.push((base, base + 99))
                    }
                    _ => self.error(
                        item.span,
                        "a rule's `status` is a status (100 to 599) or a class (\"4xx\")".into(),
                        "not a status",
                        "write `status = 429`, `status = [502, 503]` or `status = \"5xx\"`".into(),
                    ),
                }
            }
            if items.is_empty() {
                self.error(
                    entry.value.span(),
                    "a rule's `status` is a status or a list of them".into(),
                    "not a status",
                    "write `status = 429` or `status = [502, 503]`".into(),
                );
            }
        }
        let equals = Self::entry(e, "equals").and_then(|entry| {
            let value = match &entry.value {
                BlockValue::Json(json, _) => Some(json.to_value()),
                BlockValue::Expr(x) => super::literal_json(x),
                BlockValue::Block(_) => None,
            };
            if value.is_none() {
                self.error(
                    entry.value.span(),
                    "`equals` must be a literal".into(),
                    "not a string, number, boolean, null or JSON object",
                    "write the value the answer holds, such as `equals = \"maintenance\"`".into(),
                );
            }
            value
        });
        if Self::entry(e, "equals").is_some() && Self::entry(e, "when").is_none() {
            self.error(
                block.span,
                "a rule gives `equals` without `when`".into(),
                "nothing to compare",
                "add `when = $.path`, the answer's value compared with `equals`".into(),
            );
        }
        Some(Rule {
            status,
            when: self.path(e, "when"),
            equals,
            then,
            reason: self.template(e, "reason", Scope::Reason),
            wait_header: self.header_name(e, "wait_header"),
            wait: self.path(e, "wait"),
        })
    }

    fn paging(&mut self, block: &Block) -> Option<Paging> {
        let e = &block.entries;
        self.known("`paging`", e, PAGING);
        let (kind, kind_span) = self
            .string(e, "kind")
            .unwrap_or(("none".into(), block.span));
        let size = |cx: &mut Self, name: &str| -> Option<u64> {
            let entry = Self::entry(e, name)?;
            match &entry.value {
                BlockValue::Expr(x) => match &x.kind {
                    ExprKind::Lit(Literal::Int(n)) if *n >= 1 && *n <= 100_000 => Some(*n as u64),
                    ExprKind::Lit(Literal::Int(0)) if name == "start" => Some(0),
                    _ => {
                        cx.error(
                            x.span,
                            format!("`{name}` must be a whole number from 1 to 100000"),
                            "out of range",
                            format!("write `{name} = 100`"),
                        );
                        None
                    }
                },
                other => {
                    cx.error(
                        other.span(),
                        format!("`{name}` must be a number"),
                        "not a number",
                        format!("write `{name} = 100`"),
                    );
                    None
                }
            }
        };
        let param = |cx: &mut Self, name: &str| cx.string(e, name).map(|(p, _)| p);
        Some(match kind.as_str() {
            "none" => Paging::None,
            "link" => Paging::Link,
            "next_url" => {
                self.required("`paging` of kind `next_url`", block.span, e, "next");
                Paging::NextUrl {
                    next: self.path(e, "next")?,
                }
            }
            "next_token" => {
                self.required("`paging` of kind `next_token`", block.span, e, "next");
                Paging::NextToken {
                    next: self.path(e, "next")?,
                    param: param(self, "param"),
                }
            }
            "offset" => {
                self.required("`paging` of kind `offset`", block.span, e, "size");
                Paging::Offset {
                    param: param(self, "param"),
                    size_param: param(self, "size_param"),
                    size: size(self, "size")?,
                }
            }
            "page" => {
                self.required("`paging` of kind `page`", block.span, e, "size");
                Paging::Page {
                    param: param(self, "param"),
                    size_param: param(self, "size_param"),
                    size: size(self, "size")?,
                    start: size(self, "start").unwrap_or(1),
                }
            }
            "graphql" => {
                self.required("`paging` of kind `graphql`", block.span, e, "page_info");
                Paging::Graphql {
                    page_info: self.path(e, "page_info")?,
                }
            }
            other => {
                self.error(
                    kind_span,
                    format!("unknown paging kind `{other}`"),
                    "not a paging kind",
                    suggest::did_you_mean(
                        other,
                        PAGING_KINDS.iter().copied(),
                        &format!("paging kinds are {}", PAGING_KINDS.join(", ")),
                    ),
                );
                return None;
            }
        })
    }

    /// Reports paging whose position never reaches the request (every page would be the
    /// first): it needs its `param`, or the request reads the page variable.
    fn paging_reaches_request(
        &mut self,
        what: &str,
        span: Span,
        paging: &Paging,
        request: &Request,
    ) {
        let (kind, variable, param) = match paging {
            Paging::Offset { param, .. } => ("offset", "page.offset", param.is_some()),
            Paging::Page { param, .. } => ("page", "page.number", param.is_some()),
            Paging::NextToken { param, .. } => ("next_token", "page.token", param.is_some()),
            Paging::Graphql { .. } => ("graphql", "page.after", false),
            _ => return,
        };
        let mut texts = vec![request.path.clone()];
        texts.extend(
            request
                .query
                .iter()
                .chain(&request.headers)
                .map(|(_, v)| v.clone()),
        );
        match &request.body {
            Some(Body::Json(v)) | Some(Body::Graphql { variables: v, .. }) => {
                texts.push(v.to_string())
            }
            Some(Body::Text(t)) => texts.push(t.clone()),
            Some(Body::Form(f)) => texts.extend(f.iter().map(|(_, v)| v.clone())),
            None => {}
        }
        if param || texts.iter().any(|t| t.contains(variable)) {
            return;
        }
        self.error(
            span,
            format!("{what} pages by `{kind}` but never sends its position"),
            "every page would be the first",
            if kind == "graphql" {
                "give the operation's cursor variable `\"{{ page.after }}\"` in `variables`".to_string()
            } else {
                format!("give the paging `param = \"...\"` (the query parameter), or use `{{{{ {variable} }}}}` in the request")
            },
        );
    }

    fn watermark(&mut self, block: &Block) -> Option<Watermark> {
        let e = &block.entries;
        self.known("`watermark`", e, WATERMARK);
        if !self.required("`watermark`", block.span, e, "field") {
            return None;
        }
        let lookback_ms = match Self::entry(e, "lookback").map(|x| &x.value) {
            None => 0,
            Some(BlockValue::Expr(x)) => match &x.kind {
                ExprKind::Lit(Literal::Duration(ms, _)) if *ms <= 30 * 86_400_000 => *ms,
                _ => {
                    self.error(
                        x.span,
                        "`lookback` must be a duration up to 30d".into(),
                        "not a duration",
                        "write `lookback = 10m`".into(),
                    );
                    return None;
                }
            },
            Some(other) => {
                self.error(
                    other.span(),
                    "`lookback` must be a duration".into(),
                    "not a duration",
                    "write `lookback = 10m`".into(),
                );
                return None;
            }
        };
        Some(Watermark {
            field: self.path(e, "field")?,
            tie: self.path(e, "tie"),
            lookback_ms,
            start: self.string(e, "start").map(|(s, _)| s),
        })
    }

    /// An operation's implementation; `input` is the sink's input type (`None` for a
    /// source).
    fn operation(
        &mut self,
        name: &str,
        span: Span,
        body: &OperationBody,
        input: Option<&Ty>,
    ) -> Option<Operation> {
        let entries = &body.implementation;
        let (what, known, scope) = match input {
            Some(ty) => (format!("sink `{name}`"), SINK_ENTRIES, Scope::Sink(ty)),
            None => (format!("source `{name}`"), SOURCE_ENTRIES, Scope::Source),
        };
        for entry in entries {
            if !known.contains(&entry.name.name.as_str()) {
                let kind = if input.is_some() {
                    "a sink"
                } else {
                    "a source"
                };
                self.error(
                    entry.name.span,
                    format!("`{}` does not apply to {kind}", entry.name.name),
                    "not for this operation",
                    format!("{kind} of a declared connector takes {}", known.join(", ")),
                );
            }
        }
        let Some(request) = Self::entry(entries, "request") else {
            self.diags.push(
                Diagnostic::error(
                    codes::USER_CONNECTOR,
                    span,
                    format!("{what} of a declared connector has no `request`"),
                )
                .label("the runtime would not know what to call")
                .help(format!(
                    "add `request {{ method = \"{}\", path = \"/...\" }}`, or use a standard connector (`use std.connectors.http` reaches any REST API)",
                    if input.is_some() { "POST" } else { "GET" }
                )),
            );
            return None;
        };
        // Every block is checked, so one run reports all of an operation's problems.
        let request = self.block(request).and_then(|block| {
            self.known("`request`", &block.entries, REQUEST);
            let method = if input.is_some() { "POST" } else { "GET" };
            self.request("`request`", block.span, &block.entries, scope, method)
        });
        let mut rules = Vec::new();
        for entry in entries.iter().filter(|e| e.name.name == "rule") {
            if let Some(block) = self.block(entry) {
                rules.extend(self.rule(block));
            }
        }
        let paging = match Self::entry(entries, "paging") {
            Some(entry) => self.block(entry).and_then(|block| self.paging(block)),
            None => Some(Paging::None),
        };
        let watermark = match Self::entry(entries, "watermark") {
            Some(entry) => self
                .block(entry)
                .and_then(|block| self.watermark(block))
                .map(Some),
            None => Some(None),
        };
        let lookup = match Self::entry(entries, "lookup") {
            Some(entry) => self
                .block(entry)
                .and_then(|block| {
                    self.known("`lookup`", &block.entries, &[REQUEST, &["found"]].concat());
                    self.required("`lookup`", block.span, &block.entries, "found");
                    let request =
                        self.request("`lookup`", block.span, &block.entries, scope, "GET");
                    Some(Lookup {
                        request: request?,
                        found: self.path(&block.entries, "found")?,
                    })
                })
                .map(Some),
            None => Some(None),
        };
        let (request, paging, watermark, lookup) = (request?, paging?, watermark?, lookup?);
        self.paging_reaches_request(&what, span, &paging, &request);
        if matches!(paging, Paging::Graphql { .. }) && request.body.is_none() {
            self.error(
                span,
                format!("{what} pages GraphQL-style but sends no `graphql` operation"),
                "no GraphQL operation",
                "add `graphql = \"query ...\"` to the request, with `$after` for `page.after`"
                    .into(),
            );
        }
        let absent_is_empty = match Self::entry(entries, "absent_is_empty").map(|e| &e.value) {
            None => false,
            Some(BlockValue::Expr(e)) if matches!(e.kind, ExprKind::Lit(Literal::Bool(_))) => {
                matches!(e.kind, ExprKind::Lit(Literal::Bool(true)))
            }
            Some(other) => {
                self.error(
                    other.span(),
                    "`absent_is_empty` must be `true` or `false`".into(),
                    "not a boolean",
                    "write `absent_is_empty = true` for an API that leaves an empty list out"
                        .into(),
                );
                false
            }
        };
        Some(Operation {
            request,
            records: self.path(entries, "records"),
            absent_is_empty,
            key: self.path(entries, "key"),
            paging,
            watermark,
            rules,
            idempotency: self.header_name(entries, "idempotency"),
            lookup,
            document: self.path(entries, "document"),
        })
    }
}
