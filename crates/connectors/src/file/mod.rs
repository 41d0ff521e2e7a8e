//! Files: JSONL/CSV lines as a source, JSONL appends as a sink.
//!
//! `settings` (typed connection settings), `read` (matching files and reading their
//! lines), `write` (the append sink). No `auth.rs` (files need no credentials) and no
//! `classify.rs` (a failed append is transient, in `write`).

pub mod read;
pub mod settings;
pub mod write;

pub use read::*;
pub use settings::Settings;
pub use write::FileSink;

use crate::api::Registry;

/// Registers the file connector's operations.
pub fn register(registry: &mut Registry) {
    registry.sink("file", "write", |_, s, _, o| {
        Ok(Box::new(FileSink::new(&Settings::parse(s)?, o)?))
    });
    registry.file_source("file", "read");
}
