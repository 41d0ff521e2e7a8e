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
    /// Keep the day's state in this new SQLite file (for `omniflow trace`, `dlq` and
    /// `inventory` afterwards) instead of a temporary file removed at the end.
    #[arg(long)]
    state: Option<PathBuf>,
    #[command(flatten)]
    record: super::record::RecordArgs,
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
    let Some(runtime) = super::current_thread_runtime() else {
        return 2;
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
    let addr = server::serve("127.0.0.1:0", handler)
        .await
        .map_err(|err| err.to_string())?;
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

/// The day: start the systems and the flows, run the script, collect what each system
/// holds, print the summary; `Ok(true)` when the reconciliation holds.
async fn day(args: Args) -> Result<bool, String> {
    let clock = Clock(Instant::now());
    let systems = start_systems(&args).await?;
    clock.say(format!(
        "sandbox of Shopify, Amazon SP-API, Square, ShipBob and an OData ERP on {}",
        systems.sandbox_url
    ));
    let flows = start_flows(&args, &clock, &systems).await?;
    let driver = Driver::new(&systems.sandbox_url)?;
    driver.subscribe(&systems.endpoints.webhooks).await?;
    let script = Script {
        clock: &clock,
        driver: &driver,
        reader: &systems.reader,
        runner: &flows.runner,
    };

    let mut orders = script.morning().await?;
    let outage = if args.with_erp == Erp::Sandbox {
        args.outage
    } else {
        0
    };
    let first_shop = script.outage(outage, args.with_erp, &mut orders).await?;
    script
        .afternoon(&first_shop, &orders, &systems.reviewed)
        .await?;
    let flash = script.flash_sale().await?;

    let end = End::collect(&driver, &systems, flows, first_shop).await?;
    end.print_systems();
    let checks = end.checks(flash.as_ref());
    Ok(end.reconcile(&orders, &checks))
}

/// An OData sales-order service: its URL, user and password.
type ErpService = (String, String, String);

/// The systems around the flows: the sandbox, the back office and the ERP.
struct Systems {
    sandbox_url: String,
    endpoints: setup::Endpoints,
    webhook_addr: String,
    /// The paths the back office was sent.
    reviewed: Rc<RefCell<Vec<String>>>,
    reader: erp::ErpReader,
    /// The ERP the flows book into (none for Tryton).
    erp_service: Option<ErpService>,
}

/// Starts (or finds) the sandbox and the back office, sets the flows' environment and
/// chooses the ERP.
async fn start_systems(args: &Args) -> Result<Systems, String> {
    let sandbox_url = match &args.sandbox {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let config = SandboxConfig {
                seed: args.seed,
                // A redelivery the vendor makes a minute later comes a second later.
                time_scale: 60.0,
                ..SandboxConfig::default()
            };
            format!(
                "http://{}",
                sandbox::serve("127.0.0.1:0", config)
                    .await
                    .map_err(|err| err.to_string())?
            )
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
    let (reader, erp_service) = choose_erp(args.with_erp, &sandbox_url)?;
    Ok(Systems {
        sandbox_url,
        endpoints,
        webhook_addr,
        reviewed,
        reader,
        erp_service,
    })
}

/// How the day reads the ERP, and the OData service the flows book into.
fn choose_erp(
    with_erp: Erp,
    sandbox_url: &str,
) -> Result<(erp::ErpReader, Option<ErpService>), String> {
    Ok(match with_erp {
        Erp::Sandbox => (
            erp::ErpReader::Sandbox {
                control: sandbox_url.to_string(),
            },
            Some((
                format!("{sandbox_url}/odata/v4/sales"),
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
        Erp::Tryton => {
            if std::env::var("TRYTON_WAREHOUSE").is_err() {
                std::env::set_var("TRYTON_WAREHOUSE", "WH");
            }
            (
                erp::ErpReader::Tryton {
                    url: env("TRYTON_URL", "tryton")?,
                    database: env("TRYTON_DATABASE", "tryton")?,
                    user: env("TRYTON_USER", "tryton")?,
                    password: env("TRYTON_PASSWORD", "tryton")?,
                },
                None,
            )
        }
    })
}

/// The reference flows, running.
struct Flows {
    pipeline: Rc<Pipeline>,
    store: state::Store,
    runner: Runner,
    state_path: PathBuf,
    /// True when `--state` named the file: it stays.
    keep_state: bool,
}

/// Loads the reference flows, adapts them to the systems and starts them on a fresh
/// state.
async fn start_flows(args: &Args, clock: &Clock, systems: &Systems) -> Result<Flows, String> {
    let mut graph = load_graph(std::slice::from_ref(&args.flows)).map_err(|e| e.to_string())?;
    setup::adapt(&mut graph, systems.erp_service.as_ref())?;
    let pipeline = Rc::new(Pipeline::new(graph).map_err(|e| e.to_string())?);
    let state_path = match &args.state {
        Some(path) if path.exists() => {
            return Err(format!(
                "--state {}: the file exists; the day starts on a fresh state",
                path.display()
            ))
        }
        Some(path) => path.clone(),
        None => {
            let path =
                std::env::temp_dir().join(format!("omniflow-demo-{}.db", std::process::id()));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            path
        }
    };
    let store = state::Store::start(state::open(&format!("sqlite:{}", state_path.display()))?);
    let parts = omniflow_engine::runner::Parts {
        recorder: args.record.recorder()?,
        ..omniflow_engine::runner::Parts::of(&store)
    };
    let runner = Runner::start_with(
        pipeline.clone(),
        store.clone(),
        &systems.webhook_addr,
        server::Limits::default(),
        parts,
    )
    .await
    .map_err(|e| e.to_string())?;
    if let Some(addr) = &args.ops_addr {
        let console = omniflow_engine::console::Settings::for_address(addr, None);
        let bound = server::serve(addr, runner.ops_handler(console))
            .await
            .map_err(|err| err.to_string())?;
        clock.say(format!("metrics on http://{bound}/metrics"));
    }
    clock.say(format!(
        "{} reference flows running on a fresh embedded state ({})",
        runner.flows.len(),
        state_path.display()
    ));
    Ok(Flows {
        pipeline,
        store,
        runner,
        state_path,
        keep_state: args.state.is_some(),
    })
}

/// What the script's steps act on and watch.
struct Script<'d> {
    clock: &'d Clock,
    driver: &'d Driver,
    reader: &'d erp::ErpReader,
    runner: &'d Runner,
}

impl Script<'_> {
    /// Marketplace and storefront orders and POS sales, until the ERP has booked them.
    async fn morning(&self) -> Result<Vec<ChannelOrder>, String> {
        let driver = self.driver;
        let mut orders: Vec<ChannelOrder> = Vec::new();
        self.clock
            .say("morning: marketplace and storefront orders, POS sales");
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
        let booked = orders.iter().filter(|o| o.expect == Expect::Erp).count();
        self.wait_for(booked, Duration::from_secs(30)).await;
        Ok(orders)
    }

    /// An ERP outage of `outage` seconds with orders during it and a store return; ends
    /// when the outage does. Returns the first storefront order.
    async fn outage(
        &self,
        outage: u64,
        with_erp: Erp,
        orders: &mut Vec<ChannelOrder>,
    ) -> Result<String, String> {
        let (clock, driver) = (self.clock, self.driver);
        if outage > 0 {
            clock.say(format!(
                "ERP outage: the sales-order service answers 503 for {outage} s"
            ));
            driver.erp_outage(outage).await?;
        } else if with_erp != Erp::Sandbox {
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
            progress(clock, self.reader, self.runner, Some(outage_ends)).await;
            tokio::time::sleep(
                Duration::from_secs(5).min(outage_ends.saturating_duration_since(Instant::now())),
            )
            .await;
        }
        Ok(first_shop)
    }

    /// The ERP is back: the warehouse ships, the product master changes a price, and the
    /// flows settle.
    async fn afternoon(
        &self,
        first_shop: &str,
        orders: &[ChannelOrder],
        reviewed: &RefCell<Vec<String>>,
    ) -> Result<(), String> {
        let (clock, driver) = (self.clock, self.driver);
        clock.say("ERP back");
        clock.say(format!(
            "warehouse ships {first_shop} (its webhook arrives twice)"
        ));
        if !driver.ship(first_shop, setup::SHIPBOB_TOKEN).await? {
            clock.say("the warehouse holds no order for it yet");
        }
        clock.say(format!(
            "the product master lists {} at {}.{:02}",
            prices::SKU,
            prices::NEW_PRICE_CENTS / 100,
            prices::NEW_PRICE_CENTS % 100
        ));
        prices::change(driver, Duration::from_secs(30)).await?;
        let booked = orders.iter().filter(|o| o.expect == Expect::Erp).count();
        self.wait_for(booked, SETTLE).await;
        // Let the last work land: the shipment in the ERP, the return's refund (its POS
        // order is polled), the continuations (bus, warehouse).
        let settle_until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < settle_until {
            let shipped = self
                .reader
                .orders()
                .await
                .map(|o| o.iter().any(|o| o.number == first_shop && o.shipped))
                .unwrap_or(false);
            let refunded = reviewed
                .borrow()
                .iter()
                .any(|p| p.starts_with("/finance/refunds"));
            if shipped && refunded && self.runner.in_flight() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }

    /// The flash sale on the stock ledger, when the flows keep one.
    async fn flash_sale(&self) -> Result<Option<flash::Outcome>, String> {
        let Some(ledger) = self.runner.ledgers.iter().find(|l| l.name == "stock") else {
            return Ok(None);
        };
        self.clock.say(format!(
            "flash sale: 100 units of {} arrive (70 in the warehouse, 30 in SoHo), then {} orders from the storefront, Amazon and the stores at once",
            flash::SKU,
            1000
        ));
        let outcome = flash::run(ledger).await?;
        self.clock.say(format!(
            "flash sale over: {} free units, {} orders hold {} units, {} refused ({})",
            outcome.available,
            outcome.held_orders,
            outcome.held_units,
            outcome.refused,
            outcome.sample_reason
        ));
        Ok(Some(outcome))
    }

    /// Waits until the ERP holds `expected` sales orders (or `limit` passes).
    async fn wait_for(&self, expected: usize, limit: Duration) {
        wait_for(self.clock, self.reader, self.runner, expected, limit).await;
    }
}

/// What every system holds at the end of the day, the flows stopped.
struct End {
    pipeline: Rc<Pipeline>,
    metrics: Rc<omniflow_engine::ops::metrics::Metrics>,
    erp: Vec<erp::ErpOrder>,
    dead: Vec<state::DeadLetter>,
    stats: serde_json::Value,
    catalogue: String,
    price_check: summary::Check,
    reviewed: Vec<String>,
    first_shop: String,
    /// Messages still in flight when the flows stopped.
    left: usize,
    state_path: PathBuf,
    keep_state: bool,
}

impl End {
    /// Reads every system, then stops the flows.
    async fn collect(
        driver: &Driver,
        systems: &Systems,
        flows: Flows,
        first_shop: String,
    ) -> Result<End, String> {
        let erp = systems.reader.orders().await?;
        let dead = flows.store.call(|b| b.dead_letters(false, 10_000)).await?;
        let stats = driver.stats().await?;
        let (catalogue, price_check) = prices::report(driver).await?;
        let reviewed = systems.reviewed.borrow().clone();
        let metrics = flows.runner.metrics.clone();
        let left = flows.runner.stop(Duration::from_secs(5)).await;
        Ok(End {
            pipeline: flows.pipeline,
            metrics,
            erp,
            dead,
            stats,
            catalogue,
            price_check,
            reviewed,
            first_shop,
            left,
            state_path: flows.state_path,
            keep_state: flows.keep_state,
        })
    }

    /// The flows, the dead letters, what each simulated system received, the catalogue.
    fn print_systems(&self) {
        println!();
        println!("Flows");
        print!("{}", summary::flow_table(&self.pipeline, &self.metrics));
        println!();
        println!("Dead letters ({})", self.dead.len());
        for dl in &self.dead {
            println!("  #{:<4} {}/{}: {}", dl.id, dl.origin, dl.node, dl.error);
        }
        println!();
        println!("What the simulated systems received");
        for system in ["shopify", "amazon_sp", "square", "shipbob", "odata"] {
            if let Some(counts) = self.stats.get(system).and_then(|v| v.as_object()) {
                let text: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
                println!("  {system:<10} {}", text.join(", "));
            }
        }
        println!();
        println!("Catalogue");
        print!("{}", self.catalogue);
        println!();
    }

    /// The end-of-day checks beyond the reconciliation (printing the flash sale's
    /// oversold units on the way).
    fn checks(&self, flash: Option<&flash::Outcome>) -> Vec<summary::Check> {
        use omniflow_engine::ops::metrics::{DUPLICATES, MESSAGES_OUT};
        let metrics = &self.metrics;
        let stats = &self.stats;
        let sum = |name: &'static str, flow: &str| metrics.sum(name, flow, |_| true);
        let duplicates = metrics.sum(DUPLICATES, "ecommerce_split_fulfilment", |node| {
            node == "webhook"
        });
        let shipped = self.erp.iter().find(|o| o.number == self.first_shop);
        let refunds = self
            .reviewed
            .iter()
            .filter(|p| p.starts_with("/finance/refunds"))
            .count();
        let mut checks = vec![
            summary::Check {
                what: "storefront webhooks delivered twice were stored once",
                ok: duplicates == 2,
                detail: format!("{duplicates} duplicates prevented"),
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
                what: "the storefront was written through Shopify's GraphQL Admin API",
                ok: stats["shopify"]["graphql_queries"].as_u64() > Some(0),
                detail: format!(
                    "{} GraphQL operations of {} Shopify requests",
                    stats["shopify"]["graphql_queries"], stats["shopify"]["requests"]
                ),
            },
            summary::Check {
                what: "the store return was refunded by finance",
                ok: refunds == 1,
                detail: format!("{refunds} refund calls"),
            },
            summary::Check {
                what: "every POS sale line reached the inventory ledger subject",
                ok: sum(MESSAGES_OUT, "pos_sales") == 3,
                detail: format!("{} movements published", sum(MESSAGES_OUT, "pos_sales")),
            },
        ];
        checks.push(self.price_check.clone());
        if let Some(flash) = flash {
            checks.extend(flash_checks(flash));
        }
        checks
    }

    /// Prints the checks and the reconciliation of the channel orders with the ERP, and
    /// removes the state; true when everything holds.
    fn reconcile(&self, orders: &[ChannelOrder], checks: &[summary::Check]) -> bool {
        println!("Checks");
        print!("{}", summary::checks_table(checks));
        println!();
        let erp_orders: Vec<String> = self.erp.iter().map(|o| o.number.clone()).collect();
        let (lines, strangers) =
            summary::reconcile(orders, &erp_orders, &self.reviewed, &self.dead);
        println!("Reconciliation: channel orders against the ERP");
        print!("{}", summary::reconciliation_table(&lines, &strangers));
        let held =
            lines.iter().all(|l| l.ok) && strangers.is_empty() && checks.iter().all(|c| c.ok);
        let booked_once = lines
            .iter()
            .filter(|l| l.found == summary::Found::Erp(1))
            .count();
        println!();
        if held {
            println!("reconciliation holds: {booked_once} channel orders in the ERP once each, the rest held or dead-lettered with their reasons ({} unfinished)", self.left);
        } else {
            println!("RECONCILIATION FAILED: see the lines marked NO above");
        }
        if self.keep_state {
            println!(
                "what happened to an order: omniflow trace --state sqlite:{} {}",
                self.state_path.display(),
                self.first_shop
            );
        } else {
            let _ = std::fs::remove_file(&self.state_path);
        }
        held
    }
}

/// Prints the units oversold per SKU and gives the flash sale's checks.
fn flash_checks(flash: &flash::Outcome) -> Vec<summary::Check> {
    println!("Inventory: oversold units per SKU (units held for orders beyond the stock)");
    for (sku, over) in &flash.oversold {
        println!("  {sku:<14} {over}");
    }
    println!();
    let oversold: i64 = flash.oversold.iter().map(|(_, n)| n).sum();
    vec![
        summary::Check {
            what: "flash sale: exactly the free units are held, the other orders refused",
            ok: flash.held_units == flash.available
                && flash.held_orders as i64 == flash.available
                && flash.held_orders + flash.refused == 1000,
            detail: format!(
                "{} received, {} free, {} held by {} orders, {} refused",
                flash.received, flash.available, flash.held_units, flash.held_orders, flash.refused
            ),
        },
        summary::Check {
            what: "flash sale: every publishing channel was last told 0",
            ok: !flash.told.is_empty() && flash.told.iter().all(|(_, v)| *v == Some(0)),
            detail: flash
                .told
                .iter()
                .map(|(c, v)| format!("{c} {}", v.map_or("-".into(), |v| v.to_string())))
                .collect::<Vec<_>>()
                .join(", "),
        },
        summary::Check {
            what: "no SKU oversold",
            ok: oversold == 0,
            detail: format!(
                "{oversold} units oversold over {} SKUs",
                flash.oversold.len()
            ),
        },
    ]
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
