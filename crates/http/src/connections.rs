//! Open connections of one server: their deadlines (idle keep-alive, request head, body),
//! the cap on how many are open and on the request bodies they hold in memory. At either
//! cap the connection that has waited longest (for a request, or for the rest of its body)
//! is closed to make room; connections whose request is being handled never are.

use serde::Deserialize;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a WARN about the cap waits before it is repeated.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Request body bytes one server holds in memory at once (sixteen of the largest bodies):
/// beyond it, the body waiting longest is dropped to make room.
pub const MAX_BUFFERED: usize = 16 * omniflow_ir::MAX_WEBHOOK_BODY_BYTES as usize;

/// How long a body waits for room under [`MAX_BUFFERED`] before it is refused (503).
const ROOM_WAIT: Duration = Duration::from_secs(2);

/// The deadlines and the connection cap of a server (`servers:` in `omniflow.yaml`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connections open at once, per server.
    pub max_connections: usize,
    /// From a request's first byte until its head (request line and headers) is read.
    pub header_timeout: Timeout,
    /// From the end of the head until the whole body is read.
    pub body_timeout: Timeout,
    /// A keep-alive connection waiting for its next request (or a new one for its first).
    pub idle_timeout: Timeout,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 512,
            header_timeout: Timeout(Duration::from_secs(10)),
            body_timeout: Timeout(Duration::from_secs(30)),
            idle_timeout: Timeout(Duration::from_secs(60)),
        }
    }
}

impl Limits {
    /// Refuses a cap outside 1 to 65,536.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=65_536).contains(&self.max_connections) {
            return Err(format!(
                "`servers.max_connections: {}` is outside 1 to 65536",
                self.max_connections
            ));
        }
        Ok(())
    }
}

/// A deadline between 100ms and 1h, written `500ms`, `10s` or `2m`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(try_from = "String")]
pub struct Timeout(pub Duration);

impl TryFrom<String> for Timeout {
    type Error = String;

    fn try_from(text: String) -> Result<Timeout, String> {
        let bad = || {
            format!(
                "`{text}` is not a timeout; write a whole number and a unit, like 500ms, 10s or 2m"
            )
        };
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = text.split_at(split);
        let n: u64 = number.parse().map_err(|_| bad())?;
        let millis = match unit {
            "ms" => n,
            "s" => n.saturating_mul(1_000),
            "m" => n.saturating_mul(60_000),
            _ => return Err(bad()),
        };
        if !(100..=3_600_000).contains(&millis) {
            return Err(format!("timeout `{text}` is outside 100ms to 1h"));
        }
        Ok(Timeout(Duration::from_millis(millis)))
    }
}

/// What a connection is doing, which decides its deadline.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for the first byte of a request, since then.
    Idle(Instant),
    /// Reading a request head, since its first byte.
    Head(Instant),
    /// Reading a request body, since its last bytes arrived (or the end of its head); the
    /// body's deadline is the handler's.
    Body(Instant),
    /// Handling a request whose body is read.
    Busy,
}

/// One open connection, shared by its reader, its request handler and the table.
pub struct Conn {
    phase: Cell<Phase>,
    /// Asked to close to make room for a new connection.
    evicted: Cell<bool>,
    /// Body bytes this connection holds under [`MAX_BUFFERED`].
    held: Cell<usize>,
    changed: Notify,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            phase: Cell::new(Phase::Idle(Instant::now())),
            evicted: Cell::new(false),
            held: Cell::new(0),
            changed: Notify::new(),
        }
    }

    fn set(&self, phase: Phase) {
        self.phase.set(phase);
        self.changed.notify_one();
    }

    /// A request's head has been read, or more of its body arrived: its body is being read.
    pub fn reading_body(&self) {
        self.set(Phase::Body(Instant::now()));
    }

    /// A request's body has been read: it is being handled.
    pub fn busy(&self) {
        self.set(Phase::Busy);
    }

    /// The request was answered: the connection waits for the next one.
    pub fn idle(&self) {
        self.set(Phase::Idle(Instant::now()));
    }

    /// Resolves when the connection must close: a deadline passed or it was evicted.
    pub async fn closing(&self, limits: &Limits) -> &'static str {
        loop {
            if self.evicted.get() {
                return "closed to make room at the connection cap";
            }
            let (deadline, why) = match self.phase.get() {
                Phase::Idle(since) => (Some(since + limits.idle_timeout.0), "idle timeout"),
                Phase::Head(since) => (Some(since + limits.header_timeout.0), "header timeout"),
                Phase::Body(_) | Phase::Busy => (None, ""),
            };
            match deadline {
                Some(deadline) if Instant::now() >= deadline => return why,
                Some(deadline) => tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {}
                    _ = self.changed.notified() => {}
                },
                None => self.changed.notified().await,
            }
        }
    }

    /// The time a waiting connection has waited since (for a request or for the rest of
    /// its body); `None` while its request is handled.
    fn waiting_since(&self) -> Option<Instant> {
        match self.phase.get() {
            Phase::Idle(since) | Phase::Head(since) | Phase::Body(since) => Some(since),
            Phase::Busy => None,
        }
    }

    /// Since when a connection has been reading a body, if it is.
    fn body_since(&self) -> Option<Instant> {
        match self.phase.get() {
            Phase::Body(since) => Some(since),
            _ => None,
        }
    }
}

/// The open connections of one server.
pub struct Table {
    limits: Limits,
    open: RefCell<BTreeMap<u64, Rc<Conn>>>,
    next_id: Cell<u64>,
    freed: Notify,
    warned: Cell<Option<Instant>>,
    name: &'static str,
    /// Request body bytes held by the connections (at most [`MAX_BUFFERED`]).
    buffered: Cell<usize>,
    max_buffered: usize,
    bytes_freed: Notify,
}

impl Table {
    /// An empty table for a server called `name` in logs.
    pub fn new(name: &'static str, limits: Limits) -> Table {
        Table {
            limits,
            open: RefCell::default(),
            next_id: Cell::new(0),
            freed: Notify::new(),
            warned: Cell::new(None),
            name,
            buffered: Cell::new(0),
            max_buffered: MAX_BUFFERED,
            bytes_freed: Notify::new(),
        }
    }

    /// Takes room for `bytes` more of a request body held by `conn`: when the server's
    /// bodies would pass [`MAX_BUFFERED`], bodies that have waited longest for their next
    /// bytes (other connections', holding some) are dropped, no more of them than the room
    /// asked for needs, and this one waits for their memory, a while. False when there is no
    /// room (the request is refused).
    pub async fn hold(&self, conn: &Conn, bytes: usize) -> bool {
        let deadline = Instant::now() + ROOM_WAIT;
        loop {
            let buffered = self.buffered.get();
            if buffered + bytes <= self.max_buffered {
                self.buffered.set(buffered + bytes);
                conn.held.set(conn.held.get() + bytes);
                return true;
            }
            // Memory already on its way back: bodies closed and not yet dropped.
            let leaving: usize = self
                .open
                .borrow()
                .values()
                .filter(|other| other.evicted.get())
                .map(|other| other.held.get())
                .sum();
            if buffered.saturating_sub(leaving) + bytes > self.max_buffered {
                self.evict_longest_body(conn);
            }
            tokio::select! {
                _ = self.bytes_freed.notified() => {}
                _ = tokio::time::sleep_until(deadline) => return false,
            }
        }
    }

    /// Gives back the room `conn` took with [`Table::hold`].
    pub fn unhold(&self, conn: &Conn) {
        let bytes = conn.held.replace(0);
        if bytes > 0 {
            self.buffered.set(self.buffered.get().saturating_sub(bytes));
            self.bytes_freed.notify_waiters();
        }
    }

    /// Closes the connection (other than `asking`) whose body has waited longest for its
    /// next bytes, among those holding some.
    fn evict_longest_body(&self, asking: &Conn) {
        let open = self.open.borrow();
        let oldest = open
            .iter()
            .filter(|(_, other)| {
                !std::ptr::eq(Rc::as_ptr(other), asking)
                    && !other.evicted.get()
                    && other.held.get() > 0
            })
            .filter_map(|(id, other)| other.body_since().map(|since| (since, *id)))
            .min();
        if let Some(conn) = oldest.and_then(|(_, id)| open.get(&id)) {
            conn.evicted.set(true);
            conn.changed.notify_one();
        }
    }

    /// The limits this table applies.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Waits for room under the cap (closing the longest-waiting connection when every
    /// slot is taken), then registers a new connection.
    pub async fn admit(&self) -> (u64, Rc<Conn>) {
        while self.open.borrow().len() >= self.limits.max_connections {
            self.warn_at_cap();
            if !self.evict_longest_waiting() {
                self.freed.notified().await;
            }
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let conn = Rc::new(Conn::new());
        self.open.borrow_mut().insert(id, conn.clone());
        (id, conn)
    }

    /// Forgets a closed connection.
    pub fn release(&self, id: u64) {
        if self.open.borrow_mut().remove(&id).is_some() {
            self.freed.notify_one();
        }
    }

    fn evict_longest_waiting(&self) -> bool {
        let mut open = self.open.borrow_mut();
        let oldest = open
            .iter()
            .filter_map(|(id, conn)| conn.waiting_since().map(|since| (since, *id)))
            .min();
        let Some((_, id)) = oldest else {
            return false;
        };
        if let Some(conn) = open.remove(&id) {
            conn.evicted.set(true);
            conn.changed.notify_one();
        }
        true
    }

    fn warn_at_cap(&self) {
        let now = Instant::now();
        if self.warned.get().is_some_and(|at| now < at + WARN_EVERY) {
            return;
        }
        self.warned.set(Some(now));
        tracing::warn!(
            server = self.name,
            max_connections = self.limits.max_connections,
            "connection cap reached; new connections close the ones waiting longest for a request"
        );
    }
}

/// A TCP stream that marks its connection as reading a request head at the first byte
/// that arrives while it waits.
pub struct Watched {
    stream: TcpStream,
    conn: Rc<Conn>,
}

impl Watched {
    /// Watches `stream` for `conn`.
    pub fn new(stream: TcpStream, conn: Rc<Conn>) -> Watched {
        Watched { stream, conn }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if let Phase::Idle(_) = self.conn.phase.get() {
                self.conn.set(Phase::Head(Instant::now()));
            }
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_and_stay_in_range() {
        let parse = |s: &str| Timeout::try_from(s.to_string());
        assert_eq!(parse("500ms").unwrap().0, Duration::from_millis(500));
        assert_eq!(parse("10s").unwrap().0, Duration::from_secs(10));
        assert_eq!(parse("2m").unwrap().0, Duration::from_secs(120));
        assert!(parse("10").is_err());
        assert!(parse("50ms").unwrap_err().contains("outside"));
        assert!(parse("2h").is_err());
        assert!(parse("90m").unwrap_err().contains("outside"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_connection_closes_at_its_deadline_and_a_busy_one_does_not() {
        let limits = Limits {
            idle_timeout: Timeout(Duration::from_secs(5)),
            header_timeout: Timeout(Duration::from_secs(2)),
            ..Limits::default()
        };
        let conn = Conn::new();
        let started = Instant::now();
        assert_eq!(conn.closing(&limits).await, "idle timeout");
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        conn.set(Phase::Head(Instant::now()));
        assert_eq!(conn.closing(&limits).await, "header timeout");
        conn.busy();
        let waited = tokio::time::timeout(Duration::from_secs(3600), conn.closing(&limits)).await;
        assert!(waited.is_err(), "a busy connection has no deadline here");
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_longest_waiting_connection_makes_room() {
        let table = Table::new(
            "test",
            Limits {
                max_connections: 2,
                ..Limits::default()
            },
        );
        let (first, a) = table.admit().await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let (_, b) = table.admit().await;
        b.busy();
        let (_, _c) = table.admit().await;
        assert!(a.evicted.get(), "the idle one goes");
        assert!(!b.evicted.get(), "the busy one stays");
        table.release(first);
        assert_eq!(table.open.borrow().len(), 2);
        // A connection stalled in its body is waiting too; one handling its request is not.
        let (_, d) = table.admit().await;
        d.reading_body();
        tokio::time::advance(Duration::from_secs(1)).await;
        let (_, _e) = table.admit().await;
        assert!(d.evicted.get(), "the stalled body goes");
        assert!(!b.evicted.get(), "the busy one stays");
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_memory_cap_the_body_stalled_longest_makes_room() {
        let mut table = Table::new("test", Limits::default());
        table.max_buffered = 100;
        let (_, stalled) = table.admit().await;
        stalled.reading_body();
        assert!(table.hold(&stalled, 30).await);
        let (_, slow) = table.admit().await;
        slow.reading_body();
        assert!(table.hold(&slow, 30).await);
        let (_, empty) = table.admit().await;
        empty.reading_body();
        tokio::time::advance(Duration::from_secs(1)).await;
        // More bytes of `slow`'s body arrive: it is no longer the one stalled longest.
        slow.reading_body();
        let (_, fresh) = table.admit().await;
        fresh.reading_body();
        // Asking for 50 needs one body dropped, the one stalled longest: not the one that
        // holds nothing, not the one that just got bytes, and only one however often the
        // asker wakes.
        let table = Rc::new(table);
        let waiting = tokio::task::LocalSet::new();
        let granted = waiting
            .run_until(async {
                let asking = tokio::task::spawn_local({
                    let (table, fresh) = (table.clone(), fresh.clone());
                    async move { table.hold(&fresh, 50).await }
                });
                tokio::task::yield_now().await;
                assert!(stalled.evicted.get(), "the stalled body goes");
                table.unhold(&empty);
                tokio::task::yield_now().await;
                assert!(!slow.evicted.get() && !empty.evicted.get() && !fresh.evicted.get());
                table.unhold(&stalled);
                asking.await.unwrap()
            })
            .await;
        assert!(granted);
        assert!(!slow.evicted.get(), "one body dropped, not two");
        // A body that does not fit waits for the memory of the one it dropped, and is
        // refused when that does not come back in time.
        let (_, late) = table.admit().await;
        late.reading_body();
        table.unhold(&slow);
        assert!(table.hold(&late, 50).await);
        assert!(!table.hold(&late, 1).await);
    }
}
