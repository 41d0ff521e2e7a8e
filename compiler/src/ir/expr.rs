//! Compiled expressions: names resolved to slots, tables and input paths.

use super::{BinOp, UnOp};
use serde::{Deserialize, Serialize};

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Root {
    /// The node's input message (`$`, or a bare field name in routes and sinks).
    Input,
    /// A local slot (`let`, or the element variable of `as`).
    Local(u32),
}

/// One step of a lowered path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathSeg {
    Field(String),
    Index(i64),
    /// `[*]`: every element; the result becomes a list.
    All,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordItem {
    Let(u32, Expr),
    Field(String, Expr),
}

/// A compiled expression.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    Lit(serde_json::Value),
    /// An exact decimal literal, as written (`19.99`).
    Decimal(String),
    /// A direct field path from a root: simple JSONPath and field access lower here.
    Path {
        root: Root,
        path: Vec<PathSeg>,
    },
    /// A JSONPath that is not a simple path; the runtime parses it once at load time.
    JsonPath(String),
    /// Field access on a computed value (on a list: the field of every element).
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    /// `table[key]`: null when the key is absent.
    Lookup {
        table: String,
        key: Box<Expr>,
    },
    /// `key in table`
    InTable {
        table: String,
        key: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Unary {
        op: UnOp,
        expr: Box<Expr>,
    },
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    Call {
        func: String,
        args: Vec<Expr>,
    },
    List(Vec<Expr>),
    /// A record of a schema; `let` items bind slots for later items.
    Record {
        schema: String,
        items: Vec<RecordItem>,
    },
    /// `source as x where filter -> body`
    Each {
        source: Box<Expr>,
        slot: u32,
        filter: Option<Box<Expr>>,
        body: Box<Expr>,
    },
    /// A minijinja template with the variables it uses.
    Template {
        text: String,
        vars: Vec<(String, Expr)>,
    },
    /// `reject "reason"`: the message becomes a dead letter with this reason.
    Reject(Box<Expr>),
}

impl Expr {
    /// A constant string.
    pub fn string(text: impl Into<String>) -> Expr {
        Expr::Lit(serde_json::Value::String(text.into()))
    }
}

/// Renders a lowered path back as JSONPath (`$.a[*].b`), for `reads` lists.
pub fn path_text(path: &[PathSeg]) -> String {
    let mut out = String::from("$");
    for seg in path {
        match seg {
            PathSeg::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            PathSeg::Index(idx) => out.push_str(&format!("[{idx}]")),
            PathSeg::All => out.push_str("[*]"),
        }
    }
    out
}
