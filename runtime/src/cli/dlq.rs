//! `omniflow dlq`: list, show, replay and discard dead letters. Replay puts the original
//! message back into its flow's inbox; deliveries that already succeeded are not repeated.
//! Discard settles a letter that will never be replayed (it stays listed with `--all`).
//! `list` and `show` read beside a running runtime; `replay` and `discard` write, so they
//! take the state file's lock and are refused while a runtime (or another writer) runs.

use omniflow_state::{self as state, DeadLetter};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// State backend: sqlite:PATH or postgres://USER@HOST[:PORT]/DATABASE.
    #[arg(long, default_value = "sqlite:omniflow.db", global = true)]
    state: String,
    /// How long `replay` and `discard` wait for another process to release the state file.
    #[arg(long, default_value = "0s", global = true, value_parser = state::lock::parse_wait)]
    state_wait: Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// List dead letters, newest first.
    List {
        /// Include replayed ones.
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, default_value = "100")]
        limit: usize,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Only the letters of this queue (the sink's `dead_letter = "QUEUE"`).
        #[arg(long)]
        queue: Option<String>,
    },
    /// Show one dead letter in full.
    Show { id: i64 },
    /// Replay one dead letter, or every one not yet replayed or discarded.
    Replay {
        id: Option<i64>,
        #[arg(long)]
        all: bool,
        /// With --all: only the letters of this queue.
        #[arg(long, requires = "all")]
        queue: Option<String>,
    },
    /// Settle dead letters without replaying them (the message is given up).
    Discard {
        /// Ids of dead letters not replayed.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

pub fn run(args: Args) -> u8 {
    let writes = matches!(
        args.command,
        Command::Replay { .. } | Command::Discard { .. }
    );
    let opened = if writes {
        state::open_for_command(&args.state, args.state_wait)
            .map(|(backend, lock)| (backend, Some(lock)))
            .map_err(|e| e.to_string())
    } else {
        state::open_for_reading(&args.state).map(|backend| (backend, None))
    };
    let (store, lock) = match opened {
        Ok((backend, lock)) => (state::Store::start(backend), lock),
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let code = command(&store, args.command);
    if let Err(err) = store.close_blocking() {
        eprintln!("warning: {err}");
    }
    drop(lock);
    code
}

fn command(store: &state::Store, command: Command) -> u8 {
    match command {
        Command::List {
            all,
            limit,
            json,
            queue,
        } => list(store, (all, limit, queue), json),
        Command::Show { id } => show(store, id),
        Command::Replay { id, all, queue } => replay(store, id, all, queue),
        Command::Discard { ids } => discard(store, ids),
    }
}

/// Lists `(all, limit, queue)`: replayed ones too, at most `limit`, of one queue.
fn list(
    store: &state::Store,
    (all, limit, queue): (bool, usize, Option<String>),
    json: bool,
) -> u8 {
    let letters = store.call_blocking(move |b| match &queue {
        Some(queue) => b.queue_letters(queue, all, limit),
        None => b.dead_letters(all, limit),
    });
    let letters = match letters {
        Ok(letters) => letters,
        Err(err) => return fail(&err),
    };
    for letter in &letters {
        if json {
            println!("{}", serde_json::to_string(letter).unwrap_or_default());
        } else {
            println!(
                "{:>6}  {}/{}  {}{}  {}{}",
                letter.id,
                letter.origin,
                letter.node,
                letter
                    .queue
                    .as_deref()
                    .map(|q| format!("[{q}]  "))
                    .unwrap_or_default(),
                letter.correlation_id,
                letter.error.lines().next().unwrap_or(""),
                if letter.replayed_at.is_some() {
                    "  (replayed)"
                } else if letter.discarded_at.is_some() {
                    "  (discarded)"
                } else {
                    ""
                }
            );
        }
    }
    if !json {
        println!(
            "{} dead letter{}",
            letters.len(),
            if letters.len() == 1 { "" } else { "s" }
        );
    }
    0
}

fn show(store: &state::Store, id: i64) -> u8 {
    match store.call_blocking(move |b| b.dead_letter(id)) {
        Ok(Some(letter)) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&letter).unwrap_or_default()
            );
            0
        }
        Ok(None) => {
            eprintln!("error: no dead letter {id}");
            1
        }
        Err(err) => fail(&err),
    }
}

fn replay(store: &state::Store, id: Option<i64>, all: bool, queue: Option<String>) -> u8 {
    let letters: Result<Vec<DeadLetter>, String> = match (id, all) {
        (None, true) if queue.is_some() => store.call_blocking(move |b| {
            b.queue_letters(queue.as_deref().unwrap_or_default(), false, usize::MAX >> 1)
        }),
        (Some(id), false) => store
            .call_blocking(move |b| b.dead_letter(id))
            .and_then(|l| l.ok_or(format!("no dead letter {id}")).map(|l| vec![l])),
        (None, true) => store.call_blocking(|b| b.dead_letters(false, usize::MAX >> 1)),
        _ => Err("give one dead letter id, or --all".into()),
    };
    let letters = match letters {
        Ok(l) => l,
        Err(err) => return fail(&err),
    };
    let mut replayed = 0;
    for group in state::replay::by_message(letters) {
        let id = group[0].id;
        match store.call_blocking(move |b| state::replay::put_back(b, group)) {
            Ok(count) => replayed += count,
            Err(err) => {
                eprintln!("error: dead letter {id}: {err}");
                return 1;
            }
        }
    }
    println!(
        "replayed {replayed} dead letter{}",
        if replayed == 1 { "" } else { "s" }
    );
    0
}

fn discard(store: &state::Store, ids: Vec<i64>) -> u8 {
    for id in ids {
        match store.call_blocking(move |b| b.discard(id)) {
            Ok(true) => println!("discarded dead letter {id}"),
            Ok(false) => {
                eprintln!("error: no dead letter {id} waiting (unknown, replayed or discarded)");
                return 1;
            }
            Err(err) => return fail(&err),
        }
    }
    0
}

fn fail(err: &str) -> u8 {
    eprintln!("error: {err}");
    2
}
