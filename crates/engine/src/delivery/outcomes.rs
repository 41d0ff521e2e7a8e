//! Recorded outcomes: successful deliveries noted in memory and written in batches ahead
//! of the completions that depend on them, the claims replicas take on keys before a
//! call, and state writes that must not be dropped.

use omniflow_state::lineage::Event;
use omniflow_state::{Mode, OutcomeStatus, Store};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

/// The outcomes of one flow's sinks waiting to be written.
pub struct Outcomes {
    store: Store,
    /// This process among the replicas: whether keys are claimed before a call.
    membership: std::rc::Rc<crate::cluster::Membership>,
    /// Keys of successful deliveries, by sink, whose outcomes are not yet queued for
    /// writing.
    delivered: RefCell<Vec<(Arc<str>, Vec<String>)>>,
    /// Lineage events ready to be written (of finished messages, or held long enough).
    lineage: RefCell<Vec<Event>>,
    /// Lineage events of messages still in flight, by correlation id: written together
    /// (one row) when the message finishes, or after [`HOLD`] so a message that waits
    /// (retries, an outage) shows in a trace meanwhile.
    held: RefCell<Held>,
    /// Hears how each delivery ended, while a recording runs.
    recorder: Option<std::rc::Rc<crate::recording::Recorder>>,
}

/// How long a message's lineage waits for the message to finish before it is written.
const HOLD: std::time::Duration = std::time::Duration::from_secs(1);

/// Lineage events of messages in flight, and when each was first held.
#[derive(Default)]
struct Held {
    events: HashMap<String, Vec<Event>>,
    since: VecDeque<(Instant, String)>,
}

impl Outcomes {
    /// Outcomes written to `store`, by this process as `membership` places it.
    pub fn new(
        store: Store,
        membership: std::rc::Rc<crate::cluster::Membership>,
        recorder: Option<std::rc::Rc<crate::recording::Recorder>>,
    ) -> Outcomes {
        Outcomes {
            store,
            membership,
            recorder,
            delivered: RefCell::new(Vec::new()),
            lineage: RefCell::new(Vec::new()),
            held: RefCell::default(),
        }
    }

    /// The state store they are written to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// This process among the replicas.
    pub fn membership(&self) -> &crate::cluster::Membership {
        &self.membership
    }

    /// Notes a successful delivery; its outcome is written with the next batch of
    /// outcomes, which is queued before any completion or outcome lookup that follows.
    pub fn record_delivered(&self, sink_id: &Arc<str>, key: String) {
        let mut delivered = self.delivered.borrow_mut();
        match delivered
            .iter_mut()
            .find(|(sink, _)| Arc::ptr_eq(sink, sink_id))
        {
            Some((_, keys)) => keys.push(key),
            None => delivered.push((sink_id.clone(), vec![key])),
        }
    }

    /// Notes a lineage event of a message in flight; it is written once the message
    /// finishes ([`Outcomes::finished`]) or has waited [`HOLD`].
    pub fn note(&self, event: Event) {
        if let Some(recorder) = &self.recorder {
            recorder.answer(&event);
        }
        let mut held = self.held.borrow_mut();
        match held.events.get_mut(&event.correlation) {
            Some(events) => events.push(event),
            None => {
                held.since
                    .push_back((Instant::now(), event.correlation.clone()));
                held.events.insert(event.correlation.clone(), vec![event]);
            }
        }
    }

    /// The message `correlation` is finished: its lineage goes with the next batch.
    pub fn finished(&self, correlation: &str) {
        if let Some(events) = self.held.borrow_mut().events.remove(correlation) {
            self.lineage.borrow_mut().extend(events);
        }
    }

    /// Moves the lineage held longer than [`HOLD`] to the next batch.
    fn release_held(&self) {
        let mut held = self.held.borrow_mut();
        let now = Instant::now();
        while held
            .since
            .front()
            .is_some_and(|(since, _)| now.duration_since(*since) >= HOLD)
        {
            let Some((_, correlation)) = held.since.pop_front() else {
                break;
            };
            if let Some(events) = held.events.remove(&correlation) {
                self.lineage.borrow_mut().extend(events);
            }
        }
    }

    /// Queues the outcomes noted so far as one write (if it fails, the store refuses
    /// completions from then on, see [`Store::send`]), and the lineage noted so far as
    /// another whose failure is only logged.
    pub fn flush(&self) {
        self.release_held();
        let by_sink = std::mem::take(&mut *self.delivered.borrow_mut());
        let lineage = std::mem::take(&mut *self.lineage.borrow_mut());
        if by_sink.is_empty() && lineage.is_empty() {
            return;
        }
        // One write per sink, each in the order its deliveries succeeded.
        if !by_sink.is_empty() {
            self.store.send(move |b| {
                by_sink.iter().try_for_each(|(sink, keys)| {
                    b.record_outcomes(sink, keys, OutcomeStatus::Delivered)
                })
            });
        }
        // Lineage right behind, in the same batch, but nothing waits on it: a failed
        // lineage write is logged and the messages go on.
        if !lineage.is_empty() {
            let rows = omniflow_state::lineage::pack(lineage);
            self.store.send_aside(move |b| b.record_lineage(&rows));
        }
    }
}

/// Runs a state call until it succeeds: a write the guarantees depend on is retried
/// (the message stays pending meanwhile) rather than dropped. `flow` labels the log.
pub async fn durably<T, F>(store: &Store, flow: &str, mode: Mode, work: F) -> T
where
    T: Send + 'static,
    F: Fn(&mut dyn omniflow_state::Backend) -> omniflow_state::StateResult<T>
        + Clone
        + Send
        + 'static,
{
    loop {
        match store.call_in(mode, work.clone()).await {
            Ok(value) => return value,
            Err(err) => {
                tracing::error!(error = %err, flow = %flow, ?mode, "state store call failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
