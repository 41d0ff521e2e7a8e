//! The executable graph IR: what `omniflowc build` writes and the runtime loads.
//! Expressions are compiled once; simple JSONPath selectors are already field paths.

pub mod expr;
pub mod json;

pub mod currency;
pub mod declared;
pub mod ops;
pub mod path;
pub mod schedule;
pub mod webhook;

pub use expr::{Expr, PathSeg, RecordItem, Root};
pub use ops::{BinOp, UnOp};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A type in the graph IR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeIr {
    Scalar(String),
    Record(String),
    Enum(String),
    List(Box<TypeIr>),
}

/// The compiler version stamped into every graph; the runtime refuses other versions.
pub const COMPILER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Largest request body the runtime's webhook server reads; a `webhook` connection's
/// `max_body_bytes` may not exceed it.
pub const MAX_WEBHOOK_BODY_BYTES: u64 = 4 << 20;

/// A whole compiled program.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Graph {
    pub compiler_version: String,
    pub schemas: Vec<Schema>,
    pub enums: Vec<EnumDef>,
    pub connections: Vec<Connection>,
    pub policies: Vec<RetryPolicy>,
    pub tables: Vec<Table>,
    pub flows: Vec<Flow>,
    /// Inventory ledgers (sinks reach one as a connection of connector `ledger`).
    #[serde(default)]
    pub ledgers: Vec<Ledger>,
}

impl Graph {
    /// Parses a graph written by `omniflowc build`, refusing other compiler versions
    /// (see [`json::from_text`]).
    pub fn from_json(text: &str) -> Result<Graph, json::GraphError> {
        json::from_text(text)
    }

    /// The flow with this name.
    pub fn flow(&self, name: &str) -> Option<&Flow> {
        self.flows.iter().find(|f| f.name == name)
    }

    /// The table with this name.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// An inventory ledger: the locations it keeps and how each channel's available-to-sell
/// is computed and published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub name: String,
    pub locations: Vec<String>,
    /// An order's reservation is released when not confirmed within this window (0: never).
    pub reservation_window_ms: u64,
    pub channels: Vec<LedgerChannel>,
}

/// One sales channel of a ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerChannel {
    pub name: String,
    /// The ledger locations that serve the channel.
    pub locations: Vec<String>,
    /// The part of each location's sellable units published to the channel, in basis
    /// points (10000 = 100%); shares over one location sum to at most 10000.
    pub share_bp: u32,
    /// The most ever published.
    pub cap: Option<i64>,
    /// Below this, 0 is published.
    pub min_publish: i64,
    /// Units held back per (sku, location): by sku, else by location, else the default.
    pub safety_stock: i64,
    pub safety_by_location: BTreeMap<String, i64>,
    pub safety_by_sku: BTreeMap<String, i64>,
    pub publish: Option<Publication>,
}

/// Where a channel's available-to-sell goes: a sink operation taking `InventoryLevel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    pub connection: String,
    pub operation: String,
    /// The `location` of the published levels.
    pub location: String,
    pub rate: Option<Rate>,
    pub burst: Option<u64>,
    pub retry: Option<String>,
}

/// A record type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schema {
    pub name: String,
    pub fields: Vec<SchemaField>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchemaField {
    pub name: String,
    pub ty: TypeIr,
    pub optional: bool,
    pub default: Option<serde_json::Value>,
}

/// An enum type and its variants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnumDef {
    pub name: String,
    pub variants: Vec<String>,
}

/// A setting value; secrets and environment values stay references until run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingValue {
    Value(serde_json::Value),
    Env(String),
    Secret(String),
}

/// A published quota of a connector or operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    pub rate_per_sec: Option<f64>,
    pub burst: Option<u64>,
    pub concurrency: Option<u64>,
}

/// An instance of a connector.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    pub name: String,
    pub connector: String,
    pub settings: BTreeMap<String, SettingValue>,
    pub quota: Quota,
    /// How a connector declared in a flow file runs (`None` for a built-in one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<Box<declared::Declared>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Fixed,
    Exponential,
}

/// A retry policy with its bounds checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub name: String,
    pub attempts: u32,
    pub backoff: Backoff,
    pub initial_ms: u64,
    pub max_delay_ms: u64,
    /// 0.0 ..= 1.0
    pub jitter: f64,
    /// `timeout`, `connect`, `rate_limited`, `server_error` or a named connector error.
    pub transient: Vec<String>,
    pub retry_after: bool,
}

/// A lookup table with its data loaded at compile time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub entries: BTreeMap<String, serde_json::Value>,
}

/// One flow: nodes, the edges between them, and its tests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    pub name: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub tests: Vec<Test>,
}

impl Flow {
    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Names of the nodes that read from `name`.
    pub fn consumers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| e.from == name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
    /// The type of the messages it emits.
    pub output: TypeIr,
    /// Local variable slots its expressions need.
    pub slots: u32,
}

/// A rate limit: `count` events per `per_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub count: u64,
    pub per_secs: u64,
}

impl Rate {
    /// Events per second.
    pub fn per_second(&self) -> f64 {
        self.count as f64 / self.per_secs.max(1) as f64
    }
}

/// Where a sink's permanent failures go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetter {
    /// A named queue in the state store.
    Queue(String),
    /// Another sink of the same flow (an exception queue).
    Node(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteArm {
    pub cond: Expr,
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Source {
        connection: String,
        operation: String,
        /// poll, webhook, schedule, file or bus.
        kind: String,
        options: BTreeMap<String, serde_json::Value>,
    },
    Map {
        input: String,
        schema: String,
        program: Expr,
        /// Every input path the mapping reads (`$.a.b`, `$.items[*].sku`), for projection.
        reads: Vec<String>,
    },
    Filter {
        input: String,
        cond: Expr,
    },
    Route {
        input: String,
        arms: Vec<RouteArm>,
        otherwise: Vec<String>,
    },
    Split {
        input: String,
        each: Expr,
    },
    Sink {
        input: String,
        connection: String,
        operation: String,
        idempotency_key: Expr,
        retry: Option<String>,
        rate: Option<Rate>,
        burst: Option<u64>,
        concurrency: Option<u64>,
        timeout_ms: Option<u64>,
        dead_letter: Option<DeadLetter>,
        options: BTreeMap<String, serde_json::Value>,
        /// `order_by`: messages with the same value reach the sink in acceptance order,
        /// each after the one before it was delivered or dead-lettered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order_by: Option<Box<Expr>>,
    },
}

impl NodeKind {
    /// `source`, `map`, ...
    pub fn word(&self) -> &'static str {
        match self {
            NodeKind::Source { .. } => "source",
            NodeKind::Map { .. } => "map",
            NodeKind::Filter { .. } => "filter",
            NodeKind::Route { .. } => "route",
            NodeKind::Split { .. } => "split",
            NodeKind::Sink { .. } => "sink",
        }
    }

    /// The node it reads from.
    pub fn input(&self) -> Option<&str> {
        match self {
            NodeKind::Source { .. } => None,
            NodeKind::Map { input, .. }
            | NodeKind::Filter { input, .. }
            | NodeKind::Route { input, .. }
            | NodeKind::Split { input, .. }
            | NodeKind::Sink { input, .. } => Some(input),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// `when 1`, `otherwise`, or `None` for a plain edge.
    pub branch: Option<String>,
}

/// A `test` block: a fixture in, an expected output or rejection out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Test {
    pub name: String,
    /// The node the fixture enters after (the source it stands for).
    pub source: String,
    /// The node whose output is compared.
    pub node: String,
    pub input: serde_json::Value,
    /// The input as written (JSON text), which a test feeds to the parser production input
    /// goes through: every digit and decimal place as written, unlike `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_text: Option<String>,
    pub expect: Option<serde_json::Value>,
    pub reject: Option<String>,
    pub sinks: Option<Vec<String>>,
    /// The connectors' side of a whole-flow test: `None` for a test of the mapping alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<TestCalls>,
}

/// What a whole-flow test gives the sinks' targets to answer and expects them to be sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TestCalls {
    /// Per sink: the answers its calls get, in order; the last one repeats.
    pub answers: BTreeMap<String, Vec<TestAnswer>>,
    /// Per sink: the requests it must send, in order, retries included.
    pub requests: BTreeMap<String, Vec<TestRequest>>,
    /// Per sink: a text its dead letter's reason must contain.
    pub dead_letters: BTreeMap<String, String>,
    /// The values of `env(...)` and `secret(...)` names during the test.
    pub env: BTreeMap<String, String>,
}

/// One answer a target gives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestAnswer {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Option<serde_json::Value>,
}

/// What one request must hold (what is left out is not compared).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TestRequest {
    pub method: Option<String>,
    /// The path and query, as sent.
    pub path: Option<String>,
    /// Headers that must be present with these values (names in any case).
    pub headers: BTreeMap<String, String>,
    /// Compared as `expect` is: objects partially, lists exactly.
    pub body: Option<serde_json::Value>,
}
