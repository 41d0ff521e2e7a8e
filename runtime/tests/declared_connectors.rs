//! Connectors declared in flow files, end to end through `omniflow run`, with no built-in
//! connector on the path: the declarations of `flows/connectors/` and the stdlib's
//! `shopify_graphql` against the sandbox (Shopify's REST and GraphQL Admin APIs, Square's
//! order search) and against a real Tryton server,
//! a sink declared in the test's flow, SIGKILLs in the middle of multi-page polls, a
//! throttled page, a refused write and a session that expires.

mod support;

use omniflow_sandbox as sandbox;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::process::{post_json, terminate, Killed};
use support::{free_port, wait_for, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

/// A declaration of `flows/connectors/`, copied next to the test's flow.
fn declaration(dir: &TempDir, name: &str) {
    let text = std::fs::read_to_string(support::peers::repo().join("flows/connectors").join(name))
        .unwrap();
    std::fs::write(dir.0.join(name), text).unwrap();
}

/// `omniflow run FLOW` on the directory's state, logging (appended) to `runtime.log`.
fn run(dir: &TempDir, flow: &str, env: &[(&str, String)]) -> Killed {
    let mut command = Command::new(BIN);
    command
        .arg("run")
        .arg(dir.0.join(flow))
        .args(["--state", &dir.state(), "--webhook-addr", "127.0.0.1:0"])
        .env("OMNIFLOW_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(dir.0.join("runtime.log"))
                .unwrap(),
        ));
    for (name, value) in env {
        command.env(name, value);
    }
    Killed(command.spawn().unwrap())
}

fn dead_letters(dir: &TempDir) -> Vec<Value> {
    let out = Command::new(BIN)
        .args(["dlq", "list", "--json", "--limit", "1000", "--state"])
        .arg(dir.state())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Messages each sink key was accepted as, from the lineage (read once the runtime
/// stopped cleanly): distinct correlation ids, as a message run again after a kill keeps
/// its own (`FLOW#INBOX_ID`) and only a second read makes another.
fn accepted_per_key(dir: &TempDir) -> HashMap<String, usize> {
    let db = rusqlite::Connection::open_with_flags(
        dir.0.join("state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut statement = db
        .prepare("SELECT correlation, detail FROM lineage")
        .unwrap();
    let mut messages: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    for row in statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .unwrap()
    {
        let (correlation, detail) = row.unwrap();
        let detail: Value = serde_json::from_str(&detail).unwrap();
        let steps = detail["steps"].as_array().cloned().unwrap_or_default();
        let accepted = steps.iter().any(|s| s["step"] == "accepted");
        let key = steps
            .iter()
            .find_map(|s| s["detail"]["key"].as_str().map(String::from));
        if let (true, Some(key)) = (accepted, key) {
            messages.entry(key).or_default().insert(correlation);
        }
    }
    messages
        .into_iter()
        .map(|(key, ids)| (key, ids.len()))
        .collect()
}

fn new_shopify_orders(port: u16, n: usize) {
    for _ in 0..n {
        let (status, _) = post_json(
            port,
            "/_sandbox/shopify/orders",
            r#"{"line_items": [{"sku": "TSHIRT-039-RED-M", "quantity": 1}]}"#,
        );
        assert_eq!(status, 201, "the sandbox made the order");
    }
}

/// The test's own sink, declared: the order posted with its idempotency key as a header.
const ORDERS_API: &str = r#"
connector orders_api {
  setting base_url: url
  setting token: secret
  auth bearer { token = "{{ settings.token }}" }
  sink post(Placed) -> json {
    request {
      method = "POST"
      path = "/orders"
      body = {"id": "{{ message.id }}", "updated_at": "{{ message.updated_at }}"}
    }
    idempotency = "Idempotency-Key"
  }
}
schema Placed {
  id: string
  updated_at: string
}
"#;

/// Writes `orders.flow`: `declaration`'s orders polled into the test's declared sink,
/// the order's id and stamp read at `id` and `updated`, the shop connection given
/// `settings` besides its URL and token.
fn orders_flow(dir: &TempDir, declaration: &str, settings: &str, (id, updated): (&str, &str)) {
    let connector = declaration.trim_end_matches(".flow");
    // A declaration of the stdlib is imported by its module, others by their file.
    let import = match connector {
        "shopify_graphql" => format!("use std.connectors.{{{connector}}}"),
        _ => format!("use \"{declaration}\""),
    };
    std::fs::write(
        dir.0.join("orders.flow"),
        format!(
            r#"{import}
{ORDERS_API}
connection shop = {connector} {{ base_url = env("SHOP"), access_token = secret("SHOP_TOKEN"){settings} }}
connection api = orders_api {{ base_url = env("SINK"), token = secret("SINK_TOKEN") }}
flow orders {{
  source polled = shop.orders {{ every = 1s }}
  map placed = polled -> Placed {{ id = {id}, updated_at = {updated} }}
  sink post = api.post(placed) {{ idempotency_key = id, dead_letter = "orders" }}
}}
"#
        ),
    )
    .unwrap();
}

/// The environment of `orders.flow` against a sandbox port and a sink.
fn shop_env(port: u16, sink: &Sink) -> Vec<(&'static str, String)> {
    vec![
        ("SHOP", format!("http://127.0.0.1:{port}")),
        ("SHOP_TOKEN", sandbox::shopify::ACCESS_TOKEN.to_string()),
        ("SINK", format!("http://127.0.0.1:{}", sink.port)),
        ("SINK_TOKEN", "sink-token".to_string()),
    ]
}

#[test]
fn a_declared_connector_reads_every_page_once_across_ties_lookback_and_kills() {
    let dir = TempDir::new("declared-shopify");
    declaration(&dir, "shopify_rest.flow");
    let rest = ("to_string($.id)", "$.updated_at");
    orders_flow(&dir, "shopify_rest.flow", ", page_size = 3", rest);
    let port = free_port();
    let _sandbox = support::process::sandbox(port);
    let sink = Sink::start(Faults::default());
    let env = shop_env(port, &sink);
    // Orders made in one burst share their `updated_at` second: the id breaks the ties,
    // and each poll reads five pages of three.
    new_shopify_orders(port, 14);
    let mut total = 14;
    // Each page takes 200 to 800 ms: a poll of five pages spans the kills below.
    let (status, body) = post_json(
        port,
        "/_sandbox/faults",
        r#"{"system": "shopify", "profile": "slow"}"#,
    );
    assert_eq!(status, 200, "{body}");
    // SIGKILLs at moments that fall inside multi-page polls and between them, with new
    // orders arriving meanwhile.
    for (round, pause_ms) in [350u64, 900, 1500, 600].into_iter().enumerate() {
        let runtime = run(&dir, "orders.flow", &env);
        std::thread::sleep(Duration::from_millis(pause_ms));
        drop(runtime);
        new_shopify_orders(port, 3 + round);
        total += 3 + round;
    }
    let mut last = run(&dir, "orders.flow", &env);
    wait_for("every order at the sink", Duration::from_secs(90), || {
        sink.distinct() == total
    });
    // Polls go on re-reading the last minute: nothing more reaches the sink.
    let requests = sink.seen.lock().unwrap().requests;
    std::thread::sleep(Duration::from_secs(3));
    assert!(terminate(&mut last.0).success());
    let seen = sink.seen.lock().unwrap();
    assert_eq!(seen.requests, requests, "re-read orders were sent again");
    assert_eq!(seen.without_key, 0);
    assert_eq!(
        seen.mismatched, 0,
        "the idempotency header is the order's id"
    );
    let mut stamps: HashMap<&str, usize> = HashMap::new();
    for order in &seen.accepted {
        *stamps
            .entry(order["updated_at"].as_str().unwrap())
            .or_default() += 1;
    }
    assert!(
        stamps.values().any(|n| *n >= 4),
        "the orders share updated_at seconds (ties): {stamps:?}"
    );
    let accepted = accepted_per_key(&dir);
    let doubled: Vec<_> = accepted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "orders read twice: {doubled:?}");
    assert!(
        accepted.len() >= total - 3,
        "the lineage names the orders: {}",
        accepted.len()
    );
}

#[test]
fn a_declared_connector_waits_out_a_throttled_page_and_dead_letters_a_refused_write() {
    let dir = TempDir::new("declared-faults");
    declaration(&dir, "shopify_rest.flow");
    std::fs::create_dir_all(dir.0.join("in")).unwrap();
    let item = sandbox::catalog::shopify_inventory_item_id(0);
    let location = sandbox::catalog::SHOPIFY_LOCATIONS[0].0;
    std::fs::write(
        dir.0.join("in/levels.jsonl"),
        format!(
            "{}\n{}\n",
            json!({"id": "ok", "inventory_item_id": item, "location_id": location, "available": 7}),
            json!({"id": "unknown", "inventory_item_id": 999, "location_id": location, "available": 1}),
        ),
    )
    .unwrap();
    std::fs::write(
        dir.0.join("shop.flow"),
        format!(
            r#"use "shopify_rest.flow"
use std.connectors.{{file}}
{ORDERS_API}
connection shop = shopify_rest {{ base_url = env("SHOP"), access_token = secret("SHOP_TOKEN"), page_size = 2 }}
connection api = orders_api {{ base_url = env("SINK"), token = secret("SINK_TOKEN") }}
connection drop = file {{ dir = env("DROP") }}
flow orders {{
  source polled = shop.orders {{ every = 1h }}
  map placed = polled -> Placed {{ id = to_string($.id), updated_at = $.updated_at }}
  sink post = api.post(placed) {{ idempotency_key = id, dead_letter = "orders" }}
}}
flow levels {{
  source lines = drop.read {{ path = "in/*.jsonl" }}
  sink set = shop.set_inventory(lines) {{ idempotency_key = $.id, dead_letter = "levels" }}
}}
"#
        ),
    )
    .unwrap();
    let port = free_port();
    let _sandbox = support::process::sandbox(port);
    new_shopify_orders(port, 6);
    // The second page is throttled once; the poll waits and reads on (its next poll is
    // an hour away, so every order comes from this one).
    let (status, body) = post_json(
        port,
        "/_sandbox/faults",
        r#"{"route": "GET /admin/api/*/orders.json", "script": [{}, {"status": 429}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let sink = Sink::start(Faults::default());
    let mut env = shop_env(port, &sink);
    env.push(("DROP", dir.0.display().to_string()));
    let mut runtime = run(&dir, "shop.flow", &env);
    wait_for(
        "the six orders of one poll",
        Duration::from_secs(60),
        || sink.distinct() == 6,
    );
    wait_for(
        "the refused level's dead letter",
        Duration::from_secs(30),
        || !dead_letters(&dir).is_empty(),
    );
    assert!(terminate(&mut runtime.0).success());
    let log = std::fs::read_to_string(dir.0.join("runtime.log")).unwrap();
    assert!(log.contains("throttled; waiting"), "{log}");
    assert!(
        !log.contains("poll failed"),
        "the throttled page did not fail the poll: {log}"
    );
    let letters = dead_letters(&dir);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let reason = letters[0].to_string();
    assert!(
        reason.contains("Shopify refused the level")
            && reason.contains("Inventory item does not exist"),
        "{reason}"
    );
    let stats = sandbox_stats(port, "shopify");
    assert_eq!(stats["inventory_updates"], 1, "{stats}");
}

#[test]
fn the_declared_square_reads_are_the_standard_connectors_reads() {
    let dir = TempDir::new("declared-square");
    declaration(&dir, "square_orders.flow");
    let port = free_port();
    let _sandbox = support::process::sandbox(port);
    for _ in 0..7 {
        let (status, body) = post_json(
            port,
            "/_sandbox/square/orders",
            r#"{"location_id": "FPYCBCHYMXFK1", "state": "COMPLETED", "line_items": [{"catalog_object_id": "W62UWFY35CWMYGVWK6TWJDNI", "quantity": "1"}]}"#,
        );
        assert_eq!(status, 200, "{body}");
    }
    std::fs::write(
        dir.0.join("both.flow"),
        r#"use "square_orders.flow"
use std.connectors.{square, http}
connection declared = square_orders { base_url = env("SQUARE"), access_token = secret("SQUARE_TOKEN"), location_id = "FPYCBCHYMXFK1", page_size = 2 }
connection standard = square { base_url = env("SQUARE"), access_token = secret("SQUARE_TOKEN"), location_ids = "FPYCBCHYMXFK1" }
connection api = http { base_url = env("SINK") }
schema Seen {
  id: string
  by: string
}
flow declared_reads {
  source polled = declared.orders { every = 1s }
  map seen = polled -> Seen { id = $.id, by = "declared" }
  sink post = api.post(seen) { path = "/declared", idempotency_key = "declared-" + id, dead_letter = "declared" }
}
flow standard_reads {
  source polled = standard.orders { every = 1s, page_size = 2 }
  map seen = polled -> Seen { id = $.id, by = "standard" }
  sink post = api.post(seen) { path = "/standard", idempotency_key = "standard-" + id, dead_letter = "standard" }
}
"#,
    )
    .unwrap();
    let sink = Sink::start(Faults::default());
    let env = [
        ("SQUARE", format!("http://127.0.0.1:{port}")),
        ("SQUARE_TOKEN", sandbox::square::ACCESS_TOKEN.to_string()),
        ("SINK", format!("http://127.0.0.1:{}", sink.port)),
    ];
    let mut runtime = run(&dir, "both.flow", &env);
    wait_for("seven orders read by each", Duration::from_secs(60), || {
        sink.distinct() == 14
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(terminate(&mut runtime.0).success());
    let seen = sink.seen.lock().unwrap();
    let ids = |by: &str| {
        let mut ids: Vec<String> = seen
            .accepted
            .iter()
            .filter(|o| o["by"] == by)
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids("declared").len(), 7);
    assert_eq!(ids("declared"), ids("standard"));
    assert_eq!(seen.requests, 14, "nothing read twice by either");
}

#[test]
fn a_declared_json_rpc_connector_logs_in_again_when_tryton_ends_its_session() {
    let peer = support::peers::tryton();
    let url = support::peers::tryton_url(&peer);
    let dir = TempDir::new("declared-tryton");
    declaration(&dir, "tryton_rpc.flow");
    std::fs::create_dir_all(dir.0.join("in")).unwrap();
    let names: Vec<String> = (0..17).map(|i| format!("Declared Party {i:02}")).collect();
    let taken = support::block_on(async {
        let rpc = support::peers::TrytonRpc::login(&url).await;
        let first = rpc
            .model(
                "party.party",
                "search_read",
                vec![json!([]), json!(0), json!(1), json!(null), json!(["code"])],
            )
            .await;
        first[0]["code"].as_str().unwrap().to_string()
    });
    // The last party takes a code Tryton has given already: Tryton refuses it.
    let lines: String = names
        .iter()
        .map(|n| format!("{}\n", json!({"name": n})))
        .chain(std::iter::once(format!(
            "{}\n",
            json!({"name": "Refused Party", "code": taken})
        )))
        .collect();
    std::fs::write(
        dir.0.join("tryton.flow"),
        r#"use "tryton_rpc.flow"
use std.connectors.{file, http}
connection erp = tryton_rpc { base_url = env("TRYTON"), database = "omniflow", username = "admin", password = secret("TRYTON_PASSWORD") }
connection drop = file { dir = env("DROP") }
connection api = http { base_url = env("SINK") }
schema Party {
  id: string
  name: string
}
flow create {
  source lines = drop.read { path = "in/*.jsonl" }
  sink party = erp.create_party(lines) { idempotency_key = $.name, dead_letter = "parties", concurrency = 1 }
}
flow read {
  source parties = erp.parties { every = 1s }
  map party = parties -> Party { id = to_string($.id), name = $.name }
  sink post = api.post(party) { path = "/parties", idempotency_key = id, dead_letter = "read" }
}
"#,
    )
    .unwrap();
    let sink = Sink::start(Faults::default());
    let env = [
        ("TRYTON", url.clone()),
        ("TRYTON_PASSWORD", "admin".to_string()),
        ("DROP", dir.0.display().to_string()),
        ("SINK", format!("http://127.0.0.1:{}", sink.port)),
    ];
    let before = support::block_on(async {
        let rpc = support::peers::TrytonRpc::login(&url).await;
        rpc.model("party.party", "search_count", vec![json!([])])
            .await
            .as_u64()
            .unwrap() as usize
    });
    let mut runtime = run(&dir, "tryton.flow", &env);
    wait_for("the seeded parties read", Duration::from_secs(60), || {
        sink.distinct() >= before
    });
    // Tryton forgets every session: the next call is refused with 401, the connector logs
    // in again and goes on.
    let db = rusqlite::Connection::open(peer.dir.join("omniflow.sqlite")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let ended = db.execute("DELETE FROM ir_session", []).unwrap();
    assert!(ended >= 1, "the connector's session was in Tryton");
    std::fs::write(dir.0.join("in/parties.jsonl"), &lines).unwrap();
    wait_for("the new parties read back", Duration::from_secs(90), || {
        sink.distinct() == before + names.len()
    });
    wait_for(
        "the refused party's dead letter",
        Duration::from_secs(30),
        || !dead_letters(&dir).is_empty(),
    );
    assert!(terminate(&mut runtime.0).success());
    let log = std::fs::read_to_string(dir.0.join("runtime.log")).unwrap();
    assert!(log.contains("fetching a new token"), "{log}");
    let letters = dead_letters(&dir);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].to_string().contains("Tryton refused the call"),
        "{}",
        letters[0]
    );
    // Each party created once, found by its name if a write is repeated.
    let counts = support::block_on(async {
        let rpc = support::peers::TrytonRpc::login(&url).await;
        let mut counts = Vec::new();
        for name in &names {
            let found = rpc
                .model(
                    "party.party",
                    "search_count",
                    vec![json!([["name", "=", name]])],
                )
                .await;
            counts.push(found.as_u64().unwrap());
        }
        counts
    });
    assert!(counts.iter().all(|n| *n == 1), "{counts:?}");
    let seen = sink.seen.lock().unwrap();
    let read: Vec<&str> = seen
        .accepted
        .iter()
        .filter_map(|p| p["name"].as_str())
        .filter(|n| n.starts_with("Declared Party"))
        .collect();
    assert_eq!(
        read.len(),
        names.len(),
        "each new party read once: {read:?}"
    );
    drop(peer);
}

#[test]
fn a_poll_that_does_not_find_what_the_declaration_expects_is_visible() {
    let dir = TempDir::new("declared-visible");
    // The declaration looks for `items`; Shopify answers `orders`.
    let declaration =
        std::fs::read_to_string(support::peers::repo().join("flows/connectors/shopify_rest.flow"))
            .unwrap()
            .replace("records = $.orders[*]", "records = $.items[*]");
    std::fs::write(dir.0.join("shopify_rest.flow"), declaration).unwrap();
    orders_flow(
        &dir,
        "shopify_rest.flow",
        "",
        ("to_string($.id)", "$.updated_at"),
    );
    let port = free_port();
    let _sandbox = support::process::sandbox(port);
    new_shopify_orders(port, 2);
    let sink = Sink::start(Faults::default());
    let mut command = Command::new(BIN);
    command
        .arg("run")
        .arg(dir.0.join("orders.flow"))
        .args(["--state", &dir.state(), "--webhook-addr", "127.0.0.1:0"])
        .args(["--ops-addr", "127.0.0.1:0"])
        .envs(shop_env(port, &sink))
        .env("OMNIFLOW_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.0.join("runtime.log")).unwrap(),
        ));
    let mut runtime = Killed(command.spawn().unwrap());
    // The ops endpoint's port, as the runtime logs it.
    let mut ops = 0u16;
    wait_for("the ops endpoint", Duration::from_secs(30), || {
        let log = std::fs::read_to_string(dir.0.join("runtime.log")).unwrap_or_default();
        ops = log
            .lines()
            .find(|l| l.contains("ops endpoint listening"))
            .and_then(|l| l.rsplit("addr=127.0.0.1:").next())
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        ops != 0
    });
    let metric = "omniflow_poll_errors_total{flow=\"orders\",source=\"polled\",reason=\"unexpected_answer\"}";
    let started = std::time::Instant::now();
    while !support::process::get(ops, "/metrics").1.contains(metric) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no failed poll counted: {}",
            std::fs::read_to_string(dir.0.join("runtime.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, ready) = support::process::get(ops, "/ready");
    assert_eq!(status, 200, "{ready}");
    assert!(
        ready.contains("source orders/polled failing since")
            && ready.contains("unexpected_answer")
            && ready.contains("nothing at `$.items[*]`"),
        "{ready}"
    );
    let health: Value = serde_json::from_str(&support::process::get(ops, "/health").1).unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(
        health["sources"][0]["reason"], "unexpected_answer",
        "{health}"
    );
    assert!(terminate(&mut runtime.0).success());
    let log = std::fs::read_to_string(dir.0.join("runtime.log")).unwrap();
    assert!(
        log.contains("poll failed") && log.contains("its fields: orders"),
        "the warning names what the answer holds: {log}"
    );
    assert_eq!(sink.distinct(), 0, "nothing was read as an empty page");
}

#[test]
fn a_declared_graphql_connector_pages_by_cursor_and_waits_out_a_throttled_query() {
    let dir = TempDir::new("declared-graphql");
    let graphql = ("$.legacyResourceId", "$.updatedAt");
    orders_flow(&dir, "shopify_graphql.flow", "", graphql);
    let port = free_port();
    let _sandbox = support::process::sandbox(port);
    new_shopify_orders(port, 60);
    let sink = Sink::start(Faults::default());
    let env = shop_env(port, &sink);
    let mut runtime = run(&dir, "orders.flow", &env);
    wait_for(
        "60 orders over three pages",
        Duration::from_secs(60),
        || sink.distinct() == 60,
    );
    // The cost bucket runs dry: the next poll's query is THROTTLED, waits as the cost
    // extension says, and reads the new orders.
    let (status, body) = post_json(
        port,
        "/_sandbox/shopify/graphql_bucket",
        r#"{"available": 0}"#,
    );
    assert_eq!(status, 200, "{body}");
    new_shopify_orders(port, 30);
    wait_for(
        "the orders after the throttled query",
        Duration::from_secs(60),
        || sink.distinct() == 90,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(terminate(&mut runtime.0).success());
    let log = std::fs::read_to_string(dir.0.join("runtime.log")).unwrap();
    assert!(log.contains("THROTTLED"), "{log}");
    assert!(
        !log.contains("poll failed"),
        "the throttled query did not fail the poll: {log}"
    );
    let seen = sink.seen.lock().unwrap();
    assert_eq!(seen.requests, 90, "no order sent twice");
    assert_eq!(seen.mismatched, 0);
    let stats = sandbox_stats(port, "shopify");
    assert!(stats["throttled"].as_u64().unwrap() >= 1, "{stats}");
}

#[test]
fn a_declared_graphql_mutation_sets_stock_once_and_dead_letters_user_errors() {
    let dir = TempDir::new("declared-graphql-mutation");
    std::fs::create_dir_all(dir.0.join("in")).unwrap();
    let item = sandbox::catalog::shopify_inventory_item_id(1);
    let location = sandbox::catalog::SHOPIFY_LOCATIONS[1].0;
    let gid = |kind: &str, id: u64| format!("gid://shopify/{kind}/{id}");
    std::fs::write(
        dir.0.join("in/levels.jsonl"),
        format!(
            "{}\n{}\n",
            json!({"id": "set-1", "inventory_item_id": gid("InventoryItem", item), "location_id": gid("Location", location), "available": 17}),
            json!({"id": "set-2", "inventory_item_id": gid("InventoryItem", 999), "location_id": gid("Location", location), "available": 3}),
        ),
    )
    .unwrap();
    std::fs::write(
        dir.0.join("levels.flow"),
        r#"use std.connectors.{shopify_graphql, file}
connection shop = shopify_graphql { base_url = env("SHOP"), access_token = secret("SHOP_TOKEN") }
connection drop = file { dir = env("DROP") }
flow levels {
  source lines = drop.read { path = "in/*.jsonl" }
  sink set = shop.set_inventory(lines) { idempotency_key = $.id, dead_letter = "levels" }
}
"#,
    )
    .unwrap();
    let port = free_port();
    let _sandbox = support::process::sandbox(port);
    let sink = Sink::start(Faults::default());
    let mut env = shop_env(port, &sink);
    env.push(("DROP", dir.0.display().to_string()));
    let mut runtime = run(&dir, "levels.flow", &env);
    wait_for(
        "the refused quantity's dead letter",
        Duration::from_secs(60),
        || !dead_letters(&dir).is_empty(),
    );
    let level = |port: u16| {
        let (_, body) = support::process::exchange(
            port,
            &format!(
                "GET /admin/api/2026-04/inventory_levels.json?inventory_item_ids={item}&location_ids={location} HTTP/1.1\r\n\
                 Host: x\r\nX-Shopify-Access-Token: {}\r\nConnection: close\r\n\r\n",
                sandbox::shopify::ACCESS_TOKEN
            ),
        );
        let levels: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        levels["inventory_levels"][0]["available"].as_i64()
    };
    wait_for("the set quantity", Duration::from_secs(30), || {
        level(port) == Some(17)
    });
    assert!(terminate(&mut runtime.0).success());
    let letters = dead_letters(&dir);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let reason = letters[0].to_string();
    assert!(
        reason.contains("Shopify refused the quantity: INVALID_INVENTORY_ITEM"),
        "{reason}"
    );
    // The mutation went out with the message's key: sent again, it is not applied again.
    let stats = sandbox_stats(port, "shopify");
    assert_eq!(stats["inventory_updates"], 1, "{stats}");
}

#[test]
fn the_generic_http_source_pages_and_keeps_a_watermark_without_a_declaration() {
    let dir = TempDir::new("generic-http");
    std::fs::write(
        dir.0.join("orders.flow"),
        r#"use std.connectors.{http}
connection shop = http { base_url = env("SHOP"), api_key = secret("SHOP_TOKEN"), key_header = "X-Shopify-Access-Token" }
connection api = http { base_url = env("SINK"), bearer_token = secret("SINK_TOKEN") }
schema Placed {
  id: string
  updated_at: string
}
flow orders {
  source polled = shop.get {
    every = 1s
    path = "/admin/api/2026-04/orders.json?status=any&limit=3&order=updated_at%20asc"
    records = "$.orders[*]"
    paging = "link"
    watermark_path = "$.updated_at"
    tie = "$.id"
    since_param = "updated_at_min"
    lookback = 1m
  }
  map placed = polled -> Placed { id = to_string($.id), updated_at = $.updated_at }
  sink post = api.post(placed) { path = "/orders", idempotency_key = id, dead_letter = "orders" }
}
"#,
    )
    .unwrap();
    let port = free_port();
    let _sandbox = support::process::sandbox(port);
    new_shopify_orders(port, 11);
    let sink = Sink::start(Faults::default());
    let mut runtime = run(&dir, "orders.flow", &shop_env(port, &sink));
    wait_for(
        "eleven orders over four pages",
        Duration::from_secs(60),
        || sink.distinct() == 11,
    );
    new_shopify_orders(port, 2);
    wait_for("the two new orders", Duration::from_secs(60), || {
        sink.distinct() == 13
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(terminate(&mut runtime.0).success());
    let seen = sink.seen.lock().unwrap();
    assert_eq!(seen.requests, 13, "re-read orders were not sent again");
    assert_eq!(seen.mismatched, 0);
    let db = rusqlite::Connection::open_with_flags(
        dir.0.join("state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let cursor: String = db
        .query_row("SELECT value FROM cursors WHERE flow = 'orders'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        cursor.contains("\"w\":") && cursor.contains("\"t\":"),
        "{cursor}"
    );
}

/// `n` new Amazon orders in the sandbox on `port`.
fn new_amazon_orders(port: u16, n: usize) {
    for _ in 0..n {
        let (status, body) = post_json(
            port,
            "/_sandbox/amazon/orders",
            r#"{"items": [{"sku": "TSHIRT-039-RED-M", "quantity": 1}]}"#,
        );
        assert_eq!(status, 201, "{body}");
    }
}

/// The counters of the sandbox on `port` for `system` (`shopify`, `amazon_sp`, ...).
fn sandbox_stats(port: u16, system: &str) -> Value {
    let (_, text) = support::process::get(port, "/_sandbox/stats");
    serde_json::from_str::<Value>(&text).unwrap()[system].clone()
}

/// The sandbox's Amazon counters.
fn amazon_stats(port: u16) -> Value {
    sandbox_stats(port, "amazon_sp")
}

/// Runs `amazon.flow`: `amazon_orders.flow` (its `quota` line replaced by `quota`) polled
/// every three seconds with `settings`, each order posted to `sink`.
fn run_amazon(dir: &TempDir, port: u16, sink: &Sink, quota: &str, settings: &str) -> Killed {
    declaration(dir, "amazon_orders.flow");
    let path = dir.0.join("amazon_orders.flow");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = "quota { rate = 1/m, burst = 20 }";
    assert!(text.contains(line));
    std::fs::write(&path, text.replace(line, quota)).unwrap();
    std::fs::write(
        dir.0.join("amazon.flow"),
        format!(
            r#"use "amazon_orders.flow"
use std.connectors.{{http}}
connection amazon = amazon_orders {{
  base_url = env("SPAPI")
  token_url = env("LWA")
  client_id = env("LWA_CLIENT")
  client_secret = secret("LWA_SECRET")
  refresh_token = secret("LWA_REFRESH")
  marketplace_id = "ATVPDKIKX0DER"
  {settings}
}}
connection api = http {{ base_url = env("SINK") }}
schema Seen {{
  id: string
}}
flow amazon_reads {{
  source polled = amazon.orders {{ every = 3s }}
  map seen = polled -> Seen {{ id = $.AmazonOrderId }}
  sink post = api.post(seen) {{ path = "/orders", idempotency_key = id, dead_letter = "orders" }}
}}
"#
        ),
    )
    .unwrap();
    let env = [
        ("SPAPI", format!("http://127.0.0.1:{port}")),
        ("LWA", format!("http://127.0.0.1:{port}/auth/o2/token")),
        ("LWA_CLIENT", sandbox::amazon::CLIENT_ID.to_string()),
        ("LWA_SECRET", sandbox::amazon::CLIENT_SECRET.to_string()),
        ("LWA_REFRESH", sandbox::amazon::REFRESH_TOKEN.to_string()),
        ("SINK", format!("http://127.0.0.1:{}", sink.port)),
    ];
    run(dir, "amazon.flow", &env)
}

#[test]
fn a_declared_oauth2_connector_renews_its_token_before_it_expires_and_after_a_refusal() {
    let dir = TempDir::new("declared-amazon");
    let port = free_port();
    let _sandbox = support::process::sandbox(port);
    let new_orders = |n: usize| new_amazon_orders(port, n);
    let stats = || amazon_stats(port);
    new_orders(7);
    let sink = Sink::start(Faults::default());
    let mut runtime = run_amazon(&dir, port, &sink, "quota { rate = 1/m, burst = 20 }", "");
    // getOrders allows a burst of 20 calls, then one a minute: a poll every three seconds
    // (one page each, with the lookback) stays within it for a minute.
    wait_for("seven orders", Duration::from_secs(60), || {
        sink.distinct() == 7
    });
    let first = stats();
    assert_eq!(first["token_grants"], 1, "{first}");
    assert_eq!(first["access_denied"], 0, "{first}");
    // Tokens now last three seconds, the one in hand too, which is already older: the
    // next call is refused, and the connector fetches a new token and goes on. From then
    // on it renews each token before it expires.
    let (status, _) = post_json(port, "/_sandbox/amazon/token_ttl", r#"{"expires_in": 3}"#);
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_secs(4));
    new_orders(5);
    wait_for("twelve orders", Duration::from_secs(60), || {
        sink.distinct() == 12
    });
    std::thread::sleep(Duration::from_secs(7));
    assert!(terminate(&mut runtime.0).success());
    let after = stats();
    let (grants, denied) = (
        after["token_grants"].as_u64().unwrap(),
        after["access_denied"].as_u64().unwrap(),
    );
    assert!(denied >= 1, "the expired token was refused: {after}");
    assert!(
        grants >= denied + 2,
        "tokens were renewed before they expired, not only after refusals: {after}"
    );
    assert_eq!(after["auth_failures"], 0, "{after}");
    assert_eq!(after["throttled"], 0, "{after}");
    assert_eq!(sink.seen.lock().unwrap().requests, 12, "nothing read twice");
    assert!(dead_letters(&dir).is_empty(), "{:?}", dead_letters(&dir));
    let log = std::fs::read_to_string(dir.0.join("runtime.log")).unwrap();
    assert!(!log.contains("Atza|"), "no access token in the log");
}

#[test]
fn a_declared_quota_paces_the_pages_of_a_poll() {
    let dir = TempDir::new("declared-quota");
    let port = free_port();
    let _sandbox = support::process::sandbox(port);
    new_amazon_orders(port, 7);
    let sink = Sink::start(Faults::default());
    // Three calls, then one a minute: a poll of four pages of two reads three at once.
    let mut runtime = run_amazon(
        &dir,
        port,
        &sink,
        "quota { rate = 1/m, burst = 3 }",
        "page_size = 2",
    );
    wait_for("three pages", Duration::from_secs(60), || {
        sink.distinct() == 6
    });
    std::thread::sleep(Duration::from_secs(3));
    let stats = amazon_stats(port);
    assert_eq!(sink.distinct(), 6, "the fourth page waits for the quota");
    assert_eq!(stats["throttled"], 0, "{stats}");
    // A reload stops the running plan: the poll waiting for the quota ends rather than
    // linger beside the new plan's, which goes on from the fourth page.
    let flow = dir.0.join("amazon.flow");
    let text = std::fs::read_to_string(&flow).unwrap();
    std::fs::write(&flow, text.replace("every = 3s", "every = 4s")).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &runtime.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for("the waiting poll to end", Duration::from_secs(30), || {
        std::fs::read_to_string(dir.0.join("runtime.log"))
            .unwrap_or_default()
            .contains("stopping while the next page waits for the connection's quota")
    });
    wait_for("the seventh order", Duration::from_secs(60), || {
        sink.distinct() == 7
    });
    assert!(terminate(&mut runtime.0).success());
    assert_eq!(sink.seen.lock().unwrap().requests, 7, "nothing read twice");
}

#[test]
fn the_generic_http_connector_fetches_an_oauth2_token_for_its_reads_and_writes() {
    let dir = TempDir::new("http-oauth2");
    let port = free_port();
    let _sandbox = support::process::sandbox(port);
    new_amazon_orders(port, 3);
    let listing = |n: usize| {
        json!({"sku": "TSHIRT-039-RED-M", "quantity": n, "id": format!("q{n}")}).to_string()
    };
    std::fs::write(
        dir.0.join("in/stock-1.jsonl"),
        format!("{}\n{}\n", listing(5), listing(6)),
    )
    .unwrap();
    std::fs::write(
        dir.0.join("http.flow"),
        r#"use std.connectors.{http, file}
connection spapi = http {
  base_url = env("SPAPI")
  token_url = env("LWA")
  client_id = env("LWA_CLIENT")
  client_secret = secret("LWA_SECRET")
  refresh_token = secret("LWA_REFRESH")
  token_header = "x-amz-access-token"
}
connection api = http { base_url = env("SINK") }
connection drop = file { dir = env("DROP") }
schema Seen {
  id: string
}
flow reads {
  source polled = spapi.get {
    every = 2s
    path = "/orders/v0/orders?MarketplaceIds=ATVPDKIKX0DER&CreatedAfter=2020-01-01T00:00:00Z"
    records = "$.payload.Orders[*]"
  }
  map seen = polled -> Seen { id = $.AmazonOrderId }
  sink post = api.post(seen) { path = "/orders", idempotency_key = id, dead_letter = "orders" }
}
flow listings {
  source counts = drop.read { path = "in/stock-*.jsonl" }
  sink offer = spapi.patch(counts) {
    path = "/listings/2021-08-01/items/A1SANDBOXSELLER/{{ sku }}?marketplaceIds=ATVPDKIKX0DER"
    body = "{\"productType\": \"PRODUCT\", \"patches\": [{\"op\": \"replace\", \"path\": \"/attributes/fulfillment_availability\", \"value\": [{\"fulfillment_channel_code\": \"DEFAULT\", \"quantity\": {{ quantity }}}]}]}"
    idempotency_key = $.id
    order_by = $.sku
    dead_letter = "listings"
  }
}
"#,
    )
    .unwrap();
    let sink = Sink::start(Faults::default());
    let env = [
        ("SPAPI", format!("http://127.0.0.1:{port}")),
        ("LWA", format!("http://127.0.0.1:{port}/auth/o2/token")),
        ("LWA_CLIENT", sandbox::amazon::CLIENT_ID.to_string()),
        ("LWA_SECRET", sandbox::amazon::CLIENT_SECRET.to_string()),
        ("LWA_REFRESH", sandbox::amazon::REFRESH_TOKEN.to_string()),
        ("SINK", format!("http://127.0.0.1:{}", sink.port)),
        ("DROP", dir.0.display().to_string()),
    ];
    let mut runtime = run(&dir, "http.flow", &env);
    wait_for(
        "three orders and two listings",
        Duration::from_secs(60),
        || sink.distinct() == 3 && amazon_stats(port)["listing_updates"] == 2,
    );
    let first = amazon_stats(port);
    assert_eq!(
        first["token_grants"], 1,
        "the source and the sink share one token: {first}"
    );
    // Every token in hand is now too old: the next read and the next write are refused,
    // and each fetches a new token and is sent again.
    let (status, _) = post_json(port, "/_sandbox/amazon/token_ttl", r#"{"expires_in": 1}"#);
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_secs(2));
    new_amazon_orders(port, 2);
    std::fs::write(dir.0.join("in/stock-2.jsonl"), format!("{}\n", listing(7))).unwrap();
    wait_for(
        "five orders and three listings",
        Duration::from_secs(60),
        || sink.distinct() == 5 && amazon_stats(port)["listing_updates"] == 3,
    );
    assert!(terminate(&mut runtime.0).success());
    let after = amazon_stats(port);
    assert!(after["access_denied"].as_u64() >= Some(1), "{after}");
    assert!(after["token_grants"].as_u64() >= Some(2), "{after}");
    assert_eq!(after["auth_failures"], 0, "{after}");
    assert!(dead_letters(&dir).is_empty(), "{:?}", dead_letters(&dir));
    assert_eq!(sink.seen.lock().unwrap().requests, 5, "nothing read twice");
}

/// Vendure's Admin API, as the test's own administrator session.
struct VendureAdmin {
    url: String,
    token: String,
}

impl VendureAdmin {
    fn login(port: u16) -> VendureAdmin {
        let url = format!("http://127.0.0.1:{port}/admin-api");
        let token = support::block_on(async {
            let answer = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .body(json!({"query": "mutation { login(username: \"superadmin\", password: \"superadmin\") { ... on CurrentUser { id } } }"}).to_string())
                .send()
                .await
                .unwrap();
            answer.headers()["vendure-auth-token"]
                .to_str()
                .unwrap()
                .to_string()
        });
        VendureAdmin { url, token }
    }

    fn run(&self, query: &str, variables: Value) -> Value {
        support::block_on(async {
            let text = reqwest::Client::new()
                .post(&self.url)
                .bearer_auth(&self.token)
                .header("content-type", "application/json")
                .body(json!({"query": query, "variables": variables}).to_string())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let answer: Value = serde_json::from_str(&text).unwrap();
            assert!(answer["errors"].is_null(), "{answer}");
            answer["data"].clone()
        })
    }

    /// `n` draft orders of one tee each; their ids.
    fn new_orders(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let id = self.run("mutation { createDraftOrder { id } }", json!({}))
                    ["createDraftOrder"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let added = self.run(
                    "mutation Add($id: ID!) { addItemToDraftOrder(orderId: $id, input: {productVariantId: 1, quantity: 1}) { ... on Order { id } ... on ErrorResult { errorCode } } }",
                    json!({"id": id}),
                );
                assert_eq!(added["addItemToDraftOrder"]["id"], id, "{added}");
                id
            })
            .collect()
    }
}

#[test]
fn a_declared_graphql_connector_reads_and_writes_a_real_vendure_across_ended_sessions() {
    let dir = TempDir::new("declared-vendure");
    declaration(&dir, "vendure.flow");
    // Pages of five, so that a poll reads several.
    let path = dir.0.join("vendure.flow");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("size = 50"));
    std::fs::write(&path, text.replace("size = 50", "size = 5")).unwrap();
    let db = support::postgres::FreshDb::create("vendure_peer");
    let peer = support::peers::vendure(&db, "1h");
    let admin = VendureAdmin::login(peer.port);
    let first = admin.new_orders(17);
    std::fs::write(
        dir.0.join("in/notes.jsonl"),
        format!(
            "{}\n{}\n",
            json!({"id": "n1", "order_id": first[0], "note": "packed by the store"}),
            json!({"id": "n2", "order_id": "99999", "note": "no such order"}),
        ),
    )
    .unwrap();
    std::fs::write(
        dir.0.join("shop.flow"),
        r#"use "vendure.flow"
use std.connectors.{http, file}
connection shop = vendure { base_url = env("VENDURE"), username = "superadmin", password = secret("VENDURE_PASSWORD") }
connection api = http { base_url = env("SINK") }
connection drop = file { dir = env("DROP") }
schema Seen {
  id: string
  code: string
}
flow orders {
  source polled = shop.orders { every = 1s }
  map seen = polled -> Seen { id = $.id, code = $.code }
  sink post = api.post(seen) { path = "/orders", idempotency_key = id, dead_letter = "orders" }
}
flow notes {
  source lines = drop.read { path = "in/notes.jsonl" }
  sink note = shop.add_note(lines) { idempotency_key = $.id, dead_letter = "notes" }
}
"#,
    )
    .unwrap();
    let sink = Sink::start(Faults::default());
    let env = [
        ("VENDURE", format!("http://127.0.0.1:{}", peer.port)),
        ("VENDURE_PASSWORD", "superadmin".to_string()),
        ("SINK", format!("http://127.0.0.1:{}", sink.port)),
        ("DROP", dir.0.display().to_string()),
    ];
    let mut runtime = run(&dir, "shop.flow", &env);
    wait_for(
        "seventeen orders over four pages",
        Duration::from_secs(60),
        || sink.distinct() == 17,
    );
    wait_for(
        "the refused note's dead letter",
        Duration::from_secs(30),
        || !dead_letters(&dir).is_empty(),
    );
    // Every session ends (Vendure keeps them in its database, and in memory for a
    // second): later orders are read after a new login.
    let mut pg = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let ended = pg.execute("DELETE FROM session", &[]).unwrap();
    assert!(
        ended >= 2,
        "the connector's session and the test's were there"
    );
    std::thread::sleep(Duration::from_secs(3));
    let admin = VendureAdmin::login(peer.port);
    admin.new_orders(4);
    wait_for("twenty-one orders", Duration::from_secs(60), || {
        sink.distinct() == 21
    });
    assert!(terminate(&mut runtime.0).success());
    let log = std::fs::read_to_string(dir.0.join("runtime.log")).unwrap();
    assert!(
        log.contains("credentials refused; fetching a new token"),
        "the ended session was noticed: {log}"
    );
    assert!(!log.contains("poll failed"), "{log}");
    assert_eq!(sink.seen.lock().unwrap().requests, 21, "nothing read twice");
    let letters = dead_letters(&dir);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let reason = letters[0].to_string();
    assert!(
        reason.contains("ENTITY_NOT_FOUND") || reason.contains("No Order with the id"),
        "{reason}"
    );
    // The other note is on its order.
    let admin = VendureAdmin::login(peer.port);
    let history = admin.run(
        "query H($id: ID!) { order(id: $id) { history { items { type data } } } }",
        json!({"id": first[0]}),
    );
    assert!(
        history.to_string().contains("packed by the store"),
        "{history}"
    );
    drop(peer);
}
