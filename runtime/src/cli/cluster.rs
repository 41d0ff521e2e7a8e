//! `omniflow cluster status`: the replicas sharing a PostgreSQL state as the state records
//! them (live or gone, last heartbeat, claimed messages and keys), the leases with their
//! holders and fencing tokens, and each flow's waiting and claimed messages. It only reads.

use omniflow_state as state;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print the replicas, leases and backlog.
    Status {
        /// State backend: postgres://USER@HOST[:PORT]/DATABASE.
        #[arg(long)]
        state: String,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> u8 {
    let Command::Status { state: spec, json } = args.command;
    if !state::postgres::is_postgres(&spec) {
        eprintln!(
            "error: state `{}` is one process's own; replicas share a postgres:// state",
            state::shown(&spec)
        );
        return 2;
    }
    let store = match state::open_for_reading(&spec) {
        Ok(backend) => state::Store::start(backend),
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let status = store.call_blocking(|b| b.cluster_status());
    let _ = store.close_blocking();
    match status {
        Ok(status) if json => match serde_json::to_string_pretty(&status) {
            Ok(text) => {
                println!("{text}");
                0
            }
            Err(err) => {
                eprintln!("error: {err}");
                1
            }
        },
        Ok(status) => {
            print!("{}", render(&status, now_ms()));
            0
        }
        Err(err) => {
            eprintln!("error: {err}");
            1
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The status as a table per part; ages relative to `now` (milliseconds).
fn render(status: &state::cluster::Status, now: i64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let live = status.replicas.iter().filter(|r| r.live).count();
    let _ = writeln!(
        out,
        "replicas: {live} live, {} gone",
        status.replicas.len() - live
    );
    for r in &status.replicas {
        let state = match (r.live, r.stopped_at) {
            (true, _) => "live",
            (false, Some(_)) => "stopped",
            (false, None) => "gone",
        };
        let _ = writeln!(
            out,
            "  {:<40} {state:<8} pid {:<8} seen {:>7.1}s ago  claimed {:<6} keys {}",
            r.id,
            r.pid,
            (now - r.seen_at).max(0) as f64 / 1000.0,
            r.claimed,
            r.keys
        );
    }
    let _ = writeln!(out, "leases: {}", status.leases.len());
    for l in &status.leases {
        let holder = match l.held {
            true => l.holder.as_str(),
            false => "(free: its holder is gone)",
        };
        let _ = writeln!(out, "  {:<40} token {:<5} {holder}", l.name, l.token);
    }
    let _ = writeln!(out, "inbox:");
    for (flow, waiting, claimed) in &status.backlog {
        let _ = writeln!(out, "  {flow:<40} {waiting} waiting, {claimed} claimed");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use omniflow_state::cluster::{LeaseRow, ReplicaRow, Status};

    #[test]
    fn the_status_names_live_gone_and_stopped_replicas_and_free_leases() {
        let replica = |id: &str, live: bool, stopped_at: Option<i64>| ReplicaRow {
            id: id.into(),
            host: "h".into(),
            pid: 7,
            started_at: 0,
            seen_at: 8_000,
            ttl_ms: 10_000,
            stopped_at,
            live,
            claimed: 3,
            keys: 1,
        };
        let status = Status {
            replicas: vec![
                replica("a", true, None),
                replica("b", false, None),
                replica("c", false, Some(9_000)),
            ],
            leases: vec![
                LeaseRow {
                    name: "source:orders/poll".into(),
                    holder: "a".into(),
                    token: 4,
                    taken_at: 0,
                    held: true,
                },
                LeaseRow {
                    name: "flow:updates".into(),
                    holder: "b".into(),
                    token: 1,
                    taken_at: 0,
                    held: false,
                },
            ],
            backlog: vec![("orders".into(), 12, 3)],
        };
        let text = render(&status, 10_000);
        assert!(text.starts_with("replicas: 1 live, 2 gone\n"), "{text}");
        assert!(text.contains("seen     2.0s ago"), "{text}");
        for part in [
            "live",
            "gone",
            "stopped",
            "token 4",
            "(free: its holder is gone)",
            "12 waiting, 3 claimed",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
    }
}
