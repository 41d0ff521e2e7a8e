//! The abstract syntax tree of one `.flow` file, with byte spans.
//! Spans are skipped when serialised, so two trees compare by structure alone.

use crate::source::Span;
use serde::Serialize;

/// A name with the span it was written at.
pub use omniflow_ir::{BinOp, UnOp};

#[derive(Debug, Clone, Serialize)]
pub struct Ident {
    pub name: String,
    #[serde(skip)]
    pub span: Span,
}

/// One parsed file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Module {
    pub items: Vec<Item>,
}

/// A top-level declaration.
#[derive(Debug, Clone, Serialize)]
pub enum Item {
    Use(UseDecl),
    Schema(SchemaDecl),
    Enum(EnumDecl),
    Connection(ConnectionDecl),
    Table(TableDecl),
    Policy(PolicyDecl),
    Connector(ConnectorDecl),
    Ledger(LedgerDecl),
    Flow(FlowDecl),
}

impl Item {
    /// The span of the whole item.
    pub fn span(&self) -> Span {
        match self {
            Item::Use(d) => d.span,
            Item::Schema(d) => d.span,
            Item::Enum(d) => d.span,
            Item::Connection(d) => d.span,
            Item::Table(d) => d.span,
            Item::Policy(d) => d.span,
            Item::Connector(d) => d.span,
            Item::Ledger(d) => d.span,
            Item::Flow(d) => d.span,
        }
    }

    /// The declared name, for items that declare one.
    pub fn name(&self) -> Option<&Ident> {
        match self {
            Item::Use(_) => None,
            Item::Schema(d) => Some(&d.name),
            Item::Enum(d) => Some(&d.name),
            Item::Connection(d) => Some(&d.name),
            Item::Table(d) => Some(&d.name),
            Item::Policy(d) => Some(&d.name),
            Item::Connector(d) => Some(&d.name),
            Item::Ledger(d) => Some(&d.name),
            Item::Flow(d) => Some(&d.name),
        }
    }
}

/// Where a `use` imports from.
#[derive(Debug, Clone, Serialize)]
pub enum UseTarget {
    /// `use std.retail`
    Module(Vec<Ident>),
    /// `use "./common.flow"`
    File(StringLit),
}

#[derive(Debug, Clone, Serialize)]
pub struct UseDecl {
    pub target: UseTarget,
    /// `None` imports every item of the module.
    pub names: Option<Vec<Ident>>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub optional: bool,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub enum TypeKind {
    Named(Ident),
    List(Box<TypeExpr>),
}

#[derive(Debug, Clone, Serialize)]
pub struct SchemaDecl {
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnumDecl {
    pub name: Ident,
    pub variants: Vec<Ident>,
    #[serde(skip)]
    pub span: Span,
}

/// `name = expr` inside a settings block.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    pub name: Ident,
    pub value: Expr,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub entries: Vec<Setting>,
    #[serde(skip)]
    pub span: Span,
}

impl Settings {
    /// The entry with this name, if written.
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.entries.iter().find(|s| s.name.name == name)
    }
}

/// `ledger NAME { settings and channels }`: the built-in inventory ledger.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerDecl {
    pub name: Ident,
    /// Settings and channels in source order.
    pub members: Vec<LedgerMember>,
    #[serde(skip)]
    pub span: Span,
}

/// One member of a ledger declaration.
#[derive(Debug, Clone, Serialize)]
pub enum LedgerMember {
    Setting(Setting),
    /// `channel NAME { settings }`
    Channel {
        name: Ident,
        settings: Settings,
        #[serde(skip)]
        span: Span,
    },
}

impl LedgerMember {
    /// The span of the member.
    pub fn span(&self) -> Span {
        match self {
            LedgerMember::Setting(s) => s.span,
            LedgerMember::Channel { span, .. } => *span,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionDecl {
    pub name: Ident,
    pub connector: Ident,
    pub settings: Settings,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub enum TableSource {
    Inline(Vec<(StringLit, Expr)>),
    File {
        path: StringLit,
        options: Vec<Setting>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct TableDecl {
    pub name: Ident,
    pub key_ty: TypeExpr,
    pub value_ty: TypeExpr,
    pub source: TableSource,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyDecl {
    pub kind: Ident,
    pub name: Ident,
    pub settings: Settings,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectorDecl {
    pub name: Ident,
    pub settings: Vec<SettingSig>,
    pub quota: Option<Settings>,
    /// `auth KIND { ... }`: how a declared connector's requests authenticate.
    pub auth: Option<AuthSig>,
    /// `rule { ... }`: outcome rules of every operation.
    pub rules: Vec<Block>,
    pub sources: Vec<SourceSig>,
    pub sinks: Vec<SinkSig>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingSig {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceSig {
    pub name: Ident,
    pub kind: Ident,
    pub output: TypeExpr,
    pub body: OperationBody,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct SinkSig {
    pub name: Ident,
    pub input: TypeExpr,
    pub output: Option<TypeExpr>,
    pub body: OperationBody,
    #[serde(skip)]
    pub span: Span,
}

/// What follows an operation's signature: its own quota (`{ rate = 5/s }` or a
/// `quota { ... }` member), the options its statements take, the settings it needs, and
/// whether it overwrites.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OperationBody {
    pub quota: Option<Settings>,
    pub options: Vec<OptionSig>,
    pub needs: Vec<NeedsSig>,
    /// The `overwrites` keyword, if given: each call replaces what an earlier call wrote
    /// for the same record.
    #[serde(serialize_with = "given")]
    pub overwrites: Option<Span>,
    /// How a declared connector runs the operation (`request { ... }`, `records = ...`).
    pub implementation: Vec<BlockEntry>,
}

/// `auth KIND { ... }` of a declared connector.
#[derive(Debug, Clone, Serialize)]
pub struct AuthSig {
    pub kind: Ident,
    pub block: Block,
    #[serde(skip)]
    pub span: Span,
}

/// `{ NAME = VALUE ... }` or nested `NAME { ... }` entries of a declared connector.
#[derive(Debug, Clone, Serialize)]
pub struct Block {
    pub entries: Vec<BlockEntry>,
    #[serde(skip)]
    pub span: Span,
}

/// One entry of a [`Block`].
#[derive(Debug, Clone, Serialize)]
pub struct BlockEntry {
    pub name: Ident,
    pub value: BlockValue,
    #[serde(skip)]
    pub span: Span,
}

/// What a [`BlockEntry`] holds.
#[derive(Debug, Clone, Serialize)]
pub enum BlockValue {
    Expr(Expr),
    /// A JSON object literal (a request body).
    Json(JsonLit, #[serde(skip)] Span),
    Block(Block),
}

impl BlockValue {
    /// Where the value is written.
    pub fn span(&self) -> Span {
        match self {
            BlockValue::Expr(e) => e.span,
            BlockValue::Json(_, span) => *span,
            BlockValue::Block(b) => b.span,
        }
    }
}

/// Serializes a keyword's span as whether it was given, spans being left out of the AST's
/// serialized form.
fn given<S: serde::Serializer>(span: &Option<Span>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(span.is_some())
}

impl OperationBody {
    /// True when the body is only a quota (or nothing), printed in the short form.
    pub fn is_quota_only(&self) -> bool {
        self.options.is_empty()
            && self.needs.is_empty()
            && self.overwrites.is_none()
            && self.implementation.is_empty()
    }
}

/// `option NAME: TYPE [= DEFAULT] [max N]` of a connector operation.
#[derive(Debug, Clone, Serialize)]
pub struct OptionSig {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    pub max: Option<Expr>,
    #[serde(skip)]
    pub span: Span,
}

/// `needs SETTING, ...`: connection settings the operation cannot run without.
#[derive(Debug, Clone, Serialize)]
pub struct NeedsSig {
    pub settings: Vec<Ident>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlowDecl {
    pub name: Ident,
    pub stmts: Vec<Stmt>,
    #[serde(skip)]
    pub span: Span,
}

/// `conn.operation`
#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    pub connection: Ident,
    pub name: Ident,
}

#[derive(Debug, Clone, Serialize)]
pub enum Stmt {
    Source {
        name: Ident,
        op: Operation,
        settings: Option<Settings>,
        #[serde(skip)]
        span: Span,
    },
    Map {
        name: Ident,
        input: Ident,
        record: Record,
        #[serde(skip)]
        span: Span,
    },
    Filter {
        name: Ident,
        input: Ident,
        cond: Expr,
        #[serde(skip)]
        span: Span,
    },
    Route {
        name: Ident,
        input: Ident,
        arms: Vec<RouteArm>,
        otherwise: Option<Vec<Ident>>,
        #[serde(skip)]
        span: Span,
    },
    Split {
        name: Ident,
        input: Ident,
        each: Expr,
        #[serde(skip)]
        span: Span,
    },
    Sink {
        name: Ident,
        op: Operation,
        input: Ident,
        settings: Option<Settings>,
        #[serde(skip)]
        span: Span,
    },
    Test(TestDecl),
}

impl Stmt {
    /// The span of the statement.
    pub fn span(&self) -> Span {
        match self {
            Stmt::Source { span, .. }
            | Stmt::Map { span, .. }
            | Stmt::Filter { span, .. }
            | Stmt::Route { span, .. }
            | Stmt::Split { span, .. }
            | Stmt::Sink { span, .. } => *span,
            Stmt::Test(t) => t.span,
        }
    }

    /// The node name for node statements; `None` for tests.
    pub fn node_name(&self) -> Option<&Ident> {
        match self {
            Stmt::Source { name, .. }
            | Stmt::Map { name, .. }
            | Stmt::Filter { name, .. }
            | Stmt::Route { name, .. }
            | Stmt::Split { name, .. }
            | Stmt::Sink { name, .. } => Some(name),
            Stmt::Test(_) => None,
        }
    }

    /// The node this statement reads from, if any.
    pub fn input(&self) -> Option<&Ident> {
        match self {
            Stmt::Map { input, .. }
            | Stmt::Filter { input, .. }
            | Stmt::Route { input, .. }
            | Stmt::Split { input, .. }
            | Stmt::Sink { input, .. } => Some(input),
            Stmt::Source { .. } | Stmt::Test(_) => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteArm {
    pub cond: Expr,
    pub targets: Vec<Ident>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct TestDecl {
    pub name: StringLit,
    pub fields: Vec<TestField>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct TestField {
    pub name: Ident,
    pub value: TestValue,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub enum TestValue {
    File(StringLit),
    Json(JsonLit),
    Names(Vec<Ident>),
    Name(Ident),
}

/// A JSON literal in a test block, keeping its key order and number text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum JsonLit {
    Null,
    Bool(bool),
    /// As written.
    Number(String),
    Str(String),
    Array(Vec<JsonLit>),
    Object(Vec<(String, JsonLit)>),
}

impl JsonLit {
    /// As JSON text, numbers as written.
    pub fn to_json_text(&self, out: &mut String) {
        match self {
            JsonLit::Null => out.push_str("null"),
            JsonLit::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            JsonLit::Number(text) => out.push_str(text),
            JsonLit::Str(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
            JsonLit::Array(items) => {
                out.push('[');
                for (idx, item) in items.iter().enumerate() {
                    if idx > 0 {
                        out.push(',');
                    }
                    item.to_json_text(out);
                }
                out.push(']');
            }
            JsonLit::Object(members) => {
                out.push('{');
                for (idx, (key, value)) in members.iter().enumerate() {
                    if idx > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(key).unwrap_or_default());
                    out.push(':');
                    value.to_json_text(out);
                }
                out.push('}');
            }
        }
    }

    /// Whether [`JsonLit::to_value`] reads it as a message would be read: every number an
    /// integer of 64 bits or a decimal of at most 15 digits (which a float holds exactly),
    /// and no key given twice in an object.
    pub fn is_plain(&self) -> bool {
        match self {
            JsonLit::Number(text) => {
                let digits = text.bytes().filter(u8::is_ascii_digit).count();
                let integer = !text.contains(['.', 'e', 'E']);
                let fits = (integer && text.parse::<i64>().is_ok())
                    || (!text.contains(['e', 'E']) && digits <= 15);
                // Also JSON as serde_json reads it (`007` is not).
                fits && serde_json::from_str::<serde_json::Number>(text).is_ok()
            }
            JsonLit::Array(items) => items.iter().all(JsonLit::is_plain),
            JsonLit::Object(members) => {
                members.len() <= 32
                    && members.iter().enumerate().all(|(idx, (key, value))| {
                        value.is_plain() && members[..idx].iter().all(|(other, _)| other != key)
                    })
            }
            _ => true,
        }
    }

    /// As a serde_json value.
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            JsonLit::Null => Value::Null,
            JsonLit::Bool(b) => Value::Bool(*b),
            JsonLit::Number(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            JsonLit::Str(s) => Value::String(s.clone()),
            JsonLit::Array(items) => Value::Array(items.iter().map(JsonLit::to_value).collect()),
            JsonLit::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// A string literal, unescaped, with the span of its quotes.
#[derive(Debug, Clone, Serialize)]
pub struct StringLit {
    pub value: String,
    #[serde(skip)]
    pub span: Span,
}

/// A record construction `Type { field = expr, let x = expr }`.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub ty: Ident,
    pub items: Vec<RecordItem>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub enum RecordItem {
    Let(Ident, Expr),
    Field(Ident, Expr),
}

#[derive(Debug, Clone, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    /// Decimal kept as written, never as a float.
    Decimal(String),
    Str(String),
    /// Milliseconds.
    Duration(u64, String),
    /// Events per second, as written (`10/s`).
    Rate {
        count: u64,
        per_secs: u64,
        text: String,
    },
    /// Percent as written (`20%`).
    Percent(String),
}

#[derive(Debug, Clone, Serialize)]
pub enum ExprKind {
    Lit(Literal),
    /// A JSONPath selector, as written (starts with `$`).
    JsonPath(String),
    Var(Ident),
    Member(Box<Expr>, Ident),
    Index(Box<Expr>, Box<Expr>),
    /// `xs[*]`: every element of a list.
    AllItems(Box<Expr>),
    Call(Ident, Vec<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Unary(UnOp, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Reject(StringLit),
    List(Vec<Expr>),
    Record(Record),
    /// `src as var where cond -> body`
    EachMap {
        source: Box<Expr>,
        var: Ident,
        filter: Option<Box<Expr>>,
        body: Box<Expr>,
    },
    /// Placeholder for an expression that failed to parse.
    Error,
}
