//! Running flows in this process: every flow's sources, processor and sink workers on the
//! current task set, webhook sources behind one server, and a graceful stop. `omniflow
//! run` and `omniflow demo` both start flows through here.

use crate::engine::FlowCtx;
pub use crate::error::StartError;
use crate::ops::metrics::Metrics;
use crate::shared::Shared;
use crate::sources::{self, webhook::Routes};
use omniflow_http::server::{self, Handler, Resp};
use omniflow_mapping::pipeline::Pipeline;
use omniflow_state::Store;
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Running flows.
pub struct Runner {
    pub flows: Vec<Rc<FlowCtx>>,
    /// The inventory ledgers the flows declare.
    pub ledgers: Vec<Rc<crate::ledger::Ledger>>,
    pub metrics: Rc<Metrics>,
    pub store: Store,
    /// What the flows share: ledgers, the embedded bus, NATS connections, limits.
    pub shared: Rc<Shared>,
    /// Where webhook sources listen (none when no flow has one).
    pub webhook_addr: Option<SocketAddr>,
    pipeline: Rc<Pipeline>,
    /// The flows' rates over time, for the console.
    history: Rc<crate::console::history::History>,
    stop_tx: watch::Sender<bool>,
    front: Rc<Front>,
}

/// What a runner is given besides its plan.
pub struct Parts {
    /// The connectors' context: secrets, token caches, the registry.
    pub connectors: Rc<omniflow_connectors::Context>,
    /// This process among the replicas of the state.
    pub membership: Rc<crate::cluster::Membership>,
    /// Where accepted messages and answers are recorded, while a recording runs.
    pub recorder: Option<Rc<crate::recording::Recorder>>,
    /// A whole-flow test: retry back-offs and rate limits pass at once (a virtual
    /// clock), and only the sources it names start (it feeds the inbox itself otherwise).
    pub test: Option<TestRun>,
}

/// What a whole-flow test runs.
#[derive(Debug, Clone, Default)]
pub struct TestRun {
    /// The sources to start (those the test gives pages to answer).
    pub sources: Vec<String>,
}

impl Parts {
    /// A production runner's parts on `store`, with the default connectors' context.
    pub fn of(store: &Store) -> Parts {
        Parts {
            connectors: Rc::default(),
            membership: Rc::new(crate::cluster::Membership::of(store)),
            recorder: None,
            test: None,
        }
    }
}

/// The webhook server's front: its address, the routes of the running plan and whether
/// it is stopping. It outlives a runner, so a reloaded plan serves on the same address
/// (deliveries arriving while the old plan drains are answered 503, to be sent again).
#[derive(Default)]
pub struct Front {
    routes: std::cell::RefCell<Routes>,
    stopping: Cell<bool>,
    addr: Cell<Option<SocketAddr>>,
}

impl Runner {
    /// Starts every flow of `pipeline`; webhook sources listen on `webhook_addr`.
    pub async fn start(
        pipeline: Rc<Pipeline>,
        store: Store,
        webhook_addr: &str,
    ) -> Result<Runner, StartError> {
        let parts = Parts::of(&store);
        Runner::start_with(
            pipeline,
            store,
            webhook_addr,
            server::Limits::default(),
            parts,
        )
        .await
    }

    /// [`Runner::start`], the webhook server applying `servers`, with `parts` (the
    /// connectors' context, this process among the replicas, a recorder, test mode).
    pub async fn start_with(
        pipeline: Rc<Pipeline>,
        store: Store,
        webhook_addr: &str,
        servers: server::Limits,
        parts: Parts,
    ) -> Result<Runner, StartError> {
        let front = Rc::new(Front::default());
        Runner::start_on(&front, pipeline, store, webhook_addr, servers, parts).await
    }

    /// [`Runner::start_with`] behind `front`: its webhook server (bound at the first plan
    /// with webhook sources) is reused, and the new plan's routes replace the old ones
    /// once every flow has started.
    pub async fn start_on(
        front: &Rc<Front>,
        pipeline: Rc<Pipeline>,
        store: Store,
        webhook_addr: &str,
        servers: server::Limits,
        parts: Parts,
    ) -> Result<Runner, StartError> {
        let metrics = Rc::new(Metrics::exported());
        let (stop_tx, stop_rx) = watch::channel(false);
        let webhooks = Routes::default();
        let Parts {
            connectors,
            membership,
            recorder,
            test,
        } = parts;
        if let Some(replica) = membership.replica() {
            metrics.set_replica(replica);
        }
        let shared = Shared::new(
            &pipeline.graph,
            connectors,
            membership.clone(),
            recorder,
            test.is_some(),
        );
        // Ledgers first: the sinks that name one find it running.
        let build_sink =
            |connection: &omniflow_ir::Connection,
             operation: &str,
             options: &std::collections::BTreeMap<String, serde_json::Value>| {
                crate::connect::sink_in(&shared, connection, operation, options)
            };
        let ledgers = crate::ledger::start(
            &pipeline.graph,
            &store,
            &metrics,
            (&shared.ledgers, &shared.limits, &shared.membership),
            &build_sink,
            &stop_rx,
        )
        .await?;
        let mut flows = Vec::new();
        for idx in 0..pipeline.flows.len() {
            let ctx = FlowCtx::new(
                pipeline.clone(),
                idx,
                store.clone(),
                metrics.clone(),
                &shared,
            )?;
            let only = test.as_ref().map(|t| t.sources.as_slice());
            sources::start(&ctx, &stop_rx, &webhooks, only).map_err(StartError::Source)?;
            let processor = ctx.clone();
            let stop = stop_rx.clone();
            tokio::task::spawn_local(async move { processor.run_processor(stop).await });
            flows.push(ctx);
        }
        let woken = flows.iter().map(|f| f.appended.clone()).collect();
        membership.start_heartbeat(&metrics, woken);
        if !webhooks.is_empty() && front.addr.get().is_none() {
            let serving = front.clone();
            let handler: Handler = Rc::new(move |req| {
                let routes = serving.routes.borrow().clone();
                let stopping = serving.stopping.get();
                Box::pin(async move { routes.handle(req, stopping).await })
            });
            let addr = server::serve_with(webhook_addr, handler, "webhooks", servers)
                .await
                .map_err(StartError::Webhooks)?;
            tracing::info!(addr = %addr, "webhooks listening");
            front.addr.set(Some(addr));
        }
        *front.routes.borrow_mut() = webhooks;
        front.stopping.set(false);
        let history = Rc::new(crate::console::history::History::default());
        tokio::task::spawn_local(history.clone().run(
            pipeline.clone(),
            metrics.clone(),
            stop_rx.clone(),
        ));
        Ok(Runner {
            pipeline,
            history,
            flows,
            ledgers,
            metrics,
            store,
            shared,
            webhook_addr: front.addr.get(),
            stop_tx,
            front: front.clone(),
        })
    }

    /// The ops endpoint: `/health` (a JSON report: the state, the membership, each
    /// source's last attempt; 503 when the process cannot do its work), `/ready` (not
    /// while stopping, while state writes fail, or while a replica's membership is not
    /// confirmed), `/metrics`; the operator console under `/console` as `console` says.
    pub fn ops_handler(&self, console: crate::console::Settings) -> Handler {
        let console = Rc::new(crate::console::Console::new(
            console,
            self.store.clone(),
            self.metrics.clone(),
            self.pipeline.clone(),
            self.history.clone(),
            self.shared.health.clone(),
        ));
        let metrics = self.metrics.clone();
        let front = self.front.clone();
        let store = self.store.clone();
        let membership = self.shared.membership.clone();
        let health = self.shared.health.clone();
        Rc::new(move |req| {
            if req.path == "/console" || req.path.starts_with("/console/") {
                return Box::pin(console.clone().handle(req));
            }
            let metrics = metrics.clone();
            let stopping = front.stopping.get();
            let writable = store.is_writable();
            let current = membership.is_current();
            let report =
                crate::ops::health::Report::new(&health, writable, membership.replica(), current);
            let failing = health.failing_lines();
            Box::pin(async move {
                match req.path.as_str() {
                    "/health" => Resp::json(
                        report.http_status(),
                        serde_json::to_value(&report).unwrap_or_default(),
                    ),
                    "/ready" if stopping => Resp::text(503, "stopping\n"),
                    "/ready" if !writable => Resp::text(503, "state writes failing\n"),
                    "/ready" if !current => Resp::text(
                        503,
                        "replica not confirmed by the state (no recent heartbeat)\n",
                    ),
                    // Failing sources do not make the process unready (it still takes
                    // webhooks and delivers), but they are named.
                    "/ready" => Resp::text(200, format!("ready\n{failing}")),
                    "/metrics" => Resp {
                        status: 200,
                        content_type: "text/plain; version=0.0.4",
                        body: metrics.render(),
                        headers: Vec::new(),
                    },
                    _ => Resp::text(404, "not found\n"),
                }
            })
        })
    }

    /// Applies the state's retention windows now and every hour while running.
    pub fn sweep_state(&self, retention: omniflow_state::retention::Retention) {
        if retention.is_set() {
            let (store, stop) = (self.store.clone(), self.stop_tx.subscribe());
            tokio::task::spawn_local(omniflow_state::retention::run(store, retention, stop));
        }
    }

    /// Resolves, with the reason, once this replica must stop at once (the others count
    /// it as gone, or its state writes failed); never when the process owns its state.
    pub async fn fenced(&self) -> String {
        self.shared.membership.fenced().await
    }

    /// Messages being processed now, over every flow.
    pub fn in_flight(&self) -> usize {
        self.flows.iter().map(|f| f.in_flight()).sum()
    }

    /// Stops intake, waits up to `drain` for in-flight work and lets the last completions
    /// reach the state store. Returns how many messages were left unfinished (they resume
    /// on the next start).
    pub async fn stop(self, drain: Duration) -> usize {
        self.front.stopping.set(true);
        let _ = self.stop_tx.send(true);
        let started = Instant::now();
        while self.in_flight() > 0 && started.elapsed() < drain {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = self.in_flight();
        let _ = self.store.call(|_| Ok(())).await;
        self.shared.clear();
        left
    }
}
