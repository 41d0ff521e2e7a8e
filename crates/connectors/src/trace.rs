//! The W3C trace context of the sink call being made: the engine sets it around a call
//! ([`scope`]), and the requests connectors send carry it as `traceparent` (through
//! [`crate::client::send`] and the generic http sink's transport).

use std::future::Future;

tokio::task_local! {
    static TRACEPARENT: Option<String>;
}

/// Runs `call` with `traceparent` as the trace context of the requests it sends.
pub async fn scope<F: Future>(traceparent: Option<String>, call: F) -> F::Output {
    TRACEPARENT.scope(traceparent, call).await
}

/// The trace context of the call being made, if any.
pub fn current() -> Option<String> {
    TRACEPARENT.try_with(Clone::clone).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_context_is_seen_inside_its_scope_only() {
        assert_eq!(current(), None);
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string();
        let seen = scope(Some(tp.clone()), async { current() }).await;
        assert_eq!(seen, Some(tp));
        assert_eq!(current(), None);
    }
}
