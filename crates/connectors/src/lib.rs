//! Built-in connectors at run time. A connector only classifies each call's outcome
//! (ok, transient with an optional retry-after, permanent with a reason); retries, limits,
//! idempotency and dead letters stay in `delivery/`.
#![deny(clippy::unwrap_used)]

pub mod amazon;
pub mod amazon_reports;
pub mod api;
pub mod client;
pub mod file;
pub mod http;
pub mod odata;
pub mod shipbob;
pub mod shopify;
pub mod signatures;
pub mod square;
pub mod transport;
pub mod tryton;

use omniflow_ir::{Connection, SettingValue};
use serde_json::Value;
use std::collections::BTreeMap;

pub use api::{Call, CallFuture, CallOutcome, Page, PageFuture, Pager, SinkConnector};

static SECRETS_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Reads `secret(NAME)` from the file `dir/NAME` from now on (deployment settings).
pub fn read_secrets_from(dir: std::path::PathBuf) {
    let _ = SECRETS_DIR.set(dir);
}

fn env_value(connection: &Connection, name: &str, var: &str) -> Result<Value, String> {
    std::env::var(var).map(Value::String).map_err(|_| {
        format!(
            "connection `{}`: setting `{name}` reads the environment variable `{var}`, which is not set",
            connection.name
        )
    })
}

/// Resolves a connection's settings: `env(NAME)` reads the process environment,
/// `secret(NAME)` the secret store (the environment, or files when the deployment says so).
pub fn settings(connection: &Connection) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for (name, value) in &connection.settings {
        let resolved = match value {
            SettingValue::Value(v) => v.clone(),
            SettingValue::Env(var) => env_value(connection, name, var)?,
            SettingValue::Secret(var) => match SECRETS_DIR.get() {
                Some(dir) => {
                    let path = dir.join(var);
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        format!(
                            "connection `{}`: setting `{name}` reads the secret file `{}`: {e}",
                            connection.name,
                            path.display()
                        )
                    })?;
                    Value::String(text.trim_end_matches(['\r', '\n']).to_string())
                }
                None => env_value(connection, name, var)?,
            },
        };
        out.insert(name.clone(), resolved);
    }
    Ok(out)
}

/// Resolved settings or options of a connection or node.
type Map = BTreeMap<String, Value>;
/// Builds a sink: the connection, its resolved settings, the operation and the sink's options.
type SinkBuild = fn(&Connection, &Map, &str, &Map) -> Result<Box<dyn SinkConnector>, String>;
/// Builds a pager: the resolved settings and the source's options.
type PollBuild = fn(&Map, &Map) -> Result<Box<dyn Pager>, String>;

fn boxed<T: SinkConnector + 'static>(
    sink: Result<T, String>,
) -> Result<Box<dyn SinkConnector>, String> {
    Ok(Box::new(sink?))
}

fn paged<T: Pager + 'static>(pager: Result<T, String>) -> Result<Box<dyn Pager>, String> {
    Ok(Box::new(pager?))
}

fn tryton_sink(s: &Map, op: tryton::Operation) -> Result<Box<dyn SinkConnector>, String> {
    boxed(tryton::TrytonSink::new(s, op))
}

fn odata_sink(s: &Map, op: odata::Operation, o: &Map) -> Result<Box<dyn SinkConnector>, String> {
    boxed(odata::ODataSink::new(s, op, o))
}

/// Every sink operation this runtime runs: (connector, operation, builder).
static SINKS: &[(&str, &str, SinkBuild)] = &[
    ("http", "post", |_, s, op, o| {
        boxed(http::HttpSink::new(s, op, o))
    }),
    ("http", "put", |_, s, op, o| {
        boxed(http::HttpSink::new(s, op, o))
    }),
    ("http", "patch", |_, s, op, o| {
        boxed(http::HttpSink::new(s, op, o))
    }),
    ("file", "write", |_, s, _, o| {
        boxed(file::FileSink::new(s, o))
    }),
    ("amazon_sp", "confirm_shipment", |_, s, _, _| {
        boxed(amazon::ConfirmShipment::new(s))
    }),
    ("amazon_sp", "update_listing_quantity", |_, s, _, _| {
        boxed(amazon::UpdateListingQuantity::new(s))
    }),
    ("amazon_sp", "update_listing_price", |_, s, _, _| {
        boxed(amazon::UpdateListingPrice::new(s))
    }),
    ("shopify", "create_fulfillment", |_, s, _, _| {
        boxed(shopify::CreateFulfillment::new(s))
    }),
    ("shopify", "set_inventory_level", |_, s, _, _| {
        boxed(shopify::SetInventoryLevel::new(s))
    }),
    ("shopify", "update_product", |_, s, _, _| {
        boxed(shopify::catalog::UpdateProduct::new(s))
    }),
    ("shopify", "update_price", |_, s, _, _| {
        boxed(shopify::catalog::UpdatePrice::new(s))
    }),
    ("square", "adjust_inventory", |_, s, _, _| {
        boxed(square::ChangeInventory::new(s, false))
    }),
    ("square", "set_inventory_count", |_, s, _, _| {
        boxed(square::ChangeInventory::new(s, true))
    }),
    ("square", "update_price", |_, s, _, _| {
        boxed(square::catalog::UpdatePrice::new(s))
    }),
    ("shipbob", "create_order", |_, s, _, _| {
        boxed(shipbob::CreateOrder::new(s))
    }),
    ("tryton", "create_sale", |_, s, _, _| {
        tryton_sink(s, tryton::Operation::CreateSale)
    }),
    ("tryton", "record_shipment", |_, s, _, _| {
        tryton_sink(s, tryton::Operation::RecordShipment)
    }),
    ("tryton", "record_invoice", |_, s, _, _| {
        tryton_sink(s, tryton::Operation::RecordInvoice)
    }),
    ("tryton", "create_party", |_, s, _, _| {
        tryton_sink(s, tryton::Operation::CreateParty)
    }),
    ("tryton", "adjust_stock", |_, s, _, _| {
        tryton_sink(s, tryton::Operation::AdjustStock)
    }),
    ("odata", "create_sale", |_, s, _, o| {
        odata_sink(s, odata::Operation::CreateSale, o)
    }),
    ("odata", "record_shipment", |_, s, _, o| {
        odata_sink(s, odata::Operation::RecordShipment, o)
    }),
    ("odata", "record_invoice", |_, s, _, o| {
        odata_sink(s, odata::Operation::RecordInvoice, o)
    }),
    ("odata", "adjust_stock", |_, s, _, o| {
        odata_sink(s, odata::Operation::AdjustStock, o)
    }),
    ("odata", "update_entity", |_, s, _, o| {
        odata_sink(s, odata::Operation::UpdateEntity, o)
    }),
];

/// Every poll (and `every`-scheduled) source this runtime runs: (connector, operation, builder).
static POLLS: &[(&str, &str, PollBuild)] = &[
    ("http", "get", |s, o| paged(http::HttpGetPager::new(s, o))),
    ("amazon_sp", "orders", |s, o| {
        paged(amazon::OrdersPager::new(s, o))
    }),
    ("amazon_sp", "settlements", |s, o| {
        paged(amazon_reports::SettlementsPager::new(s, o))
    }),
    ("shopify", "orders", |s, o| {
        paged(shopify::OrdersPager::new(s, o))
    }),
    ("square", "orders", |s, o| {
        paged(square::OrdersPager::new(s, o))
    }),
    ("square", "inventory_counts", |s, o| {
        paged(square::CountsPager::new(s, o))
    }),
    ("tryton", "stock_quantities", |s, _| {
        paged(tryton::StockPager::new(s))
    }),
    ("shipbob", "inventory", |s, o| {
        paged(shipbob::Listing::new(s, o).map(shipbob::InventoryPager))
    }),
    ("shipbob", "shipments", |s, o| {
        paged(shipbob::Listing::new(s, o).map(shipbob::ShipmentsPager))
    }),
    ("odata", "entities", |s, o| {
        paged(odata::EntitiesPager::new(s, o))
    }),
    ("odata", "stock", |s, o| paged(odata::StockPager::new(s, o))),
];

/// Connectors whose deliveries the webhook server verifies (`signatures::Verifier`).
const WEBHOOK_CONNECTORS: &[&str] = &["shopify", "square", "shipbob", "webhook"];

/// True when this runtime runs `connector.operation` as declared: `kind` is `sink` for a
/// sink, else the source's kind (`poll`, `schedule`, `webhook`, `bus`, `file`).
pub fn implements(connector: &str, operation: &str, kind: &str) -> bool {
    match kind {
        "sink" => SINKS
            .iter()
            .any(|(c, op, _)| *c == connector && *op == operation),
        "poll" | "schedule" => POLLS
            .iter()
            .any(|(c, op, _)| *c == connector && *op == operation),
        "webhook" => WEBHOOK_CONNECTORS.contains(&connector),
        "file" => connector == "file",
        _ => false,
    }
}

/// Builds the sink connector for an operation.
pub fn sink(
    connection: &Connection,
    operation: &str,
    options: &BTreeMap<String, Value>,
) -> Result<Box<dyn SinkConnector>, String> {
    let connector = connection.connector.as_str();
    let Some((_, _, build)) = SINKS
        .iter()
        .find(|(c, op, _)| *c == connector && *op == operation)
    else {
        return Err(format!(
            "connection `{}`: the `{connector}.{operation}` operation is not available in this runtime yet",
            connection.name
        ));
    };
    build(connection, &settings(connection)?, operation, options)
}

/// Builds the pager of a poll source.
pub fn pager(
    connector: &str,
    operation: &str,
    settings: &BTreeMap<String, Value>,
    options: &BTreeMap<String, Value>,
) -> Result<Box<dyn Pager>, String> {
    match POLLS
        .iter()
        .find(|(c, op, _)| *c == connector && *op == operation)
    {
        Some((_, _, build)) => build(settings, options),
        None => Err(format!(
            "the `{connector}.{operation}` poll source is not available in this runtime yet"
        )),
    }
}

pub use file::{matching_files, read_lines};
