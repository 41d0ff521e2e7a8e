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
}

impl Shared {
    /// The context of a runner of `graph`.
    pub fn new(
        graph: &omniflow_ir::Graph,
        connectors: Rc<omniflow_connectors::Context>,
    ) -> Rc<Shared> {
        Rc::new(Shared {
            limits: ConnectionLimits::new(graph),
            connectors,
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

#[cfg(test)]
mod tests {
    use super::*;
    use omniflow_ir::Connection;

    #[tokio::test(flavor = "current_thread")]
    async fn a_ledger_sink_finds_only_the_ledgers_of_its_own_runner() {
        let path =
            std::env::temp_dir().join(format!("omniflow-shared-ledgers-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let backend = omniflow_state::SqliteBackend::open(path.to_str().unwrap()).unwrap();
        let store = omniflow_state::Store::start(Box::new(backend));
        let spec = omniflow_ir::Ledger {
            name: "stock".into(),
            locations: vec!["WH".into()],
            reservation_window_ms: 0,
            channels: Vec::new(),
        };
        let ledger = Ledger::open(&spec, store, Rc::default()).await.unwrap();
        let (this_runner, other_runner) = (Rc::new(Shared::default()), Rc::new(Shared::default()));
        this_runner.ledgers.insert(ledger);
        let connection = Connection {
            name: "stock".into(),
            connector: "ledger".into(),
            settings: Default::default(),
            quota: Default::default(),
        };
        let sink =
            |shared| crate::connect::sink_in(shared, &connection, "apply", &Default::default());
        assert!(sink(&this_runner).is_ok());
        assert_eq!(
            sink(&other_runner).err().unwrap(),
            "ledger `stock` is not running in this process"
        );
        this_runner.clear();
        assert!(
            sink(&this_runner).is_err(),
            "a stopped runner forgets its ledgers"
        );
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
