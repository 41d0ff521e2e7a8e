//! `omniflow run`: runs every flow durably until SIGTERM or Ctrl-C.

use omniflow_engine::deploy::Deployment;
use omniflow_engine::runner::Runner;
use omniflow_http::server;
use omniflow_mapping::pipeline::Pipeline;
use omniflow_runtime::load::load_graph;
use omniflow_state as state;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// How long a graceful stop waits for in-flight deliveries.
const DRAIN: Duration = Duration::from_secs(10);

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
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: super::LogFormat,
}

pub fn run(mut args: Args) -> u8 {
    super::init_logging(args.log_format);
    let deployment = match &args.config {
        Some(path) => match read_deployment(path) {
            Ok(d) => d,
            Err(err) => {
                eprintln!("error: {err}");
                return 2;
            }
        },
        None => Deployment::default(),
    };
    args.state = args
        .state
        .or(deployment.state.clone())
        .or(Some("sqlite:omniflow.db".into()));
    args.webhook_addr = args
        .webhook_addr
        .or(deployment.webhook_addr.clone())
        .or(Some("127.0.0.1:8080".into()));
    args.ops_addr = args.ops_addr.or(deployment.ops_addr.clone());
    let retention = deployment.retention.clone();
    let connectors = Rc::new(deployment.connectors());
    let servers = deployment.servers;
    let loaded = load_graph(&args.paths)
        .map_err(|e| e.to_string())
        .and_then(|mut graph| {
            deployment.apply(&mut graph).map_err(|e| e.to_string())?;
            Pipeline::new(graph).map_err(|e| e.to_string())
        });
    let pipeline = match loaded {
        Ok(p) => Rc::new(p),
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
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
    let closing = store.clone();
    let code = local.block_on(&runtime, async move {
        match serve(
            args,
            pipeline,
            store,
            retention,
            servers,
            (connectors, membership),
        )
        .await
        {
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

async fn serve(
    args: Args,
    pipeline: Rc<Pipeline>,
    store: state::Store,
    retention: state::retention::Retention,
    servers: server::Limits,
    parts: (
        Rc<omniflow_connectors::Context>,
        Rc<omniflow_engine::cluster::Membership>,
    ),
) -> Result<(), String> {
    // Listen for SIGTERM before anything else, so a stop during start-up is graceful too.
    let signals = Signals::new();
    let runner = Runner::start_with(
        pipeline,
        store,
        args.webhook_addr.as_deref().unwrap_or_default(),
        servers,
        parts,
    )
    .await
    .map_err(|e| e.to_string())?;
    runner.sweep_state(retention);
    if let Some(ops_addr) = &args.ops_addr {
        let addr = server::serve_with(ops_addr, runner.ops_handler(), "ops", servers)
            .await
            .map_err(|err| err.to_string())?;
        tracing::info!(addr = %addr, "ops endpoint listening");
    }
    tracing::info!(flows = runner.flows.len(), state = %state::shown(args.state.as_deref().unwrap_or_default()), "running");
    tokio::select! {
        _ = signals.wait() => {}
        reason = runner.fenced() => {
            // The others take this replica's work over: nothing more is done here.
            return Err(reason);
        }
    }
    tracing::info!("stopping: intake closed, finishing in-flight work");
    let left = runner.stop(DRAIN).await;
    tracing::info!(
        unfinished = left,
        "stopped; unfinished messages resume on the next start"
    );
    Ok(())
}

/// SIGTERM and Ctrl-C, registered once.
pub(super) struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(super) fn new() -> Signals {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    pub(super) async fn wait(mut self) {
        #[cfg(unix)]
        if let Some(term) = self.term.as_mut() {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Reads `omniflow.yaml`: a regular file of bounded size only, so a FIFO or device never
/// blocks the start.
fn read_deployment(path: &std::path::Path) -> Result<Deployment, String> {
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
