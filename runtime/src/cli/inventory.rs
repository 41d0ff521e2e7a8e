//! `omniflow inventory show SKU`: a sku's stock per location (on-hand, reserved, held by
//! orders, in transit, free) and, per channel, its available-to-sell and what the channel
//! was last told and when, read from the state store. `omniflow inventory drift`: the
//! ledger's on-hand against the ERP's stock quantities.

use omniflow_engine::ledger::{drift, report};
use omniflow_ir as ir;
use omniflow_state as state;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct Args {
    /// State backend: sqlite:PATH or postgres://USER@HOST[:PORT]/DATABASE.
    #[arg(long, default_value = "sqlite:omniflow.db", global = true)]
    state: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// One sku in every ledger.
    Show {
        sku: String,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Compare the ledger's on-hand with the ERP's stock (Tryton) at one location; exit 1
    /// when they differ.
    Drift {
        /// The flows declaring the ERP connection.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
        /// The ERP connection (a `tryton` connection).
        #[arg(long, default_value = "erp")]
        connection: String,
        /// The ledger location the ERP warehouse is (default: the `locations` table's
        /// `tryton:WAREHOUSE` entry).
        #[arg(long)]
        location: Option<String>,
        /// The ledger (default: the only one the state holds).
        #[arg(long)]
        ledger: Option<String>,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
}

fn drift(
    store: &state::Store,
    paths: &[std::path::PathBuf],
    connection: &str,
    location: Option<String>,
    ledger: Option<String>,
    json: bool,
) -> u8 {
    let graph = match omniflow_runtime::load::load_graph(paths) {
        Ok(g) => g,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let Some(erp) = graph.connections.iter().find(|c| c.name == connection) else {
        eprintln!("error: the flows declare no connection `{connection}`");
        return 2;
    };
    let location = location.or_else(|| {
        let warehouse = match erp.settings.get("warehouse") {
            Some(ir::SettingValue::Value(Value::String(w))) => w.clone(),
            Some(ir::SettingValue::Env(var)) => std::env::var(var).unwrap_or_default(),
            _ => "WH".into(),
        };
        graph
            .table("locations")
            .and_then(|t| t.entries.get(&format!("tryton:{warehouse}")))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let Some(location) = location else {
        eprintln!("error: give --location: the ledger location of the ERP warehouse");
        return 2;
    };
    let books = store.call_blocking(move |backend| {
        let names = backend.ledger_names()?;
        let name = match ledger {
            Some(name) => name,
            None if names.len() == 1 => names[0].clone(),
            None => {
                return Err(format!(
                    "give --ledger: the state holds {}",
                    names.join(", ")
                ))
            }
        };
        report::stored_book(backend, &name)?.ok_or(format!(
            "ledger `{name}` has no stored declaration; run it once first"
        ))
    });
    let book = match books {
        Ok(b) => b,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let Some(rt) = super::current_thread_runtime() else {
        return 2;
    };
    let stock = match rt.block_on(drift::erp_stock(erp)) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("error: reading the ERP's stock: {err}");
            return 2;
        }
    };
    let rows = match drift::compare(&book, &location, &stock) {
        Ok(rows) => rows,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    if json {
        println!(
            "{}",
            json!({"location": location, "erp_skus": stock.len(), "drift": rows})
        );
    } else {
        println!(
            "ledger `{}` against `{connection}` at {location}: {} skus in the ERP, {} differ",
            book.rules.name,
            stock.len(),
            rows.len()
        );
        if !rows.is_empty() {
            println!(
                "  {:<16} {:>8} {:>8} {:>8}",
                "sku", "ledger", "erp", "drift"
            );
            for r in &rows {
                println!(
                    "  {:<16} {:>8} {:>8} {:>+8}",
                    r.sku,
                    r.ledger,
                    r.erp,
                    r.ledger - r.erp
                );
            }
        }
    }
    u8::from(!rows.is_empty())
}

fn print(report: &Value) {
    let num = |v: &Value, k: &str| v[k].as_i64().unwrap_or(0);
    println!(
        "{} in ledger {}",
        report["sku"].as_str().unwrap_or(""),
        report["ledger"].as_str().unwrap_or("")
    );
    println!(
        "  {:<18} {:>8} {:>9} {:>6} {:>11} {:>6}",
        "location", "on hand", "reserved", "held", "in transit", "free"
    );
    for l in report["locations"].as_array().into_iter().flatten() {
        println!(
            "  {:<18} {:>8} {:>9} {:>6} {:>11} {:>6}",
            l["location"].as_str().unwrap_or(""),
            num(l, "on_hand"),
            num(l, "reserved"),
            num(l, "held"),
            num(l, "in_transit"),
            num(l, "free"),
        );
    }
    println!(
        "  {:<18} {:>8} {:>9}  published at",
        "channel", "ATS", "published"
    );
    for c in report["channels"].as_array().into_iter().flatten() {
        let published = c["published"]
            .as_i64()
            .map_or("-".to_string(), |v| v.to_string());
        let ats = c["ats"].as_i64().map_or("?".to_string(), |v| v.to_string());
        println!(
            "  {:<18} {:>8} {:>9}  {}",
            c["channel"].as_str().unwrap_or(""),
            ats,
            published,
            c["published_at"].as_str().unwrap_or("never"),
        );
    }
    println!(
        "  {} units held by {} orders, {} backordered",
        num(report, "held_units"),
        num(report, "held_orders"),
        num(report, "backordered_units")
    );
}

pub fn run(args: Args) -> u8 {
    let store = match state::open_for_reading(&args.state) {
        Ok(backend) => state::Store::start(backend),
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let (sku, json) = match args.command {
        Command::Show { sku, json } => (sku, json),
        Command::Drift {
            paths,
            connection,
            location,
            ledger,
            json,
        } => return drift(&store, &paths, &connection, location, ledger, json),
    };
    let wanted = sku.clone();
    let reports = store.call_blocking(move |backend| report::sku(backend, &wanted));
    match reports {
        Ok(reports) if reports.is_empty() => {
            eprintln!("error: no ledger holds sku {sku}");
            1
        }
        Ok(reports) => {
            if json {
                println!("{}", Value::Array(reports));
            } else {
                for r in &reports {
                    print(r);
                }
            }
            0
        }
        Err(err) => {
            eprintln!("error: {err}");
            2
        }
    }
}
