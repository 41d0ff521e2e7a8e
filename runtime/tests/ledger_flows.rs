//! The inventory ledger through `omniflow run`: a flash sale (one sku with 100 units,
//! 1,000 orders arriving at once from three channels) and publication coalescing (10,000
//! movements against channels limited to 2 calls a second), with the channels as HTTP
//! endpoints on localhost and the state in SQLite; the flash sale again with three
//! replicas on one PostgreSQL state, the orders posted to all of them at once.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{free_port, wait_for, Recorder, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");
const CHANNELS: [&str; 3] = ["web", "marketplace", "pos"];

fn flow(rate: &str) -> String {
    let mut text = format!(
        r#"use std.retail.{{InventoryMovement, Order, OrderLine}}
use std.connectors.{{webhook, http, file}}

connection inbox = file {{ dir = env("MOVES_DIR") }}
connection orders_in = webhook {{ path = "/orders", scheme = "none" }}
connection web_api = http {{ base_url = env("WEB_URL") }}
connection marketplace_api = http {{ base_url = env("MARKETPLACE_URL") }}
connection pos_api = http {{ base_url = env("POS_URL") }}

policy retry brisk {{
  attempts = 5
  backoff = fixed
  initial = 50ms
  max_delay = 50ms
  jitter = 0%
  transient = [timeout, connect, server_error]
  retry_after = true
}}

ledger stock {{
  locations = ["WH", "STORE"]
  reservation_window = 10m
  channel web {{ locations = ["WH", "STORE"], share = 50%, publish = web_api.post, rate = {rate}, burst = 1 }}
  channel marketplace {{ locations = ["WH"], share = 30%, publish = marketplace_api.post, rate = {rate}, burst = 1 }}
  channel pos {{ locations = ["WH", "STORE"], share = 20%, publish = pos_api.post, rate = {rate}, burst = 1 }}
}}

flow intake {{
  source moves = inbox.read {{ path = "*.jsonl", format = jsonl }}
  map movement = moves -> InventoryMovement {{
    id = $.id
    kind = $.kind
    sku = $.sku
    location = $.location
    quantity = $.quantity
    counterpart_location = null
    reference = null
    occurred_at = $.occurred_at
  }}
  sink book = stock.apply(movement) {{
    idempotency_key = id
    retry = brisk
    concurrency = 512
    dead_letter = "refused_movements"
  }}
}}
"#
    );
    for channel in CHANNELS {
        text.push_str(&format!(
            r#"
flow {channel}_orders {{
  source orders = orders_in.receive {{ path = "/hooks/orders/{channel}" }}
  map order = orders -> Order {{
    id = $.id
    channel = "{channel}"
    external_id = $.id
    placed_at = $.placed_at
    status = "open"
    currency = "USD"
    lines = $.lines[*] as l -> OrderLine {{
      line_id = l.line_id
      sku = l.sku
      quantity = l.quantity
      unit_price = money("10.00", "USD")
      total = money("10.00", "USD")
    }}
    subtotal = money("10.00", "USD")
    shipping = money("0.00", "USD")
    tax = money("0.00", "USD")
    discount = money("0.00", "USD")
    total = money("10.00", "USD")
  }}
  sink hold = stock.reserve(order) {{
    channel = "{channel}"
    idempotency_key = id
    retry = brisk
    dead_letter = "rejected_orders"
  }}
}}
"#
        ));
    }
    text
}

/// A runtime this test started, stopped however the test ends.
struct Running(Child);

/// Starts `omniflow run` on the test's flow and state; returns once it is ready.
fn launch(dir: &TempDir, channels: &Recorder, hooks: u16, ops: u16) -> Running {
    let base = format!("http://127.0.0.1:{}", channels.port);
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.0.join("runtime.log"))
        .unwrap();
    let runtime = Running(
        Command::new(BIN)
            .arg("run")
            .arg(dir.0.join("ledger.flow"))
            .arg("--state")
            .arg(dir.state())
            .arg("--webhook-addr")
            .arg(format!("127.0.0.1:{hooks}"))
            .arg("--ops-addr")
            .arg(format!("127.0.0.1:{ops}"))
            .env("MOVES_DIR", dir.0.join("in"))
            .env("WEB_URL", format!("{base}/web"))
            .env("MARKETPLACE_URL", format!("{base}/marketplace"))
            .env("POS_URL", format!("{base}/pos"))
            .env("OMNIFLOW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    wait_for(
        "the runtime's ops endpoint",
        Duration::from_secs(60),
        || http("GET", ops, "/ready", "").0 == 200,
    );
    runtime
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The runtimes of a test (one, or replicas sharing a PostgreSQL state), each with its
/// webhook and ops ports.
struct Setup {
    dir: TempDir,
    channels: Recorder,
    hooks: Vec<u16>,
    ops: Vec<u16>,
    runtimes: Vec<Running>,
}

impl Setup {
    fn start(name: &str, rate: &str) -> Setup {
        Setup::with(TempDir::new(name), rate, 1)
    }

    /// `replicas` runtimes on one fresh PostgreSQL state (more with `add_runtime`).
    fn replicas(name: &str, rate: &str, replicas: usize) -> Setup {
        Setup::with(TempDir::on_database(name), rate, replicas)
    }

    fn with(dir: TempDir, rate: &str, replicas: usize) -> Setup {
        std::fs::write(dir.0.join("ledger.flow"), flow(rate)).unwrap();
        let channels = Recorder::start();
        let hooks: Vec<u16> = (0..replicas).map(|_| free_port()).collect();
        let ops: Vec<u16> = (0..replicas).map(|_| free_port()).collect();
        let runtimes = hooks
            .iter()
            .zip(&ops)
            .map(|(hooks, ops)| launch(&dir, &channels, *hooks, *ops))
            .collect();
        Setup {
            dir,
            channels,
            hooks,
            ops,
            runtimes,
        }
    }

    /// Starts one more runtime on the same state.
    fn add_runtime(&mut self) {
        let (hooks, ops) = (free_port(), free_port());
        let runtime = launch(&self.dir, &self.channels, hooks, ops);
        self.hooks.push(hooks);
        self.ops.push(ops);
        self.runtimes.push(runtime);
    }

    /// Kills the (first) runtime with SIGKILL and starts it again on the same state.
    fn kill_and_restart(&mut self) {
        let _ = self.runtimes[0].0.kill();
        let _ = self.runtimes[0].0.wait();
        self.runtimes[0] = launch(&self.dir, &self.channels, self.hooks[0], self.ops[0]);
    }

    /// A metric of the ledger, summed over the runtimes.
    fn metric(&self, name: &str, node: &str) -> u64 {
        (0..self.ops.len())
            .map(|idx| self.metric_of(idx, name, node))
            .sum()
    }

    /// A metric of the ledger in runtime `idx`.
    fn metric_of(&self, idx: usize, name: &str, node: &str) -> u64 {
        let prefix = format!("{name}{{flow=\"stock\",node=\"{node}\"}} ");
        let (_, text) = http("GET", self.ops[idx], "/metrics", "");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    }

    fn drop_moves(&self, file: &str, moves: &[Value]) {
        let text: String = moves.iter().map(|m| format!("{m}\n")).collect();
        let tmp = self.dir.0.join(format!("{file}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.dir.0.join("in").join(file)).unwrap();
    }

    fn show(&self, sku: &str) -> Value {
        self.try_show(sku)
            .unwrap_or_else(|err| panic!("inventory show {sku}: {err}"))
    }

    /// `inventory show` of a sku, or its error (a sku no ledger holds yet).
    fn try_show(&self, sku: &str) -> Result<Value, String> {
        let out = Command::new(BIN)
            .args(["inventory", "show", sku, "--json", "--state"])
            .arg(self.dir.state())
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone())
    }

    fn dead_letters(&self) -> Vec<Value> {
        let out = Command::new(BIN)
            .args(["dlq", "list", "--json", "--limit", "100000", "--state"])
            .arg(self.dir.state())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// True when, for every sku, each channel's last call and the ledger's record of what
    /// it was told both equal the sku's current available-to-sell.
    fn told_everything(&self, skus: &[String]) -> bool {
        skus.iter().all(|sku| {
            let Ok(shown) = self.try_show(sku) else {
                return false;
            };
            let last = self.last_published(sku);
            shown["channels"].as_array().unwrap().iter().all(|c| {
                c["published"] == c["ats"]
                    && last.get(c["channel"].as_str().unwrap()).copied() == c["ats"].as_i64()
            })
        })
    }

    /// The last quantity each channel was sent for a sku.
    fn last_published(&self, sku: &str) -> BTreeMap<String, i64> {
        let mut last = BTreeMap::new();
        for channel in CHANNELS {
            if let Some(body) = self
                .channels
                .on(&format!("/{channel}"))
                .iter()
                .rev()
                .find(|b| b["sku"] == sku)
            {
                last.insert(channel.to_string(), body["available"].as_i64().unwrap());
            }
        }
        last
    }
}

fn http(method: &str, port: u16, path: &str, body: &str) -> (u16, String) {
    support::process::exchange(
        port,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn movement(id: &str, kind: &str, sku: &str, location: &str, quantity: i64) -> Value {
    json!({"id": id, "kind": kind, "sku": sku, "location": location, "quantity": quantity, "occurred_at": "2026-11-20T10:00:00Z"})
}

#[test]
fn a_flash_sale_reserves_exactly_the_stock_and_every_channel_ends_at_zero() {
    flash_sale(&mut Setup::start("ledger-flash", "50/s"), 1);
}

#[test]
fn a_flash_sale_across_three_replicas_oversells_nothing_and_every_channel_ends_at_zero() {
    flash_sale(&mut Setup::replicas("ledger-flash-replicas", "50/s", 1), 3);
}

/// 100 units, 1,000 one-unit orders from three channels posted at once, spread over
/// `runtimes` runtimes (those added after the receipt know the stock from their start):
/// exactly 100 reserved, 900 dead letters with the reason, every channel last told 0.
fn flash_sale(setup: &mut Setup, runtimes: usize) {
    setup.drop_moves(
        "receipt.jsonl",
        &[movement("receipt-1", "receipt", "FLASH-1", "WH", 100)],
    );
    wait_for("the receipt's publication", Duration::from_secs(60), || {
        setup.last_published("FLASH-1").len() == 3
    });
    assert_eq!(
        setup.last_published("FLASH-1"),
        BTreeMap::from([
            ("marketplace".into(), 30),
            ("pos".into(), 20),
            ("web".into(), 50)
        ])
    );

    while setup.runtimes.len() < runtimes {
        setup.add_runtime();
    }
    // 1,000 one-unit orders, a third per channel, posted from 12 threads at once.
    let threads: Vec<_> = (0..12)
        .map(|t| {
            let hooks = setup.hooks.clone();
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                for n in (t..1000).step_by(12) {
                    let channel = CHANNELS[n % 3];
                    let order = json!({
                        "id": format!("{channel}-{n:04}"),
                        "placed_at": "2026-11-20T10:00:00Z",
                        "lines": [{"line_id": "1", "sku": "FLASH-1", "quantity": 1}],
                    });
                    statuses.push(
                        http(
                            "POST",
                            hooks[(n / 3 + t) % hooks.len()],
                            &format!("/hooks/orders/{channel}"),
                            &order.to_string(),
                        )
                        .0,
                    );
                }
                statuses
            })
        })
        .collect();
    for thread in threads {
        for status in thread.join().unwrap() {
            assert!(
                (200..300).contains(&status),
                "an order was not accepted: {status}"
            );
        }
    }
    wait_for(
        "every order's reservation outcome",
        Duration::from_secs(120),
        || {
            setup.metric("omniflow_ledger_reservations_total", "reserved")
                + setup.metric("omniflow_ledger_reservations_total", "rejected")
                >= 1000
        },
    );
    let by_runtime: Vec<u64> = (0..setup.ops.len())
        .map(|idx| {
            setup.metric_of(idx, "omniflow_ledger_reservations_total", "reserved")
                + setup.metric_of(idx, "omniflow_ledger_reservations_total", "rejected")
        })
        .collect();
    assert_eq!(by_runtime.iter().sum::<u64>(), 1000, "{by_runtime:?}");
    assert_eq!(
        setup.metric("omniflow_ledger_reservations_total", "reserved"),
        100
    );
    assert_eq!(
        setup.metric("omniflow_ledger_reservations_total", "rejected"),
        900
    );

    // Every rejected order is a dead letter with its reason.
    wait_for(
        "the rejected orders' dead letters",
        Duration::from_secs(60),
        || setup.dead_letters().len() >= 900,
    );
    let letters = setup.dead_letters();
    assert_eq!(letters.len(), 900);
    for letter in &letters {
        let error = letter["error"].as_str().unwrap();
        assert!(
            error.contains("cannot be reserved: FLASH-1 needs 1, 0 available to channel"),
            "{error}"
        );
    }

    // Every channel was last told 0, and the ledger agrees.
    wait_for("the channels to be told 0", Duration::from_secs(60), || {
        setup.last_published("FLASH-1").values().all(|v| *v == 0)
            && setup.show("FLASH-1")["channels"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["published"] == 0)
    });
    let shown = setup.show("FLASH-1");
    assert_eq!(shown["held_units"], 100);
    assert_eq!(shown["held_orders"], 100);
    assert_eq!(shown["locations"][0]["on_hand"], 100);
    assert_eq!(shown["locations"][0]["free"], 0);
    for channel in shown["channels"].as_array().unwrap() {
        assert_eq!(channel["ats"], 0, "{channel}");
    }
    if runtimes > 1 {
        changed_on_another_replica_reaches_the_channels(setup);
    }
}

/// A reservation made on a replica that publishes no channel reaches every channel through
/// the one that does.
fn changed_on_another_replica_reaches_the_channels(setup: &Setup) {
    setup.drop_moves(
        "receipt-2.jsonl",
        &[movement("receipt-2", "receipt", "FLASH-2", "WH", 10)],
    );
    let skus = ["FLASH-2".to_string()];
    wait_for(
        "the second receipt's publication",
        Duration::from_secs(60),
        || setup.told_everything(&skus),
    );
    let told = setup.last_published("FLASH-2");
    let db = setup.dir.database().unwrap();
    let holders = db.texts("SELECT holder FROM leases WHERE name LIKE 'ledger:stock/%'");
    let other = setup
        .runtimes
        .iter()
        .position(|r| {
            !holders
                .iter()
                .any(|h| h.contains(&format!("-{}-", r.0.id())))
        })
        .expect("a replica that publishes no channel");
    let order = json!({
        "id": "web-late",
        "placed_at": "2026-11-20T10:00:00Z",
        "lines": [{"line_id": "1", "sku": "FLASH-2", "quantity": 3}],
    });
    let (status, _) = http(
        "POST",
        setup.hooks[other],
        "/hooks/orders/web",
        &order.to_string(),
    );
    assert!((200..300).contains(&status), "{status}");
    wait_for(
        "the reservation's publication",
        Duration::from_secs(60),
        || setup.show("FLASH-2")["held_units"] == 3 && setup.told_everything(&skus),
    );
    assert_ne!(setup.last_published("FLASH-2"), told);
}

#[test]
fn a_rate_limited_channel_receives_the_latest_quantity_and_far_fewer_calls() {
    let setup = Setup::start("ledger-coalesce", "2/s");
    let skus: Vec<String> = (0..5).map(|n| format!("SKU-{n}")).collect();
    let mut moves = Vec::new();
    for (n, sku) in skus.iter().enumerate() {
        moves.push(movement(&format!("seed-{n}"), "receipt", sku, "WH", 5_000));
    }
    for n in 0..10_000 {
        let sku = &skus[n % skus.len()];
        let (kind, location) = match n % 4 {
            0 => ("receipt", "STORE"),
            1 => ("sale", "WH"),
            2 => ("return", "WH"),
            _ => ("sale", "STORE"),
        };
        moves.push(movement(
            &format!("m-{n:05}"),
            kind,
            sku,
            location,
            1 + (n % 3) as i64,
        ));
    }
    setup.drop_moves("moves.jsonl", &moves);
    wait_for("10,005 movements applied", Duration::from_secs(180), || {
        setup.metric("omniflow_ledger_movements_total", "applied") >= 10_005
    });
    // Each channel converges on the ledger's value for every sku.
    wait_for("the channels to converge", Duration::from_secs(120), || {
        setup.told_everything(&skus)
    });
    for channel in CHANNELS {
        let calls = setup.channels.on(&format!("/{channel}")).len();
        eprintln!("channel {channel}: {calls} calls for 10,005 movements");
        assert!(
            calls < 500,
            "channel {channel} received {calls} calls for 10,005 movements"
        );
    }
    // The final values are the ledger's: free stock per location, shared out by share.
    for sku in &skus {
        let shown = setup.show(sku);
        let free: BTreeMap<&str, i64> = shown["locations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["location"].as_str().unwrap(), l["free"].as_i64().unwrap()))
            .collect();
        let expect = |share: i64, locations: &[&str]| -> i64 {
            locations
                .iter()
                .map(|l| free.get(l).copied().unwrap_or(0) * share / 100)
                .sum()
        };
        let last = setup.last_published(sku);
        assert_eq!(last["web"], expect(50, &["WH", "STORE"]), "{sku}");
        assert_eq!(last["marketplace"], expect(30, &["WH"]), "{sku}");
        assert_eq!(last["pos"], expect(20, &["WH", "STORE"]), "{sku}");
    }
    assert_eq!(
        setup.metric("omniflow_ledger_movements_total", "duplicate"),
        0
    );
}

#[test]
fn stock_survives_sigkill_and_the_channels_are_told_after_the_restart() {
    let mut setup = Setup::start("ledger-kill", "20/s");
    let skus: Vec<String> = (0..8).map(|n| format!("KILL-{n}")).collect();
    let mut moves = Vec::new();
    let mut expected: BTreeMap<(String, &str), i64> = BTreeMap::new();
    for n in 0..30_000 {
        let sku = &skus[n % skus.len()];
        let (kind, location, sign) = match n % 3 {
            0 | 1 => ("receipt", "WH", 1),
            _ => ("sale", if n % 2 == 0 { "WH" } else { "STORE" }, -1),
        };
        let quantity = 1 + (n % 5) as i64;
        *expected.entry((sku.clone(), location)).or_default() += sign * quantity;
        moves.push(movement(
            &format!("k-{n:05}"),
            kind,
            sku,
            location,
            quantity,
        ));
    }
    setup.drop_moves("moves.jsonl", &moves);
    wait_for(
        "movements applied before the kill",
        Duration::from_secs(120),
        || setup.metric("omniflow_ledger_movements_total", "applied") >= 1_500,
    );
    let before = setup.metric("omniflow_ledger_movements_total", "applied");
    setup.kill_and_restart();
    eprintln!("killed after {before} of 30,000 movements");
    // Every movement is applied once across the kill: the stock is the sum of the file.
    wait_for(
        "the stock after the restart",
        Duration::from_secs(180),
        || {
            skus.iter().all(|sku| {
                let shown = setup.show(sku);
                shown["locations"].as_array().unwrap().iter().all(|l| {
                    let location = if l["location"] == "WH" { "WH" } else { "STORE" };
                    l["on_hand"].as_i64()
                        == Some(expected.get(&(sku.clone(), location)).copied().unwrap_or(0))
                })
            })
        },
    );
    // The restarted runtime resumed the file where its durable cursor was.
    let after = setup.metric("omniflow_ledger_movements_total", "applied")
        + setup.metric("omniflow_ledger_movements_total", "duplicate");
    eprintln!("the restarted runtime applied {after}");
    assert!(after > 0, "nothing was left to apply after the kill");
    // What the channels were not told before the kill, they are told after it.
    wait_for(
        "the channels to converge after the restart",
        Duration::from_secs(120),
        || setup.told_everything(&skus),
    );
}
