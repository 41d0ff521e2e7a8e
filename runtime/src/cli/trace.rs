//! `omniflow trace`: what happened to a message, found by its channel order id, its
//! correlation id, a sink's key or the document a target answered with (an ERP sale's id
//! or number). Prints every message the term names, oldest event first: accepted by which
//! source and routed where, each sink's end with its attempts and documents, rejections
//! and dead letters with their reasons, and later messages carrying the same record (a
//! shipment, an invoice, a return). Reads beside a running runtime.

use omniflow_engine::lineage;
use omniflow_state::{self as state, lineage::Event};
use std::collections::BTreeMap;

#[derive(clap::Args)]
pub struct Args {
    /// A channel order id, correlation id, sink key or document (`SO0042`, `amazon:113-…`).
    term: String,
    /// State backend: sqlite:PATH or postgres://USER@HOST[:PORT]/DATABASE.
    #[arg(long, default_value = "sqlite:omniflow.db")]
    state: String,
    /// At most this many events.
    #[arg(long, default_value = "1000")]
    limit: usize,
    /// One JSON object per event.
    #[arg(long)]
    json: bool,
}

/// Exit 0 when something was found, 1 when nothing was, 2 when the state cannot be read.
pub fn run(args: Args) -> u8 {
    let store = match state::open_for_reading(&args.state) {
        Ok(backend) => state::Store::start(backend),
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let (term, limit) = (args.term.clone(), args.limit);
    let found = store.call_blocking(move |b| b.lineage(&term, limit));
    if let Err(err) = store.close_blocking() {
        eprintln!("warning: {err}");
    }
    let events = match found {
        Ok(events) => events,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    if events.is_empty() {
        eprintln!(
            "nothing is known of `{}` (no message, key or document by that name within the lineage's retention)",
            args.term
        );
        return 1;
    }
    if args.json {
        for event in &events {
            println!("{}", serde_json::to_string(event).unwrap_or_default());
        }
    } else {
        print!("{}", printable(&timeline(&args.term, &events)));
        if events.len() == args.limit {
            println!("(the newest {} events; --limit shows more)", args.limit);
        }
    }
    0
}

/// `text` safe for a terminal: control characters a remote system put in a reason or a
/// document (escape sequences) are shown escaped; line breaks stay.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => "\n".to_string(),
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The events as people read them: a header, then one line per event (attempts and
/// reasons indented below it).
pub fn timeline(term: &str, events: &[Event]) -> String {
    let mut messages: BTreeMap<&str, &str> = BTreeMap::new();
    for event in events {
        messages.entry(&event.correlation).or_insert(&event.flow);
    }
    let mut out = format!(
        "{term}: {} event(s) of {} message(s)\n",
        events.len(),
        messages.len()
    );
    for event in events {
        let when = jiff::Timestamp::from_millisecond(event.at_ms)
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string())
            .unwrap_or_else(|_| event.at_ms.to_string());
        out.push_str(&format!(
            "{when}  {:<28}  {:<13}  {}\n",
            event.correlation,
            event.step,
            lineage::summary(event)
        ));
        let detail = &event.detail;
        for attempt in detail["attempts"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "{:>25}failed {}\n",
                "",
                lineage::attempt_line(attempt.as_str().unwrap_or(""))
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn event(correlation: &str, step: &str, node: &str, detail: Value) -> Event {
        Event {
            at_ms: 1_765_000_000_000,
            correlation: correlation.into(),
            flow: "orders".into(),
            step: step.into(),
            node: node.into(),
            detail,
            terms: Vec::new(),
        }
    }

    #[test]
    fn the_timeline_names_each_hop_its_attempts_and_documents() {
        let events = [
            event(
                "orders#7",
                "accepted",
                "amazon",
                json!({"inbox_id": 7, "routed_to": ["post"]}),
            ),
            event(
                "orders#7",
                "delivered",
                "post",
                json!({"key": "amazon:1", "document": "sale.sale 4 (SO4)",
                       "attempts": ["1765000000 attempt 1: server_error: HTTP 503"]}),
            ),
            event(
                "orders#9",
                "dead_lettered",
                "post",
                json!({"key": "amazon:1", "reason": "refused", "queue": "q"}),
            ),
        ];
        let text = timeline("amazon:1", &events);
        assert!(
            text.starts_with("amazon:1: 3 event(s) of 2 message(s)\n"),
            "{text}"
        );
        assert!(
            text.contains("accepted       orders/amazon (inbox 7), routed to post"),
            "{text}"
        );
        assert!(
            text.contains("post key amazon:1 -> sale.sale 4 (SO4)"),
            "{text}"
        );
        assert!(
            text.contains("failed 05:46:40 attempt 1: server_error: HTTP 503"),
            "{text}"
        );
        assert!(text.contains("post key amazon:1 [q]: refused"), "{text}");
    }

    #[test]
    fn control_characters_from_remote_systems_are_shown_escaped() {
        assert_eq!(
            printable("refused \u{1b}[31mred\u{7}\nnext"),
            "refused \\u{1b}[31mred\\u{7}\nnext"
        );
    }
}
