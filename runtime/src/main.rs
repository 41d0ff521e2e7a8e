//! `omniflow`: the runtime CLI. Thin: parse arguments, run, exit.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
