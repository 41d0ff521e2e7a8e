//! Which sinks and sources a flow can use at run time: the engine's own (ledgers and the
//! bus), then the connectors' registry.

use crate::bus;
use crate::error::SinkError;
use crate::ledger::sink::LedgerSink;
use crate::shared::Shared;
use omniflow_connectors::{Context, SinkConnector};
use omniflow_ir::Connection;
use serde_json::Value;
use std::collections::BTreeMap;
use std::rc::Rc;

/// The engine's own operations: (connector, operation, kind as the stdlib declares it).
pub const OWN: &[(&str, &str, &str)] = &[
    ("ledger", "apply", "sink"),
    ("ledger", "reserve", "sink"),
    ("ledger", "confirm", "sink"),
    ("ledger", "release", "sink"),
    ("bus", "publish", "sink"),
    ("bus", "subscribe", "bus"),
];

/// True when this runtime runs `connector.operation` as declared: `kind` is `sink` for a
/// sink, else the source's kind (`poll`, `schedule`, `webhook`, `bus`, `file`).
pub fn implements(connector: &str, operation: &str, kind: &str) -> bool {
    OWN.contains(&(connector, operation, kind))
        || omniflow_connectors::implements(connector, operation, kind)
}

/// Builds the sink of a connection's operation outside a runner: no ledger runs and no
/// flow subscribes to the embedded bus.
pub fn sink(
    connectors: Rc<Context>,
    connection: &Connection,
    operation: &str,
    options: &BTreeMap<String, Value>,
) -> Result<Box<dyn SinkConnector>, SinkError> {
    let shared = Rc::new(Shared {
        connectors,
        ..Shared::default()
    });
    sink_in(&shared, connection, operation, options)
}

/// Builds the sink of a connection's operation for a runner sharing `shared`.
pub fn sink_in(
    shared: &Rc<Shared>,
    connection: &Connection,
    operation: &str,
    options: &BTreeMap<String, Value>,
) -> Result<Box<dyn SinkConnector>, SinkError> {
    match connection.connector.as_str() {
        // A ledger is a connection of the built-in ledger; it has no settings to resolve.
        "ledger" => Ok(Box::new(
            LedgerSink::new(&shared.ledgers, &connection.name, operation, options)
                .map_err(SinkError::Ledger)?,
        )),
        "bus" if operation == "publish" => {
            let settings = shared.connectors.settings(connection)?;
            Ok(match bus::on_nats(&settings) {
                true => Box::new(
                    bus::nats::Publish::new(&shared.nats, &settings, options)
                        .map_err(SinkError::Bus)?,
                ),
                false => Box::new(
                    bus::Publish::new(&shared.bus, &settings, options).map_err(SinkError::Bus)?,
                ),
            })
        }
        _ => Ok(omniflow_connectors::sink(
            &shared.connectors,
            connection,
            operation,
            options,
        )?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;
    use crate::shared::Shared;
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
            declared: None,
        };
        let sink =
            |shared| crate::connect::sink_in(shared, &connection, "apply", &Default::default());
        assert!(sink(&this_runner).is_ok());
        assert_eq!(
            sink(&other_runner).err().unwrap().to_string(),
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
