//! The built-in inventory ledger: movements applied once per id, on-hand / reserved /
//! in-transit per (sku, location) kept durably in the state store, order reservations
//! with expiry, and each channel's available-to-sell published with coalescing.
//!
//! Every operation runs on the state thread inside one batch request, so the book in
//! memory and its rows change together; when a batch fails to commit the book is
//! reloaded from the store before the next operation. Among replicas, each operation
//! first takes the ledger's turn (one row lock in the state, held until its batch ends),
//! and reloads the book when another replica operated since this one's last turn; each
//! channel publishes from the replica holding its lease, which catches up with the
//! others' changes every second.

pub mod book;
pub mod drift;
pub mod memory;
pub mod publish;
pub mod report;
pub mod rules;
pub mod sink;

use crate::ops::metrics::Metrics;
use book::{Applied, Book, Movement, Refusal};
use omniflow_ir as ir;
use omniflow_state::{Backend, Store};
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Movements by outcome (`applied`, `duplicate`, `refused`), per ledger.
pub const MOVEMENTS: &str = "omniflow_ledger_movements_total";
/// Order reservations by outcome (`reserved`, `rejected`, `backordered`, `confirmed`,
/// `released`, `expired`), per ledger.
pub const RESERVATIONS: &str = "omniflow_ledger_reservations_total";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A running ledger.
pub struct Ledger {
    pub name: String,
    book: Arc<Mutex<Book>>,
    stale: Arc<AtomicBool>,
    /// Among replicas: the ledger's version after this process's last turn (-1: none).
    seen: Arc<std::sync::atomic::AtomicI64>,
    /// Among replicas: the book was reloaded for another replica's changes, which the
    /// channels this process publishes have not been told yet.
    others_changed: Arc<AtomicBool>,
    store: Store,
    pub metrics: Rc<Metrics>,
    publishers: RefCell<Vec<Option<Rc<publish::Publisher>>>>,
    /// Movements waiting for the next flush, with who waits for each.
    intake: RefCell<Vec<Pending>>,
    flush_scheduled: std::cell::Cell<bool>,
}

type Pending = (
    Movement,
    tokio::sync::oneshot::Sender<Result<Applied, Refusal>>,
);

/// Most movements applied in one state request.
pub const APPLY_CHUNK: usize = 128;

fn locked(book: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ledger {
    /// Opens a ledger over the state store, loading what it holds.
    pub async fn open(
        ledger: &ir::Ledger,
        store: Store,
        metrics: Rc<Metrics>,
    ) -> Result<Rc<Ledger>, String> {
        let rules = rules::Rules::new(ledger)?;
        let book = Arc::new(Mutex::new(Book::new(rules)));
        let (name, loaded) = (ledger.name.clone(), book.clone());
        let declared = serde_json::to_string(ledger).map_err(|e| e.to_string())?;
        store
            .call(move |backend: &mut dyn Backend| {
                let mut journal = backend.journal(&name)?;
                journal.save_rules(&declared)?;
                locked(&loaded).load(journal.as_mut())
            })
            .await
            .map_err(|e| format!("ledger `{}`: {e}", ledger.name))?;
        let channels = ledger.channels.len();
        Ok(Rc::new(Ledger {
            name: ledger.name.clone(),
            book,
            stale: Arc::default(),
            seen: Arc::new(std::sync::atomic::AtomicI64::new(-1)),
            others_changed: Arc::default(),
            store,
            metrics,
            publishers: RefCell::new(vec![None; channels]),
            intake: RefCell::default(),
            flush_scheduled: std::cell::Cell::new(false),
        }))
    }

    /// Runs `op` against the book and its journal in the next batch. When the request or
    /// its batch fails, the book is marked stale on the state thread and reloaded from the
    /// store before the next operation runs.
    async fn run<T, F>(&self, op: F) -> Result<T, Refusal>
    where
        T: Send + 'static,
        F: FnOnce(&mut Book, &mut dyn book::Journal, i64) -> Result<T, Refusal> + Send + 'static,
    {
        let (name, book, stale) = (self.name.clone(), self.book.clone(), self.stale.clone());
        let (seen, others_changed) = (self.seen.clone(), self.others_changed.clone());
        let result = self
            .store
            .call_flagging(
                move |backend: &mut dyn Backend| {
                    if let Some(version) = backend.ledger_turn(&name)? {
                        // Another replica operated since this one's last turn.
                        if seen.swap(version, Ordering::SeqCst) != version - 1 {
                            stale.store(true, Ordering::SeqCst);
                            others_changed.store(true, Ordering::SeqCst);
                        }
                    }
                    let mut journal = backend.journal(&name)?;
                    let mut book = locked(&book);
                    if stale.load(Ordering::SeqCst) {
                        book.load(journal.as_mut())?;
                        stale.store(false, Ordering::SeqCst);
                    }
                    match op(&mut book, journal.as_mut(), now_ms()) {
                        Ok(value) => Ok(Ok(value)),
                        Err(Refusal::Invalid(reason)) => Ok(Err(Refusal::Invalid(reason))),
                        Err(Refusal::Store(err)) => {
                            // Its writes are undone; later requests of this batch reload.
                            stale.store(true, Ordering::SeqCst);
                            Err(err)
                        }
                    }
                },
                self.stale.clone(),
            )
            .await;
        match result {
            Ok(outcome) => outcome,
            Err(err) => Err(Refusal::Store(err)),
        }
    }

    /// Applies one movement (once per movement id). Movements that arrive in the same
    /// turn of the scheduler are applied in state requests of up to [`APPLY_CHUNK`]
    /// (several in flight), so a burst pays for one request per chunk, not per movement.
    pub async fn apply(self: &Rc<Self>, movement: Movement) -> Result<Applied, Refusal> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.intake.borrow_mut().push((movement, tx));
        if !self.flush_scheduled.replace(true) {
            let ledger = self.clone();
            tokio::task::spawn_local(async move {
                tokio::task::yield_now().await;
                ledger.flush();
            });
        }
        rx.await
            .unwrap_or_else(|_| Err(Refusal::Store("the ledger stopped".into())))
    }

    /// Sends what the intake holds to the state thread, a request per chunk.
    fn flush(self: &Rc<Self>) {
        self.flush_scheduled.set(false);
        let mut waiting = std::mem::take(&mut *self.intake.borrow_mut());
        while !waiting.is_empty() {
            let rest = waiting.split_off(waiting.len().min(APPLY_CHUNK));
            let chunk = std::mem::replace(&mut waiting, rest);
            tokio::task::spawn_local(self.clone().apply_chunk(chunk));
        }
    }

    async fn apply_chunk(self: Rc<Self>, chunk: Vec<Pending>) {
        let (movements, replies): (Vec<Movement>, Vec<_>) = chunk.into_iter().unzip();
        let result = self
            .run(move |book, journal, now| {
                let mut outcomes = Vec::with_capacity(movements.len());
                for movement in &movements {
                    match book.apply(journal, movement) {
                        Ok(applied) => {
                            let changed = book.refresh_changed(&applied, now);
                            outcomes.push(Ok((applied, changed)));
                        }
                        Err(Refusal::Invalid(reason)) => {
                            outcomes.push(Err(Refusal::Invalid(reason)))
                        }
                        // The chunk's writes are undone together; the book reloads.
                        Err(store) => return Err(store),
                    }
                }
                Ok(outcomes)
            })
            .await;
        match result {
            Ok(outcomes) => {
                let mut counts = [0u64; 3];
                for (outcome, reply) in outcomes.into_iter().zip(replies) {
                    counts[match &outcome {
                        Ok((Applied::Duplicate, _)) => 1,
                        Ok(_) => 0,
                        Err(_) => 2,
                    }] += 1;
                    let _ = reply.send(outcome.map(|(applied, changed)| {
                        self.queue(changed);
                        applied
                    }));
                }
                for (node, count) in ["applied", "duplicate", "refused"].into_iter().zip(counts) {
                    if count > 0 {
                        self.metrics.add(MOVEMENTS, &self.name, node, count);
                    }
                }
            }
            Err(err) => {
                for reply in replies {
                    self.metrics.add(MOVEMENTS, &self.name, "store_error", 1);
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }

    /// Reserves an order's lines for a channel (see [`Book::reserve`]).
    pub async fn reserve(
        &self,
        order: String,
        channel: &str,
        lines: Vec<(String, i64)>,
        backorder: bool,
    ) -> Result<Applied, Refusal> {
        let Some(channel_idx) = locked(&self.book).rules.channel(channel) else {
            let known: Vec<String> = locked(&self.book)
                .rules
                .channels
                .iter()
                .map(|c| c.spec.name.clone())
                .collect();
            return Err(Refusal::Invalid(format!(
                "order {order}: ledger `{}` has no channel {channel} (it has {})",
                self.name,
                known.join(", ")
            )));
        };
        let result = self
            .run(move |book, journal, now| {
                let applied = book.reserve(journal, &order, channel_idx, &lines, backorder, now)?;
                let short = book.holds(&order).iter().any(|h| h.location.is_empty());
                let changed = book.refresh_changed(&applied, now);
                Ok((applied, changed, short))
            })
            .await;
        let node = match &result {
            Ok((Applied::Duplicate, _, _)) => "duplicate",
            Ok((_, _, true)) => "backordered",
            Ok(_) => "reserved",
            Err(Refusal::Invalid(_)) => "rejected",
            Err(Refusal::Store(_)) => "store_error",
        };
        self.metrics.add(RESERVATIONS, &self.name, node, 1);
        let (applied, changed, _) = result?;
        self.queue(changed);
        Ok(applied)
    }

    /// Keeps an order's reservation past its window; refused when it holds none.
    pub async fn confirm(&self, order: String) -> Result<(), Refusal> {
        let name = self.name.clone();
        self.run(move |book, journal, _| {
            if book.confirm(journal, &order)? {
                Ok(())
            } else {
                Err(Refusal::Invalid(format!(
                    "order {order} holds no reservation in ledger `{name}` (never reserved, shipped, or released after its window)"
                )))
            }
        })
        .await?;
        self.metrics.add(RESERVATIONS, &self.name, "confirmed", 1);
        Ok(())
    }

    /// Releases an order's reservation (nothing to do when it holds none).
    pub async fn release(&self, order: String) -> Result<(), Refusal> {
        let changed = self
            .run(move |book, journal, now| {
                let skus = book.release(journal, &order)?;
                Ok(book.refresh_changed(&Applied::Changed(skus), now))
            })
            .await?;
        self.metrics.add(RESERVATIONS, &self.name, "released", 1);
        self.queue(changed);
        Ok(())
    }

    /// Releases the reservations whose window has passed; returns how many orders.
    pub async fn expire(&self) -> Result<usize, Refusal> {
        // No state request (nor, among replicas, a turn) while nothing is due.
        if !self.with_book(|b| b.any_expired(now_ms())) {
            return Ok(0);
        }
        let (orders, changed) = self
            .run(move |book, journal, now| {
                let (orders, skus) = book.expire(journal, now)?;
                let changed = book.refresh_changed(&Applied::Changed(skus), now);
                Ok((orders.len(), changed))
            })
            .await?;
        if orders > 0 {
            self.metrics
                .add(RESERVATIONS, &self.name, "expired", orders as u64);
        }
        self.queue(changed);
        Ok(orders)
    }

    /// Records a publication; returns how long the value waited, in milliseconds.
    pub async fn published(
        &self,
        channel: usize,
        sku: String,
        value: i64,
    ) -> Result<Option<i64>, Refusal> {
        self.run(move |book, journal, now| {
            book.published(journal, channel, &sku, value, now)
                .map_err(Refusal::Store)
        })
        .await
    }

    /// The state store the ledger writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The channels that publish somewhere.
    pub fn publishing_channels(&self) -> Vec<usize> {
        self.publishers
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .map(|(idx, _)| idx)
            .collect()
    }

    /// Reads the book.
    pub fn with_book<T>(&self, read: impl FnOnce(&Book) -> T) -> T {
        read(&locked(&self.book))
    }

    /// Among replicas, when another replica operated on the ledger since this one's last
    /// turn: reloads the book and queues what is pending for the channels this replica
    /// publishes (holds the lease of).
    async fn catch_up(&self) -> Result<(), Refusal> {
        let held: Vec<Rc<publish::Publisher>> = self
            .publishers
            .borrow()
            .iter()
            .flatten()
            .filter(|p| p.is_leased())
            .cloned()
            .collect();
        if held.is_empty() {
            return Ok(());
        }
        let name = self.name.clone();
        let version = self
            .store
            .read(move |b| b.ledger_version(&name))
            .await
            .map_err(Refusal::Store)?;
        if version.is_some_and(|v| v != self.seen.load(Ordering::SeqCst)) {
            // A turn of its own reloads the book (the version moved).
            self.run(|_, _, _| Ok(())).await?;
        }
        // Reloaded now or by an operation since the last catch-up.
        if !self.others_changed.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        for publisher in held {
            for (sku, ats) in self.with_book(|b| b.pending(publisher.channel())) {
                publisher.push(&sku, ats);
            }
        }
        Ok(())
    }

    fn queue(&self, changed: Vec<(String, usize, i64)>) {
        let publishers = self.publishers.borrow();
        for (sku, channel, ats) in changed {
            if let Some(Some(publisher)) = publishers.get(channel) {
                publisher.push(&sku, ats);
            }
        }
    }
}

/// Reads a canonical `InventoryMovement`.
pub fn movement_from_json(value: &Value) -> Result<Movement, String> {
    let text = |field: &str| value.get(field).and_then(Value::as_str);
    let id = text("id")
        .filter(|s| !s.is_empty())
        .ok_or("movement without an id")?;
    let kind_text = text("kind").unwrap_or("");
    let kind = book::Kind::parse(kind_text)
        .ok_or_else(|| format!("movement {id}: unknown kind `{kind_text}`"))?;
    let quantity = value
        .get("quantity")
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("movement {id}: quantity is not an integer"))?;
    let at_text = text("occurred_at").unwrap_or("");
    let at = chrono::DateTime::parse_from_rfc3339(at_text)
        .map_err(|_| format!("movement {id}: occurred_at `{at_text}` is not an RFC 3339 time"))?
        .timestamp_millis();
    Ok(Movement {
        id: id.to_string(),
        kind,
        sku: text("sku").unwrap_or("").to_string(),
        location: text("location").unwrap_or("").to_string(),
        quantity,
        counterpart: text("counterpart_location").map(str::to_string),
        reference: text("reference").map(str::to_string),
        at,
    })
}

/// The running ledgers of one runner, by name.
#[derive(Default)]
pub struct Ledgers(RefCell<std::collections::HashMap<String, Rc<Ledger>>>);

impl Ledgers {
    /// The running ledger of this name.
    pub fn get(&self, name: &str) -> Option<Rc<Ledger>> {
        self.0.borrow().get(name).cloned()
    }

    /// Registers a running ledger under its name.
    pub fn insert(&self, ledger: Rc<Ledger>) {
        self.0.borrow_mut().insert(ledger.name.clone(), ledger);
    }

    /// Forgets every ledger (a runner that stops clears them).
    pub fn clear(&self) {
        self.0.borrow_mut().clear();
    }
}

/// Opens every ledger of a graph, registers it in `ledgers` for the sinks that name it, and
/// starts its publishers (their sinks made by `build_sink`, limited by the connections'
/// `limits`) and its reservation sweeper.
pub async fn start(
    graph: &ir::Graph,
    store: &Store,
    metrics: &Rc<Metrics>,
    (ledgers, limits, membership): (
        &Ledgers,
        &crate::delivery::rate_limit::ConnectionLimits,
        &Rc<crate::cluster::Membership>,
    ),
    build_sink: crate::delivery::BuildSink<'_>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<Rc<Ledger>>, crate::error::StartError> {
    let mut started = Vec::new();
    for spec in &graph.ledgers {
        let ledger = Ledger::open(spec, store.clone(), metrics.clone())
            .await
            .map_err(crate::error::StartError::Ledger)?;
        for (idx, channel) in spec.channels.iter().enumerate() {
            let Some(target) = &channel.publish else {
                continue;
            };
            let publisher = Rc::new(publish::Publisher::new(
                graph,
                spec,
                (idx, channel, target),
                build_sink,
                limits,
                metrics,
            )?);
            for (sku, ats) in ledger.with_book(|b| b.pending(idx)) {
                publisher.push(&sku, ats);
            }
            ledger.publishers.borrow_mut()[idx] = Some(publisher.clone());
            tokio::task::spawn_local(publisher.run(
                ledger.clone(),
                membership.clone(),
                stop.clone(),
            ));
        }
        tokio::task::spawn_local(sweep(ledger.clone(), stop.clone()));
        ledgers.insert(ledger.clone());
        started.push(ledger);
    }
    Ok(started)
}

/// Releases expired reservations every second until stopped.
async fn sweep(ledger: Rc<Ledger>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(err) = ledger.expire().await {
                    tracing::warn!(ledger = %ledger.name, error = ?err, "expiring reservations failed");
                }
                if let Err(err) = ledger.catch_up().await {
                    tracing::warn!(ledger = %ledger.name, error = ?err, "catching up with the other replicas failed");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
