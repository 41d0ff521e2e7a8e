//! Recorded outcomes: successful deliveries noted in memory and written in batches ahead
//! of the completions that depend on them, the claims replicas take on keys before a
//! call, and state writes that must not be dropped.

use omniflow_state::{Mode, OutcomeStatus, Store};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

/// The outcomes of one flow's sinks waiting to be written.
pub struct Outcomes {
    store: Store,
    /// This process among the replicas: whether keys are claimed before a call.
    membership: std::rc::Rc<crate::cluster::Membership>,
    /// Keys of successful deliveries, by sink, whose outcomes are not yet queued for
    /// writing.
    delivered: RefCell<Vec<(Arc<str>, Vec<String>)>>,
    /// Lineage events waiting to be written with them.
    lineage: RefCell<Vec<omniflow_state::lineage::Event>>,
}

impl Outcomes {
    /// Outcomes written to `store`, by this process as `membership` places it.
    pub fn new(store: Store, membership: std::rc::Rc<crate::cluster::Membership>) -> Outcomes {
        Outcomes {
            store,
            membership,
            delivered: RefCell::new(Vec::new()),
            lineage: RefCell::new(Vec::new()),
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

    /// Notes a lineage event; it is written with the next batch of outcomes.
    pub fn note(&self, event: omniflow_state::lineage::Event) {
        self.lineage.borrow_mut().push(event);
    }

    /// Queues the outcomes noted so far as one write (if it fails, the store refuses
    /// completions from then on, see [`Store::send`]), and the lineage noted so far as
    /// another whose failure is only logged.
    pub fn flush(&self) {
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
