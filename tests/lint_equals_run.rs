//! Lint equals run: what `omniflowc check` accepts, the runtime starts as written, and what
//! it refuses is what the runtime would refuse, ignore or cap. Each case checks a flow at
//! the edge of a range (clean, and started through the runtime's own start-up path:
//! `Pipeline::new`, `Runner::start`, the connectors' constructors) and one past it (a coded
//! error), then shows what the runtime did with the refused value when check let it by.

use omniflow_connectors::{self as connectors, Call, CallOutcome};
use omniflow_engine::runner::Runner;
use omniflow_ir::{Connection, Graph, NodeKind, SettingValue};
use omniflow_mapping::pipeline::Pipeline;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One checked flow: its error codes and the graph the compiler produced anyway.
struct Checked {
    errors: Vec<String>,
    graph: Graph,
}

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("omniflow-lint-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("out")).unwrap();
    dir
}

/// Writes `flow` (with `@DIR@` standing for the scratch directory) and checks it.
fn check(dir: &Path, flow: &str) -> Checked {
    let path = dir.join("main.flow");
    std::fs::write(&path, flow.replace("@DIR@", &dir.display().to_string())).unwrap();
    let compilation = omniflow_compiler::compile_paths(&[path]).unwrap();
    Checked {
        errors: compilation
            .diagnostics
            .iter()
            .filter(|d| d.severity == omniflow_compiler::diagnostics::Severity::Error)
            .map(|d| d.code.id.to_string())
            .collect(),
        graph: compilation.graph,
    }
}

fn local_runtime() -> (tokio::runtime::Runtime, tokio::task::LocalSet) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (runtime, tokio::task::LocalSet::new())
}

/// Starts every flow of `graph` as `omniflow run` does (state in `dir`, webhooks on an
/// ephemeral port), posts each body of `posts` to its path, stops, and returns the
/// statuses; `Err` is the runtime's refusal to start.
fn run(graph: Graph, dir: &Path, posts: &[(&str, usize)]) -> Result<Vec<u16>, String> {
    let (runtime, local) = local_runtime();
    let state = format!("sqlite:{}", dir.join("state.db").display());
    let store = omniflow_state::Store::start(omniflow_state::open(&state)?);
    let closing = store.clone();
    let statuses = local.block_on(&runtime, async move {
        let pipeline = Rc::new(Pipeline::new(graph).map_err(|e| e.to_string())?);
        let runner = Runner::start(pipeline, store, "127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let mut statuses = Vec::new();
        for (path, size) in posts {
            let addr = runner.webhook_addr.ok_or("no webhook server")?;
            statuses.push(post(addr, path, *size).await);
        }
        runner.stop(Duration::ZERO).await;
        Ok::<_, String>(statuses)
    });
    // As `omniflow run` does: the tasks (and the readers they hold) go first, then the
    // state is closed (log applied, stop recorded) before the next start opens the file.
    drop(local);
    closing.close_blocking()?;
    statuses
}

/// POSTs a JSON body of exactly `size` bytes and returns the status code.
async fn post(addr: std::net::SocketAddr, path: &str, size: usize) -> u16 {
    let mut body = format!("{{\"id\":\"big\",\"pad\":\"{}", "a".repeat(size));
    body.truncate(size - 2);
    body.push_str("\"}");
    assert_eq!(body.len(), size);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n"
    );
    let (mut reader, mut writer) = stream.split();
    let send = async {
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(body.as_bytes()).await;
    };
    let mut answer = Vec::new();
    let receive = reader.read_to_end(&mut answer);
    let (_, _) = tokio::join!(send, receive);
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"))
}

/// Calls a sink built as the runtime builds it, with `body`.
fn call_sink(
    connection: &Connection,
    operation: &str,
    options: &BTreeMap<String, Value>,
    body: &Value,
) -> Result<CallOutcome, String> {
    let (runtime, local) = local_runtime();
    let body = serde_json::to_vec(body).unwrap();
    local.block_on(&runtime, async move {
        let sink = omniflow_engine::connect::sink(
            std::rc::Rc::new(omniflow_connectors::Context::default()),
            connection,
            operation,
            options,
        )
        .map_err(|err| err.to_string())?;
        Ok(sink
            .call(Call {
                key: "k-1",
                correlation_id: "c-1",
                body: &body,
                timeout: Duration::from_secs(5),
            })
            .await)
    })
}

/// A local address where nothing listens: calls to it fail without leaving the machine.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn connection<'g>(graph: &'g Graph, name: &str) -> &'g Connection {
    graph.connections.iter().find(|c| c.name == name).unwrap()
}

fn sink_options(graph: &Graph, node: &str) -> BTreeMap<String, Value> {
    graph
        .flows
        .iter()
        .flat_map(|f| &f.nodes)
        .find_map(|n| match &n.kind {
            NodeKind::Sink { options, .. } if n.name == node => Some(options.clone()),
            _ => None,
        })
        .unwrap()
}

/// Builds every poll source's pager of `graph`, as the runtime does at start (no call is
/// made until a pager is asked for a page).
fn build_pagers(graph: &Graph) -> Vec<Result<(), String>> {
    let mut out = Vec::new();
    for node in graph.flows.iter().flat_map(|f| &f.nodes) {
        if let NodeKind::Source {
            connection: conn,
            operation,
            options,
            ..
        } = &node.kind
        {
            let conn = connection(graph, conn);
            let ctx = connectors::Context::default();
            let built = connectors::settings(&ctx, conn).and_then(|settings| {
                connectors::pager(&ctx, &conn.connector, operation, &settings, options).map(|_| ())
            });
            out.push(built.map_err(|e| e.to_string()));
        }
    }
    out
}

const WEBHOOK_INTAKE: &str = r#"
use std.connectors.{file, webhook}

connection hooks = webhook { path = "/unused", scheme = "none", max_body_bytes = 4194304 }
connection outbox = file { dir = "@DIR@/out" }

flow intake {
  source deliveries = hooks.receive { path = "/hooks/intake" }
  sink out = outbox.write(deliveries) {
    path = "deliveries.jsonl"
    idempotency_key = $.id
    dead_letter = "intake_errors"
  }
}
"#;

#[test]
fn a_webhook_body_limit_is_what_the_server_reads() {
    let dir = scratch("webhook-body");
    let edge = check(&dir, WEBHOOK_INTAKE);
    assert!(edge.errors.is_empty(), "{:?}", edge.errors);
    let limit = omniflow_ir::MAX_WEBHOOK_BODY_BYTES as usize;
    let statuses = run(
        edge.graph.clone(),
        &dir,
        &[("/hooks/intake", limit), ("/hooks/intake", limit + 1)],
    )
    .unwrap();
    assert!((200..300).contains(&statuses[0]), "{statuses:?}");
    assert_eq!(statuses[1], 413);

    let past = check(&dir, &WEBHOOK_INTAKE.replace("4194304", "4194305"));
    assert_eq!(past.errors, ["E0509"]);
    // Past the limit the runtime refuses to start too, also for a value from the
    // environment that check cannot see (it used to cap the body at 4 MiB silently).
    let mut from_env = edge.graph;
    let hooks = from_env
        .connections
        .iter_mut()
        .find(|c| c.name == "hooks")
        .unwrap();
    hooks.settings.insert(
        "max_body_bytes".into(),
        SettingValue::Env("LINT_RUN_WEBHOOK_BODY".into()),
    );
    let dir = scratch("webhook-body-env");
    std::env::set_var("LINT_RUN_WEBHOOK_BODY", "8388608");
    let refused = run(from_env.clone(), &dir, &[]).unwrap_err();
    assert!(
        refused.contains("`max_body_bytes` is \"8388608\", allowed 1 to 4194304"),
        "{refused}"
    );
    std::env::set_var("LINT_RUN_WEBHOOK_BODY", "4194304");
    assert_eq!(
        run(from_env, &dir, &[("/hooks/intake", limit + 1)]).unwrap(),
        [413]
    );
}

const HTTP_FORWARD: &str = r#"
use std.connectors.{file, http}

schema OrderUpdate {
  order_id: string
  status: string
}

connection inbox = file { dir = "@DIR@" }
connection api = http { base_url = "@BASE@", max_body_bytes = 1 }

flow forward {
  source rows = inbox.read { path = "orders/*.jsonl" }
  map update = rows -> OrderUpdate {
    order_id = $.id
    status = $.status
  }
  sink out = api.put(update) {
    path = "/orders/{{ order_id }}"
    idempotency_key = order_id
    dead_letter = "forward_errors"
  }
}
"#;

#[test]
fn an_http_body_limit_below_one_byte_is_refused_by_check_and_run() {
    let dir = scratch("http-body");
    let base = closed_port();
    let edge = check(&dir, &HTTP_FORWARD.replace("@BASE@", &base));
    assert!(edge.errors.is_empty(), "{:?}", edge.errors);
    run(edge.graph.clone(), &dir, &[]).unwrap();
    let high = HTTP_FORWARD
        .replace("@BASE@", &base)
        .replace("max_body_bytes = 1", "max_body_bytes = 9223372036854775807");
    assert!(check(&dir, &high).errors.is_empty());

    let past = check(
        &dir,
        &HTTP_FORWARD
            .replace("@BASE@", &base)
            .replace("= 1 }", "= -1 }"),
    );
    assert_eq!(past.errors, ["E0509"]);
    // The runtime refuses -1 at start as well (it used to send any body, with no limit),
    // also when the value comes from the environment.
    let message = json!({"order_id": "A-1", "status": "paid"});
    let options = sink_options(&edge.graph, "out");
    let mut from_env = connection(&edge.graph, "api").clone();
    from_env.settings.insert(
        "max_body_bytes".into(),
        SettingValue::Env("LINT_RUN_HTTP_BODY".into()),
    );
    std::env::set_var("LINT_RUN_HTTP_BODY", "-1");
    let refused = call_sink(&from_env, "put", &options, &message).unwrap_err();
    assert!(refused.contains("`max_body_bytes` is \"-1\""), "{refused}");
    std::env::set_var("LINT_RUN_HTTP_BODY", "1");
    let limited = call_sink(&from_env, "put", &options, &message).unwrap();
    assert!(
        matches!(&limited, CallOutcome::Permanent { reason } if reason.contains("over max_body_bytes (1)")),
        "{limited:?}"
    );
}

#[test]
fn a_sink_template_names_fields_of_the_message_it_is_rendered_over() {
    let dir = scratch("sink-template");
    let base = closed_port();
    let edge = check(&dir, &HTTP_FORWARD.replace("@BASE@", &base));
    assert!(edge.errors.is_empty(), "{:?}", edge.errors);
    let message = json!({"order_id": "A-1", "status": "paid"});
    let api = connection(&edge.graph, "api").clone();
    let mut api_unlimited = api.clone();
    api_unlimited
        .settings
        .insert("max_body_bytes".into(), SettingValue::Value(json!(1024)));
    let rendered = call_sink(
        &api_unlimited,
        "put",
        &sink_options(&edge.graph, "out"),
        &message,
    )
    .unwrap();
    assert!(
        matches!(&rendered, CallOutcome::Transient { class, .. } if class == "connect"),
        "the path rendered and the call was made: {rendered:?}"
    );

    for (path, code) in [
        ("/orders/{{ input.id }}", "E0303"),
        ("/orders/{{ input.order_id }}", "E0303"),
        ("/orders/{{ order_idd }}", "E0303"),
        ("/orders/{{ order_id.number }}", "E0304"),
    ] {
        let past = check(
            &dir,
            &HTTP_FORWARD
                .replace("@BASE@", &base)
                .replace("/orders/{{ order_id }}", path),
        );
        assert_eq!(past.errors, [code], "{path}");
    }
    // Had check let `input` by, every message would be dead-lettered.
    let mut options = sink_options(&edge.graph, "out");
    options.insert("path".into(), json!("/orders/{{ input.order_id }}"));
    let outcome = call_sink(&api_unlimited, "put", &options, &message).unwrap();
    assert!(
        matches!(&outcome, CallOutcome::Permanent { reason } if reason.contains("path template")),
        "{outcome:?}"
    );
}

#[test]
fn a_connector_declared_in_a_flow_is_refused_as_run_refuses_it() {
    let dir = scratch("user-connector");
    let flow = r#"
use std.connectors.{file}

connector warehouse_api {
  setting base_url: string
  sink create_order(json) -> json
}

connection inbox = file { dir = "@DIR@" }
connection warehouse = warehouse_api { base_url = "http://127.0.0.1:9" }

flow orders {
  source rows = inbox.read { path = "orders/*.jsonl" }
  sink out = warehouse.create_order(rows) {
    idempotency_key = $.id
    dead_letter = "orders_errors"
  }
}
"#;
    let checked = check(&dir, flow);
    assert_eq!(checked.errors, ["E0507"]);
    let refused = run(checked.graph, &dir, &[]).unwrap_err();
    assert!(
        refused.contains("not available in this runtime"),
        "{refused}"
    );
}

#[test]
fn literals_fit_the_runtime_exactly() {
    let dir = scratch("literals");
    let flow = r#"
use std.connectors.{file}

connection inbox = file { dir = "@DIR@" }

flow big_orders {
  source rows = inbox.read { path = "orders/*.jsonl" }
  filter big = rows when $.total > LITERAL
  sink out = inbox.write(big) {
    path = "out/big.jsonl"
    idempotency_key = $.id
    dead_letter = "big_orders_errors"
  }
}
"#;
    // 38 digits, 18 of them decimal places: the most the runtime's decimal holds exactly.
    let edge = "12345678901234567890.123456789012345678";
    let checked = check(&dir, &flow.replace("LITERAL", edge));
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    run(checked.graph, &dir, &[]).unwrap();
    assert_eq!(
        omniflow_mapping::decimal::Decimal::parse(edge)
            .unwrap()
            .to_string(),
        edge
    );

    let fifty = "12345678901234567890123456789012345678901234567890.5";
    let checked = check(&dir, &flow.replace("LITERAL", fifty));
    assert_eq!(checked.errors, ["E0508"]);
    let refused = run(checked.graph, &dir, &[]).map(|_| ()).unwrap_err();
    assert!(refused.contains("bad decimal literal"), "{refused}");

    // A table entry, setting or default is a JSON number (a double): at most what the
    // double keeps, exactly as written, or refused.
    let table = r#"
table rates: string -> decimal = { "EUR": RATE }
"#;
    let exact = "0.123456789012345";
    let checked = check(&dir, &table.replace("RATE", exact));
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    let stored = checked.graph.tables[0].entries["EUR"].as_f64().unwrap();
    let read = omniflow_mapping::decimal::Decimal::from_f64(stored).unwrap();
    assert_eq!(read.to_string(), exact);
    let lossy = "0.12345678901234567";
    assert_eq!(check(&dir, &table.replace("RATE", lossy)).errors, ["E0508"]);
    let read = omniflow_mapping::decimal::Decimal::from_f64(lossy.parse().unwrap()).unwrap();
    assert_ne!(read.to_string(), lossy);

    let nineteen_places = "0.1234567890123456789";
    assert_eq!(
        check(&dir, &flow.replace("LITERAL", nineteen_places)).errors,
        ["E0508"]
    );
    // Had check let it by, the runtime would round it.
    assert_ne!(
        omniflow_mapping::decimal::Decimal::parse(nineteen_places)
            .unwrap()
            .to_string(),
        nineteen_places
    );
}

const POLLS: &str = r#"
use std.connectors.{amazon_sp, file, odata, shopify, square}

connection shop = shopify { shop = "@BASE@", access_token = secret("LINT_RUN_SHOPIFY_TOKEN") }
connection amazon = amazon_sp {
  region = "na"
  marketplace_id = "ATVPDKIKX0DER"
  seller_id = "A1"
  client_id = "client"
  client_secret = secret("LINT_RUN_AMAZON_SECRET")
  refresh_token = secret("LINT_RUN_AMAZON_REFRESH")
  endpoint = "@BASE@"
}
connection pos = square { access_token = secret("LINT_RUN_SQUARE_TOKEN"), base_url = "@BASE@", location_ids = "L1" }
connection pim = odata { service_url = "@BASE@/odata" }
connection outbox = file { dir = "@DIR@/out" }

flow polls {
  source shop_orders = shop.orders { every = 24h, cursor = watermark, lookback = 365d, page_size = 250 }
  source amazon_orders = amazon.orders { every = 1s, cursor = watermark, lookback = 365d, page_size = 100 }
  source pos_orders = pos.orders { every = 1m, cursor = watermark, lookback = 15m, page_size = 1000 }
  source products = pim.entities { entity_set = "Products", every = 1h, cursor = watermark, page_size = 1000 }
  sink a = outbox.write(shop_orders) { path = "a.jsonl", idempotency_key = $.id, dead_letter = "e" }
  sink b = outbox.write(amazon_orders) { path = "b.jsonl", idempotency_key = $.id, dead_letter = "e" }
  sink c = outbox.write(pos_orders) { path = "c.jsonl", idempotency_key = $.id, dead_letter = "e" }
  sink d = outbox.write(products) { path = "d.jsonl", idempotency_key = $.ID, dead_letter = "e" }
}
"#;

#[test]
fn poll_options_at_their_edges_build_their_pagers_and_past_them_are_refused() {
    for var in [
        "LINT_RUN_SHOPIFY_TOKEN",
        "LINT_RUN_AMAZON_SECRET",
        "LINT_RUN_AMAZON_REFRESH",
        "LINT_RUN_SQUARE_TOKEN",
    ] {
        std::env::set_var(var, "test-value");
    }
    let dir = scratch("polls");
    let polls = POLLS.replace("@BASE@", &closed_port());
    let edge = check(&dir, &polls);
    assert!(edge.errors.is_empty(), "{:?}", edge.errors);
    let built = build_pagers(&edge.graph);
    assert_eq!(built.len(), 4);
    assert!(built.iter().all(Result::is_ok), "{built:?}");

    for (from, to, code) in [
        ("page_size = 250", "page_size = 251", "E0503"),
        ("page_size = 100", "page_size = 101", "E0503"),
        ("lookback = 365d", "lookback = 366d", "E0509"),
        ("lookback = 15m", "lookback = 99999999999999999d", "E0508"),
        ("every = 24h", "every = 99999999999999999d", "E0508"),
        ("entity_set = \"Products\", ", "", "E0211"),
        (", location_ids = \"L1\"", "", "E0211"),
    ] {
        let past = check(&dir, &polls.replacen(from, to, 1));
        assert_eq!(past.errors, [code], "{to}");
    }
    // Had check let them by: the runtime caps Shopify's page size to 250 and refuses an
    // OData source without its entity set and Square orders without locations.
    let mut options = BTreeMap::new();
    options.insert("page_size".to_string(), json!(251));
    assert_eq!(connectors::client::page_size(&options, 250, 250), 250);
    let no_entity_set = check(&dir, &polls.replacen("entity_set = \"Products\", ", "", 1));
    let no_locations = check(&dir, &polls.replacen(", location_ids = \"L1\"", "", 1));
    for (graph, refusal) in [
        (&no_entity_set.graph, "needs `entity_set`"),
        (&no_locations.graph, "need `location_ids`"),
    ] {
        let errors: Vec<String> = build_pagers(graph)
            .into_iter()
            .filter_map(Result::err)
            .collect();
        assert!(errors.iter().any(|e| e.contains(refusal)), "{errors:?}");
    }
}

#[test]
fn a_webhook_source_has_the_secret_that_verifies_it() {
    std::env::set_var("LINT_RUN_SHOPIFY_HOOKS", "test-value");
    let dir = scratch("webhook-secret");
    let flow = r#"
use std.connectors.{file, shopify}

connection shop = shopify {
  shop = "example"
  access_token = secret("LINT_RUN_SHOPIFY_HOOKS")
  webhook_secret = secret("LINT_RUN_SHOPIFY_HOOKS")
}
connection outbox = file { dir = "@DIR@/out" }

flow new_orders {
  source orders = shop.orders_create
  sink out = outbox.write(orders) { path = "orders.jsonl", idempotency_key = $.id, dead_letter = "e" }
}
"#;
    let edge = check(&dir, flow);
    assert!(edge.errors.is_empty(), "{:?}", edge.errors);
    run(edge.graph, &dir, &[]).unwrap();
    let past = check(
        &dir,
        &flow.replace(
            "  webhook_secret = secret(\"LINT_RUN_SHOPIFY_HOOKS\")\n",
            "",
        ),
    );
    assert_eq!(past.errors, ["E0211"]);
    let refused = run(past.graph, &dir, &[]).map(|_| ()).unwrap_err();
    assert!(refused.contains("webhook_secret"), "{refused}");
}

#[test]
fn a_bus_sink_has_a_subject_and_a_bus_the_runtime_knows() {
    let dir = scratch("bus");
    let flow = r#"
use std.connectors.{bus, file}

connection events = bus { url = "embedded:" }
connection inbox = file { dir = "@DIR@" }

flow publish {
  source rows = inbox.read { path = "orders/*.jsonl" }
  sink out = events.publish(rows) { subject = "orders.{{ channel }}", idempotency_key = $.id, dead_letter = "e" }
}
"#;
    let edge = check(&dir, flow);
    assert!(edge.errors.is_empty(), "{:?}", edge.errors);
    run(edge.graph.clone(), &dir, &[]).unwrap();
    let no_subject = check(
        &dir,
        &flow.replace("subject = \"orders.{{ channel }}\", ", ""),
    );
    assert_eq!(no_subject.errors, ["E0211"]);
    let refused = run(no_subject.graph, &dir, &[]).map(|_| ()).unwrap_err();
    assert!(refused.contains("needs `subject`"), "{refused}");

    for subject in ["orders.*", "orders..{{ channel }}", "orders created"] {
        let past = check(&dir, &flow.replace("orders.{{ channel }}", subject));
        assert_eq!(past.errors, ["E0509"], "{subject}");
    }

    let url = "\"redis://localhost\"";
    assert_eq!(
        check(&dir, &flow.replace("\"embedded:\"", url)).errors,
        ["E0509"]
    );
    let mut graph = edge.graph;
    let events = graph
        .connections
        .iter_mut()
        .find(|c| c.name == "events")
        .unwrap();
    events.settings.insert(
        "url".into(),
        SettingValue::Value(json!("redis://localhost")),
    );
    let refused = run(graph, &dir, &[]).map(|_| ()).unwrap_err();
    assert!(refused.contains("bus url `redis://localhost`"), "{refused}");
}

#[test]
fn a_file_sink_writes_json_lines_to_the_file_it_names() {
    let dir = scratch("file-sink");
    let flow = r#"
use std.connectors.{file}

connection inbox = file { dir = "@DIR@" }

flow archive {
  source rows = inbox.read { path = "orders/*.jsonl" }
  sink out = inbox.write(rows) { path = "out/archive.jsonl", format = jsonl, idempotency_key = $.id, dead_letter = "e" }
}
"#;
    let edge = check(&dir, flow);
    assert!(edge.errors.is_empty(), "{:?}", edge.errors);
    run(edge.graph.clone(), &dir, &[]).unwrap();
    let csv = check(&dir, &flow.replace("format = jsonl", "format = csv"));
    assert_eq!(csv.errors, ["E0509"]);
    let templated = check(
        &dir,
        &flow.replace("out/archive.jsonl", "out/{{ id }}.jsonl"),
    );
    assert_eq!(templated.errors, ["E0305"]);

    // Had check let them by: `format = csv` still writes a JSON line, and the braces name
    // the file.
    let inbox = connection(&edge.graph, "inbox");
    let mut options = sink_options(&csv.graph, "out");
    let message = json!({"id": "A-1"});
    assert_eq!(
        call_sink(inbox, "write", &options, &message).unwrap(),
        CallOutcome::Ok
    );
    let written = std::fs::read_to_string(dir.join("out/archive.jsonl")).unwrap();
    assert_eq!(written, "{\"id\":\"A-1\"}\n");
    options.insert("path".into(), json!("out/{{ id }}.jsonl"));
    assert_eq!(
        call_sink(inbox, "write", &options, &message).unwrap(),
        CallOutcome::Ok
    );
    assert!(dir.join("out/{{ id }}.jsonl").exists());
}

#[test]
fn a_table_file_with_a_duplicate_key_is_refused_where_one_row_was_lost() {
    let dir = scratch("table-duplicate");
    std::fs::write(
        dir.join("stores.csv"),
        "code,location\nNYC,STORE-1\nSF,STORE-2\n",
    )
    .unwrap();
    let flow = r#"
table stores: string -> string = file("stores.csv", key = "code", value = "location")

schema Row {
  location: string?
}
"#;
    assert!(check(&dir, flow).errors.is_empty());
    std::fs::write(
        dir.join("stores.csv"),
        "code,location\nNYC,STORE-1\nSF,STORE-2\nNYC,STORE-3\n",
    )
    .unwrap();
    let checked = check(&dir, flow);
    assert_eq!(checked.errors, ["E0215"]);
    // Before, the graph kept one of the two rows and lost the other without a word.
    let table = &checked.graph.tables[0];
    assert_eq!(table.entries.len(), 2, "{:?}", table.entries);
}

#[test]
fn two_webhook_sources_on_one_path_are_refused() {
    let dir = scratch("webhook-paths");
    let flow = r#"
use std.connectors.{file, webhook}

connection hooks = webhook { path = "/hooks", scheme = "none" }
connection outbox = file { dir = "@DIR@/out" }

flow orders {
  source created = hooks.receive { path = "/hooks/created" }
  source updated = hooks.receive { path = "/hooks/updated" }
  sink a = outbox.write(created) { path = "a.jsonl", idempotency_key = $.id, dead_letter = "e" }
  sink b = outbox.write(updated) { path = "b.jsonl", idempotency_key = $.id, dead_letter = "e" }
}
"#;
    let edge = check(&dir, flow);
    assert!(edge.errors.is_empty(), "{:?}", edge.errors);
    let statuses = run(
        edge.graph,
        &dir,
        &[("/hooks/created", 64), ("/hooks/updated", 64)],
    )
    .unwrap();
    assert!(
        statuses.iter().all(|s| (200..300).contains(s)),
        "{statuses:?}"
    );
    let past = check(&dir, &flow.replace("/hooks/updated", "/hooks/created"));
    assert_eq!(past.errors, ["E0110"]);
    // A source without a `path` listens on its connection's: two of them collide too.
    let defaults = flow
        .replace(" { path = \"/hooks/created\" }", "")
        .replace(" { path = \"/hooks/updated\" }", "");
    assert_eq!(check(&dir, &defaults).errors, ["E0110"]);
    let one_default = flow.replace(" { path = \"/hooks/created\" }", "");
    let edge = check(&dir, &one_default);
    assert!(edge.errors.is_empty(), "{:?}", edge.errors);
    // The runtime listens where check says (it used `/hooks/FLOW/SOURCE` and answered 404).
    let statuses = run(
        edge.graph,
        &dir,
        &[("/hooks", 64), ("/hooks/orders/created", 64)],
    )
    .unwrap();
    assert!((200..300).contains(&statuses[0]), "{statuses:?}");
    assert_eq!(statuses[1], 404);
}

#[test]
fn a_ledger_channel_publishes_to_an_operation_it_can_build() {
    let dir = scratch("ledger-publish");
    let flow = r#"
use std.connectors.{bus, file, http}

connection inbox = file { dir = "@DIR@" }
connection web_api = http { base_url = "http://127.0.0.1:9" }
connection events = bus { url = "embedded:" }

ledger stock {
  locations = ["WH"]

  channel web {
    locations = ["WH"]
    publish = web_api.post
  }
}

flow movements {
  source rows = inbox.read { path = "moves/*.jsonl" }
  sink out = inbox.write(rows) { path = "out/moves.jsonl", idempotency_key = $.id, dead_letter = "e" }
}
"#;
    let edge = check(&dir, flow);
    assert!(edge.errors.is_empty(), "{:?}", edge.errors);
    run(edge.graph, &dir, &[]).unwrap();
    let past = check(&dir, &flow.replace("web_api.post", "events.publish"));
    assert_eq!(past.errors, ["E0211"]);
    // Had check let it by, the ledger's publisher would not start.
    let mut graph = check(&dir, flow).graph;
    let channel = &mut graph.ledgers[0].channels[0];
    let publication = channel.publish.as_mut().unwrap();
    publication.connection = "events".into();
    publication.operation = "publish".into();
    let refused = run(graph, &dir, &[]).map(|_| ()).unwrap_err();
    assert!(refused.contains("needs `subject`"), "{refused}");
}
