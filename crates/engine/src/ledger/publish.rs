//! Publication of one channel's available-to-sell, with coalescing: the queue holds skus,
//! not values, and the value sent is read from the book when its turn comes, so a channel
//! that is rate-limited receives only the latest quantity per sku. A drop to zero goes
//! ahead of every other change. The book records what was published, so a restart
//! publishes whatever the channel was not yet told. Calls go through the same delivery
//! layers as a flow's sinks (timeout, rate limits, circuit breaker, retries), with the same
//! metrics, labelled by the ledger (`flow`) and the channel (`node`).

use super::Ledger;
use crate::delivery::layer::{self, Failure, Final, Request, Scope, Settings, Stack};
use crate::delivery::rate_limit::TokenBucket;
use crate::delivery::retry;
use crate::error::{SinkError, StartError};
use crate::ops::metrics::{Metrics, DEAD_LETTERS, MESSAGES_IN, MESSAGES_OUT, RETRIES};
use omniflow_ir as ir;
use omniflow_state::{DeadLetter, Origin};
use std::cell::RefCell;
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

/// Timeout of one publication call.
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
    scope: Rc<Scope>,
    stack: Stack,
    queue: RefCell<Queue>,
    wake: Notify,
    /// Transient failures in a row: the backoff before the next call grows with them.
    failures: std::cell::Cell<u32>,
    /// This process holds the channel's lease (publishes for every replica).
    leased: std::cell::Cell<bool>,
}

impl Publisher {
    /// The publisher of channel `idx` of a ledger.
    pub fn new(
        graph: &ir::Graph,
        ledger: &ir::Ledger,
        (idx, channel, target): (usize, &ir::LedgerChannel, &ir::Publication),
        build_sink: crate::delivery::BuildSink<'_>,
        limits: &crate::delivery::rate_limit::ConnectionLimits,
        metrics: &Rc<Metrics>,
    ) -> Result<Publisher, StartError> {
        let failed = |reason| StartError::Publisher {
            ledger: ledger.name.clone(),
            channel: channel.name.clone(),
            reason: Box::new(reason),
        };
        let connection = graph
            .connections
            .iter()
            .find(|c| c.name == target.connection)
            .ok_or_else(|| failed(SinkError::UnknownConnection(target.connection.clone())))?;
        let connector =
            build_sink(connection, &target.operation, &Default::default()).map_err(failed)?;
        let policy = target
            .retry
            .as_ref()
            .and_then(|name| graph.policies.iter().find(|p| &p.name == name).cloned())
            .unwrap_or_else(retry::default_policy);
        let connection_bucket = limits.get(&connection.name);
        Ok(Publisher::over(
            connector,
            &ledger.name,
            (idx, channel, target),
            policy,
            connection_bucket,
            metrics,
        ))
    }

    /// The publisher of channel `idx` of a ledger, calling `connector` per `policy`.
    fn over(
        connector: Box<dyn omniflow_connectors::SinkConnector>,
        ledger: &str,
        (idx, channel, target): (usize, &ir::LedgerChannel, &ir::Publication),
        policy: ir::RetryPolicy,
        connection_bucket: Option<Rc<TokenBucket>>,
        metrics: &Rc<Metrics>,
    ) -> Publisher {
        let scope = Rc::new(Scope {
            flow: ledger.to_string(),
            node: channel.name.clone(),
            metrics: metrics.clone(),
        });
        // One attempt per call: a failed value goes back to the queue (the latest value is
        // read again when its turn comes, zeros first) instead of being retried in place,
        // which would resend a stale value and hold back every other sku. The policy's
        // backoff still paces the channel after a failure.
        let once = ir::RetryPolicy {
            attempts: 1,
            ..policy
        };
        let stack = layer::stack(
            connector,
            scope.clone(),
            Settings {
                policy: once,
                timeout: CALL_TIMEOUT,
                bucket: TokenBucket::new(target.rate.map(|r| r.per_second()), target.burst),
                connection_bucket,
                instant: false,
            },
        );
        Publisher {
            label: format!("{ledger}/{}", channel.name),
            channel: idx,
            channel_name: channel.name.clone(),
            location: target.location.clone(),
            scope,
            stack,
            queue: RefCell::default(),
            wake: Notify::new(),
            failures: std::cell::Cell::new(0),
            leased: std::cell::Cell::new(false),
        }
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

    /// True while the channel's circuit breaker holds calls back.
    pub fn is_held(&self) -> bool {
        self.stack.inner().is_open()
    }

    /// The channel's index in its ledger.
    pub fn channel(&self) -> usize {
        self.channel
    }

    /// True once this process holds the channel's lease.
    pub fn is_leased(&self) -> bool {
        self.leased.get()
    }

    /// Publishes until stopped, once this process holds the channel's lease (among
    /// replicas one publishes for all; alone at once).
    pub async fn run(
        self: Rc<Self>,
        ledger: Rc<Ledger>,
        membership: Rc<crate::cluster::Membership>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let lease = format!("ledger:{}", self.label);
        let labels = (
            ledger.name.as_str(),
            self.channel_name.as_str(),
            &*ledger.metrics,
        );
        if membership.lease(&lease, labels, &mut stop).await.is_none() {
            return;
        }
        self.leased.set(true);
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
                _ = self.stack.ready() => {}
                _ = stop.changed() => return,
            }
            // Read after the wait: whatever changed meanwhile is sent as one value.
            let Some(value) = self.current(&ledger, &sku) else {
                self.stack.release();
                continue;
            };
            self.scope.add(MESSAGES_IN, 1);
            let outcome = tokio::select! {
                outcome = self.deliver(&sku, value) => outcome,
                _ = stop.changed() => return,
            };
            tokio::select! {
                _ = self.settle(&ledger, sku, value, outcome) => {}
                _ = stop.changed() => return,
            }
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

    /// Tells the channel `value` through the delivery layers (its retries included).
    async fn deliver(&self, sku: &str, value: i64) -> Final {
        let body = self.body(sku, value);
        // A value told again later (5, then 3, then 5) is a new call, not a replay: the
        // key names the publication; its retries keep it.
        let key = format!("{sku}@{}={value}#{}", self.location, super::now_ms());
        self.stack.run(&Request::new(&key, sku, &body)).await
    }

    async fn settle(&self, ledger: &Rc<Ledger>, sku: String, value: i64, outcome: Final) {
        let metrics = &ledger.metrics;
        match outcome {
            Final::Delivered { attempts, .. } => {
                self.failures.set(0);
                if !attempts.is_empty() {
                    metrics.add(
                        RETRIED,
                        &ledger.name,
                        &self.channel_name,
                        attempts.len() as u64,
                    );
                }
                self.scope.add(MESSAGES_OUT, 1);
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
            Final::Failed(Failure {
                reason,
                attempts,
                transient: true,
            }) => {
                // The channel is failing, not this sku: the sku waits its turn again (with
                // whatever value it has then) and the next call of any sku waits a backoff.
                metrics.add(
                    RETRIED,
                    &ledger.name,
                    &self.channel_name,
                    attempts.len() as u64,
                );
                self.scope.add(RETRIES, 1);
                tracing::warn!(ledger = %ledger.name, channel = %self.channel_name, sku = %sku, reason = %reason, "publication failed; retrying");
                self.push(&sku, value);
                let failures = self.failures.get().saturating_add(1);
                self.failures.set(failures);
                tokio::time::sleep(self.stack.delay(failures, None)).await;
            }
            Final::Failed(Failure {
                reason, attempts, ..
            }) => {
                // The transient failures before the refusal were retried.
                let retried = attempts.len().saturating_sub(1) as u64;
                if retried > 0 {
                    metrics.add(RETRIED, &ledger.name, &self.channel_name, retried);
                }
                metrics.add(REFUSED, &ledger.name, &self.channel_name, 1);
                let body = String::from_utf8_lossy(&self.body(&sku, value)).to_string();
                let letter = DeadLetter {
                    id: 0,
                    origin: Origin::Ledger(ledger.name.clone()),
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
                    attempts,
                    created_at: omniflow_state::now_secs(),
                    replayed_at: None,
                    // Not a message: retention's hold leaves a ledger's letters out.
                    accepted_at: Some(omniflow_state::now_secs()),
                    discarded_at: None,
                    queue: None,
                };
                let stored = ledger
                    .store()
                    .call(move |backend| backend.add_dead_letter(&letter).map(|_| ()))
                    .await;
                if let Err(err) = stored {
                    tracing::error!(ledger = %ledger.name, error = %err, "dead letter of a refused publication not stored");
                }
                self.scope.add(DEAD_LETTERS, 1);
                tracing::warn!(ledger = %ledger.name, channel = %self.channel_name, sku = %sku, reason = %reason, "publication refused; dead-lettered");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::circuit::{COOL_DOWN, THRESHOLD};
    use crate::ledger::book::{Kind, Movement};
    use omniflow_connectors::{Call, CallFuture, CallOutcome, SinkConnector};
    use omniflow_state::{SqliteBackend, Store};
    use std::collections::BTreeMap;
    use tokio::sync::{mpsc, watch};
    use tokio::time::Instant;

    /// A channel that answers from a script (then `Ok`) and reports when it was called.
    struct Scripted {
        answers: RefCell<VecDeque<CallOutcome>>,
        calls: mpsc::UnboundedSender<Instant>,
        bodies: Rc<RefCell<Vec<serde_json::Value>>>,
        /// When set, the first call answers only once the test notifies it.
        gate: Option<Rc<tokio::sync::Notify>>,
    }

    impl SinkConnector for Scripted {
        fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
            let body = serde_json::from_slice(call.body).unwrap_or_default();
            self.bodies.borrow_mut().push(body);
            let _ = self.calls.send(Instant::now());
            let answer = self
                .answers
                .borrow_mut()
                .pop_front()
                .unwrap_or(CallOutcome::Ok);
            let first = self.bodies.borrow().len() == 1;
            let gate = self.gate.clone().filter(|_| first);
            Box::pin(async move {
                if let Some(gate) = gate {
                    gate.notified().await;
                }
                answer
            })
        }
    }

    fn server_error() -> CallOutcome {
        CallOutcome::Transient {
            class: "server_error".into(),
            reason: "503".into(),
            retry_after: None,
        }
    }

    fn spec() -> ir::Ledger {
        ir::Ledger {
            name: "stock".into(),
            locations: vec!["WH".into()],
            reservation_window_ms: 0,
            channels: vec![ir::LedgerChannel {
                name: "web".into(),
                locations: vec!["WH".into()],
                share_bp: 10_000,
                cap: None,
                min_publish: 0,
                safety_stock: 0,
                safety_by_location: BTreeMap::new(),
                safety_by_sku: BTreeMap::new(),
                publish: Some(ir::Publication {
                    connection: "shop".into(),
                    operation: "set_inventory".into(),
                    location: "WH".into(),
                    rate: None,
                    burst: None,
                    retry: None,
                }),
            }],
        }
    }

    /// Ten attempts, 100 ms apart.
    fn policy() -> ir::RetryPolicy {
        ir::RetryPolicy {
            name: "steady".into(),
            attempts: 10,
            backoff: ir::Backoff::Fixed,
            initial_ms: 100,
            max_delay_ms: 100,
            jitter: 0.0,
            transient: vec!["server_error".into()],
            retry_after: true,
        }
    }

    struct Running {
        ledger: Rc<Ledger>,
        publisher: Rc<Publisher>,
        metrics: Rc<Metrics>,
        /// What each call sent.
        bodies: Rc<RefCell<Vec<serde_json::Value>>>,
        calls: mpsc::UnboundedReceiver<Instant>,
        _stop: watch::Sender<bool>,
        path: std::path::PathBuf,
    }

    impl Drop for Running {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
            }
        }
    }

    impl Running {
        fn counter(&self, name: &'static str) -> u64 {
            self.metrics.get(name, "stock", "web")
        }

        fn circuit_shown(&self) -> String {
            let shown = self.metrics.render();
            shown
                .lines()
                .find(|l| l.starts_with("omniflow_circuit_open{flow=\"stock\",node=\"web\"}"))
                .unwrap_or("")
                .to_string()
        }
    }

    /// A ledger whose channel `web` publishes through `answers`, with 12 units of SKU-1
    /// received (so one publication is due).
    async fn publishing(name: &str, answers: Vec<CallOutcome>) -> Running {
        publishing_gated(name, answers, None).await
    }

    /// [`publishing`], the first call answering only when `gate` is notified.
    async fn publishing_gated(
        name: &str,
        answers: Vec<CallOutcome>,
        gate: Option<Rc<tokio::sync::Notify>>,
    ) -> Running {
        let path =
            std::env::temp_dir().join(format!("omniflow-publish-{name}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let backend = SqliteBackend::open(path.to_str().unwrap()).unwrap();
        let store = Store::start(Box::new(backend));
        let metrics = Rc::new(Metrics::default());
        let spec = spec();
        let ledger = Ledger::open(&spec, store, metrics.clone()).await.unwrap();
        let (tx, calls) = mpsc::unbounded_channel();
        let bodies = Rc::new(RefCell::new(Vec::new()));
        let connector = Box::new(Scripted {
            answers: RefCell::new(answers.into()),
            calls: tx,
            bodies: bodies.clone(),
            gate,
        });
        let channel = &spec.channels[0];
        let target = channel.publish.as_ref().unwrap();
        let publisher = Rc::new(Publisher::over(
            connector,
            &spec.name,
            (0, channel, target),
            policy(),
            None,
            &metrics,
        ));
        ledger.publishers.borrow_mut()[0] = Some(publisher.clone());
        let (stop_tx, stop) = watch::channel(false);
        tokio::task::spawn_local(publisher.clone().run(ledger.clone(), Rc::default(), stop));
        ledger
            .apply(Movement {
                id: "m-1".into(),
                kind: Kind::Receipt,
                sku: "SKU-1".into(),
                location: "WH".into(),
                quantity: 12,
                counterpart: None,
                reference: None,
                at: 0,
            })
            .await
            .unwrap();
        Running {
            ledger,
            publisher,
            metrics,
            calls,
            bodies,
            _stop: stop_tx,
            path,
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_failing_channel_opens_its_breaker_and_is_not_called_until_the_cool_down() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let failures = (0..THRESHOLD).map(|_| server_error()).collect();
                let mut run = publishing("breaker", failures).await;
                let mut failed = Vec::new();
                for _ in 0..THRESHOLD {
                    failed.push(run.calls.recv().await.unwrap());
                }
                // Retried at the policy's pace until the breaker opened.
                for pair in failed.windows(2) {
                    assert_eq!(pair[1] - pair[0], Duration::from_millis(100));
                }
                assert!(run.publisher.is_held());
                assert!(
                    run.circuit_shown().ends_with(" 1"),
                    "{}",
                    run.circuit_shown()
                );
                assert_eq!(run.counter(RETRIES), u64::from(THRESHOLD));
                assert_eq!(run.counter(MESSAGES_OUT), 0);

                // The next call is the trial, after the cool-down; it succeeds and closes.
                let trial = run.calls.recv().await.unwrap();
                assert!(trial - failed[failed.len() - 1] >= COOL_DOWN);
                assert!(!run.publisher.is_held());
                assert!(
                    run.circuit_shown().ends_with(" 0"),
                    "{}",
                    run.circuit_shown()
                );
                // Each failed value went back to the queue and was sent again: one call each.
                assert_eq!(run.counter(MESSAGES_IN), u64::from(THRESHOLD) + 1);
                assert_eq!(run.counter(MESSAGES_OUT), 1);
                assert_eq!(run.counter(PUBLISHED), 1);
                assert_eq!(run.counter(RETRIED), u64::from(THRESHOLD));
                assert_eq!(run.counter(DEAD_LETTERS), 0);
            })
            .await;
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn retries_and_dead_letters_of_a_channel_show_in_the_delivery_metrics() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let refused = CallOutcome::Permanent {
                    reason: "unknown sku".into(),
                };
                let mut run = publishing("refused", vec![server_error(), refused]).await;
                run.calls.recv().await.unwrap();
                run.calls.recv().await.unwrap();
                let letters = run
                    .ledger
                    .store()
                    .call(|b| b.dead_letters(true, 10))
                    .await
                    .unwrap();
                assert_eq!(letters.len(), 1);
                let letter = &letters[0];
                assert_eq!(letter.origin, Origin::Ledger("stock".into()));
                assert_eq!(letter.node, "web");
                // The refused call's own attempt: the transient failure before it was a call of
                // its own, after which the sku waited its turn again.
                assert_eq!(letter.attempts.len(), 1, "{:?}", letter.attempts);
                assert!(letter.error.contains("unknown sku"), "{}", letter.error);
                for _ in 0..100 {
                    if run.counter(DEAD_LETTERS) > 0 {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                assert_eq!(run.counter(MESSAGES_IN), 2);
                assert_eq!(run.counter(RETRIES), 1);
                assert_eq!(run.counter(DEAD_LETTERS), 1);
                assert_eq!(run.counter(REFUSED), 1);
                assert_eq!(run.counter(RETRIED), 1);
                assert_eq!(run.counter(MESSAGES_OUT), 0);
                assert!(!run.publisher.is_held());
            })
            .await;
    }

    // On the real clock: a paused one would run the held call into its timeout while the
    // sale waits on the state thread.
    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_value_is_not_sent_again_once_the_stock_changed() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let gate = Rc::new(tokio::sync::Notify::new());
                let mut run =
                    publishing_gated("latest", vec![server_error()], Some(gate.clone())).await;
                run.calls.recv().await.unwrap();
                // While the call that will fail is out, 5 of the 12 sell: the next call
                // tells 7, not the 12 the failed call carried.
                run.ledger
                    .apply(Movement {
                        id: "m-2".into(),
                        kind: Kind::Sale,
                        sku: "SKU-1".into(),
                        location: "WH".into(),
                        quantity: 5,
                        counterpart: None,
                        reference: None,
                        at: 1,
                    })
                    .await
                    .unwrap();
                gate.notify_one();
                run.calls.recv().await.unwrap();
                let bodies = run.bodies.borrow().clone();
                let told: Vec<i64> = bodies
                    .iter()
                    .map(|b| b["available"].as_i64().unwrap())
                    .collect();
                assert_eq!(told, vec![12, 7], "{bodies:?}");
            })
            .await;
    }

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
