//! `omniflow demo`: a retail day on this machine with no setup. The sandbox serves the
//! channels, the warehouse and an OData ERP; the reference flows run on a fresh embedded
//! state; a script drives marketplace and storefront orders, POS sales, a warehouse
//! shipment, a store return, an unknown SKU, duplicate webhook deliveries and an ERP
//! outage, and a list price change in the product master; the summary shows what each
//! system received and reconciles what the channels sold with what the ERP holds. Exit 0
//! only when every channel order is in the ERP once, or held, or a dead letter with the
//! expected reason, and the ERP holds nothing else.

mod erp;
mod flash;
mod prices;
mod script;
mod setup;
mod summary;

use omniflow_engine::runner::Runner;
use omniflow_http::server::{self, Handler, Resp};
use omniflow_mapping::pipeline::Pipeline;
use omniflow_runtime::load::load_graph;
use omniflow_sandbox::{self as sandbox, SandboxConfig};
use omniflow_state as state;
use script::{ChannelOrder, Driver, Expect};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The reference flows.
    #[arg(long, default_value = "flows")]
    flows: PathBuf,
    /// The ERP: the sandbox's OData sales-order service; a real Tryton named by
    /// TRYTON_URL, TRYTON_DATABASE, TRYTON_USER and TRYTON_PASSWORD; or a real OData v4
    /// sales-order service named by ODATA_SERVICE_URL, ODATA_USER and ODATA_PASSWORD.
    #[arg(long, value_enum, default_value = "sandbox")]
    with_erp: Erp,
    /// Length of the ERP outage, in seconds.
    #[arg(long, default_value_t = 30)]
    outage: u64,
    /// Seed of the sandbox's data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Use a sandbox already running at this URL (`omniflow sandbox`) instead of starting
    /// one, so its `/_sandbox/stats` can be read after the day.
    #[arg(long)]
    sandbox: Option<String>,
    /// Serve /metrics here while the day runs.
    #[arg(long)]
    ops_addr: Option<String>,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Erp {
    Sandbox,
    Tryton,
    Odata,
}

fn env(var: &str, erp: &str) -> Result<String, String> {
    std::env::var(var).map_err(|_| format!("--with-erp {erp} needs {var}"))
}

/// Longest wait for the flows to settle once the script is done.
const SETTLE: Duration = Duration::from_secs(75);

pub fn run(args: Args) -> u8 {
    if std::env::var("OMNIFLOW_LOG").is_err() {
        std::env::set_var("OMNIFLOW_LOG", "error");
    }
    super::init_logging(super::LogFormat::Text);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return 2;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        match day(args).await {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(err) => {
                eprintln!("error: {err}");
                2
            }
        }
    })
}

/// A back office (review desk, finance) that accepts every POST and remembers its path.
async fn back_office() -> Result<(String, Rc<RefCell<Vec<String>>>), String> {
    let received = Rc::new(RefCell::new(Vec::new()));
    let log = received.clone();
    let handler: Handler = Rc::new(move |req| {
        log.borrow_mut().push(req.path.clone());
        Box::pin(async move { Resp::json(201, serde_json::json!({"accepted": true})) })
    });
    let addr = server::serve("127.0.0.1:0", handler).await?;
    Ok((format!("http://{addr}"), received))
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

struct Clock(Instant);

impl Clock {
    fn say(&self, text: impl AsRef<str>) {
        let s = self.0.elapsed().as_secs();
        println!("[{:02}:{:02}] {}", s / 60, s % 60, text.as_ref());
    }
}

async fn day(args: Args) -> Result<bool, String> {
    let clock = Clock(Instant::now());
    let sandbox_url = match &args.sandbox {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let config = SandboxConfig {
                seed: args.seed,
                ..SandboxConfig::default()
            };
            format!("http://{}", sandbox::serve("127.0.0.1:0", config).await?)
        }
    };
    let (office_url, reviewed) = back_office().await?;
    let webhook_addr = format!("127.0.0.1:{}", free_port()?);
    let endpoints = setup::Endpoints {
        sandbox: sandbox_url.clone(),
        back_office: office_url,
        webhooks: format!("http://{webhook_addr}"),
        shipbob_secret: sandbox::shipbob::WEBHOOK_SECRET.to_string(),
    };
    for (name, value) in setup::environment(&endpoints) {
        std::env::set_var(name, value);
    }
    let erp_url = format!("{sandbox_url}/odata/v4/sales");
    let (reader, erp_service) = match args.with_erp {
        Erp::Sandbox => (
            erp::ErpReader::Sandbox {
                control: sandbox_url.clone(),
            },
            Some((
                erp_url.clone(),
                "connector".to_string(),
                "secret".to_string(),
            )),
        ),
        Erp::Odata => {
            let (service, user, password) = (
                env("ODATA_SERVICE_URL", "odata")?,
                env("ODATA_USER", "odata")?,
                env("ODATA_PASSWORD", "odata")?,
            );
            (
                erp::ErpReader::OData {
                    service: service.clone(),
                    user: user.clone(),
                    password: password.clone(),
                },
                Some((service, user, password)),
            )
        }
        Erp::Tryton => (
            {
                if std::env::var("TRYTON_WAREHOUSE").is_err() {
                    std::env::set_var("TRYTON_WAREHOUSE", "WH");
                }
                erp::ErpReader::Tryton {
                    url: env("TRYTON_URL", "tryton")?,
                    database: env("TRYTON_DATABASE", "tryton")?,
                    user: env("TRYTON_USER", "tryton")?,
                    password: env("TRYTON_PASSWORD", "tryton")?,
                }
            },
            None,
        ),
    };
    clock.say(format!(
        "sandbox of Shopify, Amazon SP-API, Square, ShipBob and an OData ERP on {sandbox_url}"
    ));

    let mut graph = load_graph(std::slice::from_ref(&args.flows))?;
    setup::adapt(&mut graph, erp_service.as_ref())?;
    let pipeline = Rc::new(Pipeline::new(graph)?);
    let state_path = std::env::temp_dir().join(format!("omniflow-demo-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", state_path.display()));
    }
    let store = state::Store::start(state::open(&format!("sqlite:{}", state_path.display()))?);
    let runner = Runner::start(pipeline.clone(), store.clone(), &webhook_addr).await?;
    if let Some(addr) = &args.ops_addr {
        let bound = server::serve(addr, runner.ops_handler()).await?;
        clock.say(format!("metrics on http://{bound}/metrics"));
    }
    clock.say(format!(
        "{} reference flows running on a fresh embedded state ({})",
        runner.flows.len(),
        state_path.display()
    ));

    let driver = Driver::new(&sandbox_url)?;
    driver.subscribe(&endpoints.webhooks).await?;
    let mut orders: Vec<ChannelOrder> = Vec::new();

    clock.say("morning: marketplace and storefront orders, POS sales");
    orders.push(
        driver
            .amazon_order(&[("TSHIRT-039-RED-M", 1)], "Amazon order", Expect::Erp)
            .await?,
    );
    orders.push(
        driver
            .amazon_order(
                &[("CBA_OTF_5", 2), ("SOCK-014-GRY-M", 1)],
                "Amazon order, two lines",
                Expect::Erp,
            )
            .await?,
    );
    orders.push(
        driver
            .amazon_order(
                &[("MUG-DISCONTINUED-01", 1)],
                "Amazon order, unknown SKU",
                Expect::DeadLetter("unknown SKU MUG-DISCONTINUED-01"),
            )
            .await?,
    );
    orders.push(
        driver
            .amazon_order(
                &[("JACKET-007-OLV-L", 12)],
                "Amazon bulk order (reseller?)",
                Expect::Review,
            )
            .await?,
    );
    orders.push(
        driver
            .shopify_order(&[("TSHIRT-036-BLK-XL", 1)], None, false, "storefront order")
            .await?,
    );
    orders.push(
        driver
            .shopify_order(
                &[("CAP-009-BLK-XL", 1)],
                Some("TSHIRT-039-RED-M"),
                false,
                "storefront order, store pickup",
            )
            .await?,
    );
    orders.push(
        driver
            .shopify_order(
                &[("BOTTLE-048-BLK-XS", 2)],
                None,
                true,
                "storefront order, webhook twice and late",
            )
            .await?,
    );
    for (variation, quantity) in [
        ("W62UWFY35CWMYGVWK6TWJDNI", 1),
        ("T9KC4M2ZQ8RW6BXN3HJ7VFLD", 3),
        ("HB3N6V2KD7PQ4XJ9TZ5RWLMC", 1),
    ] {
        driver.pos_sale(variation, quantity).await?;
    }
    let booked_before = orders.iter().filter(|o| o.expect == Expect::Erp).count();
    wait_for(
        &clock,
        &reader,
        &runner,
        booked_before,
        Duration::from_secs(30),
    )
    .await;

    let outage = if args.with_erp == Erp::Sandbox {
        args.outage
    } else {
        0
    };
    if outage > 0 {
        clock.say(format!(
            "ERP outage: the sales-order service answers 503 for {outage} s"
        ));
        driver.erp_outage(outage).await?;
    } else if args.with_erp != Erp::Sandbox {
        clock.say("(no ERP outage: only the sandbox's ERP can be taken down)");
    }
    let outage_ends = Instant::now() + Duration::from_secs(outage);
    orders.push(
        driver
            .amazon_order(
                &[("POSTER-034-NVY-XL", 1)],
                "Amazon order during the outage",
                Expect::Erp,
            )
            .await?,
    );
    orders.push(
        driver
            .shopify_order(
                &[("TSHIRT-035-GRY-L", 1)],
                None,
                false,
                "storefront order during the outage",
            )
            .await?,
    );
    orders.push(
        driver
            .shopify_order(
                &[("SOCK-014-GRY-M", 2)],
                None,
                true,
                "storefront order in the outage, twice and late",
            )
            .await?,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let first_shop = orders
        .iter()
        .find(|o| o.id.starts_with("shopify:"))
        .map(|o| o.id.clone())
        .unwrap_or_default();
    clock.say(format!(
        "a customer returns a tee of {first_shop} in the SoHo store"
    ));
    driver.store_return(&first_shop).await?;
    while Instant::now() < outage_ends {
        progress(&clock, &reader, &runner, Some(outage_ends)).await;
        tokio::time::sleep(
            Duration::from_secs(5).min(outage_ends.saturating_duration_since(Instant::now())),
        )
        .await;
    }
    clock.say("ERP back");
    clock.say(format!(
        "warehouse ships {first_shop} (its webhook arrives twice)"
    ));
    if !driver.ship(&first_shop, setup::SHIPBOB_TOKEN).await? {
        clock.say("the warehouse holds no order for it yet");
    }
    clock.say(format!(
        "the product master lists {} at {}.{:02}",
        prices::SKU,
        prices::NEW_PRICE_CENTS / 100,
        prices::NEW_PRICE_CENTS % 100
    ));
    prices::change(&driver, Duration::from_secs(30)).await?;
    let booked = orders.iter().filter(|o| o.expect == Expect::Erp).count();
    wait_for(&clock, &reader, &runner, booked, SETTLE).await;
    // Let the last work land: the shipment in the ERP, the return's refund (its POS order
    // is polled), the continuations (bus, warehouse).
    let settle_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < settle_until {
        let shipped = reader
            .orders()
            .await
            .map(|o| o.iter().any(|o| o.number == first_shop && o.shipped))
            .unwrap_or(false);
        let refunded = reviewed
            .borrow()
            .iter()
            .any(|p| p.starts_with("/finance/refunds"));
        if shipped && refunded && runner.in_flight() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let flash = match runner.ledgers.iter().find(|l| l.name == "stock") {
        Some(ledger) => {
            clock.say(format!(
                "flash sale: 100 units of {} arrive (70 in the warehouse, 30 in SoHo), then {} orders from the storefront, Amazon and the stores at once",
                flash::SKU,
                1000
            ));
            let outcome = flash::run(ledger).await?;
            clock.say(format!(
                "flash sale over: {} free units, {} orders hold {} units, {} refused ({})",
                outcome.available,
                outcome.held_orders,
                outcome.held_units,
                outcome.refused,
                outcome.sample_reason
            ));
            Some(outcome)
        }
        None => None,
    };

    let erp_full = reader.orders().await?;
    let erp_orders: Vec<String> = erp_full.iter().map(|o| o.number.clone()).collect();
    let dead = store.call(|b| b.dead_letters(false, 10_000)).await?;
    let stats = driver.stats().await?;
    let (catalogue, price_check) = prices::report(&driver).await?;
    let reviewed = reviewed.borrow().clone();
    let metrics = runner.metrics.clone();
    let left = runner.stop(Duration::from_secs(5)).await;

    println!();
    println!("Flows");
    print!("{}", summary::flow_table(&pipeline, &metrics));
    println!();
    println!("Dead letters ({})", dead.len());
    for dl in &dead {
        println!("  #{:<4} {}/{}: {}", dl.id, dl.origin, dl.node, dl.error);
    }
    println!();
    println!("What the simulated systems received");
    for system in ["shopify", "amazon_sp", "square", "shipbob", "odata"] {
        if let Some(counts) = stats.get(system).and_then(|v| v.as_object()) {
            let text: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            println!("  {system:<10} {}", text.join(", "));
        }
    }
    println!();
    println!("Catalogue");
    print!("{catalogue}");
    println!();
    let sum = |name: &'static str, flow: &str| metrics.sum(name, flow, |_| true);
    use omniflow_engine::ops::metrics::{DUPLICATES, MESSAGES_OUT};
    let shipped = erp_full.iter().find(|o| o.number == first_shop);
    let mut checks = vec![
        summary::Check {
            what: "storefront webhooks delivered twice were stored once",
            ok: metrics.sum(DUPLICATES, "ecommerce_split_fulfilment", |node| {
                node == "webhook"
            }) == 2,
            detail: format!(
                "{} duplicates prevented",
                metrics.sum(DUPLICATES, "ecommerce_split_fulfilment", |node| node
                    == "webhook")
            ),
        },
        summary::Check {
            what: "the warehouse shipment is recorded in the ERP with its tracking",
            ok: shipped.is_some_and(|o| o.shipped),
            detail: shipped.map(|o| o.detail.clone()).unwrap_or_default(),
        },
        summary::Check {
            what: "the storefront got the fulfilment, once",
            ok: stats["shopify"]["fulfillments"] == 1,
            detail: format!(
                "{} fulfilments, {} refused",
                stats["shopify"]["fulfillments"], stats["shopify"]["fulfillment_rejections"]
            ),
        },
        summary::Check {
            what: "the store return was refunded by finance",
            ok: reviewed
                .iter()
                .filter(|p| p.starts_with("/finance/refunds"))
                .count()
                == 1,
            detail: format!(
                "{} refund calls",
                reviewed
                    .iter()
                    .filter(|p| p.starts_with("/finance/refunds"))
                    .count()
            ),
        },
        summary::Check {
            what: "every POS sale line reached the inventory ledger subject",
            ok: sum(MESSAGES_OUT, "pos_sales") == 3,
            detail: format!("{} movements published", sum(MESSAGES_OUT, "pos_sales")),
        },
    ];
    checks.push(price_check);
    if let Some(flash) = &flash {
        println!("Inventory: oversold units per SKU (units held for orders beyond the stock)");
        for (sku, over) in &flash.oversold {
            println!("  {sku:<14} {over}");
        }
        println!();
        let oversold: i64 = flash.oversold.iter().map(|(_, n)| n).sum();
        checks.push(summary::Check {
            what: "flash sale: exactly the free units are held, the other orders refused",
            ok: flash.held_units == flash.available
                && flash.held_orders as i64 == flash.available
                && flash.held_orders + flash.refused == 1000,
            detail: format!(
                "{} received, {} free, {} held by {} orders, {} refused",
                flash.received, flash.available, flash.held_units, flash.held_orders, flash.refused
            ),
        });
        checks.push(summary::Check {
            what: "flash sale: every publishing channel was last told 0",
            ok: !flash.told.is_empty() && flash.told.iter().all(|(_, v)| *v == Some(0)),
            detail: flash
                .told
                .iter()
                .map(|(c, v)| format!("{c} {}", v.map_or("-".into(), |v| v.to_string())))
                .collect::<Vec<_>>()
                .join(", "),
        });
        checks.push(summary::Check {
            what: "no SKU oversold",
            ok: oversold == 0,
            detail: format!(
                "{oversold} units oversold over {} SKUs",
                flash.oversold.len()
            ),
        });
    }
    println!("Checks");
    print!("{}", summary::checks_table(&checks));
    println!();
    let (lines, strangers) = summary::reconcile(&orders, &erp_orders, &reviewed, &dead);
    println!("Reconciliation: channel orders against the ERP");
    print!("{}", summary::reconciliation_table(&lines, &strangers));
    let held = lines.iter().all(|l| l.ok) && strangers.is_empty() && checks.iter().all(|c| c.ok);
    let booked_once = lines
        .iter()
        .filter(|l| l.found == summary::Found::Erp(1))
        .count();
    println!();
    if held {
        println!("reconciliation holds: {booked_once} channel orders in the ERP once each, the rest held or dead-lettered with their reasons ({left} unfinished)");
    } else {
        println!("RECONCILIATION FAILED: see the lines marked NO above");
    }
    let _ = std::fs::remove_file(&state_path);
    Ok(held)
}

/// Prints one progress line.
async fn progress(
    clock: &Clock,
    erp: &erp::ErpReader,
    runner: &Runner,
    outage_ends: Option<Instant>,
) {
    let erp = erp.orders().await.map(|o| o.len()).unwrap_or(0);
    let duplicates: u64 = runner
        .flows
        .iter()
        .map(|f| {
            runner.metrics.sum(
                omniflow_engine::ops::metrics::DUPLICATES,
                f.flow_name(),
                |_| true,
            )
        })
        .sum();
    let dead: u64 = runner
        .flows
        .iter()
        .map(|f| {
            runner.metrics.sum(
                omniflow_engine::ops::metrics::DEAD_LETTERS,
                f.flow_name(),
                |_| true,
            )
        })
        .sum();
    let retries: u64 = runner
        .flows
        .iter()
        .map(|f| {
            runner.metrics.sum(
                omniflow_engine::ops::metrics::RETRIES,
                f.flow_name(),
                |_| true,
            )
        })
        .sum();
    let outage = outage_ends
        .map(|t| {
            format!(
                " · ERP outage, {} s left",
                t.saturating_duration_since(Instant::now()).as_secs()
            )
        })
        .unwrap_or_default();
    clock.say(format!(
        "ERP sales orders {erp} · in flight {} · retries {retries} · dead letters {dead} · duplicates prevented {duplicates}{outage}",
        runner.in_flight()
    ));
}

/// Waits until the ERP holds `expected` sales orders (or `limit` passes), with progress.
async fn wait_for(
    clock: &Clock,
    erp: &erp::ErpReader,
    runner: &Runner,
    expected: usize,
    limit: Duration,
) {
    let until = Instant::now() + limit;
    let mut last = Instant::now();
    while Instant::now() < until {
        let held = erp.orders().await.map(|o| o.len()).unwrap_or(0);
        if held >= expected && runner.in_flight() == 0 {
            break;
        }
        if last.elapsed() >= Duration::from_secs(5) {
            progress(clock, erp, runner, None).await;
            last = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    progress(clock, erp, runner, None).await;
}
