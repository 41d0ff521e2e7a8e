//! `omniflowc fmt`: formats files in place, or lists the ones that would change.

use super::{EXIT_ERRORS, EXIT_OK, EXIT_USAGE};
use omniflow_compiler::fs::RealFs;
use omniflow_compiler::{fmt::format_source, source};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Files or directories (searched for *.flow).
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// Do not write; exit 1 if any file is not formatted.
    #[arg(long)]
    check: bool,
}

pub fn run(args: Args) -> u8 {
    let files = match source::collect_flow_files(&RealFs, &args.paths) {
        Ok(files) => files,
        Err(err) => {
            eprintln!("error: {err}");
            return EXIT_USAGE;
        }
    };
    let mut failed = false;
    let mut changed = 0;
    for file in &files {
        let text = match source::read_text(&RealFs, file) {
            Ok(text) => text,
            Err(err) => {
                eprintln!("error: {err}");
                return EXIT_USAGE;
            }
        };
        let formatted = match format_source(&text) {
            Ok(formatted) => formatted,
            Err(err) => {
                eprintln!("error: {}: {err}", file.display());
                failed = true;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        changed += 1;
        if args.check {
            println!("would reformat {}", file.display());
        } else if let Err(err) = source::write_in_place(&RealFs, file, &formatted) {
            eprintln!("error: {err}");
            return EXIT_USAGE;
        }
    }
    let verb = if args.check {
        "would reformat"
    } else {
        "reformatted"
    };
    eprintln!(
        "{verb} {changed} of {} file{}",
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    );
    if failed || (args.check && changed > 0) {
        EXIT_ERRORS
    } else {
        EXIT_OK
    }
}
