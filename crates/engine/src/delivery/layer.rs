//! Delivery as layers around a connector call, each doing one thing: [`Timeout`] bounds
//! the call, [`RateLimit`] waits for tokens and obeys the system's pressure and
//! Retry-After, [`Breaker`] holds calls while the endpoint keeps failing, and [`Retry`]
//! repeats transient failures per policy with backoff. A [`Service`] is asked to get
//! [`ready`](Service::ready) (the waits) before each [`call`](Service::call), so a caller
//! can build its request after the waits (the ledger publisher reads the latest value
//! then). Sink workers and ledger publishers deliver through the same [`Stack`], with the
//! same metrics, labelled by their [`Scope`].

use super::circuit::Circuit;
use super::rate_limit::TokenBucket;
use super::retry::{self, Jitter};
use crate::ops::metrics::{Metrics, CIRCUIT_OPEN, RETRIES};
use omniflow_connectors::{Call, CallOutcome, SinkConnector};
use omniflow_ir::RetryPolicy;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Longest wait a Retry-After header (or a pressure signal) can impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// How long past its own timeout a connector may take before [`Timeout`] gives up on it.
const GRACE: Duration = Duration::from_secs(1);

/// Who delivers: the labels of its metrics and logs (`flow`, `node`: a flow and its sink,
/// or a ledger and its channel) and the metrics they go to.
pub struct Scope {
    pub flow: String,
    pub node: String,
    pub metrics: Rc<Metrics>,
}

impl Scope {
    /// Adds to a counter labelled with this scope.
    pub fn add(&self, name: &'static str, by: u64) {
        self.metrics.add(name, &self.flow, &self.node, by);
    }
}

/// One call: what the connector receives.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub key: &'a str,
    pub correlation_id: &'a str,
    pub body: &'a [u8],
    /// Set by [`Timeout`].
    pub timeout: Duration,
}

impl<'a> Request<'a> {
    /// A request without a timeout yet.
    pub fn new(key: &'a str, correlation_id: &'a str, body: &'a [u8]) -> Request<'a> {
        Request {
            key,
            correlation_id,
            body,
            timeout: Duration::ZERO,
        }
    }
}

/// One layer of delivery (or the connector at the bottom).
pub trait Service {
    /// Waits until a call may go out.
    fn ready(&self) -> impl Future<Output = ()>;
    /// A caller that got [`ready`](Service::ready) makes no call after all.
    fn release(&self) {}
    /// Makes one call.
    fn call<'a>(&'a self, request: &'a Request<'a>) -> impl Future<Output = CallOutcome>;
    /// The system's own pressure signal after the last call: how long to hold calls.
    fn pressure(&self) -> Option<Duration> {
        None
    }
}

/// The connector, at the bottom of every stack; observes each call's latency.
pub struct Connector {
    connector: Box<dyn SinkConnector>,
    scope: Rc<Scope>,
}

impl Connector {
    /// Wraps a connector.
    pub fn new(connector: Box<dyn SinkConnector>, scope: Rc<Scope>) -> Connector {
        Connector { connector, scope }
    }
}

impl Service for Connector {
    async fn ready(&self) {}

    async fn call<'a>(&'a self, request: &'a Request<'a>) -> CallOutcome {
        let started = Instant::now();
        let outcome = self
            .connector
            .call(Call {
                key: request.key,
                correlation_id: request.correlation_id,
                body: request.body,
                timeout: request.timeout,
            })
            .await;
        self.scope.metrics.observe_latency(
            &self.scope.flow,
            &self.scope.node,
            started.elapsed().as_secs_f64(),
        );
        outcome
    }

    fn pressure(&self) -> Option<Duration> {
        self.connector.backoff()
    }
}

/// Gives every call its timeout and bounds a connector that does not keep it.
pub struct Timeout<S> {
    inner: S,
    limit: Duration,
}

impl<S: Service> Timeout<S> {
    /// Calls get `limit`.
    pub fn new(inner: S, limit: Duration) -> Timeout<S> {
        Timeout { inner, limit }
    }
}

impl<S: Service> Service for Timeout<S> {
    fn ready(&self) -> impl Future<Output = ()> {
        self.inner.ready()
    }

    fn release(&self) {
        self.inner.release()
    }

    async fn call<'a>(&'a self, request: &'a Request<'a>) -> CallOutcome {
        let request = Request {
            timeout: self.limit,
            ..*request
        };
        match tokio::time::timeout(self.limit + GRACE, self.inner.call(&request)).await {
            Ok(outcome) => outcome,
            Err(_) => CallOutcome::Transient {
                class: "timeout".into(),
                reason: format!("no answer within {}s", self.limit.as_secs()),
                retry_after: None,
            },
        }
    }

    fn pressure(&self) -> Option<Duration> {
        self.inner.pressure()
    }
}

/// Token buckets: the caller's own and its connection's (shared with every other caller
/// of the connection). A pressure signal, or a 429 with Retry-After, pauses both.
pub struct RateLimit<S> {
    inner: S,
    own: TokenBucket,
    connection: Option<Rc<TokenBucket>>,
    /// Pauses pass at once (a whole-flow test's virtual clock).
    instant: bool,
}

impl<S: Service> RateLimit<S> {
    /// Limits calls by `own`, then by the connection's bucket.
    pub fn new(inner: S, own: TokenBucket, connection: Option<Rc<TokenBucket>>) -> RateLimit<S> {
        RateLimit {
            inner,
            own,
            connection,
            instant: false,
        }
    }

    fn pause(&self, wait: Duration) {
        if self.instant {
            return;
        }
        let wait = wait.min(MAX_RETRY_AFTER);
        self.own.pause(wait);
        if let Some(shared) = &self.connection {
            shared.pause(wait);
        }
    }
}

impl<S: Service> Service for RateLimit<S> {
    async fn ready(&self) {
        self.own.acquire().await;
        if let Some(shared) = &self.connection {
            shared.acquire().await;
        }
        self.inner.ready().await;
    }

    fn release(&self) {
        self.inner.release()
    }

    async fn call<'a>(&'a self, request: &'a Request<'a>) -> CallOutcome {
        let outcome = self.inner.call(request).await;
        // The system's own pressure signal slows every caller of the connection before
        // it has to answer 429.
        if let Some(wait) = self.inner.pressure() {
            self.pause(wait);
        }
        if let CallOutcome::Transient {
            class,
            retry_after: Some(wait),
            ..
        } = &outcome
        {
            if class == "rate_limited" {
                self.pause(*wait);
            }
        }
        outcome
    }

    fn pressure(&self) -> Option<Duration> {
        self.inner.pressure()
    }
}

/// The circuit breaker: after repeated transient failures, calls wait for a cool-down
/// and one trial call; its state shows as [`CIRCUIT_OPEN`].
pub struct Breaker<S> {
    inner: S,
    circuit: Circuit,
    scope: Rc<Scope>,
}

impl<S: Service> Breaker<S> {
    /// A closed breaker.
    pub fn new(inner: S, scope: Rc<Scope>) -> Breaker<S> {
        Breaker {
            inner,
            circuit: Circuit::default(),
            scope,
        }
    }

    /// True while calls are held back.
    pub fn is_open(&self) -> bool {
        self.circuit.is_open()
    }

    fn show(&self) {
        let open = i64::from(self.circuit.is_open());
        let scope = &self.scope;
        scope
            .metrics
            .set_node_gauge(CIRCUIT_OPEN, &scope.flow, &scope.node, open);
    }
}

impl<S: Service> Service for Breaker<S> {
    async fn ready(&self) {
        self.circuit.wait().await;
        self.inner.ready().await;
    }

    fn release(&self) {
        self.circuit.release();
        self.inner.release()
    }

    async fn call<'a>(&'a self, request: &'a Request<'a>) -> CallOutcome {
        let outcome = self.inner.call(request).await;
        match &outcome {
            // A permanent failure is an answer: the endpoint is up, whatever it thought
            // of this message.
            CallOutcome::Ok | CallOutcome::Recorded { .. } | CallOutcome::Permanent { .. } => {
                self.circuit.success()
            }
            CallOutcome::Transient { .. } => self.circuit.failure(),
        }
        self.show();
        outcome
    }

    fn pressure(&self) -> Option<Duration> {
        self.inner.pressure()
    }
}

/// How a delivery ended after its retries.
pub enum Final {
    /// The call succeeded after the failed `attempts` (one line each, as in
    /// [`Failure::attempts`]); `document` is the target's record of the result.
    Delivered {
        attempts: Vec<String>,
        document: Option<String>,
    },
    /// The call cannot succeed (permanent, not retried by the policy, or out of
    /// attempts).
    Failed(Failure),
}

/// Why a delivery failed, and every attempt it made.
pub struct Failure {
    pub reason: String,
    /// One line per attempt: `SECS attempt N: CLASS: REASON`.
    pub attempts: Vec<String>,
    /// True when the last failure was transient (the endpoint may take it later).
    pub transient: bool,
}

/// Repeats transient failures per the retry policy, with backoff (or Retry-After).
pub struct Retry<S> {
    inner: S,
    policy: RetryPolicy,
    jitter: Jitter,
    scope: Rc<Scope>,
    /// Back-offs pass at once (a whole-flow test's virtual clock).
    instant: bool,
}

impl<S: Service> Retry<S> {
    /// Retries per `policy`.
    pub fn new(inner: S, policy: RetryPolicy, scope: Rc<Scope>) -> Retry<S> {
        Retry {
            inner,
            jitter: Jitter::seeded(&format!("{}/{}", scope.flow, scope.node)),
            policy,
            scope,
            instant: false,
        }
    }

    /// The retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The wait before attempt `attempt + 1`, per the policy.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        retry::delay(&self.policy, attempt, retry_after, &self.jitter)
    }

    /// The layers below.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Waits until the first call may go out.
    pub fn ready(&self) -> impl Future<Output = ()> + '_ {
        self.inner.ready()
    }

    /// The caller that got [`ready`](Retry::ready) makes no call after all.
    pub fn release(&self) {
        self.inner.release()
    }

    /// Delivers `request`: its first call once [`ready`](Retry::ready) returned, the
    /// retries each after their backoff and their own wait for readiness.
    pub async fn run(&self, request: &Request<'_>) -> Final {
        let mut attempts: Vec<String> = Vec::new();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                self.inner.ready().await;
            }
            // Only exported traces show attempts (the log has the failures already).
            let span = match crate::ops::telemetry::exporting() {
                true => tracing::info_span!(
                    "attempt",
                    attempt,
                    flow = %self.scope.flow,
                    node = %self.scope.node,
                    outcome = tracing::field::Empty,
                ),
                false => tracing::Span::none(),
            };
            let traceparent = crate::ops::telemetry::traceparent(&span);
            let outcome = omniflow_connectors::trace::scope(traceparent, self.inner.call(request))
                .instrument(span.clone())
                .await;
            span.record(
                "outcome",
                match &outcome {
                    CallOutcome::Ok | CallOutcome::Recorded { .. } => "ok",
                    CallOutcome::Transient { .. } => "transient",
                    CallOutcome::Permanent { .. } => "permanent",
                },
            );
            match outcome {
                CallOutcome::Ok => {
                    return Final::Delivered {
                        attempts,
                        document: None,
                    }
                }
                CallOutcome::Recorded { document } => {
                    return Final::Delivered {
                        attempts,
                        document: Some(document),
                    }
                }
                CallOutcome::Permanent { reason } => {
                    attempts.push(format!(
                        "{} attempt {attempt}: permanent: {reason}",
                        omniflow_state::now_secs()
                    ));
                    return Final::Failed(Failure {
                        reason,
                        attempts,
                        transient: false,
                    });
                }
                CallOutcome::Transient {
                    class,
                    reason,
                    retry_after,
                } => {
                    attempts.push(format!(
                        "{} attempt {attempt}: {class}: {reason}",
                        omniflow_state::now_secs()
                    ));
                    let gave_up = if !self.policy.transient.contains(&class) {
                        Some(format!(
                            "{reason} ({class} is not retried by policy `{}`)",
                            self.policy.name
                        ))
                    } else if attempt >= self.policy.attempts {
                        Some(format!("{reason} (gave up after {attempt} attempts)"))
                    } else {
                        None
                    };
                    if let Some(reason) = gave_up {
                        return Final::Failed(Failure {
                            reason,
                            attempts,
                            transient: true,
                        });
                    }
                    self.scope.add(RETRIES, 1);
                    let wait = self.delay(attempt, retry_after.map(|d| d.min(MAX_RETRY_AFTER)));
                    tracing::warn!(correlation_id = %request.correlation_id, flow = %self.scope.flow, node = %self.scope.node, attempt, class = %class, wait_ms = wait.as_millis() as u64, "transient failure; retrying");
                    if !self.instant {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }
}

/// Every layer, outermost first: retries, the breaker, rate limits, the timeout, the
/// connector.
pub type Stack = Retry<Breaker<RateLimit<Timeout<Connector>>>>;

/// What a [`Stack`] is built from.
pub struct Settings {
    pub policy: RetryPolicy,
    pub timeout: Duration,
    /// The caller's own bucket.
    pub bucket: TokenBucket,
    /// The connection's bucket, shared with its other callers.
    pub connection_bucket: Option<Rc<TokenBucket>>,
    /// Back-offs and rate limits pass at once (a whole-flow test's virtual clock).
    pub instant: bool,
}

/// Builds the layers around a connector.
pub fn stack(connector: Box<dyn SinkConnector>, scope: Rc<Scope>, settings: Settings) -> Stack {
    let call = Connector::new(connector, scope.clone());
    let timed = Timeout::new(call, settings.timeout);
    let (bucket, connection_bucket) = match settings.instant {
        true => (TokenBucket::new(None, None), None),
        false => (settings.bucket, settings.connection_bucket),
    };
    let mut limited = RateLimit::new(timed, bucket, connection_bucket);
    limited.instant = settings.instant;
    let breaker = Breaker::new(limited, scope.clone());
    let mut retry = Retry::new(breaker, settings.policy, scope);
    retry.instant = settings.instant;
    retry
}

#[cfg(test)]
mod tests {
    use super::*;
    use omniflow_connectors::CallFuture;
    use std::cell::Cell;

    /// Answers every call with a clone of `answer`, or never when it is `None`.
    struct Fixed {
        answer: Option<fn() -> CallOutcome>,
        calls: Rc<Cell<u32>>,
    }

    impl SinkConnector for Fixed {
        fn call<'a>(&'a self, _: Call<'a>) -> CallFuture<'a> {
            self.calls.set(self.calls.get() + 1);
            match self.answer {
                Some(answer) => Box::pin(async move { answer() }),
                None => Box::pin(std::future::pending()),
            }
        }
    }

    fn scope() -> Rc<Scope> {
        Rc::new(Scope {
            flow: "orders".into(),
            node: "erp".into(),
            metrics: Rc::default(),
        })
    }

    fn connector(answer: Option<fn() -> CallOutcome>) -> (Connector, Rc<Cell<u32>>) {
        let calls = Rc::new(Cell::new(0));
        let fixed = Fixed {
            answer,
            calls: calls.clone(),
        };
        (Connector::new(Box::new(fixed), scope()), calls)
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_timeout_ends_a_call_the_connector_never_answers() {
        let (call, _) = connector(None);
        let timed = Timeout::new(call, Duration::from_secs(2));
        let outcome = timed.call(&Request::new("k", "c", b"{}")).await;
        match outcome {
            CallOutcome::Transient { class, reason, .. } => {
                assert_eq!(class, "timeout");
                assert_eq!(reason, "no answer within 2s");
            }
            _ => panic!("a call without an answer is a transient timeout"),
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_429_with_retry_after_holds_the_caller_and_its_connection() {
        fn limited() -> CallOutcome {
            CallOutcome::Transient {
                class: "rate_limited".into(),
                reason: "429".into(),
                retry_after: Some(Duration::from_secs(7)),
            }
        }
        let (call, calls) = connector(Some(limited));
        let connection = Rc::new(TokenBucket::new(None, None));
        let limit = RateLimit::new(call, TokenBucket::new(None, None), Some(connection.clone()));
        limit.ready().await;
        limit.call(&Request::new("k", "c", b"{}")).await;
        assert_eq!(calls.get(), 1);
        let started = tokio::time::Instant::now();
        connection.acquire().await;
        assert!(started.elapsed() >= Duration::from_secs(7));
        let again = tokio::time::Instant::now();
        limit.ready().await;
        assert_eq!(again.elapsed(), Duration::ZERO, "the pause is over");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn retry_gives_up_after_the_policys_attempts_and_counts_its_retries() {
        fn failing() -> CallOutcome {
            CallOutcome::Transient {
                class: "server_error".into(),
                reason: "503".into(),
                retry_after: None,
            }
        }
        let (call, calls) = connector(Some(failing));
        let scope = scope();
        let policy = RetryPolicy {
            attempts: 3,
            ..retry::default_policy()
        };
        let retry = Retry::new(call, policy, scope.clone());
        retry.ready().await;
        match retry.run(&Request::new("k", "c", b"{}")).await {
            Final::Failed(failure) => {
                assert!(failure.transient);
                assert_eq!(failure.attempts.len(), 3);
                assert!(failure.reason.ends_with("(gave up after 3 attempts)"));
            }
            Final::Delivered { .. } => panic!("every call failed"),
        }
        assert_eq!(calls.get(), 3);
        assert_eq!(scope.metrics.get(RETRIES, "orders", "erp"), 2);
    }

    /// A 2xx answer the connector could not read is retried by the default policy, not
    /// dead-lettered: whether the call took effect is unknown until a later attempt tells.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn an_unreadable_answer_is_retried_by_the_default_policy() {
        thread_local!(static CALLS: Cell<u32> = const { Cell::new(0) });
        fn spoiled_once() -> CallOutcome {
            CALLS.with(|calls| {
                calls.set(calls.get() + 1);
                match calls.get() {
                    1 => CallOutcome::Transient {
                        class: "unreadable_answer".into(),
                        reason: "the 200 answer is not JSON".into(),
                        retry_after: None,
                    },
                    _ => CallOutcome::Ok,
                }
            })
        }
        let (call, calls) = connector(Some(spoiled_once));
        let retry = Retry::new(call, retry::default_policy(), scope());
        retry.ready().await;
        match retry.run(&Request::new("k", "c", b"{}")).await {
            Final::Delivered { .. } => {}
            Final::Failed(failure) => panic!("dead-lettered: {}", failure.reason),
        }
        assert_eq!(calls.get(), 2);
    }
}
