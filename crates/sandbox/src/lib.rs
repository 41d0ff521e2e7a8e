//! Local simulators of the vendor APIs omniflow talks to (Shopify, Amazon SP-API, Square,
//! ShipBob and a CAP-style OData ERP), served on one address with in-memory state, a
//! deterministic RNG, fault injection, outbound signed webhooks and a control API under
//! `/_sandbox/`.
//!
//! The simulators follow the vendors' documented behaviour and are written independently of
//! the runtime's connectors: they share no payload types, paging or signing code with them.
#![deny(clippy::unwrap_used)]
#![recursion_limit = "512"]

pub mod amazon;
pub mod amazon_reports;
pub mod catalog;
pub mod clock;
pub mod faults;
pub use faults::FaultProfile;
pub mod odata;
pub mod routes;
pub mod shipbob;
pub mod shopify;
pub mod square;
pub mod webhooks;

use chrono::{DateTime, SecondsFormat, Utc};
use omniflow_http::server::{self, Handler, Req, Resp};
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How the sandbox starts.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Seed of the deterministic RNG (ids, fault draws, latencies).
    pub seed: u64,
    /// Fault profile applied to every system at start.
    pub faults: FaultProfile,
    /// Simulated seconds per real second for webhook redelivery schedules.
    pub time_scale: f64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            seed: 42,
            faults: FaultProfile::None,
            time_scale: 1.0,
        }
    }
}

/// One simulated system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    Shopify,
    AmazonSp,
    Square,
    Shipbob,
    Odata,
}

impl System {
    /// Every system.
    pub const ALL: [System; 5] = [
        System::Shopify,
        System::AmazonSp,
        System::Square,
        System::Shipbob,
        System::Odata,
    ];

    /// The name used in the control API and the stats.
    pub fn key(self) -> &'static str {
        match self {
            System::Shopify => "shopify",
            System::AmazonSp => "amazon_sp",
            System::Square => "square",
            System::Shipbob => "shipbob",
            System::Odata => "odata",
        }
    }

    /// Parses a control-API system name.
    pub fn parse(name: &str) -> Option<System> {
        System::ALL
            .into_iter()
            .find(|s| s.key() == name || (name == "amazon" && *s == System::AmazonSp))
    }
}

/// A small deterministic xorshift64* generator.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (zero is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// `n` characters from `alphabet`.
    pub fn string(&mut self, n: usize, alphabet: &[u8]) -> String {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize] as char)
            .collect()
    }

    /// Upper-case letters and digits.
    pub fn alnum(&mut self, n: usize) -> String {
        self.string(n, b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
    }

    /// Decimal digits.
    pub fn digits(&mut self, n: usize) -> String {
        self.string(n, b"0123456789")
    }

    /// A random (version 4 shaped) UUID.
    pub fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }
}

/// Counters per system, reported by `GET /_sandbox/stats`.
#[derive(Default)]
pub struct Stats(BTreeMap<&'static str, BTreeMap<&'static str, u64>>);

const STAT_KEYS: &[(&str, &[&str])] = &[
    (
        "shopify",
        &[
            "requests",
            "throttled",
            "orders_created",
            "webhooks_sent",
            "webhook_duplicates_sent",
            "inventory_updates",
            "fulfillments",
            "fulfillment_rejections",
            "product_updates",
            "price_updates",
            "faults_injected",
            "webhooks_delivered",
            "webhooks_failed",
        ],
    ),
    (
        "amazon_sp",
        &[
            "requests",
            "throttled",
            "token_grants",
            "auth_failures",
            "access_denied",
            "orders_created",
            "shipment_confirmations",
            "shipment_confirmation_duplicates",
            "listing_updates",
            "price_updates",
            "faults_injected",
        ],
    ),
    (
        "square",
        &[
            "requests",
            "throttled",
            "orders_created",
            "inventory_changes",
            "catalog_upserts",
            "idempotent_replays",
            "webhooks_sent",
            "faults_injected",
            "webhooks_delivered",
            "webhooks_failed",
        ],
    ),
    (
        "shipbob",
        &[
            "requests",
            "throttled",
            "orders_created",
            "duplicates_received",
            "webhooks_sent",
            "faults_injected",
            "webhooks_delivered",
            "webhooks_failed",
            "webhook_duplicates_sent",
        ],
    ),
    (
        "odata",
        &[
            "requests",
            "sales_orders_created",
            "duplicates_received",
            "updates",
            "precondition_failures",
            "faults_injected",
            "confirmations",
        ],
    ),
];

impl Stats {
    fn new() -> Stats {
        let mut stats = Stats::default();
        for (system, keys) in STAT_KEYS {
            let entry = stats.0.entry(system).or_default();
            for key in *keys {
                entry.insert(key, 0);
            }
        }
        stats
    }

    /// Adds one to `system.key`.
    pub fn bump(&mut self, system: System, key: &'static str) {
        self.add(system, key, 1);
    }

    /// Adds `n` to `system.key`.
    pub fn add(&mut self, system: System, key: &'static str, n: u64) {
        *self
            .0
            .entry(system.key())
            .or_default()
            .entry(key)
            .or_insert(0) += n;
    }

    /// The current value of `system.key`.
    pub fn get(&self, system: System, key: &str) -> u64 {
        self.0
            .get(system.key())
            .and_then(|m| m.get(key))
            .copied()
            .unwrap_or(0)
    }

    fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (system, counters) in &self.0 {
            let obj: Map<String, Value> = counters
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            out.insert(system.to_string(), Value::Object(obj));
        }
        Value::Object(out)
    }
}

/// A token bucket (rate per second, burst).
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens.
    pub fn new(burst: f64) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes a token if one is available after refilling at `rate` up to `burst`.
    pub fn take(&mut self, rate: f64, burst: f64) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The whole sandbox: every simulator's state plus shared services.
pub struct Sandbox {
    /// Deterministic RNG.
    pub rng: RefCell<Rng>,
    /// Counters.
    pub stats: RefCell<Stats>,
    /// Standing profiles, outages and scripted per-route faults.
    pub faults: faults::Faults,
    /// Shopify state.
    pub shopify: RefCell<shopify::State>,
    /// Amazon SP-API state.
    pub amazon: RefCell<amazon::State>,
    /// Amazon SP-API reports.
    pub amazon_reports: RefCell<amazon_reports::State>,
    /// Square state.
    pub square: RefCell<square::State>,
    /// ShipBob state.
    pub shipbob: RefCell<shipbob::State>,
    /// OData ERP state.
    pub odata: RefCell<odata::State>,
    /// Webhook subscribers of every system.
    pub subscribers: RefCell<Vec<webhooks::Subscriber>>,
    /// Every webhook delivery attempt.
    pub deliveries: RefCell<webhooks::Log>,
    /// Simulated time for redelivery schedules.
    pub clock: clock::Clock,
    /// Client for outbound webhook deliveries.
    pub client: reqwest::Client,
}

/// Shared handle to the sandbox.
pub type Shared = Rc<Sandbox>;

impl Sandbox {
    /// A sandbox seeded from `config`.
    pub fn new(config: &SandboxConfig) -> Sandbox {
        let mut rng = Rng::new(config.seed);
        Sandbox {
            shopify: RefCell::new(shopify::State::new(&mut rng)),
            amazon: RefCell::new(amazon::State::new()),
            amazon_reports: RefCell::new(amazon_reports::State::new()),
            square: RefCell::new(square::State::new()),
            shipbob: RefCell::new(shipbob::State::new(&mut rng)),
            odata: RefCell::new(odata::State::new()),
            rng: RefCell::new(rng),
            stats: RefCell::new(Stats::new()),
            faults: faults::Faults::new(config.faults),
            subscribers: RefCell::new(Vec::new()),
            deliveries: RefCell::new(webhooks::Log::default()),
            clock: clock::Clock::new(config.time_scale),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Adds one to a counter.
    pub fn bump(&self, system: System, key: &'static str) {
        self.stats.borrow_mut().bump(system, key);
    }

    /// 0.25 under the throttled profile, else 1.
    pub fn quota_scale(&self, system: System) -> f64 {
        match self.faults.profile(system) {
            FaultProfile::Throttled => 0.25,
            _ => 1.0,
        }
    }
}

/// Serves every simulator on `addr` (spawn_local on the current LocalSet); returns the bound address.
pub async fn serve(addr: &str, config: SandboxConfig) -> Result<SocketAddr, server::ServeError> {
    let sandbox: Shared = Rc::new(Sandbox::new(&config));
    let handler: Handler = Rc::new(move |req| {
        let sandbox = sandbox.clone();
        Box::pin(async move { route(sandbox, req).await })
    });
    server::serve(addr, handler).await
}

fn system_of(path: &str) -> Option<System> {
    if path.starts_with(amazon_reports::REPORTS_PREFIX) {
        return Some(System::AmazonSp);
    }
    if path.starts_with("/admin/api/") {
        Some(System::Shopify)
    } else if path.starts_with("/orders/v0/") || path.starts_with("/listings/2021-08-01/") {
        Some(System::AmazonSp)
    } else if path.starts_with("/v2/") {
        Some(System::Square)
    } else if path.starts_with("/odata/v4/sales") {
        Some(System::Odata)
    } else if shipbob::VERSIONS.iter().any(|v| {
        path.strip_prefix('/')
            .is_some_and(|p| p.starts_with(&format!("{v}/")))
    }) {
        Some(System::Shipbob)
    } else {
        None
    }
}

async fn route(sb: Shared, req: Req) -> Resp {
    if let Some(rest) = req.path.strip_prefix("/_sandbox/") {
        let rest = rest.to_string();
        return control(&sb, &rest, &req);
    }
    // Amazon's token endpoint and report documents (an S3 address in production) take
    // scripted faults only: outages and profiles stand for the SP-API's own endpoints.
    let aside = req.path == "/auth/o2/token" || req.path.starts_with(amazon_reports::DOCUMENT_PATH);
    let Some(system) = (if aside {
        Some(System::AmazonSp)
    } else {
        system_of(&req.path)
    }) else {
        return Resp::json(404, json!({"error": "no simulator serves this path"}));
    };
    if !req.path.starts_with(amazon_reports::DOCUMENT_PATH) {
        sb.bump(system, "requests");
    }
    let step = sb.faults.scripted(&req.method, &req.path);
    if step.is_some() || !aside {
        if let Some(resp) = faults::before(&sb, system, step.as_ref(), &req).await {
            sb.bump(system, "faults_injected");
            return resp;
        }
    }
    let resp = if req.path == "/auth/o2/token" {
        amazon::token(&sb, &req)
    } else if aside {
        amazon_reports::download(&sb, &req)
    } else {
        match system {
            System::Shopify => shopify::handle(&sb, &req),
            System::AmazonSp => amazon::handle(&sb, &req),
            System::Square => square::handle(&sb, &req),
            System::Shipbob => shipbob::handle(&sb, &req),
            System::Odata => odata::handle(&sb, &req),
        }
    };
    match step {
        Some(step) => faults::after(&sb, system, &step, resp, &req),
        None => resp,
    }
}

/// The vendor's error response for `status` (429 with its throttle headers).
fn fault_response(sb: &Sandbox, system: System, status: u16, req: &Req) -> Resp {
    match system {
        System::Shopify => shopify::error_status(sb, status),
        System::AmazonSp => amazon::error_status(sb, status, &req.method, &req.path),
        System::Square => square::error_status(status),
        System::Shipbob => shipbob::error_status(status),
        System::Odata => odata::error_status(status),
    }
}

fn control(sb: &Shared, rest: &str, req: &Req) -> Resp {
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["stats"]) => Resp::json(200, sb.stats.borrow().to_json()),
        ("POST", ["faults"]) => faults::control(sb, req),
        ("GET", ["faults"]) => faults::list(sb),
        ("DELETE", ["faults"]) => faults::clear(sb),
        ("POST", ["webhooks"]) => webhooks::register_control(sb, req),
        ("GET", ["webhooks"]) => webhooks::list(sb),
        ("GET", ["webhooks", "deliveries"]) => webhooks::deliveries(sb),
        ("GET", ["clock"]) => clock_state(sb),
        ("POST", ["clock"]) => set_clock(sb, req),
        ("POST", ["shopify", "orders"]) => shopify::control_create_order(sb, req),
        ("POST", ["shopify", "graphql_bucket"]) => shopify::control_graphql_bucket(sb, req),
        ("POST", ["amazon", "orders"]) => amazon::control_create_order(sb, req),
        ("POST", ["amazon", "token_ttl"]) => amazon::control_token_ttl(sb, req),
        ("POST", ["amazon", "settlements"]) => amazon_reports::control_add_settlement(sb, req),
        ("POST", ["square", "orders"]) => square::control_create_order(sb, req),
        ("POST", ["shipbob", "orders", id, "ship"]) => shipbob::control_ship(sb, id, req),
        ("GET", ["odata", "sales_orders"]) => odata::control_sales_orders(sb),
        ("GET", ["prices"]) => control_prices(sb),
        ("POST", ["odata", "csrf"]) => odata::control_csrf(sb, req),
        _ => Resp::json(
            404,
            json!({"error": format!("unknown control endpoint /_sandbox/{rest}")}),
        ),
    }
}

/// `GET /_sandbox/clock`: the scale and the simulated seconds since start.
fn clock_state(sb: &Sandbox) -> Resp {
    Resp::json(
        200,
        json!({"scale": sb.clock.scale(), "now_s": sb.clock.now()}),
    )
}

/// `POST /_sandbox/clock {"scale": N}`: simulated seconds per real second from now on.
fn set_clock(sb: &Sandbox, req: &Req) -> Resp {
    let Some(scale) = json_body(req).and_then(|b| b["scale"].as_f64()) else {
        return Resp::json(400, json!({"error": "give {\"scale\": N}"}));
    };
    match sb.clock.set_scale(scale) {
        Ok(()) => clock_state(sb),
        Err(e) => Resp::json(400, json!({ "error": e })),
    }
}

/// `GET /_sandbox/prices`: per catalogue item, the price (minor units) each channel holds
/// now, and how many price writes each received.
fn control_prices(sb: &Sandbox) -> Resp {
    let shop = sb.shopify.borrow();
    let amazon = sb.amazon.borrow();
    let square = sb.square.borrow();
    let items: Vec<Value> = catalog::ITEMS
        .iter()
        .map(|item| {
            json!({
                "sku": item.sku, "item_code": item.item_code,
                "shopify": shop.catalogue.price_of(item.sku),
                "shopify_title": shop.catalogue.title_of(item.sku),
                "amazon": amazon.listings.get(item.sku).and_then(|l| l.1),
                "square": item.square_variation.and_then(|v| square.objects.price_of(v)),
            })
        })
        .collect();
    let stats = sb.stats.borrow();
    Resp::json(
        200,
        json!({"items": items, "writes": {
            "shopify_products": stats.get(System::Shopify, "product_updates"),
            "shopify_prices": stats.get(System::Shopify, "price_updates"),
            "amazon_prices": stats.get(System::AmazonSp, "price_updates"),
            "square_prices": stats.get(System::Square, "catalog_upserts"),
        }}),
    )
}

// ---- small shared helpers (sandbox-internal) ----

/// The request body as a JSON object, if it is one.
pub fn json_body(req: &Req) -> Option<Value> {
    serde_json::from_slice::<Value>(&req.body)
        .ok()
        .filter(Value::is_object)
}

/// A request header as text.
pub fn header<'a>(req: &'a Req, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `http://<Host header>` for absolute links.
pub fn base_url(req: &Req) -> String {
    format!("http://{}", header(req, "host").unwrap_or("127.0.0.1"))
}

/// Decodes `%XX` escapes and `+` as space.
pub fn pct_decode(s: &str) -> String {
    omniflow_http::form::decode(s)
}

/// Percent-encodes everything but unreserved characters.
pub fn pct_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Decoded `key=value` pairs of a query string or form body.
pub fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (pct_decode(k), pct_decode(v)),
            None => (pct_decode(p), String::new()),
        })
        .collect()
}

/// The first value of `key` in decoded pairs.
pub fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Now, in UTC.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// RFC 3339 with seconds and `Z`.
pub fn ts_secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// RFC 3339 with milliseconds and `Z`.
pub fn ts_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp.
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Integer cents as a decimal string (`1250` -> `"12.50"`).
pub fn cents_str(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// A decimal money string (at most 2 fractional digits) as integer cents.
pub fn parse_cents(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 2 {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let f: i64 = format!("{frac:0<2}").parse().ok()?;
    let v = w.checked_mul(100)?.checked_add(f)?;
    Some(if neg { -v } else { v })
}

/// Integer cents as a JSON number with two decimals at most (`1250` -> `12.5`).
pub fn cents_number(cents: i64) -> Value {
    if cents % 100 == 0 {
        json!(cents / 100)
    } else {
        cents_str(cents)
            .parse::<f64>()
            .map(|f| json!(f))
            .unwrap_or(Value::Null)
    }
}

/// A JSON number (int or float with at most 2 decimals) as integer cents; `None` for a
/// finer amount (refused, never rounded).
pub fn number_cents(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.checked_mul(100)
            } else {
                // Never rounded: more than two decimals is not a price here.
                parse_cents(&n.to_string())
            }
        }
        Value::String(s) => parse_cents(s),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Starts a sandbox on a loopback port inside a LocalSet for the tests.
    use super::*;

    /// Runs `f(base_url)` against a fresh sandbox on a current_thread runtime + LocalSet.
    pub fn with_sandbox<F, Fut>(config: SandboxConfig, f: F)
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let addr = serve("127.0.0.1:0", config).await.expect("serve");
            f(format!("http://{addr}")).await;
        });
    }

    /// A plain client.
    pub fn client() -> reqwest::Client {
        reqwest::Client::new()
    }

    /// Response status and parsed JSON body (Null if not JSON).
    pub async fn parts(resp: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// `GET /_sandbox/stats`.
    pub async fn stats(base: &str) -> Value {
        let resp = client()
            .get(format!("{base}/_sandbox/stats"))
            .send()
            .await
            .expect("stats");
        parts(resp).await.2
    }

    /// POSTs JSON to a control endpoint.
    pub async fn control(base: &str, path: &str, body: Value) -> Value {
        let resp = client()
            .post(format!("{base}/_sandbox/{path}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("control call");
        parts(resp).await.2
    }

    #[test]
    fn money_helpers_round_trip() {
        assert_eq!(cents_str(1250), "12.50");
        assert_eq!(parse_cents("12.5"), Some(1250));
        assert_eq!(parse_cents("x"), None);
        assert_eq!(cents_number(1250), json!(12.5));
        assert_eq!(number_cents(&json!(10.99)), Some(1099));
        assert_eq!(number_cents(&json!(1.255)), None);
        assert_eq!(pct_decode("a%20b+c"), "a b c");
        assert_eq!(
            "flaky".parse::<FaultProfile>().ok(),
            Some(FaultProfile::Flaky)
        );
    }
}
