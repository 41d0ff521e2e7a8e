//! The event bus on NATS JetStream (`url = "nats://host:port"`), spoken over one TCP
//! connection per bus connection with the NATS text protocol:
//! - publish: `HPUB` with a `Nats-Msg-Id` header (the message's idempotency key, so the
//!   stream drops a republished message inside its duplicate window) and a reply inbox for
//!   the JetStream acknowledgement; no responders or a stream error are transient;
//! - the stream named by the `stream` setting is created on first use, or extended, so it
//!   captures the subjects the flows use (a templated subject becomes a `*` token);
//! - subscribe: a durable pull consumer with explicit acks; a fetched batch is appended to
//!   the flow's inbox (deduplicated by stream sequence) and acknowledged only once durable.

use super::Inbox;
use omniflow_connectors::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{oneshot, watch, Mutex};

/// How long a JetStream request waits for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages fetched per pull.
const BATCH: u64 = 256;
/// Longest wait for the server's greeting and first PONG, and for one write.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message the reader accepts (the server's own limit is far lower).
const MAX_FRAME: usize = 64 << 20;

/// A message received on the inbox: headers block (if any) and payload.
#[derive(Debug, Default)]
pub struct Reply {
    /// The status line's code for a header-only reply (`503` for no responders).
    pub status: Option<u16>,
    /// The reply subject the sender set (JetStream's ack subject for consumed messages).
    pub reply_to: Option<String>,
    pub payload: Vec<u8>,
}

type Waiters = Rc<RefCell<HashMap<String, oneshot::Sender<Reply>>>>;
type Streams = Rc<RefCell<HashMap<String, tokio::sync::mpsc::UnboundedSender<Reply>>>>;

/// One NATS connection.
pub struct Nats {
    writer: Mutex<OwnedWriteHalf>,
    inbox: String,
    next: Cell<u64>,
    waiters: Waiters,
    streams: Streams,
    alive: Rc<Cell<bool>>,
    /// The server's `max_payload`.
    max_payload: usize,
}

fn host_port(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("nats://")
        .ok_or_else(|| format!("bus url `{url}` is not nats://host:port"))?;
    Ok(rest
        .rsplit('@')
        .next()
        .unwrap_or(rest)
        .trim_end_matches('/')
        .to_string())
}

fn random_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}{:x}", nanos, std::process::id())
}

impl Nats {
    /// Connects, sends CONNECT (with `user:password` or a token from `credentials`) and
    /// waits for the server's PONG.
    pub async fn connect(url: &str, credentials: Option<&str>) -> Result<Rc<Nats>, String> {
        tokio::time::timeout(IO_TIMEOUT, Nats::handshake(url, credentials))
            .await
            .map_err(|_| {
                format!("NATS at {url} did not complete its handshake within {IO_TIMEOUT:?}")
            })?
    }

    async fn handshake(url: &str, credentials: Option<&str>) -> Result<Rc<Nats>, String> {
        let stream = tokio::net::TcpStream::connect(host_port(url)?)
            .await
            .map_err(|e| format!("NATS at {url}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .await
            .map_err(|e| format!("NATS at {url}: {e}"))?;
        if !line.starts_with("INFO ") {
            return Err(format!("NATS at {url} did not greet with INFO: {line}"));
        }
        let info: Value =
            serde_json::from_str(line.trim_start_matches("INFO ").trim()).unwrap_or(Value::Null);
        let max_payload = info["max_payload"].as_u64().unwrap_or(1 << 20) as usize;
        let mut connect = json!({"verbose": false, "pedantic": false, "headers": true, "no_responders": true,
                                 "name": "omniflow", "lang": "rust", "version": env!("CARGO_PKG_VERSION")});
        match credentials.filter(|c| !c.is_empty() && *c != "none") {
            Some(c) if c.contains(':') => {
                let (user, pass) = c.split_once(':').unwrap_or((c, ""));
                connect["user"] = json!(user);
                connect["pass"] = json!(pass);
            }
            Some(token) => connect["auth_token"] = json!(token),
            None => {}
        }
        let inbox = format!("_INBOX.{}", random_token());
        write
            .write_all(format!("CONNECT {connect}\r\nPING\r\nSUB {inbox}.* 1\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        loop {
            line.clear();
            if reader
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?
                == 0
            {
                return Err(format!(
                    "NATS at {url} closed the connection during the handshake"
                ));
            }
            if line.starts_with("PONG") {
                break;
            }
            if line.starts_with("-ERR") {
                return Err(format!("NATS refused the connection: {}", line.trim()));
            }
        }
        let nats = Rc::new(Nats {
            writer: Mutex::new(write),
            inbox,
            next: Cell::new(0),
            waiters: Rc::default(),
            streams: Rc::default(),
            alive: Rc::new(Cell::new(true)),
            max_payload,
        });
        let (waiters, streams, alive) = (
            nats.waiters.clone(),
            nats.streams.clone(),
            nats.alive.clone(),
        );
        let pong = Rc::downgrade(&nats);
        tokio::task::spawn_local(async move {
            if let Err(err) = read_loop(reader, waiters.clone(), streams.clone(), pong).await {
                tracing::warn!(error = %err, "NATS connection lost");
            }
            alive.set(false);
            // Whoever waits on this connection learns at once that it is gone.
            waiters.borrow_mut().clear();
            streams.borrow_mut().clear();
        });
        Ok(nats)
    }

    /// False once the connection dropped.
    pub fn alive(&self) -> bool {
        self.alive.get()
    }

    fn new_inbox(&self) -> String {
        self.next.set(self.next.get() + 1);
        format!("{}.{}", self.inbox, self.next.get())
    }

    async fn write(&self, bytes: &[u8]) -> Result<(), String> {
        let mut writer = self.writer.lock().await;
        match tokio::time::timeout(IO_TIMEOUT, writer.write_all(bytes)).await {
            Ok(done) => done.map_err(|e| format!("NATS write: {e}")),
            Err(_) => {
                self.alive.set(false);
                Err(format!("NATS write: nothing moved for {IO_TIMEOUT:?}"))
            }
        }
    }

    /// Publishes with optional headers and a reply subject.
    pub async fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: &[(&str, &str)],
        payload: &[u8],
    ) -> Result<(), String> {
        let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
        let mut frame = Vec::with_capacity(payload.len() + 128);
        if headers.is_empty() {
            frame.extend_from_slice(
                format!("PUB {subject}{reply} {}\r\n", payload.len()).as_bytes(),
            );
        } else {
            let mut block = String::from("NATS/1.0\r\n");
            for (k, v) in headers {
                block.push_str(&format!("{k}: {v}\r\n"));
            }
            block.push_str("\r\n");
            frame.extend_from_slice(
                format!(
                    "HPUB {subject}{reply} {} {}\r\n",
                    block.len(),
                    block.len() + payload.len()
                )
                .as_bytes(),
            );
            frame.extend_from_slice(block.as_bytes());
        }
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.write(&frame).await
    }

    /// Subscribes `subject` under a new subscription id; its messages go to `tx`.
    async fn subscribe(
        &self,
        subject: &str,
        tx: tokio::sync::mpsc::UnboundedSender<Reply>,
    ) -> Result<String, String> {
        self.next.set(self.next.get() + 1);
        let sid = format!("{}", 1000 + self.next.get());
        self.streams.borrow_mut().insert(sid.clone(), tx);
        self.write(format!("SUB {subject} {sid}\r\n").as_bytes())
            .await?;
        Ok(sid)
    }

    /// Ends a subscription.
    async fn unsubscribe(&self, sid: &str) {
        self.streams.borrow_mut().remove(sid);
        let _ = self.write(format!("UNSUB {sid}\r\n").as_bytes()).await;
    }

    /// Sends a request and waits for the one reply.
    pub async fn request(
        &self,
        subject: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Reply, String> {
        let inbox = self.new_inbox();
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().insert(inbox.clone(), tx);
        if let Err(e) = self.publish(subject, Some(&inbox), headers, payload).await {
            self.waiters.borrow_mut().remove(&inbox);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err("the NATS connection closed".into()),
            Err(_) => {
                self.waiters.borrow_mut().remove(&inbox);
                Err(format!("no answer on {subject} within {timeout:?}"))
            }
        }
    }

    /// A JetStream API call: JSON in, JSON out; an `error` field is an error.
    pub async fn api(&self, subject: &str, body: &Value) -> Result<Value, String> {
        let reply = self
            .request(subject, &[], body.to_string().as_bytes(), REQUEST_TIMEOUT)
            .await?;
        if reply.status == Some(503) {
            return Err("JetStream is not available on this server (no responders)".into());
        }
        let answer: Value =
            serde_json::from_slice(&reply.payload).map_err(|e| format!("{subject}: {e}"))?;
        match answer.get("error") {
            Some(error) => Err(format!(
                "{subject}: {} (code {}, err_code {})",
                error["description"].as_str().unwrap_or("error"),
                error["code"],
                error["err_code"]
            )),
            None => Ok(answer),
        }
    }

    /// Makes sure `stream` exists and captures `pattern`.
    pub async fn ensure_stream(&self, stream: &str, pattern: &str) -> Result<(), String> {
        match self.api(&format!("$JS.API.STREAM.INFO.{stream}"), &json!({})).await {
            Ok(info) => {
                let mut subjects: Vec<String> = info["config"]["subjects"]
                    .as_array()
                    .map(|s| s.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                    .unwrap_or_default();
                if subjects.iter().any(|s| covers(s, pattern)) {
                    return Ok(());
                }
                subjects.push(pattern.to_string());
                let mut config = info["config"].clone();
                config["subjects"] = json!(subjects);
                self.api(&format!("$JS.API.STREAM.UPDATE.{stream}"), &config).await.map(|_| ())
            }
            Err(e) if e.contains("not found") => self
                .api(
                    &format!("$JS.API.STREAM.CREATE.{stream}"),
                    &json!({"name": stream, "subjects": [pattern], "storage": "file", "retention": "limits",
                            "duplicate_window": 120_000_000_000u64}),
                )
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        }
    }
}

async fn read_loop(
    mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    waiters: Waiters,
    streams: Streams,
    owner: std::rc::Weak<Nats>,
) -> Result<(), String> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?
            == 0
        {
            return Err("closed by the server".into());
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.first().copied() {
            Some("PING") => {
                if let Some(nats) = owner.upgrade() {
                    nats.write(b"PONG\r\n").await?;
                }
            }
            Some("MSG") | Some("HMSG") => {
                let headers = parts[0] == "HMSG";
                // MSG subject sid [reply] size | HMSG subject sid [reply] hdr_size total_size
                let numbers = if headers { 2 } else { 1 };
                if parts.len() < 3 + numbers {
                    return Err(format!("malformed {}", line.trim()));
                }
                let subject = parts[1].to_string();
                let sid = parts[2].to_string();
                let reply_to = (parts.len() == 4 + numbers).then(|| parts[3].to_string());
                let total: usize = parts[parts.len() - 1]
                    .parse()
                    .map_err(|_| format!("malformed {}", line.trim()))?;
                let header_len: usize = if headers {
                    parts[parts.len() - 2]
                        .parse()
                        .map_err(|_| format!("malformed {}", line.trim()))?
                } else {
                    0
                };
                if total > MAX_FRAME || header_len > total {
                    return Err(format!("refused frame {}", line.trim()));
                }
                let mut body = vec![0u8; total + 2];
                reader
                    .read_exact(&mut body)
                    .await
                    .map_err(|e| e.to_string())?;
                body.truncate(total);
                let status = if headers {
                    let head =
                        String::from_utf8_lossy(&body[..header_len.min(body.len())]).to_string();
                    head.lines()
                        .next()
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|c| c.parse().ok())
                } else {
                    None
                };
                let payload = body.split_off(header_len.min(body.len()));
                let reply = Reply {
                    status,
                    reply_to,
                    payload,
                };
                // Consumed messages keep their own subject: they are routed by the
                // subscription id; request replies by their inbox subject.
                if let Some(stream) = streams.borrow().get(&sid) {
                    let _ = stream.send(reply);
                } else if let Some(waiter) = waiters.borrow_mut().remove(&subject) {
                    let _ = waiter.send(reply);
                }
            }
            Some("-ERR") => tracing::warn!(error = %line.trim(), "NATS error"),
            _ => {}
        }
    }
}

/// The stream sequence of a consumed message, from its `$JS.ACK` reply subject: v1
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` or v2 with the
/// domain and account hash after `ACK` (and possibly a trailing token).
pub fn stream_sequence(ack: &str) -> Option<String> {
    let tokens: Vec<&str> = ack.split('.').collect();
    if tokens.len() < 9 || tokens[0] != "$JS" || tokens[1] != "ACK" {
        return None;
    }
    let index = if tokens.len() == 9 { 5 } else { 7 };
    let seq = tokens.get(index)?;
    seq.parse::<u64>().ok().map(|_| seq.to_string())
}

/// True when the stream subject `have` captures every subject `want` can match.
pub fn covers(have: &str, want: &str) -> bool {
    let (have, want): (Vec<&str>, Vec<&str>) =
        (have.split('.').collect(), want.split('.').collect());
    for (i, token) in have.iter().enumerate() {
        match (*token, want.get(i)) {
            (">", Some(_)) => return true,
            ("*", Some(w)) if *w != ">" => {}
            (t, Some(w)) if t == *w => {}
            _ => return false,
        }
    }
    have.len() == want.len()
}

/// A rendered subject safe to put on the wire: tokens without spaces, controls or
/// wildcards.
fn check_subject(subject: &str) -> Result<(), String> {
    let bad = subject.is_empty()
        || subject
            .split('.')
            .any(|t| t.is_empty() || t == "*" || t == ">")
        || subject.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad {
        Err(format!("`{subject}` is not a publishable subject"))
    } else {
        Ok(())
    }
}

/// The subject pattern a stream must capture for a (possibly templated) subject.
pub fn capture_pattern(subject: &str) -> String {
    subject
        .split('.')
        .map(|token| if token.contains("{{") { "*" } else { token })
        .collect::<Vec<_>>()
        .join(".")
}

/// Connections by URL and credentials, shared by the sinks and sources of one runner.
#[derive(Default)]
pub struct Connections(RefCell<HashMap<String, Rc<Nats>>>);

impl Connections {
    /// Forgets the connections (each closes when its last user lets go).
    pub fn clear(&self) {
        self.0.borrow_mut().clear();
    }
}

async fn connection(
    connections: &Connections,
    settings: &BTreeMap<String, Value>,
) -> Result<Rc<Nats>, String> {
    let url = settings
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let credentials = settings.get("credentials").and_then(Value::as_str);
    let key = format!("{url} {}", credentials.unwrap_or(""));
    let known = connections.0.borrow().get(&key).cloned();
    if let Some(nats) = known.filter(|n| n.alive()) {
        return Ok(nats);
    }
    let nats = Nats::connect(&url, credentials).await?;
    connections.0.borrow_mut().insert(key, nats.clone());
    Ok(nats)
}

fn stream_name(settings: &BTreeMap<String, Value>) -> String {
    settings
        .get("stream")
        .and_then(Value::as_str)
        .unwrap_or("omniflow")
        .to_string()
}

/// `bus.publish` on JetStream.
pub struct Publish {
    connections: Rc<Connections>,
    settings: BTreeMap<String, Value>,
    subject: String,
    ready: Cell<bool>,
}

impl Publish {
    /// Reads the `subject` option.
    pub fn new(
        connections: &Rc<Connections>,
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<Publish, String> {
        Ok(Publish {
            connections: connections.clone(),
            settings: settings.clone(),
            subject: options
                .get("subject")
                .and_then(Value::as_str)
                .ok_or("a bus sink needs `subject`")?
                .to_string(),
            ready: Cell::new(false),
        })
    }
}

fn transient(reason: String) -> CallOutcome {
    CallOutcome::Transient {
        class: "connect".into(),
        reason,
        retry_after: None,
    }
}

impl SinkConnector for Publish {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let subject = match super::subject_of(&self.subject, call.body) {
                Ok(s) => s,
                Err(e) => return e,
            };
            if let Err(reason) = check_subject(&subject) {
                return CallOutcome::Permanent { reason };
            }
            if call.key.chars().any(|c| c.is_control()) {
                return CallOutcome::Permanent {
                    reason:
                        "the idempotency key holds control characters; it cannot be a Nats-Msg-Id"
                            .into(),
                };
            }
            let nats = match connection(&self.connections, &self.settings).await {
                Ok(n) => n,
                Err(e) => return transient(e),
            };
            if call.body.len() + call.key.len() + 64 > nats.max_payload {
                return CallOutcome::Permanent {
                    reason: format!(
                        "the message is {} bytes, over the server's max_payload ({})",
                        call.body.len(),
                        nats.max_payload
                    ),
                };
            }
            if !self.ready.get() {
                if let Err(e) = nats
                    .ensure_stream(
                        &stream_name(&self.settings),
                        &capture_pattern(&self.subject),
                    )
                    .await
                {
                    return transient(e);
                }
                self.ready.set(true);
            }
            let reply = match nats
                .request(
                    &subject,
                    &[("Nats-Msg-Id", call.key)],
                    call.body,
                    call.timeout,
                )
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    return CallOutcome::Transient {
                        class: "timeout".into(),
                        reason: e,
                        retry_after: None,
                    }
                }
            };
            if reply.status == Some(503) {
                self.ready.set(false);
                return transient(format!("no stream captures {subject} (no responders)"));
            }
            let ack: Value = serde_json::from_slice(&reply.payload).unwrap_or(Value::Null);
            match ack.get("error") {
                Some(error) => transient(format!(
                    "JetStream refused {subject}: {}",
                    error["description"].as_str().unwrap_or("error")
                )),
                None if ack.get("seq").is_some() => CallOutcome::Ok,
                None => transient(format!(
                    "unexpected JetStream answer: {}",
                    String::from_utf8_lossy(&reply.payload)
                )),
            }
        })
    }
}

/// Starts a `bus.subscribe` source: a durable pull consumer named by `durable` (default
/// `FLOW-SOURCE`) filtered on `subject`.
pub fn subscribe(
    inbox: Rc<dyn Inbox>,
    connections: Rc<Connections>,
    source: &str,
    settings: &BTreeMap<String, Value>,
    options: &BTreeMap<String, Value>,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let subject = options
        .get("subject")
        .and_then(Value::as_str)
        .ok_or("a bus source needs `subject`")?
        .to_string();
    let durable = options
        .get("durable")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| format!("{}-{source}", inbox.flow_name()))
        .replace(['.', '*', '>', ' '], "-");
    let (source, settings) = (source.to_string(), settings.clone());
    tokio::task::spawn_local(async move {
        let mut stop = stop;
        loop {
            if *stop.borrow() {
                return;
            }
            let consumed = consume(
                &*inbox,
                &connections,
                &source,
                &settings,
                &subject,
                &durable,
                &mut stop,
            )
            .await;
            if let Err(err) = consumed {
                tracing::warn!(flow = %inbox.flow_name(), source = %source, error = %err, "bus subscription failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stop.changed() => {}
            }
        }
    });
    Ok(())
}

async fn consume(
    inbox: &dyn Inbox,
    connections: &Connections,
    source: &str,
    settings: &BTreeMap<String, Value>,
    subject: &str,
    durable: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let nats = connection(connections, settings).await?;
    let stream = stream_name(settings);
    nats.ensure_stream(&stream, &capture_pattern(subject))
        .await?;
    nats.api(
        &format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}"),
        &json!({"stream_name": stream, "config": {"durable_name": durable, "ack_policy": "explicit",
                "deliver_policy": "all", "filter_subject": subject, "ack_wait": 30_000_000_000u64}}),
    )
    .await?;
    let reply_to = format!("_INBOX.pull.{}", random_token());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sid = nats.subscribe(&reply_to, tx).await?;
    let next = format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}");
    let result = async {
        loop {
            if *stop.borrow() || !nats.alive() {
                return Ok(());
            }
            let request = json!({"batch": BATCH, "expires": 1_000_000_000u64}).to_string();
            nats.publish(&next, Some(&reply_to), &[], request.as_bytes())
                .await?;
            let mut batch: Vec<(Vec<u8>, String, String)> = Vec::new();
            let deadline = tokio::time::sleep(Duration::from_millis(1_200));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    message = rx.recv() => match message {
                        // 404 (no messages) and 408 (expired) end this pull; any other
                        // status (409 consumer deleted, 503) recreates the consumer.
                        Some(Reply { status: Some(404 | 408), reply_to: None, .. }) => break,
                        Some(Reply { status: Some(code), reply_to: None, .. }) => {
                            return Err(format!("the pull was answered with status {code}"));
                        }
                        None => return Err("the NATS connection closed".into()),
                        Some(Reply { reply_to: Some(ack), payload, .. }) => {
                            let Some(seq) = stream_sequence(&ack) else {
                                // Unacknowledged: it comes back, and is looked at again.
                                tracing::warn!(ack = %ack, "a consumed message without a readable sequence");
                                continue;
                            };
                            batch.push((payload, ack, seq));
                            if batch.len() as u64 >= BATCH { break; }
                        }
                        Some(_) => {}
                    },
                    _ = &mut deadline => break,
                    _ = stop.changed() => break,
                }
            }
            if batch.is_empty() {
                continue;
            }
            let (flow, name, stream) = (inbox.flow_name().to_string(), source.to_string(), stream.clone());
            let rows: Vec<(Vec<u8>, String)> = batch
                .iter()
                .map(|(p, _, seq)| (p.clone(), seq.clone()))
                .collect();
            let stored = inbox
                .store()
                .call(move |b| {
                    let namespace = format!("bus:{flow}/{name}/{stream}");
                    let mut fresh = Vec::new();
                    for (payload, seq) in rows {
                        let delivered = omniflow_state::OutcomeStatus::Delivered;
                        if b.record_new_outcome(&namespace, &seq, delivered)? {
                            fresh.push(payload);
                        }
                    }
                    let n = fresh.len();
                    b.append(&flow, &name, &fresh, None)?;
                    Ok(n)
                })
                .await?;
            if stored > 0 {
                inbox.appended();
            }
            // Acknowledged only once durable: a crash before this redelivers, and the
            // sequence check above drops what was already stored.
            for (_, ack, _) in &batch {
                nats.publish(ack, None, &[], b"+ACK").await?;
            }
        }
    }
    .await;
    nats.unsubscribe(&sid).await;
    result
}

#[cfg(test)]
mod tests {
    use super::capture_pattern;

    #[test]
    fn ack_subjects_give_the_stream_sequence() {
        use super::stream_sequence;
        assert_eq!(
            stream_sequence("$JS.ACK.retail.c1.1.42.17.1795399163326207773.0").as_deref(),
            Some("42")
        );
        // v2: domain and account hash after ACK, and a trailing token.
        assert_eq!(
            stream_sequence("$JS.ACK.hub.ACCHASH.retail.c1.2.43.18.1795399163326207773.3.x")
                .as_deref(),
            Some("43")
        );
        // A stream named like the consumer changes nothing.
        assert_eq!(
            stream_sequence("$JS.ACK.c1.c1.1.7.7.1795399163326207773.0").as_deref(),
            Some("7")
        );
        assert_eq!(stream_sequence("_INBOX.x.1"), None);
        assert_eq!(stream_sequence("$JS.ACK.a.b.c.d.e.f.g"), None);
    }

    #[test]
    fn stream_subjects_cover_patterns() {
        use super::covers;
        assert!(covers("orders.>", "orders.accepted.amazon"));
        assert!(covers("orders.*.amazon", "orders.accepted.amazon"));
        assert!(covers("stores.*.pickups", "stores.*.pickups"));
        assert!(!covers("a.*", "a.>"));
        assert!(!covers("orders.accepted", "orders.accepted.amazon"));
        assert!(covers("a.>", "a.>"));
    }

    #[test]
    fn only_plain_subjects_are_published() {
        use super::check_subject;
        assert!(check_subject("inventory.movements").is_ok());
        assert!(check_subject("stores.SOHO.pickups").is_ok());
        assert!(check_subject("stores.SO HO.pickups").is_err());
        assert!(check_subject("stores..pickups").is_err());
        assert!(check_subject("stores.>").is_err());
        assert!(check_subject("a\r\nPUB x 1").is_err());
    }

    #[test]
    fn templated_subjects_become_wildcards() {
        assert_eq!(
            capture_pattern("stores.{{ location }}.pickups"),
            "stores.*.pickups"
        );
        assert_eq!(
            capture_pattern("orders.accepted.amazon"),
            "orders.accepted.amazon"
        );
    }
}
