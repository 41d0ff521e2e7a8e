//! `omniflow playground`: a local page to try a mapping while writing it. Pick a flow and a
//! node, paste a payload (or load a test fixture) and see the node's output, the sinks the
//! message reaches and any rejection with its reason; saving a `.flow` file updates the
//! result. Served on loopback only, with no assets from elsewhere.

mod api;
mod flows;

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// .flow files or directories.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// Where to listen (a loopback address).
    #[arg(long, default_value = "127.0.0.1:4380")]
    listen: String,
}

pub fn run(args: Args) -> u8 {
    let loopback = args
        .listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|addr| addr.ip().is_loopback());
    if !loopback {
        eprintln!(
            "error: --listen must be a loopback address such as 127.0.0.1:4380 (the playground shows your flows and their fixtures)"
        );
        return 2;
    }
    let Some(runtime) = super::current_thread_runtime() else {
        return 2;
    };
    let watched = std::rc::Rc::new(flows::Watched::new(args.paths));
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        match omniflow_http::server::serve(&args.listen, api::handler(watched)).await {
            Ok(addr) => {
                println!("playground on http://{addr}/");
                let _ = std::io::Write::flush(&mut std::io::stdout());
                super::sandbox::wait_for_stop().await;
                0
            }
            Err(err) => {
                eprintln!("error: {err}");
                2
            }
        }
    })
}
