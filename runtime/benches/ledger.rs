//! The inventory ledger on one core: (a) movements applied durably per second through the
//! state store (group commit, SQLite WAL, synchronous=FULL), as a ratio to a baseline of
//! plain batched SQLite inserts of the same rows measured in the same run; (b)
//! movement-to-publication lag p50/p99 with an unlimited channel on localhost.
//! Run: `cargo bench -p omniflow-runtime --bench ledger -- [MOVEMENTS] [LAG_SECONDS]`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

#[path = "../tests/support/http_read.rs"]
mod http_read;

use omniflow_engine::ledger::book::{Kind, Movement};
use omniflow_engine::ledger::Ledger;
use omniflow_engine::ops::metrics::Metrics;
use omniflow_state::{SqliteBackend, Store};
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SKUS: usize = 1_000;
/// Movements handed to the ledger before the first is answered (a source's page, a bus
/// batch).
const IN_FLIGHT: usize = 8192;
const LOCATIONS: [&str; 4] = ["WH-MAIN", "STORE-1", "STORE-2", "3PL-1"];

fn flow(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("ledger.flow");
    std::fs::write(
        &path,
        format!(
            r#"use std.connectors.{{http}}
connection channel_api = http {{ base_url = "http://127.0.0.1:{port}" }}
ledger stock {{
  locations = ["WH-MAIN", "STORE-1", "STORE-2", "3PL-1"]
  channel web {{ locations = ["WH-MAIN", "STORE-1", "STORE-2"], share = 60%, publish = channel_api.post }}
  channel marketplace {{ locations = ["WH-MAIN", "3PL-1"], share = 40% }}
  channel pos {{ locations = ["STORE-1", "STORE-2"], share = 40% }}
}}
ledger bulk {{
  locations = ["WH-MAIN", "STORE-1", "STORE-2", "3PL-1"]
  channel web {{ locations = ["WH-MAIN", "STORE-1", "STORE-2"], share = 60% }}
  channel marketplace {{ locations = ["WH-MAIN", "3PL-1"], share = 40% }}
  channel pos {{ locations = ["STORE-1", "STORE-2"], share = 40% }}
}}
"#
        ),
    )
    .unwrap();
    path
}

fn movement(n: usize) -> Movement {
    let kind = match n % 5 {
        0 | 1 => Kind::Receipt,
        2 | 3 => Kind::Sale,
        _ => Kind::Return,
    };
    Movement {
        id: format!("m-{n:08}"),
        kind,
        sku: format!("SKU-{:05}", n % SKUS),
        location: LOCATIONS[n % LOCATIONS.len()].to_string(),
        quantity: 1 + (n % 7) as i64,
        counterpart: None,
        reference: None,
        at: 1_700_000_000_000 + n as i64,
    }
}

/// A channel endpoint that stamps each body's arrival.
fn channel(epoch: Instant, arrivals: Arc<Mutex<Vec<(String, i64, Duration)>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let arrivals = arrivals.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                while let Some(request) = http_read::read_request(&mut reader) {
                    let body = request.body;
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    arrivals.lock().unwrap().push((
                        v["sku"].as_str().unwrap().to_string(),
                        v["available"].as_i64().unwrap(),
                        epoch.elapsed(),
                    ));
                    let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
                }
            });
        }
    });
    port
}

/// Plain SQLite: the same movement rows inserted in batches of the same size.
fn baseline(path: &std::path::Path, n: usize, batch: usize) -> f64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE m (ledger TEXT, id TEXT, kind TEXT, sku TEXT, location TEXT, at INTEGER, delta INTEGER, PRIMARY KEY (ledger, id)) WITHOUT ROWID;
         CREATE TABLE p (ledger TEXT, sku TEXT, location TEXT, on_hand INTEGER, PRIMARY KEY (ledger, sku, location)) WITHOUT ROWID;",
    )
    .unwrap();
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(batch) {
        conn.execute_batch("BEGIN").unwrap();
        for &i in chunk {
            let m = movement(i);
            conn.prepare_cached("INSERT OR IGNORE INTO m VALUES ('stock', ?1, ?2, ?3, ?4, ?5, ?6)")
                .unwrap()
                .execute(rusqlite::params![
                    m.id,
                    m.kind.as_str(),
                    m.sku,
                    m.location,
                    m.at,
                    m.quantity
                ])
                .unwrap();
            conn.prepare_cached("INSERT OR REPLACE INTO p VALUES ('stock', ?1, ?2, ?3)")
                .unwrap()
                .execute(rusqlite::params![m.sku, m.location, m.quantity])
                .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(200_000);
    let lag_secs = args.get(1).copied().unwrap_or(10);
    let dir = std::env::temp_dir().join(format!("omniflow-ledger-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let epoch = Instant::now();
    let arrivals: Arc<Mutex<Vec<(String, i64, Duration)>>> = Arc::default();
    let port = channel(epoch, arrivals.clone());
    let graph = omniflow_runtime::load::load_graph(&[flow(&dir, port)]).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let (throughput, lags, superseded) = local.block_on(&rt, async {
        let backend = SqliteBackend::open(dir.join("state.db").to_str().unwrap()).unwrap();
        let store = Store::start(Box::new(backend));
        let metrics = Rc::new(Metrics::default());
        let shared = omniflow_engine::shared::Shared::new(
            &graph,
            std::rc::Rc::default(),
            std::rc::Rc::default(),
            None,
            false,
        );
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let build_sink =
            |connection: &omniflow_ir::Connection,
             operation: &str,
             options: &std::collections::BTreeMap<String, serde_json::Value>| {
                omniflow_engine::connect::sink_in(&shared, connection, operation, options)
            };
        let ledgers = omniflow_engine::ledger::start(
            &graph,
            &store,
            &metrics,
            (&shared.ledgers, &shared.limits, &shared.membership),
            &build_sink,
            &stop,
        )
        .await
        .unwrap();
        let by_name =
            |name: &str| -> Rc<Ledger> { ledgers.iter().find(|l| l.name == name).unwrap().clone() };
        // (a) throughput, on a ledger whose channels compute ATS but publish nowhere (the
        // publication calls would share the one core): IN_FLIGHT movements outstanding.
        let ledger = by_name("bulk");
        let in_flight = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let started = Instant::now();
        for i in 0..n {
            let permit = in_flight.clone().acquire_owned().await.unwrap();
            let ledger = ledger.clone();
            tokio::task::spawn_local(async move {
                ledger.apply(movement(i)).await.unwrap();
                drop(permit);
            });
        }
        let _ = in_flight.acquire_many(IN_FLIGHT as u32).await.unwrap();
        let throughput = n as f64 / started.elapsed().as_secs_f64();
        // Let the publisher catch up before the lag run.
        tokio::time::sleep(Duration::from_secs(3)).await;
        arrivals.lock().unwrap().clear();

        // (b) lag: 1,000 movements a second, one at a time, each time read back.
        let ledger = by_name("stock");
        let mut applied: Vec<(String, i64, Duration)> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let lag_n = lag_secs * 1000;
        for i in 0..lag_n {
            tick.tick().await;
            let m = movement(n + i);
            let sku = m.sku.clone();
            let sent = epoch.elapsed();
            ledger.apply(m).await.unwrap();
            let ats = ledger.with_book(|b| b.ats(0, &sku));
            applied.push((sku, ats, sent));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let arrivals = arrivals.lock().unwrap().clone();
        let mut by_sku: HashMap<&str, Vec<(i64, Duration)>> = HashMap::new();
        for (sku, value, at) in &arrivals {
            by_sku.entry(sku).or_default().push((*value, *at));
        }
        let mut lags = Vec::new();
        let mut superseded = 0;
        for (idx, (sku, ats, at)) in applied.iter().enumerate() {
            let next_change = applied[idx + 1..]
                .iter()
                .find(|(s, _, _)| s == sku)
                .map(|(_, _, t)| *t);
            let told = by_sku
                .get(sku.as_str())
                .and_then(|list| list.iter().find(|(v, t)| t >= at && v == ats));
            match (told, next_change) {
                (Some((_, t)), Some(next)) if *t > next => superseded += 1,
                (Some((_, t)), _) => lags.push((*t - *at).as_secs_f64() * 1000.0),
                (None, _) => superseded += 1,
            }
        }
        lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (throughput, lags, superseded)
    });
    let base = baseline(&dir.join("baseline.db"), n, IN_FLIGHT);
    println!("movements applied durably: {n}, {IN_FLIGHT} outstanding");
    println!("  ledger    {throughput:>10.0} movements/s");
    println!("  baseline  {base:>10.0} rows/s (plain batched SQLite inserts, same rows)");
    println!("  ratio     {:>10.2}x of baseline", throughput / base);
    println!(
        "movement-to-publication lag, unlimited channel on localhost ({} movements; {} left the channel's value unchanged or were overtaken by a newer one):",
        lags.len() + superseded,
        superseded
    );
    println!(
        "  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(f64::NAN)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
