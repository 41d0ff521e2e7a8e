//! The generic http connector: REST sinks (`post`, `put`, `patch`) and the `get` poll
//! source against a connection's `base_url`.
//!
//! `settings` (typed connection settings), `read` (the `get` pager), `write` (the
//! sinks), `classify` (statuses to outcomes), `declare` (credentials from the settings, and
//! `get` options read as a declared connector's source).

pub mod classify;
pub mod declare;
pub mod read;
pub mod settings;
pub mod write;

pub use classify::{classify, retry_after};
pub use read::HttpGetPager;
pub use settings::Settings;
pub use write::{HttpSink, CORRELATION_HEADER, IDEMPOTENCY_HEADER};

use crate::api::Registry;

/// Registers the http connector's operations.
pub fn register(registry: &mut Registry) {
    for operation in ["post", "put", "patch"] {
        registry.sink("http", operation, |tokens, s, op, o| {
            let mut sink = HttpSink::new(s, op, o)?;
            sink.fetched = declare::token_api(tokens, s)?;
            Ok(Box::new(sink))
        });
    }
    registry.pager("http", "get", |tokens, s, o| {
        if declare::declared_get(o) {
            return crate::declared::pager(tokens, &declare::get(s, o)?, "get", s);
        }
        let mut pager = HttpGetPager::new(s, o)?;
        pager.fetched = declare::token_api(tokens, s)?;
        Ok(Box::new(pager))
    });
}
