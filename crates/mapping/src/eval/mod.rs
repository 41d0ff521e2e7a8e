//! Expression evaluation: IR expressions are compiled once per graph into [`Code`]
//! (tables and schemas by index, templates parsed, JSONPath parsed) and run per message.

use crate::builtins::{self, Builtin, Imp};
pub use crate::error::CompileError;
use crate::intern::{intern, same_name, same_text};
use crate::ops;
pub use crate::reject::{Eval, Reject};
use crate::value::Val;
use omniflow_ir::{self as ir, PathSeg, Root, TypeIr};
use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Stack left below which evaluation continues on a new segment of [`STACK_SEGMENT`].
const STACK_RED_ZONE: usize = 64 << 10;
const STACK_SEGMENT: usize = 1 << 20;
/// The same for minijinja's parser and renderer, which recurse within one call.
const TEMPLATE_RED_ZONE: usize = 1 << 20;
const TEMPLATE_SEGMENT: usize = 8 << 20;

/// Most slots [`Env::new_slots`] makes room for at once: a graph read from JSON may
/// number its slots past any flow's.
const SLOTS_AT_ONCE: usize = 256;

/// A path step with the field name interned.
#[derive(Debug)]
pub enum Seg {
    Field(FieldRef),
    Index(i64),
    All,
}

/// A field name and the position it was last found at: records of one schema, and
/// documents from one system, keep their fields in one order, so the second lookup
/// of a path usually matches at the remembered position by address alone.
#[derive(Debug)]
pub struct FieldRef {
    name: &'static str,
    hint: AtomicU32,
}

impl FieldRef {
    fn new(name: &str) -> FieldRef {
        FieldRef {
            name: intern(name),
            hint: AtomicU32::new(0),
        }
    }

    /// The field's value in an object's fields.
    #[inline(always)]
    fn find<'v, 'a>(&self, fields: &'v [(Cow<'a, str>, Val<'a>)]) -> Option<&'v Val<'a>> {
        let hint = self.hint.load(Ordering::Relaxed) as usize;
        if let Some((key, value)) = fields.get(hint) {
            if same_name(key, self.name) || same_text(key, self.name) {
                return Some(value);
            }
        }
        self.search(fields)
    }

    /// The field found by comparing every key; remembers where.
    #[cold]
    #[inline(never)]
    fn search<'v, 'a>(&self, fields: &'v [(Cow<'a, str>, Val<'a>)]) -> Option<&'v Val<'a>> {
        let idx = fields.iter().position(|(key, _)| key == self.name)?;
        self.hint.store(idx as u32, Ordering::Relaxed);
        Some(&fields[idx].1)
    }

    /// The field of a value (money exposes `amount` and `currency`); null when absent.
    fn of<'a>(&self, value: &Val<'a>) -> Val<'a> {
        match value {
            Val::Obj(fields) => self.find(fields).cloned().unwrap_or_default(),
            other => other.field(self.name),
        }
    }
}

/// A compiled expression.
#[derive(Debug)]
pub enum Code {
    Lit(Val<'static>),
    Path {
        root: Root,
        path: Vec<Seg>,
    },
    JsonPath(Box<jsonpath_rust::parser::model::JpQuery>),
    Member(Box<Code>, FieldRef),
    Index(Box<Code>, Box<Code>),
    Lookup {
        table: usize,
        key: Box<Code>,
    },
    InTable {
        table: usize,
        key: Box<Code>,
    },
    Binary {
        op: ir::BinOp,
        lhs: Box<Code>,
        rhs: Box<Code>,
    },
    Unary {
        op: ir::UnOp,
        expr: Box<Code>,
    },
    If {
        cond: Box<Code>,
        then: Box<Code>,
        otherwise: Box<Code>,
    },
    /// A built-in, found when the expression was compiled.
    Call {
        func: &'static Builtin,
        args: Vec<Code>,
    },
    List(Vec<Code>),
    Record {
        schema: usize,
        items: Vec<RecordCode>,
    },
    Each {
        source: Box<Code>,
        slot: usize,
        filter: Option<Box<Code>>,
        body: Box<Code>,
    },
    Template {
        name: String,
        vars: Vec<(String, Code)>,
    },
    Reject(Box<Code>),
}

/// One item of a record construction.
#[derive(Debug)]
pub enum RecordCode {
    Let(usize, Code),
    Field(usize, Code),
}

/// A schema field at run time.
#[derive(Debug)]
pub struct FieldRt {
    pub name: &'static str,
    pub ty: TypeIr,
    pub kind: FieldKind,
    pub optional: bool,
    pub default: Option<Val<'static>>,
}

/// A schema at run time.
#[derive(Debug)]
pub struct SchemaRt {
    pub name: String,
    pub fields: Vec<FieldRt>,
}

/// Everything expressions need: tables, schemas, templates.
pub struct Env {
    tables: Vec<HashMap<&'static str, Val<'static>, WordHashBuild>>,
    table_index: HashMap<String, usize>,
    schemas: Vec<SchemaRt>,
    schema_index: HashMap<String, usize>,
    templates: minijinja::Environment<'static>,
    n_templates: usize,
    /// Local slots the compiled code uses (one past the highest).
    slots: usize,
}

/// Word-at-a-time multiply-rotate hashing: lookup tables are keyed by short strings
/// from trusted flow files, where a simple hash beats SipHash's DoS resistance (input
/// only ever looks keys up; it cannot add colliding ones).
#[derive(Default, Clone, Copy)]
pub struct WordHashBuild;

/// The hasher state.
pub struct WordHash(u64);

const HASH_K: u64 = 0x517c_c1b7_2722_0a95;

impl WordHash {
    #[inline(always)]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(HASH_K);
    }
}

impl std::hash::Hasher for WordHash {
    fn finish(&self) -> u64 {
        // The product's high bits are its best; the table indexes by the low ones.
        self.0.rotate_left(26)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            for (slot, byte) in word.iter_mut().zip(tail) {
                *slot = *byte;
            }
            self.mix(u64::from_le_bytes(word) ^ ((tail.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }
}

impl std::hash::BuildHasher for WordHashBuild {
    type Hasher = WordHash;

    fn build_hasher(&self) -> WordHash {
        WordHash(0)
    }
}

/// A JSON value with its strings interned.
fn interned(value: &serde_json::Value) -> Val<'static> {
    match value {
        serde_json::Value::String(s) => Val::Str(Cow::Borrowed(intern(s))),
        serde_json::Value::Array(items) => {
            Val::List(Rc::from(items.iter().map(interned).collect::<Vec<_>>()))
        }
        serde_json::Value::Object(map) => Val::Obj(Rc::from(
            map.iter()
                .map(|(k, v)| (Cow::Borrowed(intern(k)), interned(v)))
                .collect::<Vec<_>>(),
        )),
        other => Val::from_json(other),
    }
}

impl Env {
    /// Builds the run-time environment of a graph.
    pub fn new(graph: &ir::Graph) -> Env {
        let tables: Vec<HashMap<&'static str, Val<'static>, WordHashBuild>> = graph
            .tables
            .iter()
            .map(|t| {
                t.entries
                    .iter()
                    .map(|(k, v)| (intern(k), interned(v)))
                    .collect()
            })
            .collect();
        let table_index = graph
            .tables
            .iter()
            .enumerate()
            .map(|(idx, t)| (t.name.clone(), idx))
            .collect();
        let enums: HashMap<String, Vec<String>> = graph
            .enums
            .iter()
            .map(|e| (e.name.clone(), e.variants.clone()))
            .collect();
        let schemas: Vec<SchemaRt> = graph
            .schemas
            .iter()
            .map(|s| SchemaRt {
                name: s.name.clone(),
                fields: s
                    .fields
                    .iter()
                    .map(|f| FieldRt {
                        name: intern(&f.name),
                        ty: f.ty.clone(),
                        kind: FieldKind::new(&f.ty, &enums),
                        optional: f.optional,
                        default: f.default.as_ref().map(interned),
                    })
                    .collect(),
            })
            .collect();
        let schema_index = graph
            .schemas
            .iter()
            .enumerate()
            .map(|(idx, s)| (s.name.clone(), idx))
            .collect();
        Env {
            tables,
            table_index,
            schemas,
            schema_index,
            templates: minijinja::Environment::new(),
            n_templates: 0,
            slots: 0,
        }
    }

    /// Local slots for one evaluation, with room for every slot the compiled code uses
    /// (up to [`SLOTS_AT_ONCE`]; bindings grow it as they are set).
    pub fn new_slots<'a>(&self) -> Vec<Val<'a>> {
        Vec::with_capacity(self.slots.min(SLOTS_AT_ONCE))
    }

    /// A slot of compiled code (counted for [`Env::new_slots`]).
    fn slot(&mut self, slot: u32) -> usize {
        let slot = slot as usize;
        self.slots = self.slots.max(slot + 1);
        slot
    }

    /// Compiles an IR expression.
    pub fn compile(&mut self, expr: &ir::Expr) -> Result<Code, CompileError> {
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || self.compile_here(expr))
    }

    fn compile_here(&mut self, expr: &ir::Expr) -> Result<Code, CompileError> {
        Ok(match expr {
            ir::Expr::Lit(value) => Code::Lit(interned(value)),
            ir::Expr::Decimal(text) => Code::Lit(Val::dec(
                crate::decimal::Decimal::parse(text)
                    .ok_or_else(|| CompileError::BadDecimal(text.clone()))?,
            )),
            ir::Expr::Path { root, path } => Code::Path {
                root: *root,
                path: path
                    .iter()
                    .map(|seg| match seg {
                        PathSeg::Field(name) => Seg::Field(FieldRef::new(name)),
                        PathSeg::Index(idx) => Seg::Index(*idx),
                        PathSeg::All => Seg::All,
                    })
                    .collect(),
            },
            ir::Expr::JsonPath(text) => Code::JsonPath(Box::new({
                let invalid = |reason: String| CompileError::JsonPath {
                    text: text.clone(),
                    reason,
                };
                ir::expr::jsonpath_bounds(text).map_err(|e| invalid(e.to_string()))?;
                jsonpath_rust::parser::parse_json_path(text).map_err(|e| invalid(e.to_string()))?
            })),
            ir::Expr::Member(base, name) => {
                Code::Member(Box::new(self.compile(base)?), FieldRef::new(name))
            }
            ir::Expr::Index(base, index) => Code::Index(
                Box::new(self.compile(base)?),
                Box::new(self.compile(index)?),
            ),
            ir::Expr::Lookup { table, key } => Code::Lookup {
                table: self.table(table)?,
                key: Box::new(self.compile(key)?),
            },
            ir::Expr::InTable { table, key } => Code::InTable {
                table: self.table(table)?,
                key: Box::new(self.compile(key)?),
            },
            ir::Expr::Binary { op, lhs, rhs } => Code::Binary {
                op: *op,
                lhs: Box::new(self.compile(lhs)?),
                rhs: Box::new(self.compile(rhs)?),
            },
            ir::Expr::Unary { op, expr } => Code::Unary {
                op: *op,
                expr: Box::new(self.compile(expr)?),
            },
            ir::Expr::If {
                cond,
                then,
                otherwise,
            } => Code::If {
                cond: Box::new(self.compile(cond)?),
                then: Box::new(self.compile(then)?),
                otherwise: Box::new(self.compile(otherwise)?),
            },
            ir::Expr::Call { func, args } => Code::Call {
                func: builtins::find(func)
                    .ok_or_else(|| CompileError::UnknownFunction(func.clone()))?,
                args: args
                    .iter()
                    .map(|a| self.compile(a))
                    .collect::<Result<_, _>>()?,
            },
            ir::Expr::List(items) => self.compile_list(items)?,
            ir::Expr::Record { schema, items } => self.compile_record(schema, items)?,
            ir::Expr::Each {
                source,
                slot,
                filter,
                body,
            } => Code::Each {
                source: Box::new(self.compile(source)?),
                slot: self.slot(*slot),
                filter: match filter {
                    Some(f) => Some(Box::new(self.compile(f)?)),
                    None => None,
                },
                body: Box::new(self.compile(body)?),
            },
            ir::Expr::Template { text, vars } => self.compile_template(text, vars)?,
            ir::Expr::Reject(reason) => Code::Reject(Box::new(self.compile(reason)?)),
        })
    }

    fn compile_list(&mut self, items: &[ir::Expr]) -> Result<Code, CompileError> {
        let items: Vec<Code> = items
            .iter()
            .map(|i| self.compile(i))
            .collect::<Result<_, _>>()?;
        // A list of literals is itself a literal, built once.
        Ok(if items.iter().all(|i| matches!(i, Code::Lit(_))) {
            Code::Lit(Val::List(
                items
                    .into_iter()
                    .map(|i| match i {
                        Code::Lit(value) => value,
                        _ => Val::Null,
                    })
                    .collect(),
            ))
        } else {
            Code::List(items)
        })
    }

    fn compile_record(
        &mut self,
        schema: &str,
        items: &[ir::RecordItem],
    ) -> Result<Code, CompileError> {
        let schema_idx = *self
            .schema_index
            .get(schema)
            .ok_or_else(|| CompileError::UnknownSchema(schema.to_string()))?;
        let mut compiled = Vec::with_capacity(items.len());
        for item in items {
            compiled.push(match item {
                ir::RecordItem::Let(slot, value) => {
                    RecordCode::Let(self.slot(*slot), self.compile(value)?)
                }
                ir::RecordItem::Field(name, value) => {
                    let idx = self.schemas[schema_idx]
                        .fields
                        .iter()
                        .position(|f| f.name == name)
                        .ok_or_else(|| CompileError::UnknownField {
                            schema: schema.to_string(),
                            field: name.clone(),
                        })?;
                    RecordCode::Field(idx, self.compile(value)?)
                }
            });
        }
        Ok(Code::Record {
            schema: schema_idx,
            items: compiled,
        })
    }

    fn compile_template(
        &mut self,
        text: &str,
        vars: &[(String, ir::Expr)],
    ) -> Result<Code, CompileError> {
        let name = format!("t{}", self.n_templates);
        self.n_templates += 1;
        if text.len() > ir::expr::MAX_TEMPLATE_BYTES {
            return Err(CompileError::TemplateTooLarge { bytes: text.len() });
        }
        let templates = &mut self.templates;
        stacker::maybe_grow(TEMPLATE_RED_ZONE, TEMPLATE_SEGMENT, || {
            templates.add_template_owned(name.clone(), text.to_string())
        })
        .map_err(|e| CompileError::Template {
            text: text.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Code::Template {
            name,
            vars: vars
                .iter()
                .map(|(n, e)| Ok((n.clone(), self.compile(e)?)))
                .collect::<Result<_, CompileError>>()?,
        })
    }

    fn table(&self, name: &str) -> Result<usize, CompileError> {
        self.table_index
            .get(name)
            .copied()
            .ok_or_else(|| CompileError::UnknownTable(name.to_string()))
    }

    /// The schema at an index.
    pub fn schema(&self, idx: usize) -> &SchemaRt {
        &self.schemas[idx]
    }

    /// Evaluates an operand: literals and paths, most of a mapping's leaves, are read
    /// in place without another trip through [`Env::eval`].
    #[inline(always)]
    fn operand<'a>(&self, code: &Code, input: &Val<'a>, slots: &mut Vec<Val<'a>>) -> Eval<'a> {
        match code {
            Code::Lit(value) => Ok(value.clone()),
            Code::Path { root, path } => Ok(path_value(*root, path, input, slots)),
            _ => self.eval(code, input, slots),
        }
    }

    /// Evaluates compiled code against an input and local slots.
    pub fn eval<'a>(&self, code: &Code, input: &Val<'a>, slots: &mut Vec<Val<'a>>) -> Eval<'a> {
        match code {
            Code::Lit(value) => Ok(value.clone()),
            Code::Path { root, path } => Ok(path_value(*root, path, input, slots)),
            // Nested code may recurse as deep as the compiler allows (`MAX_EXPR_DEPTH`):
            // on a thread with a small stack, continue on a fresh segment.
            _ => stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
                self.eval_here(code, input, slots)
            }),
        }
    }

    fn eval_here<'a>(&self, code: &Code, input: &Val<'a>, slots: &mut Vec<Val<'a>>) -> Eval<'a> {
        // The common, small cases stay here; the rest live in their own functions so
        // this recursive one keeps a small stack frame.
        match code {
            Code::Lit(value) => Ok(value.clone()),
            Code::Path { root, path } => Ok(path_value(*root, path, input, slots)),
            Code::Binary { op, lhs, rhs } => match op {
                ir::BinOp::And => {
                    if !self.operand(lhs, input, slots)?.is_true() {
                        return Ok(Val::Bool(false));
                    }
                    Ok(Val::Bool(self.operand(rhs, input, slots)?.is_true()))
                }
                ir::BinOp::Or => {
                    if self.operand(lhs, input, slots)?.is_true() {
                        return Ok(Val::Bool(true));
                    }
                    Ok(Val::Bool(self.operand(rhs, input, slots)?.is_true()))
                }
                ir::BinOp::Coalesce => {
                    let left = self.operand(lhs, input, slots)?;
                    if left.is_null() {
                        self.operand(rhs, input, slots)
                    } else {
                        Ok(left)
                    }
                }
                _ => {
                    // Comparisons of literals and paths look at the values in place.
                    if op.is_relation() {
                        let left = match operand_ref(lhs, input, slots) {
                            Some(left) => match operand_ref(rhs, input, slots) {
                                Some(right) => {
                                    return Ok(Val::Bool(ops::relation(*op, left, right)))
                                }
                                None => left.clone(),
                            },
                            None => self.operand(lhs, input, slots)?,
                        };
                        let right = self.operand(rhs, input, slots)?;
                        return Ok(Val::Bool(ops::relation(*op, &left, &right)));
                    }
                    let left = self.operand(lhs, input, slots)?;
                    let right = self.operand(rhs, input, slots)?;
                    ops::binary(*op, left, right)
                }
            },
            Code::If {
                cond,
                then,
                otherwise,
            } => {
                if self.operand(cond, input, slots)?.is_true() {
                    self.eval(then, input, slots)
                } else {
                    self.eval(otherwise, input, slots)
                }
            }
            Code::Unary { op, expr } => {
                let value = self.operand(expr, input, slots)?;
                ops::unary(*op, value)
            }
            Code::Call { func, args } => self.call(func, args, input, slots),
            Code::Lookup { table, key } => self.lookup(*table, key, input, slots),
            Code::InTable { table, key } => self.in_table(*table, key, input, slots),
            Code::Member(base, field) => self.member(base, field, input, slots),
            Code::Index(base, index) => self.index(base, index, input, slots),
            Code::List(items) => self.list(items, input, slots),
            Code::Record { schema, items } => self.record(*schema, items, input, slots),
            Code::Each {
                source,
                slot,
                filter,
                body,
            } => self.each(source, *slot, filter.as_deref(), body, input, slots),
            Code::JsonPath(query) => json_path(query, input),
            Code::Template { name, vars } => self
                .render(name, vars, input, slots)
                .map(|s| Val::Str(Cow::Owned(s))),
            Code::Reject(reason) => Err(self.reject(reason, input, slots)),
        }
    }

    #[inline(never)]
    fn call<'a>(
        &self,
        func: &Builtin,
        args: &[Code],
        input: &Val<'a>,
        slots: &mut Vec<Val<'a>>,
    ) -> Eval<'a> {
        if let ([arg], Imp::Test(test)) = (args, func.imp) {
            if let Some(value) = operand_ref(arg, input, slots) {
                return Ok(Val::Bool(test(value)));
            }
        }
        // Arguments live in an array of the call's own arity: nothing extra to drop.
        match args {
            [] => return func.apply(&mut []),
            [a] => return func.apply(&mut [self.operand(a, input, slots)?]),
            [a, b] => {
                let a = self.operand(a, input, slots)?;
                return func.apply(&mut [a, self.operand(b, input, slots)?]);
            }
            [a, b, c] => {
                let a = self.operand(a, input, slots)?;
                let b = self.operand(b, input, slots)?;
                return func.apply(&mut [a, b, self.operand(c, input, slots)?]);
            }
            _ => {}
        }
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(self.eval(arg, input, slots)?);
        }
        func.apply(&mut values)
    }

    #[inline(never)]
    fn lookup<'a>(
        &self,
        table: usize,
        key: &Code,
        input: &Val<'a>,
        slots: &mut Vec<Val<'a>>,
    ) -> Eval<'a> {
        if let Some(key) = operand_ref(key, input, slots) {
            return Ok(self.table_value(table, key));
        }
        let key = self.operand(key, input, slots)?;
        Ok(self.table_value(table, &key))
    }

    #[inline(never)]
    fn in_table<'a>(
        &self,
        table: usize,
        key: &Code,
        input: &Val<'a>,
        slots: &mut Vec<Val<'a>>,
    ) -> Eval<'a> {
        if let Some(key) = operand_ref(key, input, slots) {
            return Ok(Val::Bool(self.table_has(table, key)));
        }
        let key = self.operand(key, input, slots)?;
        Ok(Val::Bool(self.table_has(table, &key)))
    }

    /// A table's value for a key (its text: strings as they are, numbers and booleans
    /// written out); null when absent.
    fn table_value<'a>(&self, table: usize, key: &Val) -> Val<'a> {
        let entries = &self.tables[table];
        let found = match key {
            Val::Str(text) => entries.get(text.as_ref()),
            other => other.text().and_then(|text| entries.get(text.as_ref())),
        };
        found.cloned().unwrap_or_default()
    }

    /// Whether a table holds a string or integer key.
    fn table_has(&self, table: usize, key: &Val) -> bool {
        let entries = &self.tables[table];
        match key {
            Val::Str(text) => entries.contains_key(text.as_ref()),
            Val::Int(_) => key
                .text()
                .is_some_and(|text| entries.contains_key(text.as_ref())),
            _ => false,
        }
    }

    #[inline(never)]
    fn member<'a>(
        &self,
        base: &Code,
        field: &FieldRef,
        input: &Val<'a>,
        slots: &mut Vec<Val<'a>>,
    ) -> Eval<'a> {
        let base = self.eval(base, input, slots)?;
        Ok(match base {
            Val::List(items) => Val::List(
                items
                    .iter()
                    .map(|i| field.of(i))
                    .filter(|v| !v.is_null())
                    .collect(),
            ),
            other => field.of(&other),
        })
    }

    #[inline(never)]
    fn index<'a>(
        &self,
        base: &Code,
        index: &Code,
        input: &Val<'a>,
        slots: &mut Vec<Val<'a>>,
    ) -> Eval<'a> {
        let base = self.eval(base, input, slots)?;
        let index = self.eval(index, input, slots)?;
        Ok(match (&base, &index) {
            (Val::List(items), Val::Int(i)) => items.get(*i as usize).cloned().unwrap_or_default(),
            (Val::Obj(_), Val::Str(key)) => base.field(key),
            _ => Val::Null,
        })
    }

    #[inline(never)]
    fn list<'a>(&self, items: &[Code], input: &Val<'a>, slots: &mut Vec<Val<'a>>) -> Eval<'a> {
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            values.push(self.eval(item, input, slots)?);
        }
        Ok(Val::List(values.into_iter().collect()))
    }

    #[inline(never)]
    fn each<'a>(
        &self,
        source: &Code,
        slot: usize,
        filter: Option<&Code>,
        body: &Code,
        input: &Val<'a>,
        slots: &mut Vec<Val<'a>>,
    ) -> Eval<'a> {
        let items = match self.eval(source, input, slots)? {
            Val::List(items) => items,
            Val::Null => return Ok(Val::List(Rc::from(Vec::new()))),
            other => {
                return Err(Reject(format!(
                    "expected a list to map over, found {}",
                    other.kind()
                )))
            }
        };
        if slots.len() <= slot {
            slots.resize(slot + 1, Val::Null);
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            slots[slot] = item.clone();
            if let Some(filter) = filter {
                if !self.eval(filter, input, slots)?.is_true() {
                    continue;
                }
            }
            out.push(self.eval(body, input, slots)?);
        }
        Ok(Val::List(out.into_iter().collect()))
    }

    #[inline(never)]
    fn reject<'a>(&self, reason: &Code, input: &Val<'a>, slots: &mut Vec<Val<'a>>) -> Reject {
        match self.eval(reason, input, slots) {
            Ok(reason) => Reject(
                reason
                    .text()
                    .map(|t| t.into_owned())
                    .unwrap_or_else(|| "rejected".into()),
            ),
            Err(reject) => reject,
        }
    }

    #[inline(never)]
    fn render<'a>(
        &self,
        name: &str,
        vars: &[(String, Code)],
        input: &Val<'a>,
        slots: &mut Vec<Val<'a>>,
    ) -> Result<String, Reject> {
        let mut context: std::collections::BTreeMap<&str, minijinja::Value> =
            std::collections::BTreeMap::new();
        for (var, code) in vars {
            context.insert(var, self.eval(code, input, slots)?.to_template());
        }
        let template = self
            .templates
            .get_template(name)
            .map_err(|e| Reject(format!("template: {e}")))?;
        // minijinja recurses over the template's nesting: give it room on any thread.
        stacker::maybe_grow(TEMPLATE_RED_ZONE, TEMPLATE_SEGMENT, || {
            template
                .render(context)
                .map_err(|e| Reject(format!("template: {e}")))
        })
    }

    #[inline(never)]
    fn record<'a>(
        &self,
        schema_idx: usize,
        items: &[RecordCode],
        input: &Val<'a>,
        slots: &mut Vec<Val<'a>>,
    ) -> Eval<'a> {
        let schema = &self.schemas[schema_idx];
        // Null stands for "not set": a field set to null is treated like an unset one.
        // One allocation: the record is built in place in its shared slice.
        let mut record: Rc<[(Cow<'a, str>, Val<'a>)]> = schema
            .fields
            .iter()
            .map(|f| (Cow::Borrowed(f.name), Val::Null))
            .collect();
        let Some(fields) = Rc::get_mut(&mut record) else {
            return Err(Reject(
                "internal: a record under construction is shared".into(),
            ));
        };
        for item in items {
            match item {
                RecordCode::Let(slot, code) => {
                    let value = self.operand(code, input, slots)?;
                    if slots.len() <= *slot {
                        slots.resize(*slot + 1, Val::Null);
                    }
                    slots[*slot] = value;
                }
                RecordCode::Field(idx, code) => {
                    fields[*idx].1 = self.operand(code, input, slots)?
                }
            }
        }
        for (field, (_, value)) in schema.fields.iter().zip(fields.iter_mut()) {
            if value.is_null() {
                *value = match &field.default {
                    Some(default) => default.clone(),
                    None if field.optional => Val::Null,
                    None => {
                        return Err(Reject(format!(
                            "`{}.{}` is required but the input gave no value",
                            schema.name, field.name
                        )))
                    }
                };
            } else if !field.kind.accepts(value) {
                *value = conform(&field.kind, std::mem::take(value)).map_err(|found| {
                    Reject(format!(
                        "`{}.{}` expects {}, found {found}",
                        schema.name,
                        field.name,
                        type_name(&field.ty)
                    ))
                })?;
            }
        }
        Ok(Val::Obj(record))
    }
}

#[inline(never)]
fn json_path<'a>(query: &jsonpath_rust::parser::model::JpQuery, input: &Val<'a>) -> Eval<'a> {
    // Numbers no serde_json value holds exactly travel marked, and come back exact.
    let json = input.to_json_exact();
    let found = jsonpath_rust::query::js_path_process(query, &json)
        .map_err(|e| Reject(format!("JSONPath failed: {e}")))?;
    Ok(Val::List(
        found
            .into_iter()
            .map(|q| Val::from_json_exact(q.val()))
            .collect(),
    ))
}

fn type_name(ty: &TypeIr) -> String {
    match ty {
        TypeIr::Scalar(s) | TypeIr::Record(s) | TypeIr::Enum(s) => s.clone(),
        TypeIr::List(inner) => format!("[{}]", type_name(inner)),
    }
}

/// A field's declared type, precompiled for the per-message check.
#[derive(Debug, Clone)]
pub enum FieldKind {
    Json,
    String,
    Int,
    Decimal,
    Bool,
    Money,
    Datetime,
    Date,
    Enum(Vec<String>),
    Record,
    List(Box<FieldKind>),
}

impl FieldKind {
    fn new(ty: &TypeIr, enums: &HashMap<String, Vec<String>>) -> FieldKind {
        match ty {
            TypeIr::Scalar(name) => match name.as_str() {
                "string" => FieldKind::String,
                "int" => FieldKind::Int,
                "decimal" => FieldKind::Decimal,
                "bool" => FieldKind::Bool,
                "money" => FieldKind::Money,
                "datetime" => FieldKind::Datetime,
                "date" => FieldKind::Date,
                _ => FieldKind::Json,
            },
            TypeIr::Enum(name) => FieldKind::Enum(enums.get(name).cloned().unwrap_or_default()),
            TypeIr::Record(_) => FieldKind::Record,
            TypeIr::List(elem) => FieldKind::List(Box::new(FieldKind::new(elem, enums))),
        }
    }

    /// The common case: the value already has the declared shape.
    fn accepts(&self, value: &Val) -> bool {
        matches!(
            (self, value),
            (FieldKind::Json, _)
                | (FieldKind::String, Val::Str(_))
                | (FieldKind::Int, Val::Int(_))
                | (FieldKind::Decimal, Val::Int(_) | Val::Dec(_))
                | (FieldKind::Bool, Val::Bool(_))
                | (FieldKind::Money, Val::Money(..))
                | (FieldKind::Record, Val::Obj(_))
        ) || matches!((self, value), (FieldKind::List(elem), Val::List(_)) if matches!(**elem, FieldKind::Record | FieldKind::Json))
    }
}

/// Checks and converts a value for a declared type; `Err` carries what was found.
fn conform<'a>(kind: &FieldKind, value: Val<'a>) -> Result<Val<'a>, String> {
    if kind.accepts(&value) || value.is_null() {
        return Ok(value);
    }
    match (kind, value) {
        (FieldKind::Int, Val::Dec(d)) => d.to_i64().map(Val::Int).ok_or_else(|| {
            if d.normalize().scale == 0 {
                format!("{d}, beyond 64 bits")
            } else {
                format!("the fraction {d}")
            }
        }),
        (FieldKind::Money, Val::Obj(fields)) => {
            let amount = fields
                .iter()
                .find(|(k, _)| k == "amount")
                .map(|(_, v)| v.clone());
            let currency = fields
                .iter()
                .find(|(k, _)| k == "currency")
                .map(|(_, v)| v.clone());
            match (amount, currency) {
                (Some(Val::Int(a)), Some(Val::Str(c))) => {
                    match omniflow_ir::currency::exponent(&c) {
                        Some(_) => Ok(Val::money(a, c)),
                        None => Err(format!(
                            "the currency `{c}`, which is not an active ISO 4217 code"
                        )),
                    }
                }
                _ => Err("an object that is not {amount, currency}".into()),
            }
        }
        (FieldKind::Datetime | FieldKind::Date, Val::Str(s)) => {
            let valid = if s.len() == 10 {
                chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").is_ok()
            } else {
                chrono::DateTime::parse_from_rfc3339(&s).is_ok()
            };
            if valid {
                Ok(Val::Str(s))
            } else {
                Err(format!("\"{s}\", which is not an RFC 3339 timestamp"))
            }
        }
        (FieldKind::Enum(variants), Val::Str(s)) => {
            if variants.is_empty() || variants.iter().any(|v| *v == *s) {
                Ok(Val::Str(s))
            } else {
                Err(format!(
                    "\"{s}\", which is not one of {}",
                    variants.join(", ")
                ))
            }
        }
        (FieldKind::List(elem), Val::List(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                out.push(conform(elem, item.clone())?);
            }
            Ok(Val::List(Rc::from(out)))
        }
        (_, other) => Err(describe(&other)),
    }
}

fn describe(value: &Val) -> String {
    match value {
        Val::Str(s) => format!("the string \"{}\"", s.chars().take(40).collect::<String>()),
        Val::Int(i) => format!("the number {i}"),
        Val::Dec(d) => format!("the number {d}"),
        other => format!("a {}", other.kind()),
    }
}

/// Null, to point at where a path finds nothing.
const NULL: &Val<'static> = &Val::Null;

/// A literal or path operand by reference (no clone, nothing to drop); `None` for
/// other expressions and for paths that build values (`[*]`, money fields).
#[inline(always)]
fn operand_ref<'v, 'a>(
    code: &'v Code,
    input: &'v Val<'a>,
    slots: &'v [Val<'a>],
) -> Option<&'v Val<'a>> {
    match code {
        Code::Lit(value) => Some(value),
        Code::Path { root, path } => {
            let mut current = match root {
                Root::Input => input,
                Root::Local(slot) => slots.get(*slot as usize).unwrap_or(NULL),
            };
            for seg in path {
                current = match (seg, current) {
                    (Seg::Field(field), Val::Obj(fields)) => field.find(fields).unwrap_or(NULL),
                    (Seg::Index(i), Val::List(items)) => items.get(*i as usize).unwrap_or(NULL),
                    (Seg::Field(_), Val::Money(..)) | (Seg::All, _) => return None,
                    _ => NULL,
                };
            }
            Some(current)
        }
        _ => None,
    }
}

/// The value at a path from the input or a local.
#[inline(always)]
fn path_value<'a>(root: Root, path: &[Seg], input: &Val<'a>, slots: &[Val<'a>]) -> Val<'a> {
    let base = match root {
        Root::Input => input,
        Root::Local(slot) => match slots.get(slot as usize) {
            Some(value) => value,
            None => return Val::Null,
        },
    };
    walk(base, path)
}

/// Follows a path by reference and clones only what it finds; `[*]` maps the rest of
/// the path over a list and drops missing values.
fn walk<'a>(base: &Val<'a>, path: &[Seg]) -> Val<'a> {
    let mut current = base;
    for (idx, seg) in path.iter().enumerate() {
        current = match (seg, current) {
            (Seg::Field(field), Val::Obj(fields)) => match field.find(fields) {
                Some(value) => value,
                None => return Val::Null,
            },
            (Seg::Field(field), money @ Val::Money(..)) => {
                return walk(&money.field(field.name), &path[idx + 1..])
            }
            (Seg::Index(i), Val::List(items)) => match items.get(*i as usize) {
                Some(value) => value,
                None => return Val::Null,
            },
            // A list read whole with `[*]` is the list itself, unless it holds nulls to drop.
            (Seg::All, Val::List(items))
                if idx + 1 == path.len() && !items.iter().any(Val::is_null) =>
            {
                return Val::List(items.clone())
            }
            (Seg::All, Val::List(items)) => return walk_all(items.iter(), &path[idx + 1..]),
            (Seg::All, Val::Obj(fields)) => {
                return walk_all(fields.iter().map(|(_, v)| v), &path[idx + 1..])
            }
            (Seg::All, _) => return Val::List(Rc::from(Vec::new())),
            _ => return Val::Null,
        };
    }
    current.clone()
}

fn walk_all<'v, 'a: 'v>(items: impl Iterator<Item = &'v Val<'a>>, rest: &[Seg]) -> Val<'a> {
    let nested = rest.iter().any(|s| matches!(s, Seg::All));
    let mut out = Vec::with_capacity(items.size_hint().0);
    for item in items {
        match walk(item, rest) {
            Val::Null => {}
            Val::List(inner) if nested => out.extend(inner.iter().cloned()),
            value => out.push(value),
        }
    }
    Val::List(Rc::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path a projection was built from reads the same through it, by the scanner
    /// and by serde_json, as through the whole document: `[*]` over an object reads its
    /// values, beside fields of it read by name.
    #[test]
    fn a_projection_keeps_what_its_paths_read() {
        let docs: [&[u8]; 4] = [
            br#"{"id": 1, "attrs": {"a": {"x": 1, "y": [2]}, "b": "s", "c": null}}"#,
            br#"{"id": 2, "attrs": [{"x": 3, "z": 4}, {"a": {"x": 5}}, 6]}"#,
            br#"{"attrs": {"a": {"x": 7, "w": 8}, "b": 9, "d": {"e": {"f": [1, {"g": 2}]}}}}"#,
            br#"{"items": [{"sku": "A", "q": 1, "more": {"k": [1]}}, {"sku": "B"}], "attrs": 3}"#,
        ];
        let read_sets: [&[&str]; 6] = [
            &["$.attrs[*]"],
            &["$.attrs[*]", "$.attrs.a.x"],
            &["$.attrs.a.x", "$.attrs[*].x"],
            &["$.attrs[*].x", "$.id"],
            &["$.attrs[*][*]", "$.attrs.d.e"],
            &["$.items[*].sku", "$.items[*].more[*]", "$.attrs[0]"],
        ];
        for doc in docs {
            let whole = crate::json_in::parse(doc, &crate::json_in::Projection::whole()).unwrap();
            for reads in read_sets {
                let reads: Vec<String> = reads.iter().map(|r| r.to_string()).collect();
                let projection = crate::json_in::Projection::from_reads(&reads);
                let scanned = crate::json_scan::scan(doc, &projection).unwrap();
                let parsed = crate::json_in::parse_with_serde(doc, &projection).unwrap();
                for read in &reads {
                    let segs: Vec<Seg> = omniflow_ir::path::simple_path(read)
                        .unwrap()
                        .iter()
                        .map(|seg| match seg {
                            PathSeg::Field(name) => Seg::Field(FieldRef::new(name)),
                            PathSeg::Index(idx) => Seg::Index(*idx),
                            PathSeg::All => Seg::All,
                        })
                        .collect();
                    let want = walk(&whole, &segs);
                    for (how, input) in [("scanned", &scanned), ("parsed", &parsed)] {
                        let got = walk(input, &segs);
                        assert!(
                            crate::value::equal(&got, &want),
                            "{} {how} under {reads:?}: {read} gave {got:?}, want {want:?}",
                            String::from_utf8_lossy(doc)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn jsonpath_results_keep_every_digit() {
        let doc = br#"{"a": {"id": 12345678901234567890123}, "b": [{"id": 0.12345678901234567890123}, {"id": 7}]}"#;
        let input = crate::json_in::parse(doc, &crate::json_in::Projection::whole()).unwrap();
        let query = jsonpath_rust::parser::parse_json_path("$..id").unwrap();
        let found = json_path(&query, &input).unwrap();
        assert_eq!(
            crate::json_out::to_string(&found),
            "[12345678901234567890123,0.12345678901234567890123,7]"
        );
    }
}
