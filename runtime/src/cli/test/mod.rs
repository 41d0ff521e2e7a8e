//! `omniflow test`: runs every `test` block and reports each; exit 1 on a failure. A test
//! that gives connector answers or expects requests or dead letters also runs as a
//! whole-flow test (`whole_flow`). `--coverage` reports the nodes, route branches and
//! sinks the tests reach (`coverage`); `--from-recording` replays a recording instead
//! (`super::replay`).

mod coverage;
mod whole_flow;

use omniflow_mapping::pipeline::Pipeline;
use omniflow_mapping::testing;
use omniflow_runtime::load::load_pipeline;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// .flow files or directories, or a graph.json.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Also report which nodes, route branches and sinks the tests reach.
    #[arg(long)]
    coverage: bool,
    /// Replay a recording (`omniflow run --record`) against these flows and report every
    /// output that differs, instead of running the test blocks.
    #[arg(long, value_name = "FILE")]
    from_recording: Option<PathBuf>,
}

pub fn run(args: Args) -> u8 {
    let pipeline = match load_pipeline(&args.paths) {
        Ok(p) => p,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    if let Some(recording) = &args.from_recording {
        return replay(&pipeline, recording);
    }
    let mut results = testing::run_all(&pipeline);
    if let Err(err) = whole_flows(&pipeline, &mut results) {
        eprintln!("error: {err}");
        return 2;
    }
    let mut failed = 0;
    for result in &results {
        match &result.failure {
            None => println!("ok      {} :: {}", result.flow, result.name),
            Some(why) => {
                failed += 1;
                println!(
                    "FAILED  {} :: {}\n        {}",
                    result.flow,
                    result.name,
                    why.replace('\n', "\n        ")
                );
            }
        }
    }
    println!(
        "\n{} tests, {} passed, {failed} failed",
        results.len(),
        results.len() - failed
    );
    if args.coverage {
        print!("{}", coverage::report(&pipeline));
    }
    u8::from(failed > 0)
}

/// Runs the whole-flow part of the tests that have one, adding its failures to theirs.
fn whole_flows(pipeline: &Pipeline, results: &mut [testing::TestResult]) -> Result<(), String> {
    // In the order `run_all` reports them, so a result is found by its place (two tests
    // may share a name).
    let mut wanted = Vec::new();
    let all = pipeline
        .flows
        .iter()
        .flat_map(|f| f.ir.tests.iter().map(move |t| (f, t)));
    for (place, (flow, test)) in all.enumerate() {
        if let Some(calls) = &test.calls {
            wanted.push((place, flow.name.clone(), test.clone(), calls.clone()));
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the runtime: {err}"))?;
    for (place, flow, test, calls) in wanted {
        // One task set a test: what it started (targets, the runner) ends with it.
        let local = tokio::task::LocalSet::new();
        let outcome = local.block_on(
            &runtime,
            whole_flow::run(&pipeline.graph, &flow, &test, &calls),
        );
        drop(local);
        let (Err(why), Some(result)) = (outcome, results.get_mut(place)) else {
            continue;
        };
        result.failure = Some(match result.failure.take() {
            Some(earlier) => format!("{earlier}\n{why}"),
            None => why,
        });
    }
    Ok(())
}

fn replay(pipeline: &Pipeline, recording: &Path) -> u8 {
    let report = match super::replay::replay(pipeline, recording) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    for (correlation, found) in &report.differences {
        println!("DIFFERS {correlation}");
        for difference in found {
            println!("        {difference}");
        }
    }
    println!(
        "\nreplayed {} messages of {}: {} differ, {} the same, {} skipped (not JSON)",
        report.replayed,
        recording.display(),
        report.differences.len(),
        report.replayed - report.differences.len(),
        report.skipped
    );
    u8::from(!report.differences.is_empty())
}
