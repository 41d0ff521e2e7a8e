//! `omniflowc`: the .flow compiler CLI. Thin: parse arguments, run, exit 0/1/2.

mod cli;

/// mimalloc, as in `omniflow`: parsing and checking make many small, short-lived
/// allocations (pairs, spans, AST nodes), which cost about twice as much in the system
/// allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    omniflow_compiler::pipe::exit_quietly_on_broken_pipe();
    cli::run()
}
