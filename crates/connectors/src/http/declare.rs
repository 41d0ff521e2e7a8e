//! The generic `http` connector's abilities beyond a static header, as a declared
//! connector's: credentials from the connection's settings (bearer, basic, an API key in a
//! header or the query, a token fetched by OAuth 2 or a login) and, for `get` with `records`, `paging`, `method` or
//! `watermark_path`, a request read like a declared source's (JSONPath records, paging,
//! watermark with tie-breaker and lookback).

use crate::api::Map;
use omniflow_ir::declared::{Auth, Body, Declared, Operation, Paging, Request, Watermark};
use serde_json::Value;

fn text<'a>(map: &'a Map, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// A name and its value (a header, a query parameter).
pub type Pair = (String, String);

/// The credentials the connection's settings give, as headers and a query parameter:
/// `(headers, query)`.
pub fn credentials(settings: &Map) -> (Vec<Pair>, Option<Pair>) {
    use base64::Engine;
    let mut headers = Vec::new();
    if let Some(value) = text(settings, "auth_header") {
        headers.push(("authorization".to_string(), value.to_string()));
    }
    if let Some(token) = text(settings, "bearer_token") {
        headers.push(("authorization".to_string(), format!("Bearer {token}")));
    }
    if let Some(user) = text(settings, "basic_username") {
        let pair = format!("{user}:{}", text(settings, "basic_password").unwrap_or(""));
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        headers.push(("authorization".to_string(), format!("Basic {encoded}")));
    }
    let key = text(settings, "api_key");
    if let (Some(key), Some(header)) = (key, text(settings, "key_header")) {
        headers.push((header.to_ascii_lowercase(), key.to_string()));
    }
    let query = key
        .zip(text(settings, "key_query"))
        .map(|(key, name)| (name.to_string(), key.to_string()));
    (headers, query)
}

/// True when a `get` source is read like a declared source's: its options say so.
pub fn declared_get(options: &Map) -> bool {
    ["records", "paging", "method", "body", "watermark_path"]
        .iter()
        .any(|k| options.contains_key(*k))
}

/// A JSON value whose strings are literals (no template in a secret is rendered).
fn literal_json(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(literal(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(literal_json).collect()),
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .map(|(k, v)| (k, literal_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The fetched-token credentials the settings give: OAuth 2 (`token_url`, `client_id`,
/// `client_secret`, `refresh_token`, `scope`) or a login (`login_path` with the JSON
/// `login_body`, the token at `token_path`, its lifetime at `expires_path`); sent as a
/// bearer token, or alone in `token_header`.
pub fn token_auth(settings: &Map) -> Result<Option<Auth>, String> {
    let header = text(settings, "token_header").map(|h| h.to_ascii_lowercase());
    if let Some(h) = &header {
        reqwest::header::HeaderName::from_bytes(h.as_bytes())
            .map_err(|_| format!("http connection: `token_header` `{h}` is not a header name"))?;
    }
    let value = header.as_ref().map(|_| "{{ token }}".to_string());
    if let Some(url) = text(settings, "token_url") {
        let need = |name: &str| {
            text(settings, name)
                .map(literal)
                .ok_or_else(|| format!("http connection: `token_url` needs `{name}`"))
        };
        return Ok(Some(Auth::Oauth2 {
            token_url: literal(url),
            client_id: need("client_id")?,
            client_secret: need("client_secret")?,
            refresh_token: text(settings, "refresh_token").map(literal),
            scope: text(settings, "scope").map(literal),
            header,
            value,
        }));
    }
    let Some(path) = text(settings, "login_path") else {
        return Ok(None);
    };
    let token = text(settings, "token_path")
        .ok_or("http connection: `login_path` needs `token_path`")?
        .to_string();
    let body = match text(settings, "login_body") {
        None => None,
        Some(body) => Some(Body::Json(literal_json(
            serde_json::from_str(body)
                .map_err(|e| format!("http connection: `login_body` is not JSON: {e}"))?,
        ))),
    };
    Ok(Some(Auth::Login {
        request: Request {
            method: "POST".into(),
            path: literal(path),
            query: Vec::new(),
            headers: Vec::new(),
            body,
        },
        token: Some(token),
        token_header: None,
        expires_in: text(settings, "expires_path").map(String::from),
        header: header.unwrap_or_else(|| "authorization".into()),
        value: value.unwrap_or_else(|| "Bearer {{ token }}".into()),
    }))
}

/// The declared connection that fetches the tokens of an `http` connection, when its
/// settings name a way to fetch one.
pub fn token_api(
    tokens: &crate::tokens::TokenCache,
    settings: &Map,
) -> Result<Option<crate::declared::api::Api>, crate::api::ConnectorError> {
    let Some(auth) = token_auth(settings)? else {
        return Ok(None);
    };
    let spec = Declared {
        name: "http".into(),
        auth: Some(auth),
        rules: Vec::new(),
        operations: Default::default(),
    };
    Ok(Some(crate::declared::api::Api::new(
        tokens, &spec, settings,
    )?))
}

/// A JSON string literal of `text`, safe inside a template (no braces are rendered).
fn literal(text: &str) -> String {
    format!("{{{{ {} }}}}", Value::String(text.to_string()))
}

/// The declared connector a `get` source with those options is: its credentials as a
/// static header and query parameter, its request, records, paging and watermark.
pub fn get(settings: &Map, options: &Map) -> Result<Declared, String> {
    let (headers, key) = credentials(settings);
    let page_size = options
        .get("page_size")
        .and_then(Value::as_u64)
        .unwrap_or(100);
    let param = text(options, "param").map(String::from);
    let size_param = text(options, "size_param").map(String::from);
    let next = text(options, "next_path")
        .map(String::from)
        .or_else(|| text(options, "next").map(|n| format!("$.{n}")))
        .unwrap_or_else(|| "$.next".into());
    let paging = match text(options, "paging") {
        Some("link") => Paging::Link,
        Some("next_url") => Paging::NextUrl { next },
        Some("next_token") => Paging::NextToken {
            next,
            param: param.or(Some("page_token".into())),
        },
        Some("offset") => Paging::Offset {
            param: param.or(Some("offset".into())),
            size_param: size_param.or(Some("limit".into())),
            size: page_size,
        },
        Some("page") => Paging::Page {
            param: param.or(Some("page".into())),
            size_param: size_param.or(Some("limit".into())),
            size: page_size,
            start: 1,
        },
        _ => Paging::None,
    };
    let watermark = text(options, "watermark_path").map(|field| Watermark {
        field: field.to_string(),
        tie: text(options, "tie").map(String::from),
        lookback_ms: options.get("lookback").and_then(Value::as_u64).unwrap_or(0),
        start: None,
    });
    let mut query = Vec::new();
    if watermark.is_some() {
        let since = text(options, "since_param").unwrap_or("since");
        query.push((since.to_string(), "{{ cursor.since }}".to_string()));
    }
    query.extend(key.map(|(name, value)| (name, literal(&value))));
    let body = text(options, "body").map(|b| Body::Text(literal(b)));
    let method = match text(options, "method") {
        Some(m) => m.to_ascii_uppercase(),
        None => "GET".into(),
    };
    let operation = Operation {
        request: Request {
            method,
            path: literal(text(options, "path").unwrap_or("")),
            query,
            headers: headers
                .into_iter()
                .map(|(name, value)| (name, literal(&value)))
                .collect(),
            body,
        },
        records: text(options, "records").map(String::from),
        paging,
        watermark,
        ..Operation::default()
    };
    Ok(Declared {
        name: "http".into(),
        auth: token_auth(settings)?,
        rules: Vec::new(),
        operations: [("get".to_string(), operation)].into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Value)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn settings_give_credentials_and_options_a_declared_read() {
        let settings = map(&[
            ("base_url", Value::from("http://h")),
            ("basic_username", Value::from("ann")),
            ("basic_password", Value::from("p{{w}}")),
            ("api_key", Value::from("k&1")),
            ("key_query", Value::from("key")),
        ]);
        let (headers, query) = credentials(&settings);
        assert_eq!(
            headers,
            [(
                "authorization".to_string(),
                "Basic YW5uOnB7e3d9fQ==".to_string()
            )]
        );
        assert_eq!(query, Some(("key".to_string(), "k&1".to_string())));
        let options = map(&[
            ("path", Value::from("/orders?status=any")),
            ("records", Value::from("$.orders[*]")),
            ("paging", Value::from("link")),
            ("watermark_path", Value::from("$.updated_at")),
            ("tie", Value::from("$.id")),
            ("since_param", Value::from("updated_at_min")),
            ("lookback", Value::from(60_000)),
        ]);
        assert!(declared_get(&options));
        assert!(!declared_get(&map(&[("items", Value::from("orders"))])));
        let spec = get(&settings, &options).unwrap();
        assert_eq!(spec.auth, None);
        let op = &spec.operations["get"];
        assert_eq!(op.paging, Paging::Link);
        assert_eq!(op.records.as_deref(), Some("$.orders[*]"));
        assert_eq!(op.watermark.as_ref().unwrap().lookback_ms, 60_000);
        assert_eq!(
            op.request.query[0],
            ("updated_at_min".into(), "{{ cursor.since }}".into())
        );
        // A secret with braces is sent as written, never rendered.
        let t = crate::declared::template::Templates::default();
        let ctx = minijinja::Value::from(());
        assert_eq!(
            t.text(&op.request.headers[0].1, &ctx).unwrap(),
            "Basic YW5uOnB7e3d9fQ=="
        );
        assert_eq!(t.text(&op.request.query[1].1, &ctx).unwrap(), "k&1");
    }

    #[test]
    fn token_settings_give_oauth2_or_a_login() {
        let oauth = map(&[
            ("token_url", Value::from("https://auth.example/token")),
            ("client_id", Value::from("c")),
            ("client_secret", Value::from("s{{x}}")),
            ("token_header", Value::from("X-Api-Token")),
        ]);
        match token_auth(&oauth).unwrap() {
            Some(Auth::Oauth2 {
                header,
                value,
                client_secret,
                refresh_token,
                ..
            }) => {
                assert_eq!(header.as_deref(), Some("x-api-token"));
                assert_eq!(value.as_deref(), Some("{{ token }}"));
                assert_eq!(client_secret, literal("s{{x}}"));
                assert_eq!(refresh_token, None);
            }
            other => panic!("{other:?}"),
        }
        let login = map(&[
            ("login_path", Value::from("/api/login")),
            (
                "login_body",
                Value::from(r#"{"user": "u", "password": "p{{"}"#),
            ),
            ("token_path", Value::from("$.access")),
        ]);
        match token_auth(&login).unwrap() {
            Some(Auth::Login {
                request,
                token,
                header,
                value,
                ..
            }) => {
                assert_eq!(token.as_deref(), Some("$.access"));
                assert_eq!(
                    (header.as_str(), value.as_str()),
                    ("authorization", "Bearer {{ token }}")
                );
                assert_eq!(
                    request.body,
                    Some(Body::Json(
                        serde_json::json!({"user": literal("u"), "password": literal("p{{")})
                    ))
                );
            }
            other => panic!("{other:?}"),
        }
        let mut spoiled = login.clone();
        spoiled.insert("login_body".into(), Value::from("user=u"));
        assert!(token_auth(&spoiled)
            .unwrap_err()
            .contains("`login_body` is not JSON"));
        let mut half = oauth.clone();
        half.remove("client_id");
        assert!(token_auth(&half).unwrap_err().contains("needs `client_id`"));
        assert_eq!(token_auth(&Map::new()).unwrap(), None);
    }
}
