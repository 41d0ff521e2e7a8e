//! Expression checking: every expression gets a type, and is elaborated into the IR
//! form at the same time (names resolved to slots, tables and input paths).

use super::builtins;
use super::templates;
use super::types::{assignable, unify, Mismatch, Ty};
use super::Env;
use crate::diagnostics::{codes, suggest, Diagnostic, Diagnostics};
use crate::facts::{Scope, Typed};
use crate::ir::{self, Expr as IrExpr, PathSeg, Root};
use crate::resolve::{Kind, ModuleId, Program};
use crate::source::Span;
use crate::syntax::ast::{BinOp, Expr, ExprKind, Ident, Literal, Record, RecordItem, UnOp};
pub use omniflow_ir::path::simple_path;
use serde_json::Value;
use std::collections::BTreeSet;

/// The context one expression is checked in.
pub struct ExprCx<'a> {
    pub program: &'a Program,
    pub env: &'a Env,
    pub module: ModuleId,
    /// The type of `$`.
    pub input: Ty,
    /// Whether bare names may read fields of the input (routes, filters, sinks).
    pub bare_fields: bool,
    /// Whether `env(...)` and `secret(...)` are allowed.
    pub in_settings: bool,
    locals: Vec<(String, Ty, u32)>,
    next_slot: u32,
    /// Input paths read, as JSONPath text.
    pub reads: BTreeSet<String>,
    pub diags: &'a mut Diagnostics,
}

impl<'a> ExprCx<'a> {
    /// A context reading messages of type `input`.
    pub fn new(
        program: &'a Program,
        env: &'a Env,
        module: ModuleId,
        input: Ty,
        diags: &'a mut Diagnostics,
    ) -> ExprCx<'a> {
        ExprCx {
            program,
            env,
            module,
            input,
            bare_fields: false,
            in_settings: false,
            locals: Vec::new(),
            next_slot: 0,
            reads: BTreeSet::new(),
            diags,
        }
    }

    /// Number of local slots used so far.
    pub fn slots(&self) -> u32 {
        self.next_slot
    }

    fn display(&self, ty: &Ty) -> String {
        ty.display(self.program)
    }

    /// Checks an expression that must be a boolean condition.
    pub fn condition(&mut self, expr: &Expr, what: &str) -> IrExpr {
        let (ty, ir) = self.check(expr);
        if !(ty == Ty::Bool || ty.is_lenient()) {
            let shown = self.display(&ty);
            self.diags.push(
                Diagnostic::error(
                    codes::CONDITION_NOT_BOOL,
                    expr.span,
                    format!("{what} must be a boolean, found {shown}"),
                )
                .label(format!("this is {shown}"))
                .help("compare it, e.g. `x == \"paid\"` or `exists(x)`"),
            );
        }
        ir
    }

    /// Checks an expression against the type its place requires.
    pub fn expect(&mut self, expr: &Expr, want: &Ty, optional: bool, place: &str) -> IrExpr {
        let (ty, ir) = self.check(expr);
        self.report_mismatch(expr, want, &ty, optional, place);
        ir
    }

    fn report_mismatch(&mut self, expr: &Expr, want: &Ty, ty: &Ty, optional: bool, place: &str) {
        if let Ty::Enum(enum_ref) = want {
            if let ExprKind::Lit(Literal::Str(text)) = &expr.kind {
                self.check_variant(*enum_ref, text, expr.span);
                return;
            }
        }
        let Err(mismatch) = assignable(want, ty, optional) else {
            return;
        };
        let (want_s, ty_s) = (self.display(want), self.display(ty));
        let diagnostic = match mismatch {
            Mismatch::FloatIntoMoney => Diagnostic::error(
                codes::FLOAT_INTO_MONEY,
                expr.span,
                format!("{ty_s} value into money {place}"),
            )
            .label(format!("this is {ty_s}, not money"))
            .help("money is integer minor units plus a currency: use money(amount, currency) or money_minor(units, currency)"),
            Mismatch::NullIntoRequired => Diagnostic::error(
                codes::TYPE_MISMATCH,
                expr.span,
                format!("null into required {place}"),
            )
            .label("this is null")
            .help(format!("give {} value, or mark the field optional with `?` in the schema", article(&want_s))),
            Mismatch::Other => Diagnostic::error(
                codes::TYPE_MISMATCH,
                expr.span,
                format!("expected {want_s} for {place}, found {ty_s}"),
            )
            .label(format!("this is {ty_s}"))
            .help(conversion_help(want, ty)),
        };
        self.diags.push(diagnostic);
    }

    fn check_variant(&mut self, enum_ref: crate::resolve::ItemRef, text: &str, span: Span) {
        super::types::check_variant(self.program, enum_ref, text, span, self.diags);
    }

    fn push_local(&mut self, name: &str, ty: Ty) -> u32 {
        let slot = self.next_slot;
        self.next_slot += 1;
        self.locals.push((name.to_string(), ty, slot));
        slot
    }

    /// Checks and elaborates an expression.
    pub fn check(&mut self, expr: &Expr) -> (Ty, IrExpr) {
        let (ty, ir) = self.check_kind(expr);
        self.program.note_type(expr.span, || self.display(&ty));
        (ty, ir)
    }

    fn check_kind(&mut self, expr: &Expr) -> (Ty, IrExpr) {
        match &expr.kind {
            ExprKind::Error => (Ty::Error, IrExpr::Lit(Value::Null)),
            ExprKind::Lit(lit) => self.literal(lit, expr.span),
            ExprKind::JsonPath(text) => self.jsonpath(text, expr.span),
            ExprKind::Var(ident) => self.var(ident),
            ExprKind::Member(base, field) => {
                let (base_ty, base_ir) = self.check(base);
                self.member(base_ty, base_ir, field)
            }
            ExprKind::Index(base, index) => self.index(base, index),
            ExprKind::AllItems(base) => self.all_items(base),
            ExprKind::Call(name, args) => self.call(name, args, expr.span),
            ExprKind::Binary(op, lhs, rhs) => self.binary(*op, lhs, rhs, expr.span),
            ExprKind::Unary(op, inner) => self.unary(*op, inner, expr.span),
            ExprKind::If(cond, then, otherwise) => self.if_else(cond, then, otherwise),
            ExprKind::Reject(reason) => {
                let reason_ir = self.string_or_template(&reason.value, reason.span);
                (Ty::Never, IrExpr::Reject(Box::new(reason_ir)))
            }
            ExprKind::List(items) => self.list(items),
            ExprKind::Record(record) => self.record(record),
            ExprKind::EachMap {
                source,
                var,
                filter,
                body,
            } => self.each_map(source, var, filter.as_deref(), body),
        }
    }

    /// `base[*]`: the elements of a list.
    fn all_items(&mut self, base: &Expr) -> (Ty, IrExpr) {
        let (ty, ir) = self.check(base);
        if ty.element().is_none() {
            let shown = self.display(&ty);
            self.diags.push(
                Diagnostic::error(
                    codes::NOT_A_LIST,
                    base.span,
                    format!("`[*]` selects the elements of a list, found {shown}"),
                )
                .label(format!("this is {shown}"))
                .help("use `[*]` on a list, e.g. `order.lines[*].sku`"),
            );
        }
        let ir = match ir {
            IrExpr::Path { root, mut path } => {
                path.push(PathSeg::All);
                IrExpr::Path { root, path }
            }
            // Field access on a list already maps over its elements.
            other => other,
        };
        (ty, ir)
    }

    /// `-x` and `not x`.
    fn unary(&mut self, op: UnOp, inner: &Expr, span: Span) -> (Ty, IrExpr) {
        let (ty, ir) = self.check(inner);
        let ok = match op {
            UnOp::Neg => ty.is_number() || ty == Ty::Money || ty.is_lenient(),
            UnOp::Not => ty == Ty::Bool || ty.is_lenient(),
        };
        if !ok {
            let shown = self.display(&ty);
            let word = if op == UnOp::Neg { "-" } else { "not" };
            self.diags.push(
                Diagnostic::error(
                    codes::INVALID_OPERAND,
                    span,
                    format!("`{word}` cannot be applied to {shown}"),
                )
                .label(format!("this is {shown}"))
                .help(if op == UnOp::Neg {
                    "negate a number or money"
                } else {
                    "use `not` on a boolean condition"
                }),
            );
        }
        let result = if op == UnOp::Not { Ty::Bool } else { ty };
        (
            result,
            IrExpr::Unary {
                op,
                expr: Box::new(ir),
            },
        )
    }

    /// `if cond then a else b`: both branches of one type.
    fn if_else(&mut self, cond: &Expr, then: &Expr, otherwise: &Expr) -> (Ty, IrExpr) {
        let cond_ir = self.condition(cond, "an `if` condition");
        let (then_ty, then_ir) = self.check(then);
        let (else_ty, else_ir) = self.check(otherwise);
        let ty = match unify(&then_ty, &else_ty) {
            Some(ty) => ty,
            None => {
                let (a, b) = (self.display(&then_ty), self.display(&else_ty));
                self.diags.push(
                    Diagnostic::error(
                        codes::TYPE_MISMATCH,
                        otherwise.span,
                        format!("`if` branches have different types: {a} and {b}"),
                    )
                    .label(format!("this is {b}"))
                    .secondary(then.span, format!("this is {a}"))
                    .help("make both branches produce the same type"),
                );
                Ty::Error
            }
        };
        (
            ty,
            IrExpr::If {
                cond: Box::new(cond_ir),
                then: Box::new(then_ir),
                otherwise: Box::new(else_ir),
            },
        )
    }

    /// `[a, b, ...]`: elements of one type.
    fn list(&mut self, items: &[Expr]) -> (Ty, IrExpr) {
        let mut elem = Ty::Never;
        let mut irs = Vec::with_capacity(items.len());
        for item in items {
            let (ty, ir) = self.check(item);
            elem = match unify(&elem, &ty) {
                Some(t) => t,
                None => {
                    let shown = self.display(&ty);
                    self.diags.push(
                        Diagnostic::error(
                            codes::TYPE_MISMATCH,
                            item.span,
                            format!(
                                "list elements have different types: {shown} among {}",
                                self.display(&elem)
                            ),
                        )
                        .label(format!("this is {shown}"))
                        .help("give every element of a list the same type"),
                    );
                    Ty::Error
                }
            };
            irs.push(ir);
        }
        let elem = if elem == Ty::Never { Ty::Json } else { elem };
        (Ty::List(Box::new(elem)), IrExpr::List(irs))
    }

    /// `source as var where filter -> body`: maps the elements of a list.
    fn each_map(
        &mut self,
        source: &Expr,
        var: &Ident,
        filter: Option<&Expr>,
        body: &Expr,
    ) -> (Ty, IrExpr) {
        let (source_ty, source_ir) = self.check(source);
        let elem = match source_ty.element() {
            Some(elem) => elem,
            None => {
                let shown = self.display(&source_ty);
                self.diags.push(
                    Diagnostic::error(
                        codes::NOT_A_LIST,
                        source.span,
                        format!("`as` maps the elements of a list, found {shown}"),
                    )
                    .label(format!("this is {shown}"))
                    .help("select the array, e.g. `$.line_items[*] as line -> ...`"),
                );
                Ty::Error
            }
        };
        let depth = self.locals.len();
        let slot = self.push_local(&var.name, elem);
        let filter_ir = filter.map(|f| Box::new(self.condition(f, "a `where` filter")));
        let (body_ty, body_ir) = self.check(body);
        self.locals.truncate(depth);
        (
            Ty::List(Box::new(body_ty)),
            IrExpr::Each {
                source: Box::new(source_ir),
                slot,
                filter: filter_ir,
                body: Box::new(body_ir),
            },
        )
    }

    fn literal(&mut self, lit: &Literal, span: Span) -> (Ty, IrExpr) {
        super::settings::literal_fits(lit, span, self.diags);
        match lit {
            Literal::Null => (Ty::Null, IrExpr::Lit(Value::Null)),
            Literal::Bool(b) => (Ty::Bool, IrExpr::Lit(Value::Bool(*b))),
            Literal::Int(i) => (Ty::Int, IrExpr::Lit(Value::from(*i))),
            Literal::Decimal(text) => (Ty::Decimal, IrExpr::Decimal(text.clone())),
            Literal::Str(text) => (Ty::String, self.string_or_template(text, span)),
            Literal::Duration(ms, _) => (Ty::Duration, IrExpr::Lit(Value::from(*ms))),
            Literal::Rate {
                count, per_secs, ..
            } => (
                Ty::Rate,
                IrExpr::Lit(serde_json::json!({ "count": count, "per_secs": per_secs })),
            ),
            Literal::Percent(text) => (
                Ty::Percent,
                IrExpr::Lit(Value::from(text.parse::<f64>().unwrap_or(0.0))),
            ),
        }
    }

    /// A string literal, or a minijinja template when it contains `{{` or `{%`.
    pub fn string_or_template(&mut self, text: &str, span: Span) -> IrExpr {
        if !(text.contains("{{") || text.contains("{%")) {
            return IrExpr::string(text);
        }
        if templates::too_large(
            text,
            span,
            "build long text from shorter parts with `+` or `concat(...)`",
            self.diags,
        ) {
            return IrExpr::string(text);
        }
        let template = match templates::template_env().template_from_str(text) {
            Ok(template) => template,
            Err(err) => {
                templates::invalid(&err, text, span, self.diags);
                return IrExpr::string(text);
            }
        };
        templates::check_filters(text, span, self.diags);
        let mut names: Vec<String> = template.undeclared_variables(false).into_iter().collect();
        names.sort();
        let mut vars = Vec::with_capacity(names.len());
        for name in names {
            if let Some(ir) = self.template_var(&name) {
                vars.push((name, ir));
                continue;
            }
            let help = suggest::did_you_mean(
                &name,
                self.visible_names(),
                "templates can use `let` names, `as` variables, `input` and (in routes and sinks) the message's fields",
            );
            let at = templates::variable_span(text, span, &name);
            self.diags.push(
                Diagnostic::error(
                    codes::UNKNOWN_TEMPLATE_VARIABLE,
                    at,
                    format!("template uses unknown variable `{name}`"),
                )
                .label(format!("`{name}` is not in scope here"))
                .help(help),
            );
        }
        // Each path read is checked against the type of its variable; unknown roots were
        // reported above.
        for path in templates::paths_of(&template) {
            if let Some(ty) = self.template_var_type(&path[0]) {
                templates::walk(self.program, self.env, &ty, &path, text, span, self.diags);
            }
        }
        IrExpr::Template {
            text: text.to_string(),
            vars,
        }
    }

    /// The type of a template's variable, resolved as [`Self::template_var`] does.
    pub(super) fn template_var_type(&self, name: &str) -> Option<Ty> {
        if let Some((_, ty, _)) = self.locals.iter().rev().find(|(n, _, _)| n == name) {
            return Some(ty.clone());
        }
        match name {
            "input" => Some(self.input.clone()),
            _ if self.bare_fields => self.input_field(name),
            _ => None,
        }
    }

    fn template_var(&mut self, name: &str) -> Option<IrExpr> {
        if let Some((_, _, slot)) = self.locals.iter().rev().find(|(n, _, _)| n == name) {
            return Some(IrExpr::Path {
                root: Root::Local(*slot),
                path: Vec::new(),
            });
        }
        if name == "input" {
            self.reads.insert("$".to_string());
            return Some(IrExpr::Path {
                root: Root::Input,
                path: Vec::new(),
            });
        }
        if self.bare_fields && self.input_field(name).is_some() {
            self.reads
                .insert(ir::expr::path_text(&[PathSeg::Field(name.to_string())]));
            return Some(IrExpr::Path {
                root: Root::Input,
                path: vec![PathSeg::Field(name.to_string())],
            });
        }
        None
    }

    /// A name with its type and, for a record, its fields (for editors).
    fn typed(&self, name: &str, ty: &Ty) -> Typed {
        Typed {
            name: name.to_string(),
            ty: self.display(ty),
            fields: self.typed_fields(ty),
        }
    }

    /// The fields of a record type (of its items for a list), one level deep.
    fn typed_fields(&self, ty: &Ty) -> Vec<Typed> {
        let ty = match ty {
            Ty::List(elem) => elem.as_ref(),
            ty => ty,
        };
        let Ty::Record(item) = ty else {
            return Vec::new();
        };
        self.env.schemas.get(item).map_or_else(Vec::new, |schema| {
            schema
                .fields
                .iter()
                .map(|f| Typed {
                    name: f.name.clone(),
                    ty: self.display(&f.ty),
                    fields: Vec::new(),
                })
                .collect()
        })
    }

    fn input_field(&self, name: &str) -> Option<Ty> {
        match &self.input {
            Ty::Record(item) => self
                .env
                .schemas
                .get(item)
                .and_then(|s| s.field(name))
                .map(|f| f.ty.clone()),
            Ty::Error => Some(Ty::Error),
            _ => None,
        }
    }

    /// The names an expression here can read, for suggestions (lazily: see
    /// `suggest::nearest`'s budget).
    fn visible_names(&self) -> impl Iterator<Item = &str> {
        let fields = match (&self.input, self.bare_fields) {
            (Ty::Record(item), true) => self.env.schemas.get(item),
            _ => None,
        };
        self.locals
            .iter()
            .map(|(n, _, _)| n.as_str())
            .chain(
                fields
                    .into_iter()
                    .flat_map(|schema| schema.fields.iter().map(|f| f.name.as_str())),
            )
            .chain(self.program.names_of_kind(self.module, Kind::Table))
    }

    fn var(&mut self, ident: &Ident) -> (Ty, IrExpr) {
        if let Some((_, ty, slot)) = self.locals.iter().rev().find(|(n, _, _)| *n == ident.name) {
            return (
                ty.clone(),
                IrExpr::Path {
                    root: Root::Local(*slot),
                    path: Vec::new(),
                },
            );
        }
        if self.bare_fields {
            if let Some(ty) = self.input_field(&ident.name) {
                self.reads
                    .insert(ir::expr::path_text(&[PathSeg::Field(ident.name.clone())]));
                return (
                    ty,
                    IrExpr::Path {
                        root: Root::Input,
                        path: vec![PathSeg::Field(ident.name.clone())],
                    },
                );
            }
        }
        if let Some(table) = self.program.lookup_at(self.module, ident, Kind::Table) {
            self.diags.push(
                Diagnostic::error(
                    codes::TYPE_MISMATCH,
                    ident.span,
                    format!("table `{}` used as a value", ident.name),
                )
                .label("a table, not a value")
                .help(format!(
                    "look a key up with `{}[key]` or test it with `key in {}`",
                    ident.name, ident.name
                )),
            );
            return (Ty::Table(table), IrExpr::Lit(Value::Null));
        }
        let fallback = if self.bare_fields && !matches!(self.input, Ty::Record(_)) {
            format!(
                "the input is untyped JSON: read its fields with `$.{}`",
                ident.name
            )
        } else if self.bare_fields {
            "bind it with `let`, or read the input with `$.field`".to_string()
        } else {
            "read the input with `$.field`, or bind a name with `let`".to_string()
        };
        let help = suggest::did_you_mean(&ident.name, self.visible_names(), &fallback);
        self.diags.push(
            Diagnostic::error(
                codes::UNKNOWN_NAME,
                ident.span,
                format!("unknown name `{}`", ident.name),
            )
            .label("not in scope")
            .help(help),
        );
        (Ty::Error, IrExpr::Lit(Value::Null))
    }

    /// Field access on a checked value.
    fn member(&mut self, base_ty: Ty, base_ir: IrExpr, field: &Ident) -> (Ty, IrExpr) {
        let (ty, seg_all) = match &base_ty {
            Ty::List(elem) => {
                let (ty, _) = self.member_type(elem, field);
                (Ty::List(Box::new(ty)), true)
            }
            other => {
                let other = other.clone();
                self.member_type(&other, field)
            }
        };
        let mut segs = Vec::with_capacity(2);
        if seg_all {
            segs.push(PathSeg::All);
        }
        segs.push(PathSeg::Field(field.name.clone()));
        let ir = match base_ir {
            IrExpr::Path { root, mut path } => {
                path.extend(segs);
                if root == Root::Input {
                    self.reads.insert(ir::expr::path_text(&path));
                }
                IrExpr::Path { root, path }
            }
            other if seg_all => {
                let mut ir = other;
                for seg in segs {
                    if let PathSeg::Field(name) = seg {
                        ir = IrExpr::Member(Box::new(ir), name);
                    }
                }
                ir
            }
            other => IrExpr::Member(Box::new(other), field.name.clone()),
        };
        (ty, ir)
    }

    /// The type of `field` on a non-list type; reports unknown fields.
    fn member_type(&mut self, base: &Ty, field: &Ident) -> (Ty, bool) {
        match base {
            Ty::Record(item) => {
                let Some(schema) = self.env.schemas.get(item) else {
                    return (Ty::Error, false);
                };
                match schema.field(&field.name) {
                    Some(f) => (f.ty.clone(), false),
                    None => {
                        self.unknown_field(
                            &schema.name,
                            schema.field_names(),
                            field.span,
                            &field.name,
                        );
                        (Ty::Error, false)
                    }
                }
            }
            Ty::Money => match field.name.as_str() {
                "amount" => (Ty::Int, false),
                "currency" => (Ty::String, false),
                _ => {
                    self.unknown_field(
                        "money",
                        vec!["amount", "currency"],
                        field.span,
                        &field.name,
                    );
                    (Ty::Error, false)
                }
            },
            Ty::Json | Ty::Error | Ty::Null | Ty::Never => (Ty::Json, false),
            other => {
                let shown = self.display(other);
                self.diags.push(
                    Diagnostic::error(
                        codes::NOT_A_RECORD,
                        field.span,
                        format!("{shown} has no field `{}`", field.name),
                    )
                    .label(format!("read from a {shown}"))
                    .help("only records, money and JSON values have fields"),
                );
                (Ty::Error, false)
            }
        }
    }

    fn unknown_field(&mut self, schema: &str, fields: Vec<&str>, span: Span, name: &str) {
        let help = suggest::did_you_mean(
            name,
            fields.iter().copied(),
            &format!("`{schema}` has the fields {}", list_names(&fields)),
        );
        self.diags.push(
            Diagnostic::error(
                codes::UNKNOWN_FIELD,
                span,
                format!("unknown field `{name}` on `{schema}`"),
            )
            .label(format!("`{schema}` has no field `{name}`"))
            .help(help),
        );
    }

    fn index(&mut self, base: &Expr, index: &Expr) -> (Ty, IrExpr) {
        // `table[key]`
        if let ExprKind::Var(ident) = &base.kind {
            let is_local = self.locals.iter().any(|(n, _, _)| *n == ident.name);
            let is_field = self.bare_fields && self.input_field(&ident.name).is_some();
            if !is_local && !is_field {
                if let Some(table) = self.program.lookup_at(self.module, ident, Kind::Table) {
                    let (key_ty, value_ty) = self.table_types(table);
                    let key_ir = self.expect(index, &key_ty, true, "the table key");
                    return (
                        value_ty,
                        IrExpr::Lookup {
                            table: ident.name.clone(),
                            key: Box::new(key_ir),
                        },
                    );
                }
            }
        }
        if let ExprKind::Var(ident) = &base.kind {
            if self.is_unknown_name(&ident.name) {
                self.unknown_table(ident);
                self.check(index);
                return (Ty::Error, IrExpr::Lit(Value::Null));
            }
        }
        let (base_ty, base_ir) = self.check(base);
        let (index_ty, index_ir) = self.check(index);
        let ty = match &base_ty {
            Ty::List(elem) => {
                if !(index_ty == Ty::Int || index_ty.is_lenient()) {
                    let shown = self.display(&index_ty);
                    self.diags.push(
                        Diagnostic::error(
                            codes::TYPE_MISMATCH,
                            index.span,
                            format!("list index must be int, found {shown}"),
                        )
                        .label(format!("this is {shown}"))
                        .help("index lists with an integer position, starting at 0"),
                    );
                }
                (**elem).clone()
            }
            Ty::Json | Ty::Error => Ty::Json,
            other => {
                let shown = self.display(other);
                self.diags.push(
                    Diagnostic::error(
                        codes::INVALID_OPERAND,
                        base.span,
                        format!("{shown} cannot be indexed"),
                    )
                    .label(format!("this is {shown}"))
                    .help("index a list (`xs[0]`) or look a key up in a table (`table[key]`)"),
                );
                Ty::Error
            }
        };
        let ir = match (base_ir, &index_ir) {
            (IrExpr::Path { root, mut path }, IrExpr::Lit(Value::Number(n))) if n.is_i64() => {
                path.push(PathSeg::Index(n.as_i64().unwrap_or_default()));
                IrExpr::Path { root, path }
            }
            (base_ir, _) => IrExpr::Index(Box::new(base_ir), Box::new(index_ir)),
        };
        (ty, ir)
    }

    /// True when a name is neither a local, a message field nor a table.
    fn is_unknown_name(&self, name: &str) -> bool {
        !(self.locals.iter().any(|(n, _, _)| n == name)
            || (self.bare_fields && self.input_field(name).is_some()))
            && self
                .program
                .lookup(self.module, name, Kind::Table)
                .is_none()
    }

    fn unknown_table(&mut self, ident: &Ident) {
        let tables = self.program.names_of_kind(self.module, Kind::Table);
        let help = suggest::did_you_mean(
            &ident.name,
            tables,
            &format!("declare it: `table {}: string -> string = file(\"{}.csv\", key = \"...\", value = \"...\")`", ident.name, ident.name),
        );
        self.diags.push(
            Diagnostic::error(
                codes::UNKNOWN_TABLE,
                ident.span,
                format!("unknown table `{}`", ident.name),
            )
            .label("no table of that name is in scope")
            .help(help),
        );
    }

    fn table_types(&self, table: crate::resolve::ItemRef) -> (Ty, Ty) {
        self.env
            .tables
            .get(&table)
            .map(|t| (t.key_ty.clone(), t.value_ty.clone()))
            .unwrap_or((Ty::Error, Ty::Error))
    }

    fn call(&mut self, name: &Ident, args: &[Expr], span: Span) -> (Ty, IrExpr) {
        let Some(builtin) = builtins::find(&name.name) else {
            for arg in args {
                self.check(arg);
            }
            let help = suggest::did_you_mean(
                &name.name,
                builtins::BUILTINS.iter().map(|b| b.name),
                "see the list of built-in functions in docs/language.md",
            );
            self.diags.push(
                Diagnostic::error(
                    codes::UNKNOWN_FUNCTION,
                    name.span,
                    format!("unknown function `{}`", name.name),
                )
                .label("no such function")
                .help(help),
            );
            return (Ty::Error, IrExpr::Lit(Value::Null));
        };
        if matches!(builtin.name, "env" | "secret") && !self.in_settings {
            self.diags.push(
                Diagnostic::error(
                    codes::UNKNOWN_FUNCTION,
                    name.span,
                    format!("`{}` is only available in settings", builtin.name),
                )
                .label("not allowed in a mapping")
                .help("read deployment values in a `connection` block, not per message"),
            );
        }
        let min = builtin.params.len() - builtin.optional;
        let max = if builtin.variadic {
            usize::MAX
        } else {
            builtin.params.len()
        };
        if args.len() < min.max(usize::from(builtin.variadic)) || args.len() > max {
            let expected = if builtin.variadic {
                format!("at least {}", min.max(1))
            } else if builtin.optional > 0 {
                format!("{min} to {max}")
            } else {
                min.to_string()
            };
            self.diags.push(
                Diagnostic::error(
                    codes::WRONG_ARGUMENT_COUNT,
                    span,
                    format!(
                        "`{}` takes {expected} argument{}, found {}",
                        builtin.name,
                        if expected == "1" { "" } else { "s" },
                        args.len()
                    ),
                )
                .label(format!(
                    "called with {} argument{}",
                    args.len(),
                    if args.len() == 1 { "" } else { "s" }
                ))
                .help(format!("`{}`: {}", builtin.name, builtin.doc)),
            );
        }
        let mut tys = Vec::with_capacity(args.len());
        let mut irs = Vec::with_capacity(args.len());
        for (idx, arg) in args.iter().enumerate() {
            let (ty, ir) = self.check(arg);
            let param = builtin.params.get(idx).or(if builtin.variadic {
                builtin.params.last()
            } else {
                None
            });
            if let Some(param) = param {
                if let Some(wanted) = builtins::param_mismatch(*param, &ty) {
                    let shown = self.display(&ty);
                    self.diags.push(
                        Diagnostic::error(
                            codes::TYPE_MISMATCH,
                            arg.span,
                            format!(
                                "argument {} of `{}` must be {wanted}, found {shown}",
                                idx + 1,
                                builtin.name
                            ),
                        )
                        .label(format!("this is {shown}"))
                        .help(format!("`{}`: {}", builtin.name, builtin.doc)),
                    );
                }
            }
            tys.push(ty);
            irs.push(ir);
        }
        for diagnostic in builtins::money_literals(builtin.name, args) {
            self.diags.push(diagnostic);
        }
        let ty = builtins::result_type(builtin, &tys);
        (
            ty,
            IrExpr::Call {
                func: builtin.name.to_string(),
                args: irs,
            },
        )
    }

    fn binary(&mut self, op: BinOp, lhs: &Expr, rhs: &Expr, span: Span) -> (Ty, IrExpr) {
        if matches!(op, BinOp::In | BinOp::NotIn) {
            return self.membership(op, lhs, rhs, span);
        }
        let (lt, li) = self.check(lhs);
        let (rt, ri) = self.check(rhs);
        let lenient = lt.is_lenient() || rt.is_lenient() || lt == Ty::Null || rt == Ty::Null;
        let result = match op {
            BinOp::Coalesce => unify(&lt, &rt),
            BinOp::And | BinOp::Or => {
                let ok = |t: &Ty| *t == Ty::Bool || t.is_lenient();
                (ok(&lt) && ok(&rt)).then_some(Ty::Bool)
            }
            BinOp::Eq | BinOp::Ne => (lenient || unify(&lt, &rt).is_some()).then_some(Ty::Bool),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let ordered = |t: &Ty| {
                    t.is_number()
                        || matches!(
                            t,
                            Ty::String | Ty::Datetime | Ty::Date | Ty::Money | Ty::Duration
                        )
                };
                let ok = lenient
                    || (lt.is_number() && rt.is_number())
                    || (lt == rt && ordered(&lt))
                    || (matches!(lt, Ty::Datetime | Ty::Date | Ty::String)
                        && matches!(rt, Ty::Datetime | Ty::Date | Ty::String));
                ok.then_some(Ty::Bool)
            }
            BinOp::Add => arith_add(&lt, &rt),
            BinOp::Sub => match (&lt, &rt) {
                (Ty::Money, Ty::Money) => Some(Ty::Money),
                _ => numeric(&lt, &rt, false),
            },
            BinOp::Mul => match (&lt, &rt) {
                (Ty::Money, Ty::Int) | (Ty::Int, Ty::Money) => Some(Ty::Money),
                _ => numeric(&lt, &rt, false),
            },
            BinOp::Div => numeric(&lt, &rt, true),
            BinOp::In | BinOp::NotIn => Some(Ty::Bool),
        };
        let ty = match result {
            Some(ty) => ty,
            None => {
                let (a, b) = (self.display(&lt), self.display(&rt));
                let help = match (op, &lt, &rt) {
                    (BinOp::Add, Ty::String, _) | (BinOp::Add, _, Ty::String) => {
                        "convert the other side with to_string(...) first".to_string()
                    }
                    (BinOp::Coalesce, _, _) => "give both sides of `??` the same type".to_string(),
                    (BinOp::And | BinOp::Or, _, _) => {
                        "both sides of `and`/`or` must be booleans".to_string()
                    }
                    _ => format!("`{}` needs two values of compatible types", op.symbol()),
                };
                self.diags.push(
                    Diagnostic::error(
                        codes::INVALID_OPERAND,
                        span,
                        format!("`{}` cannot combine {a} and {b}", op.symbol()),
                    )
                    .label(format!("{a} {} {b}", op.symbol()))
                    .help(help),
                );
                Ty::Error
            }
        };
        (
            ty,
            IrExpr::Binary {
                op,
                lhs: Box::new(li),
                rhs: Box::new(ri),
            },
        )
    }

    fn membership(&mut self, op: BinOp, lhs: &Expr, rhs: &Expr, span: Span) -> (Ty, IrExpr) {
        if let ExprKind::Var(ident) = &rhs.kind {
            let shadowed = self.locals.iter().any(|(n, _, _)| *n == ident.name)
                || (self.bare_fields && self.input_field(&ident.name).is_some());
            if !shadowed {
                if let Some(table) = self.program.lookup_at(self.module, ident, Kind::Table) {
                    let (key_ty, _) = self.table_types(table);
                    let key_ir = self.expect(lhs, &key_ty, true, "the table key");
                    let test = IrExpr::InTable {
                        table: ident.name.clone(),
                        key: Box::new(key_ir),
                    };
                    let ir = if op == BinOp::NotIn {
                        IrExpr::Unary {
                            op: UnOp::Not,
                            expr: Box::new(test),
                        }
                    } else {
                        test
                    };
                    return (Ty::Bool, ir);
                }
            }
        }
        if let ExprKind::Var(ident) = &rhs.kind {
            if self.is_unknown_name(&ident.name) {
                self.check(lhs);
                self.unknown_table(ident);
                return (Ty::Bool, IrExpr::Lit(Value::Null));
            }
        }
        let (lt, li) = self.check(lhs);
        let (rt, ri) = self.check(rhs);
        let ok = match &rt {
            Ty::List(elem) => lt.is_lenient() || **elem == Ty::Json || unify(&lt, elem).is_some(),
            Ty::String => matches!(lt, Ty::String) || lt.is_lenient(),
            other => other.is_lenient(),
        };
        if !ok {
            let (a, b) = (self.display(&lt), self.display(&rt));
            self.diags.push(
                Diagnostic::error(codes::INVALID_OPERAND, span, format!("`{}` cannot test {a} against {b}", op.symbol()))
                    .label(format!("{a} {} {b}", op.symbol()))
                    .help("test membership in a list (`x in [\"US\", \"CA\"]`), a table (`x in sku_map`) or a string"),
            );
        }
        (
            Ty::Bool,
            IrExpr::Binary {
                op,
                lhs: Box::new(li),
                rhs: Box::new(ri),
            },
        )
    }

    /// Checks a record construction against its schema.
    pub fn record(&mut self, record: &Record) -> (Ty, IrExpr) {
        let item = self.program.resolve(
            self.module,
            &record.ty.name,
            record.ty.span,
            Kind::Type,
            self.diags,
        );
        let schema = item.and_then(|item| self.env.schemas.get(&item).map(|s| (item, s)));
        if item.is_some() && schema.is_none() {
            self.diags.push(
                Diagnostic::error(
                    codes::TYPE_MISMATCH,
                    record.ty.span,
                    format!("`{}` is an enum, not a record", record.ty.name),
                )
                .label("an enum has no fields")
                .help("construct a schema, or assign one of the enum's variants as a string"),
            );
        }
        self.program.note_scope(|| Scope {
            span: record.span,
            input: self.typed_fields(&self.input),
            locals: self
                .locals
                .iter()
                .map(|(name, ty, _)| self.typed(name, ty))
                .collect(),
            output: item.map_or_else(Vec::new, |item| self.typed_fields(&Ty::Record(item))),
        });
        let depth = self.locals.len();
        let mut items = Vec::with_capacity(record.items.len());
        let mut seen: Vec<(&str, Span)> = Vec::new();
        for entry in &record.items {
            match entry {
                RecordItem::Let(name, value) => {
                    let (ty, ir) = self.check(value);
                    let slot = self.push_local(&name.name, ty);
                    items.push(ir::RecordItem::Let(slot, ir));
                }
                RecordItem::Field(name, value) => {
                    if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name.name) {
                        self.diags.push(
                            Diagnostic::error(
                                codes::DUPLICATE_FIELD,
                                name.span,
                                format!("field `{}` is set twice", name.name),
                            )
                            .label("set again here")
                            .secondary(*first, "first set here")
                            .help("remove one of the two assignments"),
                        );
                    }
                    seen.push((&name.name, name.span));
                    if let Some(declared) = schema.and_then(|(_, s)| s.field(&name.name)) {
                        self.program.note_ref(name.span, declared.span);
                        self.program
                            .note_type(name.span, || self.display(&declared.ty));
                    }
                    let field = schema
                        .and_then(|(_, s)| s.field(&name.name).map(|f| (f.ty.clone(), f.optional)));
                    let ir = match (field, schema) {
                        (Some((ty, optional)), _) => {
                            self.expect(value, &ty, optional, &format!("field `{}`", name.name))
                        }
                        (None, Some((_, s))) => {
                            let names = s.field_names();
                            let schema_name = s.name.clone();
                            self.unknown_field(&schema_name, names, name.span, &name.name);
                            self.check(value).1
                        }
                        (None, None) => self.check(value).1,
                    };
                    items.push(ir::RecordItem::Field(name.name.clone(), ir));
                }
            }
        }
        self.locals.truncate(depth);
        let Some((item, schema)) = schema else {
            return (
                Ty::Error,
                IrExpr::Record {
                    schema: record.ty.name.clone(),
                    items,
                },
            );
        };
        let missing: Vec<&str> = schema
            .fields
            .iter()
            .filter(|f| !f.optional && !f.has_default && !seen.iter().any(|(n, _)| *n == f.name))
            .map(|f| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            let noun = if missing.len() == 1 {
                "field"
            } else {
                "fields"
            };
            self.diags.push(
                Diagnostic::error(
                    codes::MISSING_REQUIRED_FIELD,
                    record.ty.span,
                    format!(
                        "missing required {noun} {} of `{}`",
                        list_names(&missing),
                        schema.name
                    ),
                )
                .label(format!(
                    "`{}` requires {}",
                    schema.name,
                    list_names(&missing)
                ))
                .secondary(schema.span, "schema declared here")
                .help(format!(
                    "set {} in this mapping, or mark {} optional with `?`",
                    list_names(&missing),
                    if missing.len() == 1 { "it" } else { "them" }
                )),
            );
        }
        (
            Ty::Record(item),
            IrExpr::Record {
                schema: self.program.ir_name(item),
                items,
            },
        )
    }

    /// Checks a JSONPath selector; simple paths lower to field paths and are typed
    /// against the input schema.
    pub fn jsonpath(&mut self, text: &str, span: Span) -> (Ty, IrExpr) {
        // The bounds first: they keep jsonpath-rust's parser from recursing deep.
        if let Err(reason) = ir::expr::jsonpath_bounds(text) {
            self.diags.push(
                Diagnostic::error(
                    codes::JSONPATH_TOO_COSTLY,
                    span,
                    format!("JSONPath `{}` could cost too much per message", shorten(text)),
                )
                .label(reason)
                .help("select with one `..` at most and indexes below 2^31, e.g. `$..sku` or `$.items[*].sku`"),
            );
            return (Ty::Error, IrExpr::Lit(Value::Null));
        }
        if let Err(err) = super::jsonpath::parses(text) {
            let (detail, at) = jsonpath_error(&err);
            let label_span = match at {
                Some(offset) if offset < text.len() && span.len() == text.len() => {
                    Span::new(span.file, span.start as usize + offset, span.end as usize)
                }
                _ => span,
            };
            self.diags.push(
                Diagnostic::error(codes::INVALID_JSONPATH, label_span, format!("invalid JSONPath `{text}`"))
                    .label(detail)
                    .help("JSONPath (RFC 9535): `$.field`, `$.items[*].sku`, `$.items[?@.qty > 0]`, `$['odd key']`"),
            );
            return (Ty::Error, IrExpr::Lit(Value::Null));
        }
        let Some(path) = simple_path(text) else {
            self.reads.insert(text.to_string());
            return (Ty::Json, IrExpr::JsonPath(text.to_string()));
        };
        let mut ty = self.input.clone();
        let mut many = false;
        for seg in &path {
            ty = match (seg, &ty) {
                (_, Ty::Json | Ty::Error) => ty.clone(),
                (PathSeg::All, Ty::List(elem)) | (PathSeg::Index(_), Ty::List(elem)) => {
                    many |= *seg == PathSeg::All;
                    (**elem).clone()
                }
                (PathSeg::Field(name), Ty::Record(_) | Ty::Money) => {
                    let ident = Ident {
                        name: name.clone(),
                        span,
                    };
                    let base = ty.clone();
                    self.member_type(&base, &ident).0
                }
                (_, other) => {
                    let shown = self.display(other);
                    self.diags.push(
                        Diagnostic::error(
                            codes::NOT_A_RECORD,
                            span,
                            format!("`{text}` steps into {shown}"),
                        )
                        .label(format!("this path reads into a {shown}"))
                        .help("check the path against the input type"),
                    );
                    Ty::Error
                }
            };
        }
        let ty = if many { Ty::List(Box::new(ty)) } else { ty };
        self.reads.insert(ir::expr::path_text(&path));
        (
            ty,
            IrExpr::Path {
                root: Root::Input,
                path,
            },
        )
    }
}

/// A long selector cut to its first 60 characters for a message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// A one-line reason and the byte offset of a JSONPath parse error.
fn jsonpath_error(err: &jsonpath_rust::parser::errors::JsonPathError) -> (String, Option<usize>) {
    use jsonpath_rust::parser::errors::JsonPathError;
    match err {
        JsonPathError::PestError(pest_err) => {
            let offset = match pest_err.location {
                pest::error::InputLocation::Pos(pos) => pos,
                pest::error::InputLocation::Span((start, _)) => start,
            };
            let message = pest_err.variant.message().to_string();
            let message = message.replace('_', " ");
            (format!("{message} here"), Some(offset))
        }
        other => (other.to_string(), None),
    }
}

fn arith_add(lt: &Ty, rt: &Ty) -> Option<Ty> {
    match (lt, rt) {
        (Ty::String, Ty::String | Ty::Json | Ty::Null | Ty::Enum(_))
        | (Ty::Json | Ty::Null | Ty::Enum(_), Ty::String) => Some(Ty::String),
        (Ty::Money, Ty::Money) => Some(Ty::Money),
        _ => numeric(lt, rt, false),
    }
}

fn numeric(lt: &Ty, rt: &Ty, divide: bool) -> Option<Ty> {
    match (lt, rt) {
        (Ty::Error | Ty::Never, _) | (_, Ty::Error | Ty::Never) => Some(Ty::Error),
        (Ty::Json, t) | (t, Ty::Json) if t.is_number() || *t == Ty::Json => Some(Ty::Json),
        (Ty::Int, Ty::Int) if !divide => Some(Ty::Int),
        (a, b) if a.is_number() && b.is_number() => Some(Ty::Decimal),
        _ => None,
    }
}

fn conversion_help(want: &Ty, ty: &Ty) -> String {
    match (want, ty) {
        (Ty::String, Ty::Int | Ty::Decimal | Ty::Bool) => "convert it with to_string(...)".into(),
        (Ty::Int, Ty::String) => "parse it with to_int(...), or minor_units(...) for an amount".into(),
        (Ty::Int, Ty::Decimal) => "an int cannot hold a fraction: use minor_units(...) for amounts, or round(...) and to_int(...)".into(),
        (Ty::Decimal, Ty::String) => "parse it with to_decimal(...)".into(),
        (Ty::List(_), _) => "map a list here, e.g. `$.items[*] as it -> Line { ... }`".into(),
        _ => "change the expression, or the field's type in the schema".into(),
    }
}

/// `a int` → `an int`.
pub fn article(noun: &str) -> String {
    let vowel = noun.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {noun}", if vowel { "an" } else { "a" })
}

fn list_names(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowers_simple_paths_only() {
        assert_eq!(
            simple_path("$.items[*].sku"),
            Some(vec![
                PathSeg::Field("items".into()),
                PathSeg::All,
                PathSeg::Field("sku".into())
            ])
        );
        assert_eq!(simple_path("$['a b'][0]").map(|p| p.len()), Some(2));
        assert_eq!(simple_path("$..sku"), None);
        assert_eq!(simple_path("$.items[?@.qty > 1]"), None);
    }
}
