//! `omniflow test`: runs every `test` block and reports each; exit 1 on a failure.

use omniflow_mapping::testing;
use omniflow_runtime::load::load_pipeline;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// .flow files or directories, or a graph.json.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(args: Args) -> u8 {
    let pipeline = match load_pipeline(&args.paths) {
        Ok(p) => p,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let results = testing::run_all(&pipeline);
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
    u8::from(failed > 0)
}
