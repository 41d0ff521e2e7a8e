//! Latency of `omniflowc lsp` diagnostics after an edit, over stdio as an editor sees it:
//! the largest reference flow is opened, then edited again and again (a keystroke that
//! breaks a name, the next that mends it); each round times the `didChange` until its
//! `publishDiagnostics` arrives.
//!
//! `cargo bench -p omniflow-compiler --bench lsp -- [ROUNDS]`
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

#[path = "../tests/lsp_client/mod.rs"]
mod lsp_client;

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let flows = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows");
    let (path, text) = std::fs::read_dir(&flows)
        .expect("the reference flows")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "flow"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a reference flow");
            (p, text)
        })
        .max_by_key(|(_, text)| text.len())
        .expect("a reference flow");
    let path = path.canonicalize().expect("its absolute path");
    let mut client = lsp_client::Client::start(&flows.canonicalize().expect("flows"));
    client.open(&path, &text);
    let first = client.diagnostics(&path);
    assert!(
        first.is_empty(),
        "the reference flow has diagnostics: {first:?}"
    );
    // An edit that makes the first flow name start with a digit, then the original again.
    let broken = text.replacen("flow ", "flow 1", 1);
    let (mut broken_times, mut times) = (Vec::new(), Vec::with_capacity(rounds));
    for round in 0..rounds {
        let edited = if round % 2 == 0 { &broken } else { &text };
        let started = Instant::now();
        client.change(&path, round as i32 + 2, edited);
        let diagnostics = client.diagnostics(&path);
        if round % 2 == 0 {
            broken_times.push(started.elapsed());
        } else {
            times.push(started.elapsed());
        }
        assert_eq!(diagnostics.is_empty(), round % 2 == 1, "{diagnostics:?}");
    }
    assert!(client.shutdown());
    for (what, times) in [
        ("the text mended (a whole compile)", &mut times),
        ("a syntax error", &mut broken_times),
    ] {
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "lsp diagnostics after an edit of {} ({} lines) to {what}, {} edits: median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            path.file_name().unwrap_or_default().to_string_lossy(),
            text.lines().count(),
            times.len(),
            at(0.5).as_secs_f64() * 1e3,
            at(0.95).as_secs_f64() * 1e3,
            at(1.0).as_secs_f64() * 1e3,
        );
    }
}
