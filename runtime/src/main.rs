//! `omniflow`: the runtime CLI. Thin: parse arguments, run, exit.

mod cli;

/// mimalloc: a message's many short-lived allocations (request, headers, tasks, rows) cost
/// a fraction of what they cost in the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    omniflow_compiler::pipe::exit_quietly_on_broken_pipe();
    cli::run()
}
