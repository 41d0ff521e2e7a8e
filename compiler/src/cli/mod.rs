//! Command-line interface of `omniflowc`: one module per subcommand.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod build;
mod check;
mod fmt;
mod graph;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for a clean run (warnings allowed).
pub const EXIT_OK: u8 = 0;
/// Exit code when diagnostics contain errors.
pub const EXIT_ERRORS: u8 = 1;
/// Exit code for usage and I/O problems.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "omniflowc",
    version,
    about = "Check, build, format and draw omniflow .flow files; serve them to editors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Report every error and warning in the given files and directories.
    Check(check::Args),
    /// Compile flows into the graph IR that `omniflow run` loads.
    Build(build::Args),
    /// Format files in place (or only check that they are formatted).
    Fmt(fmt::Args),
    /// Draw a flow as Mermaid or Graphviz DOT.
    Graph(graph::Args),
    /// Run the language server on stdin and stdout (for editors).
    Lsp,
}

/// Parses the arguments and runs the subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Build(args) => build::run(args),
        Command::Fmt(args) => fmt::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Lsp => match omniflow_compiler::lsp::serve_stdio() {
            Ok(()) => EXIT_OK,
            Err(err) => {
                eprintln!("error: {err}");
                EXIT_USAGE
            }
        },
    };
    ExitCode::from(code)
}

/// Compiles paths, printing an I/O problem and returning exit 2 on failure.
fn compile(paths: &[PathBuf]) -> Result<omniflow_compiler::Compilation, u8> {
    omniflow_compiler::compile_paths(paths).map_err(|err| {
        eprintln!("error: {err}");
        EXIT_USAGE
    })
}

/// Writes a compilation's diagnostics to stderr (no colour) for the commands whose stdout
/// carries their product.
fn print_diagnostics(compilation: &omniflow_compiler::Compilation) {
    use omniflow_compiler::diagnostics::render::{render, Format};
    eprint!(
        "{}",
        render(
            &compilation.diagnostics,
            &compilation.sources,
            Format::Human,
            false
        )
    );
}
