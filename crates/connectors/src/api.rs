//! What the engine asks of a connector: a sink performs one call and classifies its outcome;
//! a pager reads one API's pages and cursor; a verifier checks webhook deliveries. Each
//! connector registers its builders into the [`Registry`] by (connector, operation).

use crate::signatures::Refusal;
use crate::tokens::TokenCache;
use hyper::HeaderMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How one call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    Ok,
    /// Succeeded, and the target named its record of the result (an ERP sale's id and
    /// number, an OData entity's key, a fulfilment's id), which the lineage keeps.
    Recorded {
        document: String,
    },
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

impl CallOutcome {
    /// A success, naming the target's record when there is one.
    pub fn done(document: Option<String>) -> CallOutcome {
        match document {
            Some(document) => CallOutcome::Recorded { document },
            None => CallOutcome::Ok,
        }
    }

    /// True for [`CallOutcome::Ok`] and [`CallOutcome::Recorded`].
    pub fn succeeded(&self) -> bool {
        matches!(self, CallOutcome::Ok | CallOutcome::Recorded { .. })
    }
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

pub use crate::error::{ConnectorError, Map};

/// A webhook source's check of its deliveries (signature scheme and delivery id).
pub trait Verifier {
    /// Checks a delivery's signature and the headers its vendor always sends.
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal>;

    /// The delivery id duplicates share.
    fn delivery_id(&self, headers: &HeaderMap, body: &[u8]) -> Option<String>;
}

/// Builds a sink: the shared token cache, the resolved settings, the operation and the
/// sink's options.
pub type SinkBuild =
    fn(&TokenCache, &Map, &str, &Map) -> Result<Box<dyn SinkConnector>, ConnectorError>;
/// Builds a pager: the shared token cache, the resolved settings and the source's options.
pub type PagerBuild = fn(&TokenCache, &Map, &Map) -> Result<Box<dyn Pager>, ConnectorError>;
/// Builds a webhook verifier: the source's operation and the resolved settings.
pub type VerifierBuild = fn(&str, &Map) -> Result<Box<dyn Verifier>, ConnectorError>;

/// How a registered operation runs, as `stdlib/connectors/*.flow` declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sink,
    /// A pager: read by a `poll` or a `schedule` source.
    Poll,
    Webhook,
    /// A source the engine reads itself (files in a directory).
    File,
}

impl Kind {
    /// True when an operation of this kind runs a source or sink declared with `declared`
    /// (`sink`, `poll`, `schedule`, `webhook`, `file`, ...).
    pub fn runs(self, declared: &str) -> bool {
        matches!(
            (self, declared),
            (Kind::Sink, "sink")
                | (Kind::Poll, "poll" | "schedule")
                | (Kind::Webhook, "webhook")
                | (Kind::File, "file")
        )
    }
}

/// Every operation this runtime runs, by (connector, operation): each connector's folder
/// registers its sinks, pagers and webhook verifiers here.
#[derive(Default)]
pub struct Registry {
    sinks: Vec<(&'static str, &'static str, SinkBuild)>,
    pagers: Vec<(&'static str, &'static str, PagerBuild)>,
    verifiers: Vec<(&'static str, &'static str, VerifierBuild)>,
    files: Vec<(&'static str, &'static str)>,
}

impl Registry {
    /// Registers the sink `connector.operation`.
    pub fn sink(&mut self, connector: &'static str, operation: &'static str, build: SinkBuild) {
        self.sinks.push((connector, operation, build));
    }

    /// Registers the poll (and `every`-scheduled) source `connector.operation`.
    pub fn pager(&mut self, connector: &'static str, operation: &'static str, build: PagerBuild) {
        self.pagers.push((connector, operation, build));
    }

    /// Registers the webhook source `connector.operation` with its verifier.
    pub fn verifier(
        &mut self,
        connector: &'static str,
        operation: &'static str,
        build: VerifierBuild,
    ) {
        self.verifiers.push((connector, operation, build));
    }

    /// Registers a source the engine reads itself (`file.read`).
    pub fn file_source(&mut self, connector: &'static str, operation: &'static str) {
        self.files.push((connector, operation));
    }

    /// Every registered (connector, operation, kind).
    pub fn operations(&self) -> impl Iterator<Item = (&'static str, &'static str, Kind)> + '_ {
        let sinks = self.sinks.iter().map(|(c, o, _)| (*c, *o, Kind::Sink));
        let pagers = self.pagers.iter().map(|(c, o, _)| (*c, *o, Kind::Poll));
        let hooks = self
            .verifiers
            .iter()
            .map(|(c, o, _)| (*c, *o, Kind::Webhook));
        let files = self.files.iter().map(|(c, o)| (*c, *o, Kind::File));
        sinks.chain(pagers).chain(hooks).chain(files)
    }

    /// True when `connector.operation` runs as declared (`kind`: `sink`, `poll`, ...).
    pub fn implements(&self, connector: &str, operation: &str, kind: &str) -> bool {
        self.operations()
            .any(|(c, o, k)| c == connector && o == operation && k.runs(kind))
    }

    /// The builder of a sink.
    pub fn sink_build(&self, connector: &str, operation: &str) -> Option<SinkBuild> {
        find(&self.sinks, connector, operation)
    }

    /// The builder of a pager.
    pub fn pager_build(&self, connector: &str, operation: &str) -> Option<PagerBuild> {
        find(&self.pagers, connector, operation)
    }

    /// The builder of a webhook verifier.
    pub fn verifier_build(&self, connector: &str, operation: &str) -> Option<VerifierBuild> {
        find(&self.verifiers, connector, operation)
    }
}

fn find<T: Copy>(
    table: &[(&'static str, &'static str, T)],
    connector: &str,
    operation: &str,
) -> Option<T> {
    table
        .iter()
        .find(|(c, o, _)| *c == connector && *o == operation)
        .map(|(_, _, build)| *build)
}
