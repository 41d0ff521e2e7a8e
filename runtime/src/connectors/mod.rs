//! Built-in connectors at run time. A connector only classifies each call's outcome
//! (ok, transient with an optional retry-after, permanent with a reason); retries, limits,
//! idempotency and dead letters stay in `delivery/`.

pub mod amazon;
pub mod amazon_reports;
pub mod bus;
pub mod client;
mod file;
pub mod http;
pub mod nats;
pub mod odata;
pub mod shipbob;
pub mod shopify;
pub mod signatures;
pub mod square;
pub mod transport;
pub mod tryton;

use omniflow_compiler::ir::{Connection, SettingValue};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How one call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    Ok,
    /// Worth retrying; `class` is `timeout`, `connect`, `rate_limited`, `server_error`
    /// or a named connector error.
    Transient {
        class: String,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help; the reason goes to the dead letter.
    Permanent {
        reason: String,
    },
}

/// One outbound call of a sink.
pub struct Call<'a> {
    pub key: &'a str,
    pub correlation_id: &'a str,
    pub body: &'a [u8],
    pub timeout: Duration,
}

/// A boxed future, as connectors return them.
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = CallOutcome> + 'a>>;

/// A sink operation of a connector.
pub trait SinkConnector {
    /// Performs the side effect for one message.
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a>;

    /// How long the system asks its callers to hold back now, read from the rate-limit
    /// headers of its latest answer (Shopify's call-limit bucket nearly full, say).
    fn backoff(&self) -> Option<Duration> {
        None
    }
}

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

/// Builds the sink connector for an operation.
pub fn sink(
    connection: &Connection,
    operation: &str,
    options: &BTreeMap<String, Value>,
) -> Result<Box<dyn SinkConnector>, String> {
    if connection.connector == "ledger" {
        return Ok(Box::new(crate::ledger::sink::LedgerSink::new(
            &connection.name,
            operation,
            options,
        )?));
    }
    let settings = settings(connection)?;
    match (connection.connector.as_str(), operation) {
        ("http", "post" | "put" | "patch") => Ok(Box::new(http::HttpSink::new(&settings, operation, options)?)),
        ("file", "write") => Ok(Box::new(file::FileSink::new(&settings, options)?)),
        ("bus", "publish") if bus::on_nats(&settings) => Ok(Box::new(nats::Publish::new(&settings, options)?)),
        ("bus", "publish") => Ok(Box::new(bus::Publish::new(&settings, options)?)),
        ("amazon_sp", "confirm_shipment") => Ok(Box::new(amazon::ConfirmShipment::new(&settings)?)),
        ("amazon_sp", "update_listing_quantity") => Ok(Box::new(amazon::UpdateListingQuantity::new(&settings)?)),
        ("shopify", "create_fulfillment") => Ok(Box::new(shopify::CreateFulfillment::new(&settings)?)),
        ("shopify", "set_inventory_level") => Ok(Box::new(shopify::SetInventoryLevel::new(&settings)?)),
        ("square", "adjust_inventory") => Ok(Box::new(square::ChangeInventory::new(&settings, false)?)),
        ("square", "set_inventory_count") => Ok(Box::new(square::ChangeInventory::new(&settings, true)?)),
        ("shipbob", "create_order") => Ok(Box::new(shipbob::CreateOrder::new(&settings)?)),
        ("tryton", "create_sale") => Ok(Box::new(tryton::TrytonSink::new(&settings, tryton::Operation::CreateSale)?)),
        ("tryton", "record_shipment") => Ok(Box::new(tryton::TrytonSink::new(&settings, tryton::Operation::RecordShipment)?)),
        ("tryton", "create_party") => Ok(Box::new(tryton::TrytonSink::new(&settings, tryton::Operation::CreateParty)?)),
        ("tryton", "adjust_stock") => Ok(Box::new(tryton::TrytonSink::new(&settings, tryton::Operation::AdjustStock)?)),
        ("odata", op) => {
            let operation = match op {
                "create_sale" => odata::Operation::CreateSale,
                "record_shipment" => odata::Operation::RecordShipment,
                "record_invoice" => odata::Operation::RecordInvoice,
                "adjust_stock" => odata::Operation::AdjustStock,
                "update_entity" => odata::Operation::UpdateEntity,
                _ => return Err(format!("connection `{}`: odata has no operation `{op}`", connection.name)),
            };
            Ok(Box::new(odata::ODataSink::new(&settings, operation, options)?))
        }
        (connector, op) => Err(format!(
            "connection `{}`: the `{connector}.{op}` operation is not available in this runtime yet",
            connection.name
        )),
    }
}

/// Builds the pager of a poll source.
pub fn pager(
    connector: &str,
    operation: &str,
    settings: &BTreeMap<String, Value>,
    options: &BTreeMap<String, Value>,
) -> Result<Box<dyn crate::sources::poll::Pager>, String> {
    match (connector, operation) {
        ("http", "get") => Ok(Box::new(crate::sources::poll::HttpGetPager::new(
            settings, options,
        )?)),
        ("amazon_sp", "orders") => Ok(Box::new(amazon::OrdersPager::new(settings, options)?)),
        ("amazon_sp", "settlements") => Ok(Box::new(amazon_reports::SettlementsPager::new(
            settings, options,
        )?)),
        ("shopify", "orders") => Ok(Box::new(shopify::OrdersPager::new(settings, options)?)),
        ("square", "orders") => Ok(Box::new(square::OrdersPager::new(settings, options)?)),
        ("square", "inventory_counts") => {
            Ok(Box::new(square::CountsPager::new(settings, options)?))
        }
        ("tryton", "stock_quantities") => Ok(Box::new(tryton::StockPager::new(settings)?)),
        ("shipbob", "inventory") => Ok(Box::new(shipbob::InventoryPager(shipbob::Listing::new(
            settings, options,
        )?))),
        ("shipbob", "shipments") => Ok(Box::new(shipbob::ShipmentsPager(shipbob::Listing::new(
            settings, options,
        )?))),
        ("odata", "entities") => Ok(Box::new(odata::EntitiesPager::new(settings, options)?)),
        (connector, op) => Err(format!(
            "the `{connector}.{op}` poll source is not available in this runtime yet"
        )),
    }
}

pub use file::{matching_files, read_lines};
