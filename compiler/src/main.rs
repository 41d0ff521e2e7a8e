//! `omniflowc`: the .flow compiler CLI. Thin: parse arguments, run, exit 0/1/2.

mod cli;

fn main() -> std::process::ExitCode {
    omniflow_compiler::pipe::exit_quietly_on_broken_pipe();
    cli::run()
}
