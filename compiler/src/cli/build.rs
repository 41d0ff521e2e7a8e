//! `omniflowc build`: writes the graph IR, refusing programs with errors.

use super::{compile, EXIT_ERRORS, EXIT_OK, EXIT_USAGE};
use omniflow_compiler::fs::{FileSystem, RealFs};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Files or directories (searched for *.flow).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Where to write the graph (JSON).
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: Args) -> u8 {
    let compilation = match compile(&args.paths) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !compilation.diagnostics.is_empty() {
        super::print_diagnostics(&compilation);
    }
    if compilation.has_errors() {
        eprintln!("error: not written: fix the errors above first");
        return EXIT_ERRORS;
    }
    let json = match omniflow_compiler::ir::json::to_text(&compilation.graph) {
        Ok(json) => json,
        Err(err) => {
            eprintln!("error: cannot serialise the graph: {err}");
            return EXIT_USAGE;
        }
    };
    if let Err(err) = RealFs.write(&args.output, (json + "\n").as_bytes()) {
        eprintln!("error: cannot write `{}`: {err}", args.output.display());
        return EXIT_USAGE;
    }
    eprintln!(
        "wrote {} ({} flows, compiler {})",
        args.output.display(),
        compilation.graph.flows.len(),
        compilation.graph.compiler_version
    );
    EXIT_OK
}
