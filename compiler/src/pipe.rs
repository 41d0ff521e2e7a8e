//! Output into a closed pipe (`omniflowc check | head -1`): the process ends quietly, as
//! a Unix filter does on SIGPIPE, instead of panicking in `println!`.

/// The exit status of a process ended by SIGPIPE (128 + 13).
pub const BROKEN_PIPE_EXIT: i32 = 141;

/// Installs a panic hook that ends the process with [`BROKEN_PIPE_EXIT`] when standard
/// output was closed by its reader; every other panic goes to the previous hook.
pub fn exit_quietly_on_broken_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        previous(info);
    }));
}
