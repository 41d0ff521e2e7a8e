//! `omniflow sandbox`: serves the vendor simulators until SIGTERM or Ctrl-C.

use omniflow_sandbox::{self as sandbox, FaultProfile, SandboxConfig};

#[derive(clap::Args)]
pub struct Args {
    /// Address to serve every simulator on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    addr: String,
    /// Seed of the deterministic RNG.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Fault profile for every system: none, flaky, throttled or slow.
    #[arg(long, default_value = "none")]
    faults: String,
    /// Simulated seconds per real second for webhook redelivery schedules (3600 rehearses
    /// an hour's outage in a second); the control API can change it.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: super::LogFormat,
}

pub fn run(args: Args) -> u8 {
    super::init_logging(args.log_format);
    let faults = match args.faults.parse::<FaultProfile>() {
        Ok(f) => f,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    if !omniflow_sandbox::clock::SCALES.contains(&args.time_scale) {
        eprintln!(
            "error: --time-scale must be from {} to {}",
            omniflow_sandbox::clock::SCALES.start(),
            omniflow_sandbox::clock::SCALES.end()
        );
        return 2;
    }
    let Some(runtime) = super::current_thread_runtime() else {
        return 2;
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let config = SandboxConfig {
            seed: args.seed,
            faults,
            time_scale: args.time_scale,
        };
        match sandbox::serve(&args.addr, config).await {
            Ok(addr) => {
                tracing::info!(addr = %addr, seed = args.seed, faults = %args.faults, "sandbox listening");
                wait_for_stop().await;
                tracing::info!("sandbox stopped");
                0
            }
            Err(err) => {
                eprintln!("error: {err}");
                2
            }
        }
    })
}

pub(super) async fn wait_for_stop() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}
