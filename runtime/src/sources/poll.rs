//! Poll sources. A [`Pager`] knows one API's paging and cursor; the loop here runs it every
//! `every` and commits each page's items with the cursor they advance to in one
//! transaction. Items with a dedupe key seen before (an order read again inside the
//! lookback window, unchanged) are skipped in the same transaction and counted as re-reads
//! (they are not duplicates of a delivery).

use crate::engine::FlowCtx;

/// Items read again inside the lookback window and skipped.
pub const REREAD: &str = "omniflow_poll_reread_total";
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::watch;

/// One page read from an API.
pub struct Page {
    /// Items with their dedupe key (`None`: always appended).
    pub items: Vec<(Vec<u8>, Option<String>)>,
    /// The cursor after this page (committed with the items).
    pub position: Option<String>,
    /// True when another page follows right away.
    pub more: bool,
}

/// A boxed page future.
pub type PageFuture<'a> = Pin<Box<dyn Future<Output = Result<Page, String>> + 'a>>;

/// One API's way of reading pages.
pub trait Pager {
    /// Reads the page after `position` (the committed cursor, or the previous page's).
    /// `first` is true for the first page of a poll.
    fn page<'a>(&'a self, position: Option<&'a str>, first: bool) -> PageFuture<'a>;

    /// Told the dedupe keys of a page once it is durable (a pager may skip work for them
    /// on later reads).
    fn committed(&self, _keys: &[String]) {}
}

/// Options every poll source reads.
pub struct PollOptions {
    pub every: Duration,
    /// The cursor key under which the position is stored.
    pub cursor: String,
}

impl PollOptions {
    /// Reads `every` (milliseconds in the IR, default 1 minute) and `cursor`.
    pub fn from(options: &BTreeMap<String, Value>) -> PollOptions {
        PollOptions {
            every: Duration::from_millis(
                options
                    .get("every")
                    .and_then(Value::as_u64)
                    .unwrap_or(60_000),
            ),
            cursor: options
                .get("cursor")
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_string(),
        }
    }
}

/// A running poll source.
pub struct PollSource {
    ctx: Rc<FlowCtx>,
    name: String,
    options: PollOptions,
    pager: Box<dyn Pager>,
}

impl PollSource {
    /// A poll source reading through `pager`.
    pub fn new(
        ctx: Rc<FlowCtx>,
        name: &str,
        options: PollOptions,
        pager: Box<dyn Pager>,
    ) -> PollSource {
        PollSource {
            ctx,
            name: name.to_string(),
            options,
            pager,
        }
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
                _ = tokio::time::sleep(self.options.every) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Reads every page available now.
    pub async fn poll_once(&self) -> Result<(), String> {
        self.poll_then(None).await
    }

    /// Reads every page available now; `last` (a cursor key and value, such as the tick of
    /// a scheduled run) commits with the last page, in its transaction.
    pub async fn poll_then(&self, last: Option<(String, String)>) -> Result<(), String> {
        let (flow, source, key) = (
            self.ctx.flow_name().to_string(),
            self.name.clone(),
            self.options.cursor.clone(),
        );
        let mut position = self
            .ctx
            .store
            .call(move |b| b.cursor(&flow, &source, &key))
            .await?;
        let mut first = true;
        loop {
            let page = self.pager.page(position.as_deref(), first).await?;
            let was_first = first;
            first = false;
            let (flow, source, key, value) = (
                self.ctx.flow_name().to_string(),
                self.name.clone(),
                self.options.cursor.clone(),
                page.position.clone(),
            );
            let items = page.items;
            let keys: Vec<String> = items.iter().filter_map(|(_, k)| k.clone()).collect();
            // A pager may restart from its first page on each poll (ignoring the stored
            // cursor); a page is then compared with the previous page, not the cursor.
            let advanced = page.position.is_some() && (was_first || page.position != position);
            let finish = (!(page.more && advanced)).then(|| last.clone()).flatten();
            // The page and the cursor it advances to commit together.
            let (appended, skipped) = self
                .ctx
                .store
                .call(move |b| {
                    let namespace = format!("poll:{flow}/{source}");
                    let mut fresh = Vec::with_capacity(items.len());
                    let mut skipped = 0u64;
                    for (payload, dedupe) in items {
                        if let Some(id) = &dedupe {
                            if b.outcome(&namespace, id)?.is_some() {
                                skipped += 1;
                                continue;
                            }
                            b.record_outcome(
                                &namespace,
                                id,
                                crate::state::OutcomeStatus::Delivered,
                            )?;
                        }
                        fresh.push(payload);
                    }
                    let n = fresh.len();
                    b.append(
                        &flow,
                        &source,
                        &fresh,
                        value.as_deref().map(|v| (key.as_str(), v)),
                    )?;
                    if let Some((key, value)) = &finish {
                        b.append(&flow, &source, &[], Some((key.as_str(), value.as_str())))?;
                    }
                    Ok((n, skipped))
                })
                .await?;
            self.pager.committed(&keys);
            if appended > 0 {
                self.ctx.appended.notify_one();
            }
            if skipped > 0 {
                self.ctx
                    .metrics
                    .add(REREAD, self.ctx.flow_name(), &self.name, skipped);
            }
            position = page.position;
            if !(page.more && advanced) {
                return Ok(());
            }
        }
    }
}

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
    auth: Option<String>,
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

fn text(options: &BTreeMap<String, Value>, key: &str, default: &str) -> String {
    options
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_string()
}

impl HttpGetPager {
    /// Reads `base_url` (and `auth_header`) from the connection and the poll options.
    pub fn new(
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<HttpGetPager, String> {
        let base = settings
            .get("base_url")
            .and_then(Value::as_str)
            .ok_or("http connection needs `base_url`")?
            .trim_end_matches('/');
        Ok(HttpGetPager {
            client: crate::connectors::client::build()?,
            url: format!("{base}{}", text(options, "path", "")),
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
}

impl Pager for HttpGetPager {
    fn page<'a>(&'a self, position: Option<&'a str>, _first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let mut request = self.client.get(&self.url).timeout(Duration::from_secs(30));
            if let Some(limit) = self.page_size {
                request = request.query(&[("limit", limit.to_string())]);
            }
            match (self.cursor.as_str(), position) {
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
