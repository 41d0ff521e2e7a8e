//! `omniflowc check`: every diagnostic in one run, in the chosen format.

use super::{compile, EXIT_ERRORS, EXIT_OK};
use clap::ValueEnum;
use omniflow_compiler::diagnostics::render::{render, Format};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
    Sarif,
    Github,
}

#[derive(clap::Args)]
pub struct Args {
    /// Files or directories (searched for *.flow).
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: OutputFormat,
}

pub fn run(args: Args) -> u8 {
    let compilation = match compile(&args.paths) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let format = match args.format {
        OutputFormat::Human => Format::Human,
        OutputFormat::Json => Format::Json,
        OutputFormat::Sarif => Format::Sarif,
        OutputFormat::Github => Format::Github,
    };
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!(
        "{}",
        render(
            &compilation.diagnostics,
            &compilation.sources,
            format,
            color
        )
    );
    let errors = compilation
        .diagnostics
        .iter()
        .filter(|d| d.severity == omniflow_compiler::diagnostics::Severity::Error)
        .count();
    let warnings = compilation.diagnostics.len() - errors;
    if matches!(args.format, OutputFormat::Human) {
        let n_flows = compilation.graph.flows.len();
        let n_tests: usize = compilation.graph.flows.iter().map(|f| f.tests.len()).sum();
        println!(
            "checked {} file{} ({n_flows} flow{}, {n_tests} test{}): {errors} error{}, {warnings} warning{}",
            compilation.files.len(),
            plural(compilation.files.len()),
            plural(n_flows),
            plural(n_tests),
            plural(errors),
            plural(warnings),
        );
    }
    // The process ends here: freeing the graph and the sources value by value would only
    // delay the exit (a twentieth of a large check); the system takes the memory back whole.
    std::mem::forget(compilation);
    if errors > 0 {
        EXIT_ERRORS
    } else {
        EXIT_OK
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
