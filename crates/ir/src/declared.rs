//! Connectors declared in `.flow` files: how each operation's requests are made, its
//! answers read and its outcomes classified. The compiler checks a declaration and writes
//! it here; the runtime's declared connector runs it. Strings named *template* are
//! minijinja templates; strings named *path* are simple JSONPaths (`$.a.b[0][*]`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A declared connector: its authentication and its operations by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Declared {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Outcome rules every operation tries after its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    pub operations: BTreeMap<String, Operation>,
}

/// One HTTP request: every string is a template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// `GET`, `POST`, ... (upper case).
    pub method: String,
    /// Below the connection's `base_url`, or an absolute URL.
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// A JSON value whose strings are templates; a string that is one `{{ expression }}`
    /// alone becomes the expression's value (a number stays a number).
    Json(serde_json::Value),
    /// A template rendered as the body, sent as is.
    Text(String),
    /// Form fields (`application/x-www-form-urlencoded`), values templates.
    Form(Vec<(String, String)>),
    /// A GraphQL operation: the query text and its variables (strings templates).
    Graphql {
        query: String,
        variables: serde_json::Value,
    },
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// A header sent as is (`name`, `value` template).
    Header { name: String, value: String },
    /// `Authorization: Bearer <token>`.
    Bearer { token: String },
    /// `Authorization: Basic base64(username:password)`.
    Basic { username: String, password: String },
    /// A query parameter (an API key in the URL).
    Query { name: String, value: String },
    /// OAuth 2 at `token_url`: the refresh-token grant when `refresh_token` is given,
    /// else client credentials. Sent as a bearer token (or in `header` with the template
    /// `value` over `token`, as Amazon's SP-API takes its LWA token in
    /// `x-amz-access-token`), renewed before it expires and after a 401 or 403.
    Oauth2 {
        token_url: String,
        client_id: String,
        client_secret: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refresh_token: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
    /// A login request whose answer yields the token (at the `token` path of its body, or
    /// in its header `token_header`), then sent as the header `header` with the template
    /// `value` (over `token` and the whole `login` answer). Done again after `expires_in`
    /// (a path, seconds) and whenever a rule says `reauth`.
    Login {
        request: Request,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_in: Option<String>,
        header: String,
        value: String,
    },
}

/// One operation of a declared connector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub request: Request,
    /// Sources: where the records are in an answer (a path; the answer itself when
    /// absent and the answer is a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
    /// Sources: an answer without the records' list has none (APIs that leave an empty
    /// list out); otherwise such an answer fails the poll.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent_is_empty: bool,
    /// Sources: a record's identity (a path); re-read records unchanged are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub paging: Paging,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<Watermark>,
    /// Outcome rules, first match wins, before the connector's and the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// Sinks: the header carrying each message's idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<String>,
    /// Sinks: a read before each write; when `found` selects something, the write is
    /// already done and is not sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<Lookup>,
    /// Sinks: the path of the created record's id in a success answer (kept in the
    /// lineage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

/// Read-before-write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lookup {
    pub request: Request,
    /// The path that selects the record when it exists.
    pub found: String,
}

/// How a source moves from one page to the next within a poll.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Paging {
    /// One request per poll.
    #[default]
    None,
    /// The `Link` header's `rel="next"` URL.
    Link,
    /// The answer's next-page URL at `next` (a path).
    NextUrl { next: String },
    /// A token or cursor at `next` (a path), sent back as query parameter `param` (and
    /// as `page.token` in templates).
    NextToken {
        next: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        param: Option<String>,
    },
    /// `offset`/`limit` parameters (`page.offset`, `page.size` in templates); stops at a
    /// short page.
    Offset {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        param: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size_param: Option<String>,
        size: u64,
    },
    /// Page numbers from `start` (`page.number` in templates); stops at a short page.
    Page {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        param: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size_param: Option<String>,
        size: u64,
        start: u64,
    },
    /// GraphQL connections: `page_info` is the path of `{ hasNextPage endCursor }`; the
    /// end cursor is `page.after` in the variables.
    Graphql { page_info: String },
}

/// An incremental source: the largest `(field, tie)` read is kept, and later polls ask
/// from it (`cursor.since`, minus `lookback_ms`; `cursor.watermark`, `cursor.tie`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watermark {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie: Option<String>,
    #[serde(default)]
    pub lookback_ms: u64,
    /// The watermark before the first poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

/// An outcome rule: when the status matches (and the `when` path selects something, or
/// equals `equals`), the call ends as `then`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Statuses: exact (`404`) or classes (`4xx` as 400..=499); empty for any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<(u16, u16)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    pub then: Then,
    /// A template over `answer`, `status` (the dead letter's or retry's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Transient: how long to wait, a header's seconds (`Retry-After`)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_header: Option<String>,
    /// ... or the seconds at a path of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
}

/// What a rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Then {
    Ok,
    Transient,
    Permanent,
    /// Authenticate again and send the request once more.
    Reauth,
}

impl Then {
    /// The names rules use.
    pub const NAMES: &'static [&'static str] = &["ok", "transient", "permanent", "reauth"];

    /// The outcome named `name`.
    pub fn parse(name: &str) -> Option<Then> {
        Some(match name {
            "ok" => Then::Ok,
            "transient" => Then::Transient,
            "permanent" => Then::Permanent,
            "reauth" => Then::Reauth,
            _ => return None,
        })
    }
}
