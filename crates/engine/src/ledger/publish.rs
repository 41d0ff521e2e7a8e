//! Publication of one channel's available-to-sell, with coalescing: the queue holds skus,
//! not values, and the value sent is read from the book when its turn comes, so a channel
//! that is rate-limited receives only the latest quantity per sku. A drop to zero goes
//! ahead of every other change. The book records what was published, so a restart
//! publishes whatever the channel was not yet told.

use super::Ledger;
use crate::delivery::rate_limit::{ConnectionLimits, TokenBucket};
use crate::delivery::retry;
use omniflow_connectors::{Call, CallOutcome, SinkConnector};
use omniflow_ir as ir;
use omniflow_state::DeadLetter;
use std::cell::{Cell, RefCell};
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::Notify;

/// Calls that set a channel's quantity, per `ledger/channel`.
pub const PUBLISHED: &str = "omniflow_inventory_published_total";
/// Publications refused by the channel (dead letters), per `ledger/channel`.
pub const REFUSED: &str = "omniflow_inventory_publication_refused_total";
/// Failed publication attempts that will be retried, per `ledger/channel`.
pub const RETRIED: &str = "omniflow_inventory_publication_retries_total";
/// Time from a change of available-to-sell to the call that told the channel.
pub const LAG: &str = "omniflow_inventory_publication_lag_seconds";
/// Skus waiting to be published, per `ledger/channel`.
pub const PENDING: &str = "omniflow_inventory_publication_pending";

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after the state store refused to record a publication.
const STORE_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Queue {
    urgent: VecDeque<String>,
    normal: VecDeque<String>,
    in_urgent: HashSet<String>,
    in_normal: HashSet<String>,
}

impl Queue {
    /// Queues a sku once; a zero goes to the front line.
    fn push(&mut self, sku: &str, ats: i64) {
        if ats <= 0 {
            if self.in_urgent.insert(sku.to_string()) {
                self.urgent.push_back(sku.to_string());
            }
        } else if self.in_normal.insert(sku.to_string()) {
            self.normal.push_back(sku.to_string());
        }
    }

    fn pop(&mut self) -> Option<String> {
        if let Some(sku) = self.urgent.pop_front() {
            self.in_urgent.remove(&sku);
            return Some(sku);
        }
        let sku = self.normal.pop_front()?;
        self.in_normal.remove(&sku);
        Some(sku)
    }

    /// Entries waiting (a sku queued both as a change and as a zero counts twice).
    fn len(&self) -> usize {
        self.in_urgent.len() + self.in_normal.len()
    }
}

/// The publisher of one channel.
pub struct Publisher {
    label: String,
    channel: usize,
    channel_name: String,
    location: String,
    connector: Box<dyn SinkConnector>,
    bucket: TokenBucket,
    connection_bucket: Option<Rc<TokenBucket>>,
    policy: ir::RetryPolicy,
    queue: RefCell<Queue>,
    wake: Notify,
    failures: Cell<u32>,
}

impl Publisher {
    /// The publisher of channel `idx` of a ledger.
    pub fn new(
        graph: &ir::Graph,
        ledger: &ir::Ledger,
        idx: usize,
        channel: &ir::LedgerChannel,
        target: &ir::Publication,
        limits: &ConnectionLimits,
        connectors: &omniflow_connectors::Context,
    ) -> Result<Publisher, String> {
        let connection = graph
            .connections
            .iter()
            .find(|c| c.name == target.connection)
            .ok_or_else(|| {
                format!(
                    "ledger `{}`: channel `{}` publishes to unknown connection `{}`",
                    ledger.name, channel.name, target.connection
                )
            })?;
        let connector = crate::connect::sink(
            connectors,
            connection,
            &target.operation,
            &Default::default(),
        )?;
        let policy = target
            .retry
            .as_ref()
            .and_then(|name| graph.policies.iter().find(|p| &p.name == name).cloned())
            .unwrap_or_else(retry::default_policy);
        Ok(Publisher {
            label: format!("{}/{}", ledger.name, channel.name),
            channel: idx,
            channel_name: channel.name.clone(),
            location: target.location.clone(),
            connector,
            bucket: TokenBucket::new(target.rate.map(|r| r.per_second()), target.burst),
            connection_bucket: limits.get(&connection.name),
            policy,
            queue: RefCell::default(),
            wake: Notify::new(),
            failures: Cell::new(0),
        })
    }

    /// Queues a sku whose available-to-sell changed; a zero goes first.
    pub fn push(&self, sku: &str, ats: i64) {
        self.queue.borrow_mut().push(sku, ats);
        self.wake.notify_one();
    }

    /// Skus waiting.
    pub fn pending(&self) -> usize {
        self.queue.borrow().len()
    }

    /// Publishes until stopped.
    pub async fn run(
        self: Rc<Self>,
        ledger: Rc<Ledger>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            ledger
                .metrics
                .set_gauge(PENDING, &self.label, self.pending() as i64);
            let next = self.queue.borrow_mut().pop();
            let Some(sku) = next else {
                tokio::select! {
                    _ = self.wake.notified() => continue,
                    _ = stop.changed() => return,
                }
            };
            if self.current(&ledger, &sku).is_none() {
                continue;
            }
            tokio::select! {
                _ = self.take_token() => {}
                _ = stop.changed() => return,
            }
            // Read after the wait: whatever changed meanwhile is sent as one value.
            let Some(value) = self.current(&ledger, &sku) else {
                continue;
            };
            let outcome = tokio::select! {
                outcome = self.call(&sku, value) => outcome,
                _ = stop.changed() => return,
            };
            tokio::select! {
                _ = self.settle(&ledger, sku, value, outcome) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn take_token(&self) {
        self.bucket.acquire().await;
        if let Some(shared) = &self.connection_bucket {
            shared.acquire().await;
        }
    }

    /// The sku's available-to-sell when the channel was not yet told it.
    fn current(&self, ledger: &Ledger, sku: &str) -> Option<i64> {
        ledger.with_book(|book| {
            book.publication(self.channel, sku)
                .filter(|p| p.is_pending())
                .map(|p| p.ats)
        })
    }

    fn body(&self, sku: &str, value: i64) -> Vec<u8> {
        serde_json::json!({
            "sku": sku,
            "location": self.location,
            "available": value,
            "channel": self.channel_name,
        })
        .to_string()
        .into_bytes()
    }

    async fn call(&self, sku: &str, value: i64) -> CallOutcome {
        let body = self.body(sku, value);
        // A value told again later (5, then 3, then 5) is a new call, not a replay: the
        // key names the attempt.
        let key = format!("{sku}@{}={value}#{}", self.location, super::now_ms());
        let call = self.connector.call(Call {
            key: &key,
            correlation_id: sku,
            body: &body,
            timeout: CALL_TIMEOUT,
        });
        let outcome = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(outcome) => outcome,
            Err(_) => CallOutcome::Transient {
                class: "timeout".into(),
                reason: format!("no answer within {}s", CALL_TIMEOUT.as_secs()),
                retry_after: None,
            },
        };
        if let Some(wait) = self.connector.backoff() {
            self.bucket.pause(wait);
            if let Some(shared) = &self.connection_bucket {
                shared.pause(wait);
            }
        }
        outcome
    }

    async fn settle(&self, ledger: &Rc<Ledger>, sku: String, value: i64, outcome: CallOutcome) {
        let metrics = &ledger.metrics;
        match outcome {
            CallOutcome::Ok => {
                self.failures.set(0);
                metrics.add(PUBLISHED, &ledger.name, &self.channel_name, 1);
                match ledger.published(self.channel, sku.clone(), value).await {
                    Ok(Some(waited)) => metrics.observe(
                        LAG,
                        &ledger.name,
                        &self.channel_name,
                        waited.max(0) as f64 / 1000.0,
                    ),
                    Ok(None) => {
                        // Changed again while the call was out: publish the newer value.
                        let ats = self.current(ledger, &sku).unwrap_or(value);
                        self.push(&sku, ats);
                    }
                    Err(err) => {
                        tracing::warn!(ledger = %ledger.name, channel = %self.channel_name, sku = %sku, error = ?err, "publication not recorded; it will be sent again");
                        self.push(&sku, value);
                        tokio::time::sleep(STORE_BACKOFF).await;
                    }
                }
            }
            CallOutcome::Transient {
                class,
                reason,
                retry_after,
            } => {
                let failures = self.failures.get() + 1;
                self.failures.set(failures);
                metrics.add(RETRIED, &ledger.name, &self.channel_name, 1);
                tracing::warn!(ledger = %ledger.name, channel = %self.channel_name, sku = %sku, class = %class, reason = %reason, "publication failed; retrying");
                if class == "rate_limited" {
                    if let Some(wait) = retry_after {
                        self.bucket.pause(wait);
                    }
                }
                // The channel is failing, not this sku: wait before the next call of any sku.
                let wait = retry::delay(
                    &self.policy,
                    failures.min(self.policy.attempts.max(1)),
                    retry_after,
                );
                self.push(&sku, value);
                tokio::time::sleep(wait).await;
            }
            CallOutcome::Permanent { reason } => {
                self.failures.set(0);
                metrics.add(REFUSED, &ledger.name, &self.channel_name, 1);
                let body = String::from_utf8_lossy(&self.body(&sku, value)).to_string();
                let letter = DeadLetter {
                    id: 0,
                    flow: format!("ledger:{}", ledger.name),
                    source: String::new(),
                    node: self.channel_name.clone(),
                    sink: self.label.clone(),
                    key: format!("{sku}@{}={value}", self.location),
                    correlation_id: sku.clone(),
                    message: body.clone(),
                    payload: body,
                    error: format!(
                        "channel {} refused {sku} = {value}: {reason}",
                        self.channel_name
                    ),
                    attempts: vec![format!(
                        "{} attempt 1: permanent: {reason}",
                        omniflow_state::now_secs()
                    )],
                    created_at: omniflow_state::now_secs(),
                    replayed_at: None,
                    // Not a message: retention's hold leaves `ledger:` letters out.
                    accepted_at: Some(omniflow_state::now_secs()),
                    discarded_at: None,
                };
                let stored = ledger
                    .store()
                    .call(move |backend| backend.add_dead_letter(&letter).map(|_| ()))
                    .await;
                if let Err(err) = stored {
                    tracing::error!(ledger = %ledger.name, error = %err, "dead letter of a refused publication not stored");
                }
                tracing::warn!(ledger = %ledger.name, channel = %self.channel_name, sku = %sku, reason = %reason, "publication refused; dead-lettered");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Queue;

    #[test]
    fn a_drop_to_zero_goes_first_and_a_sku_waits_once() {
        let mut queue = Queue::default();
        queue.push("A", 5);
        queue.push("B", 7);
        queue.push("A", 4);
        queue.push("C", 0);
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.pop().as_deref(), Some("C"));
        assert_eq!(queue.pop().as_deref(), Some("A"));
        assert_eq!(queue.pop().as_deref(), Some("B"));
        assert_eq!(queue.pop(), None);
    }
}
