//! Command-line interface of `omniflow`: one module per subcommand.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod map;
mod test;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "omniflow", version, about = "Run omniflow flows")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the `test` blocks of flows.
    Test(test::Args),
    /// Run one flow's mapping and routing over a JSONL file, with no state.
    Map(map::Args),
}

/// Parses the arguments and runs the subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Test(args) => test::run(args),
        Command::Map(args) => map::run(args),
    };
    ExitCode::from(code)
}
