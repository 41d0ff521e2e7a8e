//! Which sinks and sources a flow can use at run time: the engine's own (ledgers and the
//! bus), then the connectors' registry.

use crate::bus;
use crate::ledger::sink::LedgerSink;
use crate::shared::Shared;
use omniflow_connectors::SinkConnector;
use omniflow_ir::Connection;
use serde_json::Value;
use std::collections::BTreeMap;
use std::rc::Rc;

/// The ledger's sink operations.
const LEDGER_SINKS: &[&str] = &["apply", "reserve", "confirm", "release"];

/// True when this runtime runs `connector.operation` as declared: `kind` is `sink` for a
/// sink, else the source's kind (`poll`, `schedule`, `webhook`, `bus`, `file`).
pub fn implements(connector: &str, operation: &str, kind: &str) -> bool {
    match (connector, kind) {
        ("ledger", "sink") => LEDGER_SINKS.contains(&operation),
        ("bus", "sink") => operation == "publish",
        ("bus", "bus") => true,
        _ => omniflow_connectors::implements(connector, operation, kind),
    }
}

/// Builds the sink of a connection's operation outside a runner: no ledger runs and no
/// flow subscribes to the embedded bus.
pub fn sink(
    connection: &Connection,
    operation: &str,
    options: &BTreeMap<String, Value>,
) -> Result<Box<dyn SinkConnector>, String> {
    sink_in(&Rc::new(Shared::default()), connection, operation, options)
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
            shared,
            &connection.name,
            operation,
            options,
        )?)),
        "bus" if operation == "publish" => {
            let settings = omniflow_connectors::settings(connection)?;
            Ok(match bus::on_nats(&settings) {
                true => Box::new(bus::nats::Publish::new(shared, &settings, options)?),
                false => Box::new(bus::Publish::new(shared, &settings, options)?),
            })
        }
        _ => omniflow_connectors::sink(connection, operation, options),
    }
}
