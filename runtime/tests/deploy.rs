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

/// Starts `omniflow run FLOW --config CONFIG` and waits until its webhooks listen.
fn start(flow: &std::path::Path, config: &std::path::Path, hooks: u16) -> Running {
    let mut child = Running(
        Command::new(BIN)
            .arg("run")
            .arg(flow)
            .arg("--config")
            .arg(config)
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
    child
}

/// A read-only connection: it never writes, checkpoints or removes the state's log.
fn read_only(state: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
}

/// Stops a runtime with SIGTERM; it must exit 0.
fn stop(mut child: Running) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status();
    assert!(child.0.wait().unwrap().success());
}

/// A flow, its secret in a file, a sink and an `omniflow.yaml` pointing the flow at it,
/// with `extra` YAML added.
struct Setup {
    dir: TempDir,
    flow: std::path::PathBuf,
    config: std::path::PathBuf,
    state: std::path::PathBuf,
    sink: Sink,
    hooks: u16,
}

impl Setup {
    /// Starts the runtime on this setup's flow and deployment file.
    fn start(&self) -> Running {
        start(&self.flow, &self.config, self.hooks)
    }
}

fn setup(name: &str, extra: &str) -> Setup {
    let dir = TempDir::new(name);
    let flow = dir.0.join("events.flow");
    std::fs::write(&flow, FLOW).unwrap();
    let secrets = dir.0.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("API_AUTH"), "Bearer from-a-file\n").unwrap();
    let sink = Sink::start(Faults::default());
    let hooks = free_port();
    let state = dir.0.join("state.db");
    let config = dir.0.join("omniflow.yaml");
    std::fs::write(
        &config,
        format!(
            "state: sqlite:{state}\nwebhook_addr: 127.0.0.1:{hooks}\nsecrets: {{ from: file, dir: {secrets} }}\n{extra}connections:\n  api:\n    settings:\n      base_url: http://127.0.0.1:{port}\n",
            state = state.display(),
            secrets = secrets.display(),
            port = sink.port
        ),
    )
    .unwrap();
    Setup {
        dir,
        flow,
        config,
        state,
        sink,
        hooks,
    }
}

#[test]
fn a_deployment_file_points_the_same_flow_elsewhere() {
    let s = setup("deploy", "");
    let child = s.start();
    for i in 0..5 {
        assert_eq!(post(s.hooks, &format!("{{\"id\": \"e{i}\"}}")), 202);
    }
    let started = Instant::now();
    while s.sink.distinct() < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the events did not reach the overridden endpoint"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(child);
    assert!(
        s.dir.0.join("state.db").exists(),
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
        (
            "retention: { outcomes: 90 days }\n",
            "`90 days` is not a retention window",
        ),
        ("retention: { outcome: 90d }\n", "unknown field `outcome`"),
    ] {
        let config = dir.0.join("omniflow.yaml");
        std::fs::write(&config, yaml).unwrap();
        let output = Command::new(BIN)
            .arg("run")
            .arg(&flow)
            .arg("--config")
            .arg(&config)
            .arg("--state")
            .arg(dir.state())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{yaml}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{yaml}: {stderr}");
    }
}

#[test]
fn a_retention_window_forgets_old_outcomes_and_keeps_recent_ones() {
    let s = setup("deploy-retention", "retention:\n  outcomes: 1d\n");
    let requests = || s.sink.seen.lock().unwrap().requests;
    let child = s.start();
    for i in 0..3 {
        assert_eq!(post(s.hooks, &format!("{{\"id\": \"e{i}\"}}")), 202);
    }
    support::wait_for("three deliveries", Duration::from_secs(30), || {
        requests() == 3
    });
    stop(child);

    // Two of the outcomes were recorded two days ago (written by a connection closed
    // before the runtime starts again: a log left open by another writer is refused).
    rusqlite::Connection::open(&s.state)
        .unwrap()
        .execute(
            "UPDATE outcomes SET at = at - 172800 WHERE sink = 'events/post' AND key IN ('e0', 'e1')",
            [],
        )
        .unwrap();
    let db = read_only(&s.state);
    let remembered = |key: &str| -> i64 {
        db.query_row(
            "SELECT COUNT(*) FROM outcomes WHERE sink = 'events/post' AND key = ?1",
            [key],
            |r| r.get(0),
        )
        .unwrap()
    };
    // The sweep at start forgets them, and only them.
    let child = s.start();
    support::wait_for(
        "the old outcomes to be forgotten",
        Duration::from_secs(30),
        || remembered("e0") + remembered("e1") == 0,
    );
    assert_eq!(remembered("e2"), 1);
    // Sent again: the forgotten key is delivered again, the remembered one is not.
    assert_eq!(post(s.hooks, r#"{"id": "e0"}"#), 202);
    assert_eq!(post(s.hooks, r#"{"id": "e2"}"#), 202);
    support::wait_for(
        "the forgotten key's delivery",
        Duration::from_secs(30),
        || requests() == 4,
    );
    support::wait_for("both messages to finish", Duration::from_secs(30), || {
        db.query_row("SELECT COUNT(*) FROM inbox", [], |r| r.get::<_, i64>(0))
            .unwrap()
            == 0
    });
    stop(child);
    assert_eq!(requests(), 4, "the remembered key was delivered twice");
    assert_eq!(s.sink.seen.lock().unwrap().effects.get("e0"), Some(&2));
}

#[test]
fn a_replayed_message_keeps_its_acceptance_time_and_a_letter_can_be_discarded() {
    let s = setup("deploy-replay", "retention:\n  outcomes: 1d\n");
    s.sink.set_faults(Faults {
        rejected: 100,
        ..Faults::default()
    });
    let letters = || -> Vec<(i64, Option<i64>)> {
        if !s.state.exists() {
            return Vec::new();
        }
        let db = read_only(&s.state);
        let mut query = db
            .prepare("SELECT id, accepted_at FROM dead_letters ORDER BY id")
            .unwrap();
        let rows = query.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        let letters: Vec<(i64, Option<i64>)> = rows.collect::<Result<_, _>>().unwrap();
        letters
    };
    let child = s.start();
    assert_eq!(post(s.hooks, r#"{"id": "e0"}"#), 202);
    support::wait_for(
        "the refused delivery's dead letter",
        Duration::from_secs(30),
        || letters().len() == 1,
    );
    stop(child);
    // The message was accepted ten days ago.
    rusqlite::Connection::open(&s.state)
        .unwrap()
        .execute(
            "UPDATE dead_letters SET accepted_at = accepted_at - 864000",
            [],
        )
        .unwrap();
    let accepted = letters()[0].1;
    assert!(accepted.is_some());
    let dlq = |args: &[&str]| {
        Command::new(BIN)
            .arg("dlq")
            .arg("--state")
            .arg(format!("sqlite:{}", s.state.display()))
            .args(args)
            .output()
            .unwrap()
    };
    assert!(dlq(&["replay", "--all"]).status.success());

    // Refused again: the new letter carries the original acceptance, not the replay's.
    let child = s.start();
    support::wait_for("the replay's dead letter", Duration::from_secs(30), || {
        letters().len() == 2
    });
    stop(child);
    let (again, again_accepted) = letters()[1];
    assert_eq!(again_accepted, accepted);

    let discarded = dlq(&["discard", &again.to_string()]);
    assert!(discarded.status.success());
    assert!(String::from_utf8_lossy(&discarded.stdout).contains("discarded dead letter"));
    let listed = dlq(&["list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("0 dead letters"));
    let listed = dlq(&["list", "--all"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("(discarded)"));
    assert_eq!(dlq(&["discard", &again.to_string()]).status.code(), Some(1));
    assert_eq!(dlq(&["replay", "--all"]).status.code(), Some(0));
    assert_eq!(letters().len(), 2, "a discarded letter was replayed");
}

/// The deployment examples in `docs/deploy/` parse and fit the reference flows (every
/// connection they override exists, with settings its connector takes), and the flags the
/// container and systemd files give `omniflow run` are its own.
#[test]
fn the_packaged_deployments_and_service_files_fit_the_runtime() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut examples = 0;
    for entry in std::fs::read_dir(root.join("docs/deploy")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let deployment = omniflow_engine::deploy::Deployment::parse(&text, &path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let mut graph = omniflow_runtime::load::load_graph(&[root.join("flows")]).unwrap();
        deployment
            .apply(&mut graph)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        omniflow_mapping::pipeline::Pipeline::new(graph)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        examples += 1;
    }
    assert_eq!(examples, 3, "sandbox, staging and production");
    let help = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for file in ["packaging/omniflow.service", "packaging/Containerfile"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("ExecStart=") || l.starts_with("CMD "))
            .unwrap_or_else(|| panic!("{file} starts nothing"));
        assert!(line.contains("run"), "{file}: {line}");
        for flag in line
            .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
            .filter(|w| w.starts_with("--"))
        {
            assert!(help.contains(flag), "{file}: `omniflow run` has no {flag}");
        }
    }
}
