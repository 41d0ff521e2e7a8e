//! The generic `http.get` poll source. Every `every`, it GETs `base_url + path` and
//! appends the items of the answer; the cursor moves in the same transaction as the items:
//! - `cursor = page_token`: sends `page_token=<token>`, follows the answer's `next` field
//!   (option `next`, default `next`) until there is none;
//! - `cursor = watermark`: sends `since=<watermark>`, the largest value of the items' field
//!   named by the option `watermark` (default `updated_at`);
//! - items are the answer itself when it is an array, else its field named by `items`
//!   (default `items`). `page_size` adds `limit=N`.

use crate::engine::FlowCtx;
use serde_json::Value;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::watch;

/// A running poll source.
pub struct PollSource {
    ctx: Rc<FlowCtx>,
    name: String,
    client: reqwest::Client,
    url: String,
    every: Duration,
    cursor: String,
    page_size: Option<u64>,
    items: String,
    next: String,
    watermark: String,
    auth: Option<String>,
}

fn text(options: &BTreeMap<String, Value>, key: &str, default: &str) -> String {
    options
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_string()
}

impl PollSource {
    /// Reads `base_url` (and `auth_header`) from the connection and the poll options.
    pub fn new(
        ctx: Rc<FlowCtx>,
        name: &str,
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<PollSource, String> {
        let base = settings
            .get("base_url")
            .and_then(Value::as_str)
            .ok_or("http connection needs `base_url`")?
            .trim_end_matches('/');
        Ok(PollSource {
            ctx,
            name: name.to_string(),
            client: reqwest::Client::builder()
                .build()
                .map_err(|e| format!("http client: {e}"))?,
            url: format!("{base}{}", text(options, "path", "")),
            every: Duration::from_millis(
                options
                    .get("every")
                    .and_then(Value::as_u64)
                    .unwrap_or(60_000),
            ),
            cursor: text(options, "cursor", "none"),
            page_size: options.get("page_size").and_then(Value::as_u64),
            items: text(options, "items", "items"),
            next: text(options, "next", "next"),
            watermark: text(options, "watermark", "updated_at"),
            auth: settings
                .get("auth_header")
                .and_then(Value::as_str)
                .map(String::from),
        })
    }

    /// Polls until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            if let Err(err) = self.poll_once().await {
                tracing::warn!(flow = %self.ctx.flow_name(), source = %self.name, error = %err, "poll failed; retrying at the next interval");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn poll_once(&self) -> Result<(), String> {
        let (flow, source, key) = (
            self.ctx.flow_name().to_string(),
            self.name.clone(),
            self.cursor.clone(),
        );
        let mut position = self
            .ctx
            .store
            .call(move |b| b.cursor(&flow, &source, &key))
            .await?;
        loop {
            let mut request = self.client.get(&self.url).timeout(Duration::from_secs(30));
            if let Some(limit) = self.page_size {
                request = request.query(&[("limit", limit.to_string())]);
            }
            match (self.cursor.as_str(), &position) {
                ("page_token", Some(token)) => request = request.query(&[("page_token", token)]),
                ("watermark", Some(since)) => request = request.query(&[("since", since)]),
                _ => {}
            }
            if let Some(auth) = &self.auth {
                request = request.header(reqwest::header::AUTHORIZATION, auth.as_str());
            }
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("HTTP {status}"));
            }
            let bytes = response.bytes().await.map_err(|e| e.to_string())?;
            let body: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("the answer is not JSON: {e}"))?;
            let items: Vec<Value> = match &body {
                Value::Array(items) => items.clone(),
                other => other
                    .get(&self.items)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            };
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
                    .or(position.clone()),
                _ => None,
            };
            let payloads: Vec<Vec<u8>> = items
                .iter()
                .map(|i| serde_json::to_vec(i).unwrap_or_default())
                .collect();
            let n = payloads.len();
            let (flow, source, key, value) = (
                self.ctx.flow_name().to_string(),
                self.name.clone(),
                self.cursor.clone(),
                next_position.clone(),
            );
            // The page and the cursor it advances to commit together.
            self.ctx
                .store
                .call(move |b| {
                    b.append(
                        &flow,
                        &source,
                        &payloads,
                        value.as_deref().map(|v| (key.as_str(), v)),
                    )
                    .map(|_| ())
                })
                .await?;
            if n > 0 {
                self.ctx.appended.notify_one();
            }
            let more =
                self.cursor == "page_token" && next_position.is_some() && next_position != position;
            position = next_position;
            if !more {
                return Ok(());
            }
        }
    }
}
