//! `omniflow inventory show SKU`: a sku's stock per location (on-hand, reserved, held by
//! orders, in transit, free) and, per channel, its available-to-sell and what the channel
//! was last told and when, read from the state store.

use omniflow_compiler::ir;
use omniflow_runtime::ledger::book::{Book, Snapshot};
use omniflow_runtime::ledger::rules::Rules;
use omniflow_runtime::state;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct Args {
    /// State backend.
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
                    "channel": channel.name,
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
    let store = match state::open(&args.state) {
        Ok(backend) => state::Store::start(backend),
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let Command::Show { sku, json } = args.command;
    let wanted = sku.clone();
    let reports = store.call_blocking(move |backend| {
        let mut out = Vec::new();
        for name in backend.ledger_names()? {
            let mut journal = backend.journal(&name)?;
            let snapshot = journal.load()?;
            let known = snapshot.positions.iter().any(|(s, _, _)| *s == wanted)
                || snapshot.publications.iter().any(|(_, s, _)| *s == wanted);
            if !known {
                continue;
            }
            // The declaration the runtime stored gives what each channel is offered now.
            let book = match snapshot
                .rules
                .as_deref()
                .and_then(|text| serde_json::from_str::<ir::Ledger>(text).ok())
                .map(|declared| Rules::new(&declared))
            {
                Some(Ok(rules)) => {
                    let mut book = Book::new(rules);
                    book.load(journal.as_mut())?;
                    Some(book)
                }
                _ => None,
            };
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
