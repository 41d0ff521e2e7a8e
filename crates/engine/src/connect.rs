//! Which sinks and sources a flow can use at run time: the engine's own (ledgers and the
//! bus), then the connectors' registry.

use crate::bus;
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
) -> Result<Box<dyn SinkConnector>, String> {
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
) -> Result<Box<dyn SinkConnector>, String> {
    match connection.connector.as_str() {
        // A ledger is a connection of the built-in ledger; it has no settings to resolve.
        "ledger" => Ok(Box::new(LedgerSink::new(
            &shared.ledgers,
            &connection.name,
            operation,
            options,
        )?)),
        "bus" if operation == "publish" => {
            let settings = shared.connectors.settings(connection)?;
            Ok(match bus::on_nats(&settings) {
                true => Box::new(bus::nats::Publish::new(&shared.nats, &settings, options)?),
                false => Box::new(bus::Publish::new(&shared.bus, &settings, options)?),
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
