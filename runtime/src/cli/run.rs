//! `omniflow run`: runs every flow durably until SIGTERM or Ctrl-C.

use super::reload::Plan;
use super::telemetry::Telemetry;
use omniflow_engine::deploy::Deployment;
use omniflow_engine::runner::{Front, Runner};
use omniflow_http::server;
use omniflow_http::server::Handler;
use omniflow_ir::Graph;
use omniflow_state as state;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// How long a graceful stop (or a reload) waits for in-flight deliveries.
const DRAIN: Duration = Duration::from_secs(10);
/// How often `--watch` looks at the files.
const WATCH_EVERY: Duration = Duration::from_secs(1);

#[derive(clap::Args)]
pub struct Args {
    /// .flow files or directories, or a graph.json from `omniflowc build`.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Deployment settings (omniflow.yaml): state, addresses, secrets, connection
    /// overrides. Flags given here win over it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// State backend: sqlite:PATH or postgres://USER@HOST[:PORT]/DATABASE [default:
    /// sqlite:omniflow.db].
    #[arg(long)]
    state: Option<String>,
    /// Serve /health, /ready and /metrics here.
    #[arg(long)]
    ops_addr: Option<String>,
    /// Serve webhook sources here [default: 127.0.0.1:8080].
    #[arg(long)]
    webhook_addr: Option<String>,
    /// How long to wait for another process to release the state file (a rolling
    /// restart: the old process stops while this one starts), e.g. 30s; then refuse.
    #[arg(long, default_value = "15s", value_parser = state::lock::parse_wait)]
    state_wait: Duration,
    /// On a postgres:// state, run as one replica among several (the default): this long
    /// after a replica's last heartbeat, the others take over its claims and leases.
    #[arg(long, default_value = "10s", value_parser = state::lock::parse_wait)]
    replica_ttl: Duration,
    /// On a postgres:// state, own it alone instead (other processes wait, as on SQLite).
    #[arg(long)]
    alone: bool,
    /// Reload the flows when a flow file or the deployment file changes (as on SIGHUP).
    #[arg(long)]
    watch: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: super::LogFormat,
    #[command(flatten)]
    record: super::record::RecordArgs,
}

pub fn run(mut args: Args) -> u8 {
    let plan = match super::reload::load(&args.paths, args.config.as_deref()) {
        Ok(plan) => plan,
        Err(err) => {
            super::init_logging(args.log_format);
            eprintln!("error: {err}");
            return 2;
        }
    };
    let telemetry = match plan.deployment.telemetry.as_ref().map(Telemetry::start) {
        None => None,
        Some(Ok((telemetry, spans))) => {
            super::init_logging_with(args.log_format, Some(spans));
            Some(telemetry)
        }
        Some(Err(err)) => {
            super::init_logging(args.log_format);
            eprintln!("error: {err}");
            return 2;
        }
    };
    if telemetry.is_none() {
        super::init_logging(args.log_format);
    }
    let deployment = &plan.deployment;
    args.state = args
        .state
        .or(deployment.state.clone())
        .or(Some("sqlite:omniflow.db".into()));
    args.webhook_addr = args
        .webhook_addr
        .or(deployment.webhook_addr.clone())
        .or(Some("127.0.0.1:8080".into()));
    args.ops_addr = args.ops_addr.or(deployment.ops_addr.clone());
    let spec = args.state.clone().unwrap_or_default();
    let (backend, lock) = match open_state(&spec, &args) {
        Ok(opened) => opened,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let store = state::Store::start(backend);
    let membership = Rc::new(omniflow_engine::cluster::Membership::of(&store));
    let Some(runtime) = super::current_thread_runtime() else {
        return 2;
    };
    let local = tokio::task::LocalSet::new();
    let closing = store.clone();
    let code = local.block_on(&runtime, async move {
        match serve(args, plan, store, membership).await {
            Ok(()) => 0,
            Err(err) => {
                eprintln!("error: {err}");
                2
            }
        }
    });
    // The tasks (and their listeners) go first; what they queued is committed before the
    // log is checkpointed, and only then is the file released to a successor.
    drop(local);
    match closing.close_blocking() {
        Ok(()) => {
            tracing::info!(state = %state::shown(&spec), "state checkpointed; stopped cleanly")
        }
        Err(error) => {
            tracing::warn!(%error, state = %state::shown(&spec), "state not checkpointed")
        }
    }
    drop(runtime);
    drop(lock);
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    code
}

/// The state as this run uses it: a SQLite file (or a PostgreSQL state with `--alone`)
/// owned alone under its lock; otherwise a PostgreSQL state shared as one replica.
fn open_state(
    spec: &str,
    args: &Args,
) -> Result<(Box<dyn state::Backend>, state::StateLock), state::StateError> {
    if state::postgres::is_postgres(spec) && !args.alone {
        let backend = state::open_replica(spec, args.state_wait, args.replica_ttl)?;
        return Ok((backend, state::StateLock::in_backend()));
    }
    // The one writer of the state from here until the last commit below.
    state::open_writer(spec, args.state_wait)
}

/// Starts a plan's runner behind `front`, with its retention sweep.
async fn start(
    args: &Args,
    plan: Plan,
    store: &state::Store,
    (front, membership, recorder): (
        &Rc<Front>,
        &Rc<omniflow_engine::cluster::Membership>,
        &Option<Rc<omniflow_engine::recording::Recorder>>,
    ),
) -> Result<(Runner, Graph), String> {
    let Plan {
        pipeline,
        deployment,
    } = plan;
    let graph = pipeline.graph.clone();
    let runner = Runner::start_on(
        front,
        Rc::new(pipeline),
        store.clone(),
        args.webhook_addr.as_deref().unwrap_or_default(),
        deployment.servers,
        omniflow_engine::runner::Parts {
            connectors: Rc::new(deployment.connectors()),
            membership: membership.clone(),
            recorder: recorder.clone(),
            test: None,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    runner.sweep_state(deployment.retention.clone());
    Ok((runner, graph))
}

/// The console as the deployment and the ops address say.
fn console_settings(
    args: &Args,
    deployment: &omniflow_engine::deploy::Deployment,
) -> Result<omniflow_engine::console::Settings, String> {
    let token = deployment.console_token()?;
    Ok(omniflow_engine::console::Settings::for_address(
        args.ops_addr.as_deref().unwrap_or_default(),
        token,
    ))
}

/// Why the serve loop woke.
enum Wake {
    Stop,
    Reload,
    Fenced(String),
}

async fn serve(
    args: Args,
    plan: Plan,
    store: state::Store,
    membership: Rc<omniflow_engine::cluster::Membership>,
) -> Result<(), String> {
    // Listen for SIGTERM before anything else, so a stop during start-up is graceful too.
    let mut signals = Signals::new();
    let servers = plan.deployment.servers;
    let front = Rc::new(Front::default());
    let mut console = console_settings(&args, &plan.deployment)?;
    let recorder = args.record.recorder()?;
    let parts = (&front, &membership, &recorder);
    let (mut runner, mut graph) = start(&args, plan, &store, parts).await?;
    // The ops endpoint answers for whichever plan runs.
    let ops: Rc<std::cell::RefCell<Handler>> =
        Rc::new(std::cell::RefCell::new(runner.ops_handler(console.clone())));
    if let Some(ops_addr) = &args.ops_addr {
        let current = ops.clone();
        let handler: Handler = Rc::new(move |req| (current.borrow())(req));
        let addr = server::serve_with(ops_addr, handler, "ops", servers)
            .await
            .map_err(|err| err.to_string())?;
        tracing::info!(addr = %addr, "ops endpoint listening");
    }
    tracing::info!(flows = runner.flows.len(), state = %state::shown(args.state.as_deref().unwrap_or_default()), "running");
    let mut watched = super::reload::fingerprint(&args.paths, args.config.as_deref());
    loop {
        let wake = tokio::select! {
            hangup = signals.next() => if hangup { Wake::Reload } else { Wake::Stop },
            _ = tokio::time::sleep(WATCH_EVERY), if args.watch => {
                let now = super::reload::fingerprint(&args.paths, args.config.as_deref());
                if now == watched {
                    continue;
                }
                watched = now;
                Wake::Reload
            }
            reason = runner.fenced() => Wake::Fenced(reason),
        };
        match wake {
            Wake::Stop => break,
            // The others take this replica's work over: nothing more is done here.
            Wake::Fenced(reason) => return Err(reason),
            Wake::Reload => {}
        }
        let plan = match super::reload::load(&args.paths, args.config.as_deref()) {
            Ok(plan) => plan,
            Err(err) => {
                tracing::error!(error = %err, "reload refused: the flows do not check; the running plan stays");
                continue;
            }
        };
        let changed = super::reload::changes(&graph, &plan.pipeline.graph);
        if changed.is_empty() {
            tracing::info!("reload: nothing changed");
            continue;
        }
        let settings = match console_settings(&args, &plan.deployment) {
            Ok(settings) => settings,
            Err(err) => {
                tracing::error!(error = %err, "reload refused; the running plan stays");
                continue;
            }
        };
        tracing::info!(changes = %changed.join("; "), "reloading: the running plan drains, the new one starts");
        let left = runner.stop(DRAIN).await;
        console = settings;
        (runner, graph) = start(&args, plan, &store, parts).await?;
        *ops.borrow_mut() = runner.ops_handler(console.clone());
        tracing::info!(unfinished = left, flows = runner.flows.len(), "reloaded");
    }
    tracing::info!("stopping: intake closed, finishing in-flight work");
    let left = runner.stop(DRAIN).await;
    tracing::info!(
        unfinished = left,
        "stopped; unfinished messages resume on the next start"
    );
    Ok(())
}

/// SIGTERM and Ctrl-C, and SIGHUP (a reload), registered once.
pub(super) struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(super) fn new() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            #[cfg(unix)]
            term: signal(SignalKind::terminate()).ok(),
            #[cfg(unix)]
            hangup: signal(SignalKind::hangup()).ok(),
        }
    }

    /// The next signal: true for SIGHUP, false for a stop (SIGTERM or Ctrl-C).
    pub(super) async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            let hangup = async {
                match self.hangup.as_mut() {
                    Some(hangup) => hangup.recv().await,
                    None => std::future::pending().await,
                }
            };
            let term = async {
                match self.term.as_mut() {
                    Some(term) => term.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hangup => true,
                _ = term => false,
                _ = tokio::signal::ctrl_c() => false,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            false
        }
    }
}

/// Reads `omniflow.yaml`: a regular file of bounded size only, so a FIFO or device never
/// blocks the start.
pub(super) fn read_deployment(path: &std::path::Path) -> Result<Deployment, String> {
    let text = omniflow_compiler::source::read_text(&omniflow_compiler::fs::RealFs, path)
        .map_err(|err| err.to_string())?;
    Deployment::parse(&text, path).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_file_that_is_a_fifo_is_refused_without_waiting() {
        let dir = std::env::temp_dir().join(format!("omniflow-deploy-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("omniflow.yaml");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let err = read_deployment(&fifo).unwrap_err();
        assert!(err.contains("FIFO"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
