//! `omniflow run`: runs every flow durably until SIGTERM or Ctrl-C.

use omniflow_runtime::engine::FlowCtx;
use omniflow_runtime::ops::metrics::Metrics;
use omniflow_runtime::ops::server::{self, Handler, Resp};
use omniflow_runtime::sources::{self, webhook::Routes};
use omniflow_runtime::{load::load_graph, pipeline::Pipeline, state};
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a graceful stop waits for in-flight deliveries.
const DRAIN: Duration = Duration::from_secs(10);

#[derive(clap::Args)]
pub struct Args {
    /// .flow files or directories, or a graph.json from `omniflowc build`.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// State backend.
    #[arg(long, default_value = "sqlite:omniflow.db")]
    state: String,
    /// Serve /health, /ready and /metrics here.
    #[arg(long)]
    ops_addr: Option<String>,
    /// Serve webhook sources here.
    #[arg(long, default_value = "127.0.0.1:8080")]
    webhook_addr: String,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: super::LogFormat,
}

pub fn run(args: Args) -> u8 {
    super::init_logging(args.log_format);
    let pipeline = match load_graph(&args.paths).and_then(Pipeline::new) {
        Ok(p) => Rc::new(p),
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let backend = match state::open(&args.state) {
        Ok(b) => b,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let store = state::Store::start(backend);
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
        match serve(args, pipeline, store).await {
            Ok(()) => 0,
            Err(err) => {
                eprintln!("error: {err}");
                2
            }
        }
    })
}

async fn serve(args: Args, pipeline: Rc<Pipeline>, store: state::Store) -> Result<(), String> {
    // Listen for SIGTERM before anything else, so a stop during start-up is graceful too.
    let signals = Signals::new();
    let metrics = Rc::new(Metrics::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopping = Rc::new(Cell::new(false));
    let webhooks = Routes::default();
    let limits = omniflow_runtime::delivery::rate_limit::ConnectionLimits::new(&pipeline.graph);
    let mut flows = Vec::new();
    for idx in 0..pipeline.flows.len() {
        let ctx = FlowCtx::new(
            pipeline.clone(),
            idx,
            store.clone(),
            metrics.clone(),
            &limits,
        )?;
        sources::start(&ctx, &stop_rx, &webhooks)?;
        let processor = ctx.clone();
        let stop = stop_rx.clone();
        tokio::task::spawn_local(async move { processor.run_processor(stop).await });
        flows.push(ctx);
    }
    if !webhooks.is_empty() {
        let routes = webhooks.clone();
        let stopping = stopping.clone();
        let handler: Handler = Rc::new(move |req| {
            let routes = routes.clone();
            let stopping = stopping.get();
            Box::pin(async move { routes.handle(req, stopping).await })
        });
        let addr = server::serve(&args.webhook_addr, handler).await?;
        tracing::info!(addr = %addr, "webhooks listening");
    }
    if let Some(ops_addr) = &args.ops_addr {
        let metrics = metrics.clone();
        let stopping = stopping.clone();
        let handler: Handler = Rc::new(move |req| {
            let metrics = metrics.clone();
            let stopping = stopping.get();
            Box::pin(async move {
                match req.path.as_str() {
                    "/health" => Resp::text(200, "ok\n"),
                    "/ready" if stopping => Resp::text(503, "stopping\n"),
                    "/ready" => Resp::text(200, "ready\n"),
                    "/metrics" => Resp {
                        status: 200,
                        content_type: "text/plain; version=0.0.4",
                        body: metrics.render(),
                        headers: Vec::new(),
                    },
                    _ => Resp::text(404, "not found\n"),
                }
            })
        });
        let addr = server::serve(ops_addr, handler).await?;
        tracing::info!(addr = %addr, "ops endpoint listening");
    }
    tracing::info!(flows = flows.len(), state = %args.state, "running");
    signals.wait().await;
    tracing::info!("stopping: intake closed, finishing in-flight work");
    stopping.set(true);
    let _ = stop_tx.send(true);
    let started = Instant::now();
    while flows.iter().any(|f| f.in_flight() > 0) && started.elapsed() < DRAIN {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left: usize = flows.iter().map(|f| f.in_flight()).sum();
    // Let the last completions reach the state store.
    let _ = store.call(|_| Ok(())).await;
    tracing::info!(
        unfinished = left,
        "stopped; unfinished messages resume on the next start"
    );
    Ok(())
}

/// SIGTERM and Ctrl-C, registered once.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn wait(mut self) {
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
