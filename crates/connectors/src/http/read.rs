//! The generic `http.get` poll source.

use super::Settings;
use crate::api::{ConnectorError, Map, Page, PageFuture, Pager};
use crate::client;
use serde_json::Value;
use std::time::Duration;

/// The generic `http.get` pager (items read again unchanged under a watermark are skipped
/// by content). Every poll GETs `base_url + path`:
/// - `cursor = page_token`: sends `page_token=<token>`, follows the answer's `next` field
///   (option `next`, default `next`) until there is none;
/// - `cursor = watermark`: sends `since=<watermark>`, the largest value of the items' field
///   named by the option `watermark` (default `updated_at`);
/// - items are the answer itself when it is an array, else its field named by `items`
///   (default `items`). `page_size` adds `limit=N`.
pub struct HttpGetPager {
    client: reqwest::Client,
    url: String,
    cursor: String,
    page_size: Option<u64>,
    items: String,
    next: String,
    watermark: String,
    /// Credential headers and an API key's query parameter, from the settings.
    headers: Vec<(String, String)>,
    key: Option<(String, String)>,
    /// A token fetched by OAuth 2 or a login, fetched again once after a 401 or 403.
    pub fetched: Option<crate::declared::api::Api>,
}

/// The items of an answer: the answer itself when it is an array, else its `items` field
/// (`null` for none). An answer reporting `errors` (GraphQL's model, and many REST APIs'),
/// one without the field, or with something else than an array there, is a failed poll
/// with the reason, not an empty page: a wrong `items` or an error page must show.
fn items_of(body: &Value, items: &str) -> Result<Vec<Value>, String> {
    let fields = match body {
        Value::Array(found) => return Ok(found.clone()),
        Value::Object(fields) => fields,
        other => {
            return Err(format!(
                "the answer is {}, not an array or an object with `{items}`",
                client::kind(other)
            ))
        }
    };
    if let Some(errors) = fields
        .get("errors")
        .and_then(Value::as_array)
        .filter(|errors| !errors.is_empty())
    {
        let first = &errors[0];
        let message = first
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| first.to_string(), String::from);
        return Err(format!(
            "the answer reports {} error(s): {}",
            errors.len(),
            message.chars().take(300).collect::<String>()
        ));
    }
    match fields.get(items) {
        Some(Value::Null) => Ok(Vec::new()),
        _ => client::list_at(body, &[items], false),
    }
}

/// The raw items of a page (the page itself when it is an array, else its `items` field),
/// borrowed as written.
fn raw_items<'a>(page: &'a [u8], items: &str) -> Option<Vec<&'a serde_json::value::RawValue>> {
    use serde_json::value::RawValue;
    if let Ok(list) = serde_json::from_slice::<Vec<&RawValue>>(page) {
        return Some(list);
    }
    let fields: std::collections::HashMap<String, &RawValue> = serde_json::from_slice(page).ok()?;
    serde_json::from_str(fields.get(items)?.get()).ok()
}

/// 64-bit FNV-1a of a byte string (a content fingerprint, not a security hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn text(options: &Map, key: &str, default: &str) -> String {
    options
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_string()
}

impl HttpGetPager {
    /// The pager of a connection (`base_url`, `auth_header`) and the poll options.
    pub fn new(settings: &Map, options: &Map) -> Result<HttpGetPager, ConnectorError> {
        let (headers, key) = super::declare::credentials(settings);
        let settings = Settings::parse(settings)?;
        let base = &settings.base;
        Ok(HttpGetPager {
            // A fetched token or an API key in a header must not follow a redirect to
            // another host.
            client: client::build_same_origin()?,
            url: format!("{base}{}", text(options, "path", "")),
            cursor: text(options, "cursor", "none"),
            page_size: options.get("page_size").and_then(Value::as_u64),
            items: text(options, "items", "items"),
            next: text(options, "next", "next"),
            watermark: text(options, "watermark", "updated_at"),
            headers,
            key,
            fetched: None,
        })
    }
}

impl Pager for HttpGetPager {
    fn page<'a>(&'a self, position: Option<&'a str>, _first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let timeout = Duration::from_secs(30);
            let mut fresh = false;
            let response = loop {
                let mut request = self.client.get(&self.url).timeout(timeout);
                if let Some(limit) = self.page_size {
                    request = request.query(&[("limit", limit.to_string())]);
                }
                match (self.cursor.as_str(), position) {
                    ("page_token", Some(token)) => {
                        request = request.query(&[("page_token", token)])
                    }
                    ("watermark", Some(since)) => request = request.query(&[("since", since)]),
                    _ => {}
                }
                for (name, value) in &self.headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                if let Some(key) = &self.key {
                    request = request.query(&[key]);
                }
                let token = match &self.fetched {
                    Some(api) => api.token_header(timeout).await.map_err(client::reason)?,
                    None => None,
                };
                if let Some((name, value)) = &token {
                    request = request.header(name.as_str(), value.as_str());
                }
                let response = request.send().await.map_err(|e| e.to_string())?;
                let refused = matches!(response.status().as_u16(), 401 | 403);
                match (&self.fetched, refused && !fresh) {
                    (Some(api), true) => {
                        api.refused(token.as_ref().map(|(_, v)| v.as_str()))
                            .map_err(client::reason)?;
                        fresh = true;
                    }
                    _ => break response,
                }
            };
            let status = response.status();
            if !status.is_success() {
                return Err(format!("HTTP {status}"));
            }
            let bytes = response.bytes().await.map_err(|e| e.to_string())?;
            let body: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("the answer is not JSON: {e}"))?;
            let items = items_of(&body, &self.items)?;
            let next_position = match self.cursor.as_str() {
                "page_token" => body
                    .get(&self.next)
                    .and_then(Value::as_str)
                    .map(String::from),
                "watermark" => items
                    .iter()
                    .filter_map(|i| i.get(&self.watermark).and_then(Value::as_str))
                    .max()
                    .map(String::from)
                    .or(position.map(String::from)),
                _ => None,
            };
            // Each item's own bytes, so numbers keep every digit (a `Value` holds floats).
            let raw = raw_items(&bytes, &self.items);
            Ok(Page {
                items: items
                    .iter()
                    .enumerate()
                    .map(|(idx, i)| {
                        let bytes = serde_json::to_vec(i).unwrap_or_default();
                        // With a watermark, the API may answer `since` inclusively: an
                        // item read again unchanged is skipped by its content.
                        let key = (self.cursor == "watermark").then(|| {
                            let stamp =
                                i.get(&self.watermark).and_then(Value::as_str).unwrap_or("");
                            format!("{stamp}#{:016x}", fnv1a(&bytes))
                        });
                        let exact = raw.as_ref().and_then(|raw| raw.get(idx));
                        (exact.map_or(bytes, |r| r.get().as_bytes().to_vec()), key)
                    })
                    .collect(),
                more: self.cursor == "page_token" && next_position.is_some(),
                position: next_position,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local API: `/token` grants `t-1`, then `t-2`, ...; `/items` answers 401 to any
    /// token but the second, and the items to it.
    async fn api_with_tokens() -> String {
        let grants = std::cell::Cell::new(0);
        let (base, _requests) = crate::local_api::serve(move |request| {
            let request = request.to_lowercase();
            if request.starts_with("post /token") {
                grants.set(grants.get() + 1);
                let token = format!(
                    r#"{{"access_token": "t-{}", "expires_in": 3600}}"#,
                    grants.get()
                );
                (200, token)
            } else if request.contains("authorization: bearer t-2") {
                (200, r#"[{"id": 1}, {"id": 2}]"#.to_string())
            } else {
                (401, r#"{"error": "invalid_token"}"#.to_string())
            }
        })
        .await;
        base
    }

    #[test]
    fn a_get_with_a_refused_token_fetches_another_and_reads_on() {
        crate::local_api::block_on(async {
            let base = api_with_tokens().await;
            let settings: Map = [
                ("base_url", Value::from(base.clone())),
                ("token_url", Value::from(format!("{base}/token"))),
                ("client_id", Value::from("c")),
                ("client_secret", Value::from("s")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let options: Map = [("path".to_string(), Value::from("/items"))]
                .into_iter()
                .collect();
            let tokens = crate::tokens::TokenCache::default();
            let mut pager = HttpGetPager::new(&settings, &options).unwrap();
            pager.fetched = super::super::declare::token_api(&tokens, &settings).unwrap();
            let page = pager.page(None, true).await.unwrap();
            assert_eq!(page.items.len(), 2, "read with the second token");
            // The second token is kept: the next poll needs no grant (a third grant would
            // be refused by the API, and this read fail).
            assert_eq!(pager.page(None, true).await.unwrap().items.len(), 2);
        });
    }

    #[test]
    fn an_answer_without_its_items_or_with_errors_is_a_failed_poll_not_an_empty_page() {
        use serde_json::json;
        assert_eq!(items_of(&json!([1, 2]), "items").unwrap().len(), 2);
        assert_eq!(items_of(&json!({"items": [1]}), "items").unwrap().len(), 1);
        assert!(items_of(&json!({"items": null}), "items")
            .unwrap()
            .is_empty());
        assert!(items_of(&json!({"items": [], "errors": []}), "items")
            .unwrap()
            .is_empty());
        let missing = items_of(&json!({"orders": [1], "next": null}), "items").unwrap_err();
        assert!(
            missing.contains("no `items` (its fields: next, orders)"),
            "{missing}"
        );
        let wrong = items_of(&json!({"items": {"a": 1}}), "items").unwrap_err();
        assert!(wrong.contains("is an object, not a list"), "{wrong}");
        let graphql = json!({"data": null, "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]});
        let reported = items_of(&graphql, "items").unwrap_err();
        assert!(reported.contains("1 error(s): Throttled"), "{reported}");
        let scalar = items_of(&json!("<html>"), "items").unwrap_err();
        assert!(scalar.contains("is a string"), "{scalar}");
    }

    #[test]
    fn page_items_keep_their_own_bytes() {
        let item = r#"{"id": 12345678901234567890123, "price": 0.12345678901234567890123}"#;
        for page in [
            format!("[{item}, {{}}]"),
            format!(r#"{{"items": [{item}, {{}}], "next": "x"}}"#),
        ] {
            let raw = raw_items(page.as_bytes(), "items").unwrap();
            assert_eq!(raw.len(), 2);
            assert_eq!(raw[0].get(), item);
        }
        assert!(raw_items(b"{\"other\": []}", "items").is_none());
    }
}
