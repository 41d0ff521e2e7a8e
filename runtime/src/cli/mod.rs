//! Command-line interface of `omniflow`: one module per subcommand.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cluster;
mod demo;
mod dlq;
mod inventory;
mod map;
mod playground;
mod record;
mod reload;
mod replay;
mod run;
mod sandbox;
mod state;
mod telemetry;
mod test;
mod trace;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "omniflow", version, about = "Run omniflow flows")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A retail day against the sandbox: the reference flows, a reconciliation, exit 0
    /// only when it holds.
    Demo(demo::Args),
    /// Run flows durably until SIGTERM.
    Run(run::Args),
    /// Inspect, replay and discard dead letters.
    Dlq(dlq::Args),
    /// What happened to a message: find it by order id, correlation id, key or document.
    Trace(trace::Args),
    /// Inspect the inventory ledgers: stock per location, what each channel was told.
    Inventory(inventory::Args),
    /// The replicas sharing a PostgreSQL state: who is live, leases, claims, backlog.
    Cluster(cluster::Args),
    /// Check a state file, or back it up (also while a runtime runs).
    State(state::Args),
    /// Run the `test` blocks of flows.
    Test(test::Args),
    /// Run one flow's mapping and routing over a JSONL file, with no state.
    Map(map::Args),
    /// A local page to try a flow's mapping on a payload while editing it.
    Playground(playground::Args),
    /// Serve local simulators of Shopify, Amazon SP-API, Square, ShipBob and an OData ERP.
    Sandbox(sandbox::Args),
}

/// Parses the arguments and runs the subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Run(args) => run::run(args),
        Command::Dlq(args) => dlq::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Inventory(args) => inventory::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::State(args) => state::run(args),
        Command::Test(args) => test::run(args),
        Command::Map(args) => map::run(args),
        Command::Playground(args) => playground::run(args),
        Command::Sandbox(args) => sandbox::run(args),
    };
    ExitCode::from(code)
}

/// The single-threaded runtime the commands run on; `None` (the reason printed) when it
/// cannot start.
fn current_thread_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            None
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr; `OMNIFLOW_LOG` sets the level (error, warn, info, debug, trace).
pub fn init_logging(format: LogFormat) {
    init_logging_with(format, None);
}

/// Logs to standard error as `format` says (level from `OMNIFLOW_LOG`, default info),
/// and hands spans to `spans` (OpenTelemetry) when given.
pub fn init_logging_with(format: LogFormat, spans: Option<telemetry::SpanLayer>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let level = std::env::var("OMNIFLOW_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = tracing_subscriber::filter::LevelFilter::from_level(level);
    let mut layers: Vec<telemetry::SpanLayer> = vec![match format {
        LogFormat::Text => fmt.with_ansi(false).with_filter(logs).boxed(),
        LogFormat::Json => fmt.json().with_filter(logs).boxed(),
    }];
    // Spans are exported at info whatever the log level (OMNIFLOW_LOG=warn keeps traces).
    layers.extend(spans.map(|spans| {
        spans
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
            .boxed()
    }));
    let _ = tracing_subscriber::registry().with(layers).try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
