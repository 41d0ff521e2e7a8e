//! Whole-flow tests: a `test` block with `answers`, `requests` or `dead_letters` runs the
//! message through the real runtime — state (a temporary SQLite file), deliveries with
//! their retry policies, idempotency and dead letters, and the built-in connectors, which
//! build and classify the real requests — against one local target per sink that gives
//! the test's answers in turn and keeps what it was sent. Back-offs and rate limits run on
//! a virtual clock (they pass at once), so a retry policy of minutes runs in milliseconds.
//!
//! Every connection a sink uses is copied for that sink, its `env(...)` and `secret(...)`
//! settings taken from the test's `env` (else the environment), and every setting that is
//! an http(s) URL pointed at the sink's target, its path kept.

use omniflow_engine::runner::{Parts, Runner, TestRun};
use omniflow_http::server::{self, Handler, Req, Resp};
use omniflow_ir::{Graph, NodeKind, SettingValue, Test, TestAnswer, TestCalls};
use omniflow_mapping::pipeline::Pipeline;
use omniflow_mapping::testing::mismatch;
use omniflow_state as state;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Settings whose absence makes a connector call the vendor's own host, with the path
/// it calls there: in a test they point at the sink's target.
const VENDOR_HOSTS: &[(&str, &str, &str)] = &[
    ("amazon_sp", "endpoint", ""),
    ("amazon_sp", "token_endpoint", "/auth/o2/token"),
    ("shipbob", "base_url", ""),
    ("square", "base_url", ""),
];

/// How long a whole-flow test may take before it fails (a hang, not a timing).
const PATIENCE: Duration = Duration::from_secs(60);

/// One request a sink's target received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A sink's target: the test's answers in turn (the last one again when they run out).
struct Target {
    answers: Vec<TestAnswer>,
    received: RefCell<Vec<Received>>,
}

impl Target {
    fn answer(&self, req: Req) -> Resp {
        let mut received = self.received.borrow_mut();
        let index = received.len().min(self.answers.len().saturating_sub(1));
        received.push(Received {
            method: req.method.clone(),
            path: match req.query.is_empty() {
                true => req.path.clone(),
                false => format!("{}?{}", req.path, req.query),
            },
            headers: req
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: req.body.to_vec(),
        });
        let Some(answer) = self.answers.get(index) else {
            return Resp::json(200, serde_json::json!({}));
        };
        let (content_type, body) = match &answer.body {
            None => ("application/json", String::new()),
            Some(Value::String(text)) => ("text/plain; charset=utf-8", text.clone()),
            Some(json) => ("application/json", json.to_string()),
        };
        let mut resp = Resp {
            status: answer.status,
            content_type,
            body,
            headers: Vec::new(),
        };
        for (name, value) in &answer.headers {
            resp = resp.header(name.clone(), value.clone());
        }
        resp
    }
}

/// Runs a whole-flow test of flow `flow`; `Err` lists what differs from the test.
pub async fn run(graph: &Graph, flow: &str, test: &Test, calls: &TestCalls) -> Result<(), String> {
    let mut graph = graph.clone();
    graph.flows.retain(|f| f.name == flow);
    // Ledgers other flows use publish to channels the test has no answers for.
    let used: Vec<String> = graph.flows[0]
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Sink { connection, .. } => Some(connection.clone()),
            _ => None,
        })
        .collect();
    graph.ledgers.retain(|l| used.contains(&l.name));
    let mut targets: BTreeMap<String, Rc<Target>> = BTreeMap::new();
    // Every sink, and the polling sources the test gives pages to, with its connection.
    let callees: Vec<(String, String, bool)> = graph.flows[0]
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Sink { connection, .. } => Some((n.name.clone(), connection.clone(), true)),
            NodeKind::Source { connection, .. } if calls.answers.contains_key(&n.name) => {
                Some((n.name.clone(), connection.clone(), false))
            }
            _ => None,
        })
        .collect();
    let mut polled = Vec::new();
    for (node, connection, is_sink) in callees {
        let target = Rc::new(Target {
            answers: calls.answers.get(&node).cloned().unwrap_or_default(),
            received: RefCell::default(),
        });
        let serving = target.clone();
        let handler: Handler = Rc::new(move |req| {
            let serving = serving.clone();
            Box::pin(async move { serving.answer(req) })
        });
        let addr = server::serve("127.0.0.1:0", handler)
            .await
            .map_err(|err| err.to_string())?;
        let url = format!("http://{addr}");
        let scripted = calls.answers.contains_key(&node)
            || calls.requests.contains_key(&node)
            || calls.dead_letters.contains_key(&node);
        match scripted {
            true => aim(&mut graph, &node, &connection, &url, &calls.env)?,
            false => stub(&mut graph, &node, &url),
        }
        if !is_sink {
            polled.push(node.clone());
        }
        targets.insert(node, target);
    }
    let pipeline = Rc::new(Pipeline::new(graph).map_err(|err| err.to_string())?);
    let file = StateFile::new();
    let store = state::Store::start(state::open(&format!("sqlite:{}", file.0.display()))?);
    let parts = Parts {
        test: Some(TestRun {
            sources: polled.clone(),
        }),
        ..Parts::of(&store)
    };
    let runner = Runner::start_with(
        pipeline,
        store.clone(),
        "127.0.0.1:0",
        server::Limits::default(),
        parts,
    )
    .await
    .map_err(|err| err.to_string())?;
    if polled.is_empty() {
        let (name, source) = (flow.to_string(), test.source.clone());
        let payload = omniflow_mapping::testing::input_bytes(test);
        store
            .call(move |b| b.append(&name, &source, &[payload], None))
            .await?;
        for ctx in &runner.flows {
            ctx.appended.notify_one();
        }
    }
    let started = Instant::now();
    loop {
        // A polling source has finished its first poll (its pages are committed) once it
        // reports an attempt.
        let reported = runner.shared.health.sources();
        let polls_done = polled.iter().all(|source| {
            reported
                .iter()
                .any(|h| h.flow == flow && &h.source == source)
        });
        let name = flow.to_string();
        if polls_done
            && store.call(move |b| b.backlog(&name)).await? == 0
            && runner.in_flight() == 0
        {
            break;
        }
        if started.elapsed() > PATIENCE {
            return Err(format!("the message was not finished within {PATIENCE:?}"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let letters = store.call(|b| b.dead_letters(false, 1000)).await?;
    runner.stop(Duration::from_secs(5)).await;
    let _ = store.close_blocking();
    let mut failures = Vec::new();
    for (node, expected) in &calls.requests {
        let what = match polled.contains(node) {
            true => format!("source `{node}`"),
            false => format!("sink `{node}`"),
        };
        let received = targets
            .get(node)
            .map(|t| t.received.borrow().clone())
            .unwrap_or_default();
        compare_requests(&what, expected, &received, &mut failures);
    }
    // A rejection the test expects is checked by the mapping's test already.
    let rejection_expected = test.reject.is_some();
    for letter in letters
        .iter()
        .filter(|l| !(rejection_expected && l.sink.is_empty()))
    {
        match calls.dead_letters.get(&letter.node) {
            Some(reason) if letter.error.contains(reason.as_str()) => {}
            Some(reason) => failures.push(format!(
                "sink `{}` dead-lettered with \"{}\", expected a reason containing \"{reason}\"",
                letter.node, letter.error
            )),
            None => failures.push(format!(
                "`{}` dead-lettered unexpectedly: {}",
                letter.node, letter.error
            )),
        }
    }
    for sink in calls.dead_letters.keys() {
        if !letters.iter().any(|l| &l.node == sink) {
            failures.push(format!(
                "sink `{sink}` was expected to dead-letter, and did not"
            ));
        }
    }
    match failures.is_empty() {
        true => Ok(()),
        false => Err(failures.join("\n")),
    }
}

/// Gives `sink` a copy of `connection` whose settings are resolved from `env` and whose
/// URLs point at `target`.
fn aim(
    graph: &mut Graph,
    sink: &str,
    connection: &str,
    target: &str,
    env: &BTreeMap<String, String>,
) -> Result<(), String> {
    let Some(original) = graph.connections.iter().find(|c| c.name == connection) else {
        return Err(format!(
            "sink `{sink}` names no known connection `{connection}`"
        ));
    };
    let mut copy = original.clone();
    copy.name = format!("{connection}~{sink}");
    for (connector, setting, path) in VENDOR_HOSTS {
        if copy.connector == *connector && !copy.settings.contains_key(*setting) {
            copy.settings.insert(
                setting.to_string(),
                SettingValue::Value(Value::String(format!("{target}{path}"))),
            );
        }
    }
    for (name, value) in copy.settings.iter_mut() {
        let text = match value {
            SettingValue::Env(var) | SettingValue::Secret(var) => {
                let var: &str = var;
                match env.get(var).cloned().or_else(|| std::env::var(var).ok()) {
                    Some(text) => text,
                    None => {
                        return Err(format!(
                            "connection `{connection}` setting `{name}` reads `{var}`: give it in the test's `env = {{\"{var}\": \"...\"}}`"
                        ))
                    }
                }
            }
            SettingValue::Value(Value::String(text)) => text.clone(),
            _ => continue,
        };
        // Shopify names the shop, not a URL.
        let text = match (copy.connector.as_str(), name.as_str()) {
            ("shopify", "shop") => target.to_string(),
            _ => pointed(&text, target),
        };
        *value = SettingValue::Value(Value::String(text));
    }
    graph.connections.push(copy);
    for node in &mut graph.flows[0].nodes {
        if node.name != sink {
            continue;
        }
        if let NodeKind::Sink {
            connection: named, ..
        }
        | NodeKind::Source {
            connection: named, ..
        } = &mut node.kind
        {
            *named = format!("{connection}~{sink}");
        }
    }
    Ok(())
}

/// Makes `sink`, which the test gives no answers, a plain JSON POST to `target` (which
/// accepts every call with `{}`), so the test needs no settings for its connection.
fn stub(graph: &mut Graph, sink: &str, target: &str) {
    let name = format!("stub~{sink}");
    graph.connections.push(omniflow_ir::Connection {
        name: name.clone(),
        connector: "http".into(),
        settings: BTreeMap::from([(
            "base_url".to_string(),
            SettingValue::Value(Value::String(target.to_string())),
        )]),
        quota: Default::default(),
        declared: None,
    });
    for node in &mut graph.flows[0].nodes {
        if let NodeKind::Sink {
            connection,
            operation,
            options,
            ..
        } = &mut node.kind
        {
            if node.name == sink {
                *connection = name.clone();
                *operation = "post".into();
                options.clear();
            }
        }
    }
}

/// `text` with its scheme, host and port replaced by `target`'s when it is an http(s)
/// URL; otherwise as it is.
fn pointed(text: &str, target: &str) -> String {
    let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    else {
        return text.to_string();
    };
    let path = rest.find('/').map_or("", |idx| &rest[idx..]);
    format!("{target}{path}")
}

/// Appends what differs between the requests a sink or source (`what`) sent and those
/// expected.
fn compare_requests(
    what: &str,
    expected: &[omniflow_ir::TestRequest],
    received: &[Received],
    failures: &mut Vec<String>,
) {
    if expected.len() != received.len() {
        let sent: Vec<String> = received
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        failures.push(format!(
            "{what} sent {} requests, expected {}: {}",
            received.len(),
            expected.len(),
            if sent.is_empty() {
                "none".to_string()
            } else {
                sent.join(", ")
            }
        ));
    }
    for (idx, (want, got)) in expected.iter().zip(received).enumerate() {
        let at = format!("{what} request {}", idx + 1);
        if let Some(method) = &want.method {
            if *method != got.method {
                failures.push(format!("{at}: method {}, expected {method}", got.method));
            }
        }
        if let Some(path) = &want.path {
            if *path != got.path {
                failures.push(format!("{at}: path {}, expected {path}", got.path));
            }
        }
        for (name, value) in &want.headers {
            let found = got
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str());
            if found != Some(value.as_str()) {
                failures.push(format!(
                    "{at}: header {name} is {}, expected \"{value}\"",
                    found.map_or("missing".to_string(), |v| format!("\"{v}\""))
                ));
            }
        }
        if let Some(body) = &want.body {
            let sent = serde_json::from_slice::<Value>(&got.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&got.body).into_owned()));
            if let Some(why) = mismatch(body, &sent, "$".into()) {
                let mut shown = sent.to_string();
                if shown.len() > 600 {
                    let cut = (0..=600)
                        .rev()
                        .find(|i| shown.is_char_boundary(*i))
                        .unwrap_or(0);
                    shown.truncate(cut);
                    shown.push('…');
                }
                failures.push(format!("{at}: body differs at {why}; sent {shown}"));
            }
        }
    }
}

/// A temporary state file, removed with its journal when dropped.
struct StateFile(std::path::PathBuf);

impl StateFile {
    fn new() -> StateFile {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = StateFile(
            std::env::temp_dir().join(format!("omniflow-test-{}-{n}.db", std::process::id())),
        );
        file.remove();
        file
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::pointed;

    #[test]
    fn urls_keep_their_path_and_other_settings_stay() {
        let target = "http://127.0.0.1:5000";
        assert_eq!(
            pointed("https://erp.example.com/odata/v4/sales?x=1", target),
            "http://127.0.0.1:5000/odata/v4/sales?x=1"
        );
        assert_eq!(pointed("https://shop.example.com", target), target);
        assert_eq!(pointed("acme-store", target), "acme-store");
    }
}
