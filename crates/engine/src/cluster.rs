//! This process as one replica among several on a shared state: the heartbeat that keeps
//! its claims and leases, the signal that it must stop once the others count it as gone,
//! and the leases for work one replica does at a time (a poll, a file, a schedule, a flow
//! whose sinks keep an order). A process that owns its state alone is a cluster of one:
//! every lease is its own at once and nothing is ever fenced.

use crate::ops::metrics::{Metrics, LEASE_HELD};
use omniflow_state::cluster::{Fence, FENCED};
use omniflow_state::{Mode, Store};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Default time to live of a replica: the others take over its work this long after its
/// last heartbeat.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// This process's place among the replicas.
pub struct Membership {
    store: Option<Store>,
    ttl: Duration,
    /// When the last heartbeat that the state confirmed was sent.
    confirmed: Cell<Instant>,
    /// Why this replica must stop: the others count it as gone, or its state writes
    /// failed (it leaves its work to the others).
    fenced: watch::Sender<Option<String>>,
    /// The heartbeat runs (started once, whatever plans run after another).
    beating: Cell<bool>,
}

impl Default for Membership {
    fn default() -> Membership {
        Membership::alone()
    }
}

impl Membership {
    /// A process that owns its state alone.
    pub fn alone() -> Membership {
        Membership {
            store: None,
            ttl: DEFAULT_TTL,
            confirmed: Cell::new(Instant::now()),
            fenced: watch::channel(None).0,
            beating: Cell::new(false),
        }
    }

    /// The membership over `store`: a replica's, with the time to live the state was
    /// joined with, when the store is shared; otherwise alone.
    pub fn of(store: &Store) -> Membership {
        Membership {
            store: store.replica().map(|_| store.clone()),
            ttl: store.replica_ttl().unwrap_or(DEFAULT_TTL),
            ..Membership::alone()
        }
    }

    /// This replica's id, when there are replicas.
    pub fn replica(&self) -> Option<&str> {
        self.store.as_ref().and_then(Store::replica)
    }

    /// True while this process may act on what it holds: alone always; a replica while
    /// its last confirmed heartbeat is within half its time to live by its own clock (the
    /// others wait the whole time to live by the database's), so a replica that was paused
    /// stops before the others take over.
    pub fn is_current(&self) -> bool {
        match self.store {
            None => true,
            Some(_) => {
                self.fenced.borrow().is_none() && self.confirmed.get().elapsed() < self.ttl / 2
            }
        }
    }

    /// Resolves, with the reason, once this replica must stop (never when alone).
    pub async fn fenced(&self) -> String {
        let mut fenced = self.fenced.subscribe();
        let reason = match fenced.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }

    /// Waits until this process may act on what it holds (forever once it is fenced).
    pub async fn until_current(&self) {
        while !self.is_current() {
            tokio::time::sleep(self.ttl / 20).await;
        }
    }

    /// Starts the heartbeat unless it runs already (a reloaded plan keeps it).
    pub fn start_heartbeat(
        self: &Rc<Self>,
        metrics: &Rc<Metrics>,
        woken: Vec<Rc<tokio::sync::Notify>>,
    ) {
        if !self.beating.replace(true) {
            tokio::task::spawn_local(self.clone().run_heartbeat(metrics.clone(), woken));
        }
    }

    /// Beats every fifth of the time to live for as long as the process runs (through a
    /// graceful stop's drain too): confirms this replica and frees the messages of
    /// replicas that are gone (waking the flows to take them).
    async fn run_heartbeat(
        self: Rc<Self>,
        metrics: Rc<Metrics>,
        woken: Vec<Rc<tokio::sync::Notify>>,
    ) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let every = (self.ttl / 5).max(Duration::from_millis(20));
        loop {
            if store.is_degraded() {
                // Its claims would stay held while it refuses to complete anything: it
                // stops beating, the others take its work over, and it stops.
                let reason = "a state write of this replica failed; it leaves its work to the other replicas and stops";
                tracing::error!(reason, "replica stopping");
                self.fenced.send_replace(Some(reason.to_string()));
                return;
            }
            let sent = Instant::now();
            match store.call_in(Mode::Isolated, |b| b.heartbeat()).await {
                Ok(freed) => {
                    self.confirmed.set(sent);
                    if freed > 0 {
                        tracing::warn!(
                            messages = freed,
                            "took over the messages of a replica that is gone"
                        );
                        metrics.add_replica(crate::ops::metrics::TAKEN_OVER, freed);
                        woken.iter().for_each(|w| w.notify_one());
                    }
                }
                Err(err) if err == FENCED => {
                    tracing::error!(error = %err, "replica fenced");
                    self.fenced.send_replace(Some(err));
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "heartbeat not confirmed; trying again");
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Waits until this replica holds lease `name` (at once when alone); `None` when
    /// `stop` came first. `flow` and `node` label the lease's gauge.
    pub async fn lease(
        &self,
        name: &str,
        (flow, node, metrics): (&str, &str, &Metrics),
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Fence> {
        let Some(store) = &self.store else {
            return Some(Fence::alone(name));
        };
        let mut waiting_logged = false;
        loop {
            if *stop.borrow() {
                return None;
            }
            if self.is_current() {
                let lease = name.to_string();
                match store
                    .call_in(Mode::Isolated, move |b| b.acquire_lease(&lease))
                    .await
                {
                    Ok(Some(fence)) => {
                        if waiting_logged || fence.token > 0 {
                            tracing::info!(lease = %name, token = fence.token, "lease held");
                        }
                        metrics.set_node_gauge(LEASE_HELD, flow, node, 1);
                        return Some(fence);
                    }
                    Ok(None) if !waiting_logged => {
                        tracing::info!(lease = %name, "another replica holds the lease; standing by");
                        waiting_logged = true;
                    }
                    Ok(None) => {}
                    Err(err) => {
                        tracing::warn!(lease = %name, error = %err, "cannot ask for a lease")
                    }
                }
                metrics.set_node_gauge(LEASE_HELD, flow, node, 0);
            }
            tokio::select! {
                _ = tokio::time::sleep(self.ttl / 5) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
