//! The OData service client: `Authorization` (Basic or Bearer) on every request, a CSRF
//! token fetched (`x-csrf-token: Fetch`) when the connection says `csrf = true` or a write
//! is refused with `x-csrf-token: Required`, and sent on writes; cookies are kept.

use super::classify::error_text;
use super::{literal, urlencode, Settings};
use crate::api::{ConnectorError, Map};
use crate::client::{self, Reply};
use crate::CallOutcome;
use serde_json::Value;
use std::cell::RefCell;
use std::time::Duration;

/// One OData service connection.
pub struct Service {
    client: reqwest::Client,
    root: String,
    auth: Option<String>,
    csrf: bool,
    token: RefCell<Option<String>>,
    pub(super) sales_orders: String,
}

impl Service {
    /// The service of a connection's settings.
    pub fn new(settings: &Map) -> Result<Service, ConnectorError> {
        let settings = Settings::parse(settings)?;
        Ok(Service {
            client: client::build_with_cookies()?,
            root: settings.root,
            auth: settings.authorization,
            csrf: settings.csrf,
            token: RefCell::new(None),
            sales_orders: settings.sales_orders,
        })
    }

    pub(super) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.root, path.trim_start_matches('/'))
        };
        let mut request = self
            .client
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(auth) = &self.auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        request
    }

    pub(super) async fn fetch_token(&self, timeout: Duration) -> Result<(), CallOutcome> {
        let reply = client::send(
            self.request(reqwest::Method::GET, "")
                .header("x-csrf-token", "Fetch"),
            timeout,
        )
        .await?;
        match reply.header("x-csrf-token") {
            Some(token) if reply.ok() => {
                *self.token.borrow_mut() = Some(token.to_string());
                Ok(())
            }
            _ => Err(client::outcome(
                &reply,
                None,
                format!("CSRF token fetch: {}", error_text(&reply)),
            )),
        }
    }

    /// Reads a resource (a GET).
    pub async fn get(&self, path: &str, timeout: Duration) -> Result<Reply, CallOutcome> {
        let reply = client::send(self.request(reqwest::Method::GET, path), timeout).await?;
        if reply.ok() || reply.status == 404 {
            Ok(reply)
        } else {
            Err(client::outcome(
                &reply,
                client::seconds_header(&reply.headers, "retry-after"),
                error_text(&reply),
            ))
        }
    }

    /// Sends a write with the CSRF token (fetched once more when the service asks).
    pub(super) async fn write(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        if_match: Option<&str>,
        timeout: Duration,
    ) -> Result<Reply, CallOutcome> {
        if self.csrf && self.token.borrow().is_none() {
            self.fetch_token(timeout).await?;
        }
        let mut fetched = false;
        loop {
            let mut request = self
                .request(method.clone(), path)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
            if let Some(token) = self.token.borrow().as_deref() {
                request = request.header("x-csrf-token", token);
            }
            if let Some(etag) = if_match {
                request = request.header(reqwest::header::IF_MATCH, etag);
            }
            let reply = client::send(request, timeout).await?;
            let wants_token = reply.status == 403
                && reply
                    .header("x-csrf-token")
                    .is_some_and(|v| v.eq_ignore_ascii_case("required"));
            if wants_token && !fetched {
                self.fetch_token(timeout).await?;
                fetched = true;
                continue;
            }
            if reply.ok() {
                return Ok(reply);
            }
            return Err(match reply.status {
                // A concurrent change moved the ETag: read again and retry.
                412 => CallOutcome::Transient {
                    class: "etag_conflict".into(),
                    reason: error_text(&reply),
                    retry_after: Some(Duration::from_millis(200)),
                },
                _ => client::outcome(
                    &reply,
                    client::seconds_header(&reply.headers, "retry-after"),
                    error_text(&reply),
                ),
            });
        }
    }

    /// The first entity of `set` whose `field` equals `value`.
    pub(super) async fn find(
        &self,
        set: &str,
        field: &str,
        value: &str,
        timeout: Duration,
    ) -> Result<Option<Value>, CallOutcome> {
        let path = format!(
            "{set}?$filter={field}%20eq%20{}&$top=1",
            urlencode(&literal(value))
        );
        // An answer that cannot be read is no proof of absence: the lookup before a write
        // fails rather than let the write go twice. A 404 names a wrong entity set.
        let reply = self.get(&path, timeout).await?;
        if reply.status == 404 {
            return Err(CallOutcome::Permanent {
                reason: format!(
                    "{set} is not an entity set of the service: {}",
                    error_text(&reply)
                ),
            });
        }
        let body = reply.document().map_err(client::unreadable)?;
        let found = rows(&body).map_err(client::unreadable)?;
        Ok(found.first().cloned())
    }

    /// Reads an entity and its ETag (header, else `@odata.etag`).
    pub(super) async fn read_with_etag(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<Option<(Value, String)>, CallOutcome> {
        let reply = self.get(path, timeout).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let body = reply.document().map_err(client::unreadable)?;
        let etag = reply
            .header("etag")
            .map(String::from)
            .or_else(|| body["@odata.etag"].as_str().map(String::from))
            .unwrap_or_else(|| "*".into());
        Ok(Some((body, etag)))
    }
}

/// The rows of a collection answer: OData v4 lists them under `value`, v2 under
/// `d.results`; `Err` when the answer holds neither.
pub(super) fn rows(body: &Value) -> Result<Vec<Value>, String> {
    match body.get("d") {
        Some(d) if body.get("value").is_none() => client::list_at(d, &["results"], false),
        _ => client::list_at(body, &["value"], false),
    }
}
