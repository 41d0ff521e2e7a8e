//! `omniflowc graph`: draws flows as Mermaid or DOT.

use super::{compile, EXIT_ERRORS, EXIT_OK, EXIT_USAGE};
use clap::ValueEnum;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(clap::Args)]
pub struct Args {
    /// A .flow file or directory.
    path: PathBuf,
    /// Only this flow (default: every flow).
    #[arg(long)]
    flow: Option<String>,
    /// Drawing format.
    #[arg(long, value_enum, default_value = "mermaid")]
    format: GraphFormat,
}

pub fn run(args: Args) -> u8 {
    let compilation = match compile(std::slice::from_ref(&args.path)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if compilation.has_errors() {
        super::print_diagnostics(&compilation);
        return EXIT_ERRORS;
    }
    let flows: Vec<_> = compilation
        .graph
        .flows
        .iter()
        .filter(|f| args.flow.as_ref().is_none_or(|name| &f.name == name))
        .collect();
    if flows.is_empty() {
        eprintln!(
            "error: no flow to draw{}",
            args.flow
                .map(|f| format!(" named `{f}`"))
                .unwrap_or_default()
        );
        return EXIT_USAGE;
    }
    for flow in flows {
        match args.format {
            GraphFormat::Mermaid => print!("{}", omniflow_compiler::graph::mermaid(flow)),
            GraphFormat::Dot => print!("{}", omniflow_compiler::graph::dot(flow)),
        }
    }
    EXIT_OK
}
