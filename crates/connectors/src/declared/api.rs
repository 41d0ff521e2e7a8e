//! One declared connection: building a declaration's requests, authenticating them and
//! sending them, with one fresh token and one more try when the answer says the token
//! is no longer good.

use super::classify::{self, Compiled, Decision};
use super::select::Path;
use super::template::Templates;
use crate::api::{ConnectorError, Map};
use crate::client::{self, Reply};
use crate::tokens::{TokenCache, TokenSlot};
use crate::CallOutcome;
use base64::Engine;
use minijinja::Value as Context;
use omniflow_ir::declared::{Auth, Body, Declared, Request};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Largest answer read (a longer one fails the call instead of filling memory).
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// A declared connector's connection.
pub struct Api {
    pub name: String,
    client: reqwest::Client,
    base: String,
    pub settings: Value,
    /// `settings` as a template value, made once.
    settings_context: Context,
    pub templates: Templates,
    auth: Option<Auth>,
    token: TokenSlot,
    /// Held while a token is fetched, so concurrent calls of the connection (its sources
    /// and sinks alike) make one login.
    fetching: std::rc::Rc<tokio::sync::Mutex<()>>,
    pub rules: Vec<Compiled>,
    /// When the connection's token was last dropped as refused (shared by its sources and
    /// sinks).
    dropped: std::rc::Rc<std::cell::Cell<Option<Instant>>>,
}

/// How long after dropping a refused token a refusal keeps the new one.
pub const REFETCH_PAUSE: Duration = Duration::from_secs(5);

/// What a call adds to a declared request: a next-page URL in place of its path and
/// query, paging parameters, and headers (an idempotency key).
#[derive(Default, Clone, Copy)]
pub struct Extra<'a> {
    pub url: Option<&'a str>,
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
}

/// An answer, its JSON (when it is JSON) and the URL that gave it.
pub struct Answer {
    pub reply: Reply,
    pub json: Option<Value>,
    pub url: reqwest::Url,
}

impl Api {
    /// The connection of `spec` with resolved `settings`.
    pub fn new(
        tokens: &TokenCache,
        spec: &Declared,
        settings: &Map,
    ) -> Result<Api, ConnectorError> {
        let base = settings
            .get("base_url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string();
        let settings = Value::Object(settings.clone().into_iter().collect());
        // Sources and sinks of one connection share its token.
        let key = format!(
            "declared:{}:{:016x}",
            spec.name,
            super::fingerprint(settings.to_string().as_bytes())
        );
        Ok(Api {
            name: spec.name.clone(),
            client: client::build_same_origin()?,
            base,
            settings_context: Context::from_serialize(&settings),
            settings,
            templates: Templates::default(),
            auth: spec.auth.clone(),
            token: tokens.slot(key.clone()),
            fetching: tokens.lock(key.clone()),
            rules: classify::compile(&spec.rules)?,
            dropped: tokens.dropped(key),
        })
    }

    /// True when a token is fetched (a login or OAuth 2), so a refusal may be mended by
    /// fetching another.
    pub fn token_auth(&self) -> bool {
        matches!(self.auth, Some(Auth::Login { .. } | Auth::Oauth2 { .. }))
    }

    /// A template context: the settings and `extra` variables.
    pub fn context(&self, extra: &[(&str, Context)]) -> Context {
        let mut map: std::collections::BTreeMap<&str, Context> = extra.iter().cloned().collect();
        map.insert("settings", self.settings_context.clone());
        Context::from_iter(map)
    }

    /// A next page's URL (a `Link` target or an answer's next URL), resolved against the
    /// URL of the page that named it; refused on another origin than that page's, where
    /// the connection's credentials must not go.
    pub fn next_url(&self, page: &reqwest::Url, next: &str) -> Result<String, String> {
        let url = page
            .join(next.trim())
            .map_err(|e| format!("the next page's URL `{next}` does not parse: {e}"))?;
        // The page's own origin: the API's (`base_url`'s, or an absolute `path`'s).
        if url.origin() != page.origin() {
            return Err(format!(
                "the API names a next page on another host ({}); it is not followed, so the connection's credentials stay with the API",
                url.origin().ascii_serialization()
            ));
        }
        Ok(url.to_string())
    }

    /// `path` (a rendered path below `base_url`, or an absolute URL) as a URL.
    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else if path.is_empty() || path.starts_with('/') || path.starts_with('?') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        }
    }

    /// Builds `request` over `ctx`; `url` replaces its path and query (a next-page URL).
    fn build(
        &self,
        request: &Request,
        ctx: &Context,
        extra: Extra,
    ) -> Result<reqwest::RequestBuilder, String> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| format!("method `{}`: {e}", request.method))?;
        let t = &self.templates;
        let mut builder = match extra.url {
            Some(url) => self.client.request(method, self.url(url)),
            None => {
                let mut query = Vec::new();
                for (name, value) in &request.query {
                    let value = t.text(value, ctx)?;
                    // A parameter that renders empty (a first poll's `since`) is left out.
                    if !value.is_empty() {
                        query.push((name.clone(), value));
                    }
                }
                query.extend(extra.query.iter().cloned());
                self.client
                    .request(method, self.url(&t.text(&request.path, ctx)?))
                    .query(&query)
            }
        };
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), t.text(value, ctx)?);
        }
        for (name, value) in extra.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder = match &request.body {
            None => builder,
            Some(Body::Json(json)) => builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(t.json(json, ctx)?.to_string()),
            Some(Body::Text(text)) => {
                let text = t.text(text, ctx)?;
                // A text body that is JSON is sent as JSON (a declared header wins).
                let kind = if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
                    "application/json"
                } else {
                    "text/plain; charset=utf-8"
                };
                let declared = request
                    .headers
                    .iter()
                    .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
                let builder = if declared {
                    builder
                } else {
                    builder.header(reqwest::header::CONTENT_TYPE, kind)
                };
                builder.body(text)
            }
            Some(Body::Form(fields)) => {
                let fields = fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), t.text(v, ctx)?)))
                    .collect::<Result<Vec<_>, String>>()?;
                builder.form(&fields)
            }
            Some(Body::Graphql { query, variables }) => builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(
                    serde_json::json!({"query": query, "variables": t.json(variables, ctx)?})
                        .to_string(),
                ),
        };
        Ok(builder)
    }

    /// Sends `request` with its credentials and classifies the answer by `rules` (the
    /// operation's, then the connector's and the defaults). A refused token is fetched
    /// again once.
    pub async fn send(
        &self,
        request: &Request,
        ctx: &Context,
        extra: Extra<'_>,
        rules: &[Compiled],
        timeout: Duration,
    ) -> Result<Answer, CallOutcome> {
        let graphql = matches!(request.body, Some(Body::Graphql { .. }));
        let mut fresh = false;
        loop {
            let mut builder = self
                .build(request, ctx, extra)
                .map_err(|reason| CallOutcome::Permanent { reason })?;
            let (authenticated, used) = self.authenticate(builder, timeout).await?;
            builder = authenticated;
            let (reply, url) = read(builder, timeout).await?;
            let json: Option<Value> = serde_json::from_slice(&reply.body).ok();
            let renders = |text: &str| {
                let ctx = self.context(&[
                    (
                        "answer",
                        Context::from_serialize(json.as_ref().unwrap_or(&Value::Null)),
                    ),
                    ("status", Context::from(reply.status)),
                ]);
                self.templates.text(text, &ctx).unwrap_or_else(|e| e)
            };
            let decision = classify::decide(
                &reply,
                json.as_ref(),
                &[rules, &self.rules],
                &renders,
                self.token_auth(),
                graphql,
            );
            match decision {
                Decision::Ok => return Ok(Answer { reply, json, url }),
                Decision::Failed(outcome) => return Err(outcome),
                Decision::Reauth(reason) if !self.token_auth() => {
                    return Err(CallOutcome::Permanent {
                        reason: format!("the credentials were refused: {reason}"),
                    })
                }
                Decision::Reauth(reason) if fresh => {
                    return Err(CallOutcome::Permanent {
                        reason: format!(
                            "the credentials were refused again after a fresh login: {reason}"
                        ),
                    })
                }
                Decision::Reauth(reason) => match self.refused(used.as_deref()) {
                    Ok(()) => {
                        tracing::info!(connector = %self.name, %reason, "credentials refused; fetching a new token");
                        fresh = true;
                    }
                    Err(outcome) => return Err(outcome),
                },
            }
        }
    }

    /// The token `used` was refused: `Ok` when the call may be sent again, with a newer
    /// token another call fetched meanwhile, or after dropping `used` so that a new one is
    /// fetched. Within [`REFETCH_PAUSE`] of the connection's last drop the token is kept and
    /// the call is a transient failure that waits the pause out: a refusal a new token
    /// does not mend (a missing permission) must not fetch one per call.
    pub fn refused(&self, used: Option<&str>) -> Result<(), CallOutcome> {
        let mut slot = self.token.borrow_mut();
        let cached = slot.as_ref().map(|(value, _)| value.as_str());
        if cached.is_some() && cached != used {
            return Ok(());
        }
        if let Some(since) = self.dropped.get().map(|at| at.elapsed()) {
            if since < REFETCH_PAUSE {
                return Err(CallOutcome::Transient {
                    class: "auth".into(),
                    reason: format!(
                        "the credentials were refused again less than {} s after a new token was fetched",
                        REFETCH_PAUSE.as_secs()
                    ),
                    retry_after: Some(REFETCH_PAUSE - since),
                });
            }
        }
        slot.take();
        self.dropped.set(Some(Instant::now()));
        Ok(())
    }

    /// The header carrying a fetched token (a login's or OAuth 2's), fetching one when
    /// none is cached or it is about to expire; `None` without such credentials. For
    /// callers that send their own requests.
    pub async fn token_header(
        &self,
        timeout: Duration,
    ) -> Result<Option<(String, String)>, CallOutcome> {
        match &self.auth {
            Some(auth @ (Auth::Login { .. } | Auth::Oauth2 { .. })) => {
                self.token(auth, timeout).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Adds the credentials to a request, fetching a token when none is cached or it
    /// is about to expire.
    /// The request with its credentials, and the fetched token it carries (if any).
    async fn authenticate(
        &self,
        builder: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<(reqwest::RequestBuilder, Option<String>), CallOutcome> {
        let ctx = self.context(&[]);
        let t = &self.templates;
        let text = |s: &str| {
            t.text(s, &ctx)
                .map_err(|reason| CallOutcome::Permanent { reason })
        };
        Ok(match &self.auth {
            None => (builder, None),
            Some(Auth::Header { name, value }) => {
                (builder.header(name.as_str(), text(value)?), None)
            }
            Some(Auth::Bearer { token }) => (builder.bearer_auth(text(token)?), None),
            Some(Auth::Basic { username, password }) => {
                let pair = format!("{}:{}", text(username)?, text(password)?);
                let basic = base64::engine::general_purpose::STANDARD.encode(pair);
                (
                    builder.header(reqwest::header::AUTHORIZATION, format!("Basic {basic}")),
                    None,
                )
            }
            Some(Auth::Query { name, value }) => {
                (builder.query(&[(name.as_str(), text(value)?)]), None)
            }
            Some(auth @ (Auth::Login { .. } | Auth::Oauth2 { .. })) => {
                let (header, value) = self.token(auth, timeout).await?;
                (builder.header(header, value.as_str()), Some(value))
            }
        })
    }

    /// The cached header of a fetched token, fetching one when needed.
    async fn token(&self, auth: &Auth, timeout: Duration) -> Result<(String, String), CallOutcome> {
        let header = match auth {
            Auth::Login { header, .. }
            | Auth::Oauth2 {
                header: Some(header),
                ..
            } => header.clone(),
            _ => "authorization".to_string(),
        };
        let cached = || {
            self.token
                .borrow()
                .as_ref()
                .filter(|(_, until)| Instant::now() < *until)
                .map(|(value, _)| value.clone())
        };
        if let Some(value) = cached() {
            return Ok((header, value));
        }
        // One login at a time: calls waiting here use the token the first one fetched.
        let _fetching = self.fetching.lock().await;
        if let Some(value) = cached() {
            return Ok((header, value));
        }
        let (value, lifetime) = match auth {
            Auth::Login {
                request,
                token,
                token_header,
                expires_in,
                value,
                ..
            } => {
                let at = match token_header {
                    Some(header) => TokenAt::Header(header),
                    None => TokenAt::Path(token.as_deref().unwrap_or("$.token")),
                };
                self.login(request, at, expires_in.as_deref(), value, timeout)
                    .await?
            }
            Auth::Oauth2 {
                token_url,
                client_id,
                client_secret,
                refresh_token,
                scope,
                value,
                ..
            } => {
                let ctx = self.context(&[]);
                let t = &self.templates;
                let text = |s: &str| {
                    t.text(s, &ctx)
                        .map_err(|reason| CallOutcome::Permanent { reason })
                };
                let mut form = vec![
                    ("client_id".to_string(), text(client_id)?),
                    ("client_secret".to_string(), text(client_secret)?),
                ];
                match refresh_token {
                    Some(refresh) => {
                        form.push(("grant_type".into(), "refresh_token".into()));
                        form.push(("refresh_token".into(), text(refresh)?));
                    }
                    None => form.push(("grant_type".into(), "client_credentials".into())),
                }
                if let Some(scope) = scope {
                    form.push(("scope".into(), text(scope)?));
                }
                let request = Request {
                    method: "POST".into(),
                    path: text(token_url)?,
                    query: Vec::new(),
                    headers: Vec::new(),
                    body: Some(Body::Form(form)),
                };
                self.login(
                    &request,
                    TokenAt::Path("$.access_token"),
                    Some("$.expires_in"),
                    value.as_deref().unwrap_or("Bearer {{ token }}"),
                    timeout,
                )
                .await?
            }
            _ => unreachable_auth()?,
        };
        // Renewed a minute (or a tenth of its life) before it expires.
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        *self.token.borrow_mut() = Some((value.clone(), Instant::now() + lifetime - margin));
        Ok((header, value))
    }

    /// Runs a login request; the header value and how long it is good for.
    async fn login(
        &self,
        request: &Request,
        token: TokenAt<'_>,
        expires_in: Option<&str>,
        value: &str,
        timeout: Duration,
    ) -> Result<(String, Duration), CallOutcome> {
        let ctx = self.context(&[]);
        let builder = self
            .build(request, &ctx, Extra::default())
            .map_err(|reason| CallOutcome::Permanent { reason })?;
        let (reply, _) = read(builder, timeout).await?;
        if !reply.ok() {
            let reason = format!("the login was refused: {}", classify::reason(&reply));
            return Err(match reply.status {
                401 | 403 | 400 => CallOutcome::Permanent { reason },
                _ => client::outcome(
                    &reply,
                    client::seconds_header(&reply.headers, "retry-after"),
                    reason,
                ),
            });
        }
        // A token in a header leaves the body free to be anything (a GraphQL answer).
        let answer = match token {
            TokenAt::Header(_) => serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
            TokenAt::Path(_) => reply
                .document()
                .map_err(|e| client::unreadable(format!("the login answer: {e}")))?,
        };
        let found = match token {
            TokenAt::Path(at) => {
                let path = Path::new(at).map_err(|reason| CallOutcome::Permanent { reason })?;
                path.first(&answer).and_then(super::select::value_text)
            }
            TokenAt::Header(name) => reply
                .header(name)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from),
        };
        let Some(found) = found else {
            if answer.is_null() {
                return Err(client::unreadable(format!(
                    "the login answer has no token ({}) and is not JSON",
                    token.describe()
                )));
            }
            // A login refused in a 200 (GraphQL's error results). The answer is not quoted:
            // it may hold the token under another name; its field names and its error
            // words are.
            return Err(CallOutcome::Permanent {
                reason: format!(
                    "the login answer has no token ({}); it has {}",
                    token.describe(),
                    login_refusal(&answer)
                ),
            });
        };
        let lifetime = expires_in
            .and_then(|p| Path::new(p).ok())
            .and_then(|p| p.first(&answer).and_then(Value::as_f64))
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(Duration::from_secs(24 * 3600), |s| {
                Duration::from_secs_f64(s.min(1e7))
            });
        let ctx = self.context(&[
            ("token", Context::from(found)),
            ("login", Context::from_serialize(&answer)),
        ]);
        let header = self
            .templates
            .text(value, &ctx)
            .map_err(|reason| CallOutcome::Permanent { reason })?;
        Ok((header, lifetime))
    }
}

/// What a login answer without a token says, without its values: its field names (two
/// levels deep), and the text of fields that carry an error (`message`, `errorCode`,
/// `error`, `error_description`).
fn login_refusal(answer: &Value) -> String {
    const WORDS: [&str; 4] = ["message", "errorCode", "error", "error_description"];
    let mut names = Vec::new();
    let mut words = Vec::new();
    let mut visit = |prefix: &str, value: &Value| {
        let Value::Object(fields) = value else {
            return Vec::new();
        };
        let mut nested = Vec::new();
        for (name, value) in fields {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match value {
                Value::String(text) if WORDS.contains(&name.as_str()) => words.push(format!(
                    "{path}: {}",
                    text.chars().take(200).collect::<String>()
                )),
                Value::Object(_) => nested.push((path.clone(), value.clone())),
                Value::Array(items) => {
                    if let Some(first @ Value::Object(_)) = items.first() {
                        nested.push((format!("{path}[0]"), first.clone()));
                    }
                }
                _ => {}
            }
            names.push(path);
        }
        nested
    };
    let mut level = vec![(String::new(), answer.clone())];
    for _ in 0..3 {
        level = level
            .iter()
            .flat_map(|(prefix, value)| visit(prefix, value))
            .collect();
    }
    let mut text = format!("the fields {}", names.join(", "));
    if !words.is_empty() {
        text.push_str(&format!("; {}", words.join("; ")));
    }
    text
}

/// Where a login's answer holds the token.
#[derive(Clone, Copy)]
enum TokenAt<'a> {
    /// A path in the body.
    Path(&'a str),
    /// A header.
    Header(&'a str),
}

impl TokenAt<'_> {
    fn describe(self) -> String {
        match self {
            TokenAt::Path(path) => format!("at `{path}`"),
            TokenAt::Header(name) => format!("in the header `{name}`"),
        }
    }
}

fn unreachable_auth() -> Result<(String, Duration), CallOutcome> {
    Err(CallOutcome::Permanent {
        reason: "this authentication fetches no token".into(),
    })
}

/// Sends a request and reads its answer, up to [`MAX_ANSWER_BYTES`], with the URL that
/// gave it. Errors leave the URL out (its query may hold an API key).
async fn read(
    builder: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<(Reply, reqwest::Url), CallOutcome> {
    let builder = match crate::trace::current() {
        Some(traceparent) => builder.header("traceparent", traceparent),
        None => builder,
    };
    let transport = |err: reqwest::Error, what: &str| {
        let err = err.without_url();
        if err.is_builder() {
            return CallOutcome::Permanent {
                reason: format!("the request could not be built: {err}"),
            };
        }
        CallOutcome::Transient {
            class: if err.is_timeout() {
                "timeout"
            } else {
                "connect"
            }
            .into(),
            reason: format!("{what}: {err}"),
            retry_after: None,
        }
    };
    let mut response = builder
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| transport(e, "the request failed"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let url = response.url().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport(e, "the answer was cut off"))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(CallOutcome::Permanent {
                reason: format!("the answer is over {MAX_ANSWER_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok((
        Reply {
            status,
            headers,
            body,
        },
        url,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(base: &str) -> Api {
        let settings: Map = [("base_url".to_string(), Value::from(base))]
            .into_iter()
            .collect();
        Api::new(&TokenCache::default(), &Declared::default(), &settings).unwrap()
    }

    #[test]
    fn oauth2_without_a_refresh_token_asks_for_client_credentials_and_caches_the_token() {
        crate::local_api::block_on(async {
            let (base, mut requests) = crate::local_api::serve(|_| {
                let token =
                    r#"{"access_token": "t-1", "token_type": "bearer", "expires_in": 3600}"#;
                (200, token.to_string())
            })
            .await;
            let url = format!("{base}/token");
            let spec = Declared {
                name: "grantless".into(),
                auth: Some(Auth::Oauth2 {
                    token_url: url,
                    client_id: "{{ settings.client_id }}".into(),
                    client_secret: "s&1".into(),
                    refresh_token: None,
                    scope: Some("sellingpartnerapi::notifications".into()),
                    header: None,
                    value: None,
                }),
                ..Declared::default()
            };
            let settings: Map = [("client_id".to_string(), Value::from("app-1"))]
                .into_iter()
                .collect();
            let api = Api::new(&TokenCache::default(), &spec, &settings).unwrap();
            let timeout = Duration::from_secs(5);
            let header = api.token_header(timeout).await.unwrap();
            assert_eq!(
                header,
                Some(("authorization".to_string(), "Bearer t-1".to_string()))
            );
            let request = requests.recv().await.unwrap();
            let form = request.rsplit("\r\n\r\n").next().unwrap();
            for field in [
                "grant_type=client_credentials",
                "client_id=app-1",
                "client_secret=s%261",
                "scope=sellingpartnerapi%3A%3Anotifications",
            ] {
                assert!(form.contains(field), "{field} in {form}");
            }
            assert!(!form.contains("refresh_token"), "{form}");
            // Cached: a second call fetches nothing.
            assert_eq!(api.token_header(timeout).await.unwrap(), header);
            assert!(requests.try_recv().is_err());
        });
    }

    #[test]
    fn a_refused_token_is_dropped_once_in_a_pause_per_connection() {
        let tokens = TokenCache::default();
        let spec = Declared {
            name: "oms".into(),
            auth: Some(Auth::Bearer { token: "x".into() }),
            ..Declared::default()
        };
        let settings = Map::new();
        // A source and a sink of one connection: two callers, one slot, one pause.
        let (source, sink) = (
            Api::new(&tokens, &spec, &settings).unwrap(),
            Api::new(&tokens, &spec, &settings).unwrap(),
        );
        let later = Instant::now() + Duration::from_secs(60);
        *source.token.borrow_mut() = Some(("t1".into(), later));
        assert!(source.refused(Some("t1")).is_ok());
        assert!(sink.token.borrow().is_none(), "dropped for every caller");
        *sink.token.borrow_mut() = Some(("t2".into(), later));
        // A call that was refused with the old token goes on with the new one.
        assert!(source.refused(Some("t1")).is_ok());
        assert_eq!(
            sink.token.borrow().as_ref().map(|t| t.0.clone()),
            Some("t2".into())
        );
        // The new token refused within the pause is kept; the call waits.
        match sink.refused(Some("t2")) {
            Err(CallOutcome::Transient {
                class, retry_after, ..
            }) => {
                assert_eq!(class, "auth");
                assert!(retry_after.is_some_and(|w| w <= REFETCH_PAUSE));
            }
            other => panic!("{other:?}"),
        }
        assert!(source.token.borrow().is_some());
    }

    #[test]
    fn a_login_answer_without_a_token_is_described_not_quoted() {
        let wrong_name =
            serde_json::json!({"accessToken": "tok-secret", "refresh_token": "r-secret"});
        let text = login_refusal(&wrong_name);
        assert_eq!(text, "the fields accessToken, refresh_token");
        let refused = serde_json::json!({"data": {"login": {
            "errorCode": "INVALID_CREDENTIALS_ERROR", "message": "The provided credentials are invalid",
            "authenticationError": "hash-secret"}}});
        let text = login_refusal(&refused);
        assert!(
            text.contains("data.login.errorCode: INVALID_CREDENTIALS_ERROR")
                && text.contains("data.login.message: The provided credentials are invalid")
                && text.contains("data.login.authenticationError")
                && !text.contains("hash-secret"),
            "{text}"
        );
    }

    #[test]
    fn next_pages_resolve_against_the_page_and_stay_on_the_api_host() {
        let api = api("http://127.0.0.1:9/api");
        let page = reqwest::Url::parse("http://127.0.0.1:9/api/orders?page=1").unwrap();
        assert_eq!(
            api.next_url(&page, "/api/orders?page=2").unwrap(),
            "http://127.0.0.1:9/api/orders?page=2"
        );
        assert_eq!(
            api.next_url(&page, "orders?page=2").unwrap(),
            "http://127.0.0.1:9/api/orders?page=2"
        );
        for elsewhere in [
            "http://evil.example/steal",
            "https://127.0.0.1:9/api/orders",
            "http://127.0.0.1:10/api",
        ] {
            let refused = api.next_url(&page, elsewhere).unwrap_err();
            assert!(refused.contains("another host"), "{refused}");
        }
    }
}
