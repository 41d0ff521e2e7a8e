//! Reloading a running plan (SIGHUP, and `--watch`): a flow file that does not check is
//! refused and the running plan goes on; a changed flow replaces the running one while
//! lines keep arriving, and every line reaches the sink once, the later ones mapped by the
//! new plan; a webhook sender retrying a 503 during the swap loses nothing.

mod support;

use std::io::Write;
use std::process::{Child, Command};
use std::time::Duration;
use support::process::terminate;
use support::{free_port, run_flows, wait_for, Faults, Sink, TempDir};

const LINES: usize = 10_000;

fn flow(tag: &str) -> String {
    format!(
        r#"use std.connectors.{{file, http}}

connection inbox = file {{ dir = env("OMNIFLOW_TEST_INBOX") }}
connection api = http {{ base_url = env("OMNIFLOW_TEST_SINK") }}

schema Event {{
  id: string
  tag: string
}}

flow events {{
  source lines = inbox.read {{ path = "*.jsonl", format = jsonl }}
  map event = lines -> Event {{
    id = $.id
    tag = "{tag}"
  }}
  sink post = api.post(event) {{ path = "/events", idempotency_key = id, concurrency = 8, dead_letter = "events" }}
}}
"#
    )
}

fn start(dir: &TempDir, sink: &Sink, extra: &[&str]) -> Child {
    let ops = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--webhook-addr", "127.0.0.1:0", "--ops-addr", &ops];
    args.extend(extra);
    run_flows(
        dir,
        &args,
        &[
            (
                "OMNIFLOW_TEST_INBOX",
                dir.0.join("in").display().to_string(),
            ),
            (
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", sink.port),
            ),
        ],
    )
}

fn log(dir: &TempDir) -> String {
    dir.log()
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Writes the flow file by renaming, so a reload never reads half a file.
fn write_flow(dir: &TempDir, text: &str) {
    let tmp = dir.0.join("flow.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, dir.0.join("flows").join("events.flow")).unwrap();
}

fn tags(sink: &Sink) -> Vec<(u64, String)> {
    let seen = sink.seen.lock().unwrap();
    let mut tags: Vec<(u64, String)> = seen
        .accepted
        .iter()
        .map(|body| {
            let n = body["id"].as_str().unwrap()[1..].parse().unwrap();
            (n, body["tag"].as_str().unwrap().to_string())
        })
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

fn stop(mut child: Child) {
    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");
}

/// Appends lines `from..to` to the inbox file, a few at a time.
fn append(dir: &std::path::Path, from: usize, to: usize) {
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join("in").join("events.jsonl"))
        .unwrap();
    for n in from..to {
        writeln!(file, r#"{{"id": "e{n}"}}"#).unwrap();
        if n % 100 == 0 {
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    file.flush().unwrap();
}

#[test]
fn sighup_refuses_a_plan_that_does_not_check_and_swaps_in_four_that_do_under_load_losing_nothing() {
    let dir = TempDir::new("reload");
    std::fs::create_dir_all(dir.0.join("flows")).unwrap();
    write_flow(&dir, &flow("v1"));
    let sink = Sink::start(Faults::default());
    let mut child = start(&dir, &sink, &[]);
    append(&dir.0, 0, 1_000);
    wait_for("the first lines", Duration::from_secs(60), || {
        sink.distinct() >= 500
    });

    // A flow that does not check: refused, the running plan goes on.
    write_flow(
        &dir,
        &flow("v2").replace("tag = \"v2\"", "tag = $.missing +"),
    );
    signal(&child, "-HUP");
    wait_for("the refusal", Duration::from_secs(30), || {
        log(&dir).contains("reload refused")
    });
    append(&dir.0, 1_000, 1_500);
    wait_for("lines after the refusal", Duration::from_secs(60), || {
        sink.distinct() == 1_500
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "a refused reload stopped the process"
    );

    // Four plans that check, each swapped in while lines are being appended, and more
    // lines after each swap, which only the new plan may map.
    let per_plan = (LINES - 1_500) / 4;
    for (n, tag) in ["v2", "v3", "v4", "v5"].into_iter().enumerate() {
        let from = 1_500 + n * per_plan;
        write_flow(&dir, &flow(tag));
        let writer = {
            let path = dir.0.clone();
            std::thread::spawn(move || append(&path, from, from + per_plan / 2))
        };
        signal(&child, "-HUP");
        wait_for("the reload's log", Duration::from_secs(60), || {
            log(&dir).matches("reloaded").count() == n + 1
        });
        writer.join().unwrap();
        append(&dir.0, from + per_plan / 2, from + per_plan);
    }
    wait_for("every line", Duration::from_secs(120), || {
        sink.distinct() == LINES
    });
    let text = log(&dir);
    assert!(text.contains("flow events changed"), "{text}");
    assert_eq!(text.matches("reload refused").count(), 1, "{text}");
    stop(child);

    let seen = sink.seen.lock().unwrap();
    assert_eq!(seen.effects.len(), LINES);
    assert!(
        seen.effects.values().all(|n| *n == 1),
        "a line was delivered twice across the reload"
    );
    drop(seen);
    let tags = tags(&sink);
    assert_eq!(tags.len(), LINES, "one tag per line");
    assert!(tags[..1_500].iter().all(|(_, tag)| tag == "v1"));
    assert_eq!(
        tags.last().unwrap().1,
        "v5",
        "the last line went through the last plan"
    );
    for tag in ["v1", "v2", "v3", "v4", "v5"] {
        assert!(
            tags.iter().any(|(_, t)| t == tag),
            "no line went through plan {tag}"
        );
    }
    // Once a plan runs, no later line goes through an older one.
    assert!(
        tags.windows(2).all(|w| w[0].1 <= w[1].1),
        "a later line went through an older plan"
    );
}

#[test]
fn watch_reloads_when_a_flow_file_changes() {
    let dir = TempDir::new("reload-watch");
    std::fs::create_dir_all(dir.0.join("flows")).unwrap();
    write_flow(&dir, &flow("v1"));
    let sink = Sink::start(Faults::default());
    let child = start(&dir, &sink, &["--watch"]);
    append(&dir.0, 0, 10);
    wait_for("the first lines", Duration::from_secs(60), || {
        sink.distinct() == 10
    });
    write_flow(&dir, &flow("v2"));
    wait_for("the reload", Duration::from_secs(30), || {
        log(&dir).contains("reloaded")
    });
    append(&dir.0, 10, 20);
    wait_for("the later lines", Duration::from_secs(60), || {
        sink.distinct() == 20
    });
    stop(child);
    let tags = tags(&sink);
    assert!(tags[10..].iter().all(|(_, tag)| tag == "v2"), "{tags:?}");
}
