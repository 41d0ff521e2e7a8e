//! What the flows of one runner share: its running ledgers, the embedded bus's
//! subscriptions, the NATS connections and each connection's rate limit. The runner
//! creates it and hands it down; nothing of it lives in process-wide state, so two
//! runners in one process (or one thread) do not see each other's.

use crate::bus::nats::Connections;
use crate::bus::Subscribers;
use crate::delivery::rate_limit::ConnectionLimits;
use crate::ledger::{Ledger, Ledgers};
use std::rc::Rc;

/// The runtime context of one runner.
#[derive(Default)]
pub struct Shared {
    /// Running ledgers by name, for the sinks that name one.
    pub ledgers: Ledgers,
    /// Subscriptions of `bus.subscribe` sources on the embedded bus.
    pub bus: Rc<Subscribers>,
    /// NATS connections by URL, shared by the sinks and sources that use one server.
    pub nats: Rc<Connections>,
    /// One token bucket per connection that publishes a quota.
    pub limits: ConnectionLimits,
    /// What the connectors share: the secret source, token caches, the registry.
    pub connectors: Rc<omniflow_connectors::Context>,
    /// This process among the replicas of a shared state (alone otherwise).
    pub membership: Rc<crate::cluster::Membership>,
    /// What the sources report for `/health`.
    pub health: Rc<crate::ops::health::Health>,
    /// The threads that parse, map and route messages (none on one CPU).
    pub mappers: Option<crate::mapper::Mappers>,
    /// Where accepted messages and sink answers are recorded, while a recording runs.
    pub recorder: Option<Rc<crate::recording::Recorder>>,
    /// Retry back-offs and rate limits pass at once (a whole-flow test's virtual clock).
    pub instant_waits: bool,
}

impl Shared {
    /// The context of a runner of `graph`.
    pub fn new(
        graph: &omniflow_ir::Graph,
        connectors: Rc<omniflow_connectors::Context>,
        membership: Rc<crate::cluster::Membership>,
        recorder: Option<Rc<crate::recording::Recorder>>,
        instant_waits: bool,
    ) -> Rc<Shared> {
        Rc::new(Shared {
            limits: ConnectionLimits::new(graph),
            connectors,
            membership,
            recorder,
            instant_waits,
            mappers: crate::mapper::Mappers::start(graph),
            ..Shared::default()
        })
    }

    /// The running ledger of this name.
    pub fn ledger(&self, name: &str) -> Option<Rc<Ledger>> {
        self.ledgers.get(name)
    }

    /// Forgets the ledgers and subscriptions (a runner that stops clears them, which also
    /// ends the reference cycles between flows and the sinks that feed them).
    pub fn clear(&self) {
        self.ledgers.clear();
        self.bus.clear();
        self.nats.clear();
    }
}
