//! `omniflow inventory show SKU`: a sku's stock per location (on-hand, reserved, held by
//! orders, in transit, free) and, per channel, its available-to-sell and what the channel
//! was last told and when, read from the state store. `omniflow inventory drift`: the
//! ledger's on-hand against the ERP's stock quantities.

use omniflow_engine::ledger::book::{Book, Snapshot};
use omniflow_engine::ledger::drift;
use omniflow_engine::ledger::rules::Rules;
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

/// The ledger's book as stored, with its declaration.
fn stored_book(backend: &mut dyn state::Backend, name: &str) -> Result<Option<Book>, String> {
    let mut journal = backend.journal(name)?;
    let snapshot = journal.load()?;
    let Some(text) = snapshot.rules else {
        return Ok(None);
    };
    let declared: ir::Ledger = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut book = Book::new(Rules::new(&declared)?);
    book.load(journal.as_mut())?;
    Ok(Some(book))
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
        stored_book(backend, &name)?.ok_or(format!(
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
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
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

fn time(ms: Option<i64>) -> Value {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
        .unwrap_or(Value::Null)
}

/// The sku's rows in one ledger, as JSON.
fn report(ledger: &str, sku: &str, snapshot: Snapshot, book: Option<&Book>) -> Value {
    let holds: Vec<_> = snapshot.holds.iter().filter(|h| h.sku == sku).collect();
    let locations: Vec<Value> = snapshot
        .positions
        .iter()
        .filter(|(s, _, _)| s == sku)
        .map(|(_, location, p)| {
            let held: i64 = holds
                .iter()
                .filter(|h| &h.location == location)
                .map(|h| h.quantity)
                .sum();
            json!({
                "location": location,
                "on_hand": p.on_hand,
                "reserved": p.reserved,
                "held": held,
                "in_transit": p.in_transit,
                "free": (p.on_hand - p.reserved - held).max(0),
            })
        })
        .collect();
    let channels: Vec<Value> = match book {
        Some(book) => book
            .rules
            .channels
            .iter()
            .enumerate()
            .map(|(idx, channel)| {
                let told = book.publication(idx, sku);
                json!({
                    "channel": channel.spec.name,
                    "ats": book.ats(idx, sku),
                    "published": told.and_then(|p| p.published),
                    "published_at": time(told.and_then(|p| p.published_at)),
                })
            })
            .collect(),
        // Stored by a runtime that predates the stored declaration: what was told only.
        None => snapshot
            .publications
            .iter()
            .filter(|(_, s, _)| s == sku)
            .map(|(channel, _, p)| {
                json!({
                    "channel": channel,
                    "ats": Value::Null,
                    "published": p.published,
                    "published_at": time(p.published_at),
                })
            })
            .collect(),
    };
    let orders: std::collections::BTreeSet<&str> = holds.iter().map(|h| h.order.as_str()).collect();
    json!({
        "ledger": ledger,
        "sku": sku,
        "locations": locations,
        "channels": channels,
        "held_orders": orders.len(),
        "held_units": holds.iter().filter(|h| !h.location.is_empty()).map(|h| h.quantity).sum::<i64>(),
        "backordered_units": holds.iter().filter(|h| h.location.is_empty()).map(|h| h.quantity).sum::<i64>(),
    })
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
    let reports = store.call_blocking(move |backend| {
        let mut out = Vec::new();
        for name in backend.ledger_names()? {
            let snapshot = backend.journal(&name)?.load()?;
            let known = snapshot.positions.iter().any(|(s, _, _)| *s == wanted)
                || snapshot.publications.iter().any(|(_, s, _)| *s == wanted);
            if !known {
                continue;
            }
            // The declaration the runtime stored gives what each channel is offered now.
            let book = stored_book(backend, &name)?;
            out.push(report(&name, &wanted, snapshot, book.as_ref()));
        }
        Ok(out)
    });
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
