//! Amazon's authentication: Login with Amazon's refresh-token grant gives an access token
//! (sent as `x-amz-access-token`), kept in the runtime's token cache and refreshed a minute
//! before it expires, or at once after a 403. One token per (token endpoint, credentials):
//! the sources and sinks of a connection, and a ledger's publication to it, share it.

use super::classify::failed;
use super::Settings;
use crate::api::ConnectorError;
use crate::client::{self, Reply};
use crate::context::{TokenCache, TokenSlot};
use crate::CallOutcome;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Refresh this long before the token expires.
const REFRESH_EARLY: Duration = Duration::from_secs(60);

/// The LWA token of one connection.
pub struct Lwa {
    client: reqwest::Client,
    token_url: String,
    form: String,
    cached: TokenSlot,
}

/// `value` escaped for a form body or a URL path segment.
pub fn form_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Lwa {
    fn new(client: reqwest::Client, settings: &Settings, tokens: &TokenCache) -> Lwa {
        let form = format!(
            "grant_type=refresh_token&refresh_token={}&client_id={}&client_secret={}",
            form_escape(&settings.refresh_token),
            form_escape(&settings.client_id),
            form_escape(&settings.client_secret)
        );
        let cached = tokens.slot(format!("{} {form}", settings.token_url));
        Lwa {
            client,
            token_url: settings.token_url.clone(),
            form,
            cached,
        }
    }

    /// A valid access token.
    pub async fn token(&self) -> Result<String, CallOutcome> {
        if let Some((token, until)) = self.cached.borrow().as_ref() {
            if Instant::now() + REFRESH_EARLY < *until {
                return Ok(token.clone());
            }
        }
        let request = self
            .client
            .post(&self.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body(self.form.clone());
        let reply = client::send(request, Duration::from_secs(30)).await?;
        let body = reply.json();
        let token = body.get("access_token").and_then(Value::as_str);
        match (reply.ok(), token) {
            (true, Some(token)) => {
                let life = body
                    .get("expires_in")
                    .and_then(Value::as_u64)
                    .unwrap_or(3600);
                *self.cached.borrow_mut() = Some((
                    token.to_string(),
                    Instant::now() + Duration::from_secs(life),
                ));
                Ok(token.to_string())
            }
            // A 2xx without a readable token (cut off, spoiled) is no refusal.
            (true, None) => Err(client::unreadable(format!(
                "LWA token: the answer holds no access_token: {}",
                reply.excerpt()
            ))),
            _ if reply.status >= 500 || reply.status == 429 => Err(client::outcome(
                &reply,
                None,
                format!("LWA token: {}", reply.excerpt()),
            )),
            _ => Err(CallOutcome::Permanent {
                reason: format!(
                    "LWA token refused (HTTP {}): {}",
                    reply.status,
                    reply.excerpt()
                ),
            }),
        }
    }

    /// Forgets the cached token (after a 403).
    pub fn invalidate(&self) {
        *self.cached.borrow_mut() = None;
    }
}

/// One SP-API connection: its settings, client and token.
pub struct SpApi {
    pub client: reqwest::Client,
    pub settings: Settings,
    lwa: Lwa,
}

impl SpApi {
    /// The client of a connection; its access token lives in `tokens`.
    pub fn new(settings: &Settings, tokens: &TokenCache) -> Result<SpApi, ConnectorError> {
        let client = client::build()?;
        Ok(SpApi {
            lwa: Lwa::new(client.clone(), settings, tokens),
            client,
            settings: settings.clone(),
        })
    }

    /// Sends a request built by `make` with a token; a 403 refreshes the token and tries
    /// once more. `rate` (requests per second) sizes the wait after a 429.
    pub async fn send(
        &self,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
        timeout: Duration,
        rate: f64,
    ) -> Result<Reply, CallOutcome> {
        let mut refreshed = false;
        loop {
            let token = self.lwa.token().await?;
            let reply = client::send(make(&token), timeout).await?;
            if reply.status == 403 && !refreshed {
                self.lwa.invalidate();
                refreshed = true;
                continue;
            }
            if reply.ok() {
                return Ok(reply);
            }
            return Err(failed(&reply, rate));
        }
    }

    /// A GET of `path` with `query`, as a request builder taking the token.
    pub fn get(
        &self,
        path: &str,
        query: Vec<(String, String)>,
    ) -> impl Fn(&str) -> reqwest::RequestBuilder + '_ {
        let url = format!("{}{path}", self.settings.endpoint);
        move |token: &str| {
            self.client
                .get(&url)
                .query(&query)
                .header("x-amz-access-token", token)
        }
    }
}
