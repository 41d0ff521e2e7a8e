//! Deployment settings: `omniflow run --config omniflow.yaml` takes its state, addresses,
//! secrets (from files) and connection overrides from the file; the flows stay the same.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

const FLOW: &str = r#"use std.connectors.{http, webhook}
connection hooks = webhook { path = "/events", scheme = "none" }
connection api = http { base_url = env("PRODUCTION_API_URL"), auth_header = secret("API_AUTH") }
schema Event {
  id: string
}
flow events {
  source received = hooks.receive { path = "/hooks/events" }
  map event = received -> Event { id = $.id }
  sink post = api.post(event) { path = "/events", idempotency_key = id, dead_letter = "events" }
}
"#;

/// A runtime this test started, stopped however the test ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

#[test]
fn a_deployment_file_points_the_same_flow_elsewhere() {
    let dir = TempDir::new("deploy");
    let flow = dir.0.join("events.flow");
    std::fs::write(&flow, FLOW).unwrap();
    let secrets = dir.0.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("API_AUTH"), "Bearer from-a-file\n").unwrap();
    let sink = Sink::start(Faults::default());
    let hooks = free_port();
    let config = dir.0.join("omniflow.yaml");
    std::fs::write(
        &config,
        format!(
            "state: sqlite:{state}\nwebhook_addr: 127.0.0.1:{hooks}\nsecrets: {{ from: file, dir: {secrets} }}\nconnections:\n  api:\n    settings:\n      base_url: http://127.0.0.1:{port}\n",
            state = dir.0.join("state.db").display(),
            secrets = secrets.display(),
            port = sink.port
        ),
    )
    .unwrap();
    let mut child = Running(
        Command::new(BIN)
            .arg("run")
            .arg(&flow)
            .arg("--config")
            .arg(&config)
            .env_remove("PRODUCTION_API_URL")
            .env_remove("API_AUTH")
            .env("OMNIFLOW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", hooks)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the runtime did not start from its deployment file"
        );
        assert!(child.0.try_wait().unwrap().is_none(), "the runtime exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..5 {
        assert_eq!(post(hooks, &format!("{{\"id\": \"e{i}\"}}")), 202);
    }
    let started = Instant::now();
    while sink.distinct() < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the events did not reach the overridden endpoint"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status();
    assert!(child.0.wait().unwrap().success());
    assert!(
        dir.0.join("state.db").exists(),
        "the state went where the file said"
    );
}

#[test]
fn a_wrong_deployment_file_is_refused_with_the_reason() {
    let dir = TempDir::new("deploy-bad");
    let flow = dir.0.join("events.flow");
    std::fs::write(&flow, FLOW).unwrap();
    for (yaml, expected) in [
        (
            "connections:\n  nowhere:\n    settings: { base_url: x }\n",
            "`nowhere`, which no flow declares",
        ),
        ("stat: sqlite:x.db\n", "unknown field `stat`"),
        ("secrets: { from: file }\n", "needs `dir`"),
    ] {
        let config = dir.0.join("omniflow.yaml");
        std::fs::write(&config, yaml).unwrap();
        let output = Command::new(BIN)
            .arg("run")
            .arg(&flow)
            .arg("--config")
            .arg(&config)
            .arg("--state")
            .arg(format!("sqlite:{}", dir.0.join("state.db").display()))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{yaml}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{yaml}: {stderr}");
    }
}
