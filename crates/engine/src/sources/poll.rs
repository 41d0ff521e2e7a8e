//! Poll sources. A [`Pager`] knows one API's paging and cursor; the loop here runs it every
//! `every` and commits each page's items with the cursor they advance to in one
//! transaction. Items with a dedupe key seen before (an order read again inside the
//! lookback window, unchanged) are skipped in the same transaction and counted as re-reads
//! (they are not duplicates of a delivery). Each page request takes a token of the
//! connection's quota, the bucket its sinks share.

use crate::delivery::rate_limit::TokenBucket;
use crate::engine::FlowCtx;

/// Items read again inside the lookback window and skipped.
pub const REREAD: &str = "omniflow_poll_reread_total";
use omniflow_connectors::Pager;
use omniflow_state::cluster::Fence;
use serde_json::Value;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::watch;

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
    /// The connection's quota (shared with its sinks): each page request takes a token.
    bucket: Option<Rc<TokenBucket>>,
    /// Set when the runtime stops: a page waiting for a token is not requested.
    stop: watch::Receiver<bool>,
}

impl PollSource {
    /// A poll source reading through `pager`, each page within `bucket`'s quota.
    pub fn new(
        ctx: Rc<FlowCtx>,
        name: &str,
        options: PollOptions,
        pager: Box<dyn Pager>,
        bucket: Option<Rc<TokenBucket>>,
        stop: watch::Receiver<bool>,
    ) -> PollSource {
        PollSource {
            ctx,
            name: name.to_string(),
            options,
            pager,
            bucket,
            stop,
        }
    }

    /// Polls until `stop`, while this process holds the source's lease.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let Some(fence) = self.ctx.source_lease(&self.name, &mut stop).await else {
            return;
        };
        loop {
            if *stop.borrow() {
                return;
            }
            let polled = self.poll_once(&fence).await;
            self.ctx.source_attempt(&self.name, polled.as_ref().err());
            if let Err(err) = polled {
                tracing::warn!(flow = %self.ctx.flow_name(), source = %self.name, error = %err, "poll failed; retrying at the next interval");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.options.every) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Reads every page available now.
    pub async fn poll_once(&self, fence: &Fence) -> Result<(), String> {
        self.poll_then(None, fence).await
    }

    /// Reads every page available now; `last` (a cursor key and value, such as the tick of
    /// a scheduled run) commits with the last page, in its transaction. Each page commits
    /// only while `fence` is the source's lease.
    pub async fn poll_then(
        &self,
        last: Option<(String, String)>,
        fence: &Fence,
    ) -> Result<(), String> {
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
            if let Some(bucket) = &self.bucket {
                let mut stop = self.stop.clone();
                tokio::select! {
                    _ = bucket.acquire() => {}
                    // Stopping: the pages read so far are committed; the rest next time.
                    _ = stop.wait_for(|stopping| *stopping) => {
                        tracing::info!(flow = %self.ctx.flow_name(), source = %self.name, "stopping while the next page waits for the connection's quota; the poll goes on from it at the next start");
                        return Ok(());
                    }
                }
            }
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
            let fence = fence.clone();
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
                    b.fence(&fence)?;
                    let namespace = format!("poll:{flow}/{source}");
                    let mut fresh = Vec::with_capacity(items.len());
                    let mut skipped = 0u64;
                    for (payload, dedupe) in items {
                        let delivered = omniflow_state::OutcomeStatus::Delivered;
                        if let Some(id) = &dedupe {
                            if !b.record_new_outcome(&namespace, id, delivered)? {
                                skipped += 1;
                                continue;
                            }
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
