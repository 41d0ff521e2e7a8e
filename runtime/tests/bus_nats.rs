//! The event bus on a real NATS JetStream server (127.0.0.1:4222, or `OMNIFLOW_NATS_URL`):
//! one flow publishes what a webhook accepted, another consumes the subject through a
//! durable consumer and posts each event to a recording sink, across a restart of the
//! runtime. Every event arrives once; the stream holds each once.

mod support;

use omniflow_engine::bus::nats::Nats;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{free_port, wait_for, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

fn nats_url() -> String {
    std::env::var("OMNIFLOW_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn post(port: u16, body: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /hooks/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs `f` against the NATS server on a LocalSet.
fn with_nats<T>(f: impl AsyncFnOnce(std::rc::Rc<Nats>) -> T) -> T {
    support::block_on(async {
        let nats = Nats::connect(&nats_url(), None)
            .await
            .expect("NATS with JetStream must run on 127.0.0.1:4222");
        f(nats).await
    })
}

/// A runtime this test started, stopped however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &TempDir, flow: &std::path::Path, sink: &Sink, hooks: u16, stream: &str) -> Running {
    Running(
        Command::new(BIN)
            .arg("run")
            .arg(flow)
            .arg("--state")
            .arg(dir.state())
            .arg("--webhook-addr")
            .arg(format!("127.0.0.1:{hooks}"))
            .env(
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", sink.port),
            )
            .env("BUS_URL", nats_url())
            .env("BUS_STREAM", stream)
            .env("OMNIFLOW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(dir.0.join("runtime.log"))
                    .unwrap(),
            ))
            .spawn()
            .unwrap(),
    )
}

/// Deletes the test's stream however the test ends.
struct StreamGuard(String);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        with_nats(async move |nats| {
            let _ = nats
                .api(&format!("$JS.API.STREAM.DELETE.{name}"), &json!({}))
                .await;
        });
    }
}

#[test]
fn events_cross_jetstream_once_across_a_restart() {
    let stream = format!("OMNIFLOW_TEST_{}_{}", std::process::id(), free_port());
    let _guard = StreamGuard(stream.clone());
    // Subjects of this run only: a stream may not overlap another one's subjects.
    let prefix = format!("omniflowtest{}", free_port());
    let dir = TempDir::new("bus-nats");
    let flow = dir.0.join("bus.flow");
    std::fs::write(
        &flow,
        r#"use std.connectors.{http, webhook, bus}
connection hooks = webhook { path = "/events", scheme = "none" }
connection events = bus { url = env("BUS_URL"), stream = env("BUS_STREAM") }
connection api = http { base_url = env("OMNIFLOW_TEST_SINK") }
schema Event {
  id: string
  kind: string
  qty: int
}
flow publish {
  source received = hooks.receive { path = "/hooks/events" }
  map event = received -> Event { id = $.id, kind = $.kind, qty = $.qty }
  sink out = events.publish(event) { subject = "PREFIX.{{ kind }}", idempotency_key = id, dead_letter = "bus" }
}
flow consume {
  source incoming = events.subscribe { subject = "PREFIX.>", durable = "omniflow-test-consume" }
  map event = incoming -> Event { id = $.id, kind = $.kind, qty = $.qty }
  sink post = api.post(event) { path = "/events", idempotency_key = id, dead_letter = "bus" }
}
"#
        .replace("PREFIX", &prefix),
    )
    .unwrap();
    let sink = Sink::start(Faults::default());
    let hooks = free_port();
    let child = start(&dir, &flow, &sink, hooks, &stream);
    wait_for("the webhook listener", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", hooks)).is_ok()
    });
    for i in 0..60 {
        let kind = if i % 2 == 0 { "sale" } else { "return" };
        assert_eq!(
            post(
                hooks,
                &json!({"id": format!("e{i}"), "kind": kind, "qty": i}).to_string()
            ),
            202
        );
    }
    wait_for(
        "a first share of the events at the sink",
        Duration::from_secs(60),
        || sink.distinct() >= 20,
    );
    // Kill the runtime mid-stream; what was published or consumed but not acknowledged
    // is redelivered after the restart.
    drop(child);
    let mut child = start(&dir, &flow, &sink, hooks, &stream);
    wait_for(
        "the webhook listener again",
        Duration::from_secs(30),
        || std::net::TcpStream::connect(("127.0.0.1", hooks)).is_ok(),
    );
    for i in 60..100 {
        assert_eq!(
            post(
                hooks,
                &json!({"id": format!("e{i}"), "kind": "sale", "qty": i}).to_string()
            ),
            202
        );
    }
    wait_for("every event at the sink", Duration::from_secs(60), || {
        sink.distinct() == 100
    });
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status();
    child.0.wait().unwrap();
    // A call cut by the SIGKILL may be made again after the restart, always with its
    // idempotency key (the receiver applies it once): every call carries the event's key.
    let seen = sink.seen.lock().unwrap();
    assert_eq!(seen.effects.len(), 100);
    assert_eq!(
        seen.without_key, 0,
        "every call carries its idempotency key"
    );
    assert_eq!(seen.mismatched, 0, "every key names its own event");
    drop(seen);

    let (messages, subjects) = with_nats(async |nats| {
        let info = nats
            .api(&format!("$JS.API.STREAM.INFO.{stream}"), &json!({}))
            .await
            .unwrap();
        (
            info["state"]["messages"].clone(),
            info["config"]["subjects"].clone(),
        )
    });
    assert_eq!(messages, 100, "the stream holds each event once");
    let subjects: Vec<&str> = subjects
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        subjects
            .iter()
            .any(|s| *s == format!("{prefix}.>") || *s == format!("{prefix}.*")),
        "the stream was made to capture the flows' subjects: {subjects:?}"
    );
}
