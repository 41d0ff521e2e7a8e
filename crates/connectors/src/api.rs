//! What the engine asks of a connector: a sink performs one call and classifies its outcome;
//! a pager reads one API's pages and cursor.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How one call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    Ok,
    /// Worth retrying; `class` is `timeout`, `connect`, `rate_limited`, `server_error`
    /// or a named connector error.
    Transient {
        class: String,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help; the reason goes to the dead letter.
    Permanent {
        reason: String,
    },
}

/// One outbound call of a sink.
pub struct Call<'a> {
    pub key: &'a str,
    pub correlation_id: &'a str,
    pub body: &'a [u8],
    pub timeout: Duration,
}

/// A boxed future, as connectors return them.
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = CallOutcome> + 'a>>;

/// A sink operation of a connector.
pub trait SinkConnector {
    /// Performs the side effect for one message.
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a>;

    /// How long the system asks its callers to hold back now, read from the rate-limit
    /// headers of its latest answer (Shopify's call-limit bucket nearly full, say).
    fn backoff(&self) -> Option<Duration> {
        None
    }
}

/// One page read from an API.
pub struct Page {
    /// Items with their dedupe key (`None`: always appended).
    pub items: Vec<(Vec<u8>, Option<String>)>,
    /// The cursor after this page (committed with the items).
    pub position: Option<String>,
    /// True when another page follows right away.
    pub more: bool,
}

/// A boxed page future.
pub type PageFuture<'a> = Pin<Box<dyn Future<Output = Result<Page, String>> + 'a>>;

/// One API's way of reading pages.
pub trait Pager {
    /// Reads the page after `position` (the committed cursor, or the previous page's).
    /// `first` is true for the first page of a poll.
    fn page<'a>(&'a self, position: Option<&'a str>, first: bool) -> PageFuture<'a>;

    /// Told the dedupe keys of a page once it is durable (a pager may skip work for them
    /// on later reads).
    fn committed(&self, _keys: &[String]) {}
}
