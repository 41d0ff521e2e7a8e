//! Printing expressions with the fewest parentheses that keep the same tree.

use super::Printer;
use crate::syntax::ast::{BinOp, Expr, ExprKind, Literal, UnOp};
use crate::syntax::parse::escape;

/// Binding strength; higher binds tighter. Mirrors the Pratt table in `syntax/parse.rs`.
fn binary_prec(op: BinOp) -> u8 {
    match op {
        BinOp::Coalesce => 1,
        BinOp::Or => 2,
        BinOp::And => 3,
        BinOp::Eq
        | BinOp::Ne
        | BinOp::Lt
        | BinOp::Le
        | BinOp::Gt
        | BinOp::Ge
        | BinOp::In
        | BinOp::NotIn => 5,
        BinOp::Add | BinOp::Sub => 6,
        BinOp::Mul | BinOp::Div => 7,
    }
}

const PREC_NOT: u8 = 4;
const PREC_NEG: u8 = 8;
const PREC_ATOM: u8 = 10;

fn prec(expr: &Expr) -> u8 {
    match &expr.kind {
        ExprKind::Binary(op, ..) => binary_prec(*op),
        ExprKind::Unary(UnOp::Not, _) => PREC_NOT,
        ExprKind::Unary(UnOp::Neg, _) => PREC_NEG,
        // These extend as far right as they can: always parenthesised as operands.
        ExprKind::If(..) | ExprKind::EachMap { .. } | ExprKind::Reject(_) => 0,
        _ => PREC_ATOM,
    }
}

impl Printer<'_> {
    /// Prints an expression in a context that accepts any expression.
    pub(super) fn expr(&mut self, expr: &Expr) {
        match &expr.kind {
            ExprKind::Error => {}
            ExprKind::Lit(lit) => self.literal(lit),
            ExprKind::JsonPath(text) => self.push(text),
            ExprKind::Var(ident) => self.push(&ident.name),
            ExprKind::Member(base, field) => {
                self.operand(base, PREC_ATOM);
                self.push(".");
                self.push(&field.name);
            }
            ExprKind::Index(base, index) => {
                self.operand(base, PREC_ATOM);
                self.push("[");
                self.expr(index);
                self.push("]");
            }
            ExprKind::AllItems(base) => {
                self.operand(base, PREC_ATOM);
                self.push("[*]");
            }
            ExprKind::Call(name, args) => {
                self.push(&name.name);
                self.push("(");
                for (idx, arg) in args.iter().enumerate() {
                    if idx > 0 {
                        self.push(", ");
                    }
                    self.expr(arg);
                }
                self.push(")");
            }
            ExprKind::Binary(op, lhs, rhs) => {
                let p = binary_prec(*op);
                self.operand(lhs, p);
                self.push(&format!(" {} ", op.symbol()));
                self.operand(rhs, p + 1);
            }
            ExprKind::Unary(op, inner) => match op {
                UnOp::Neg => {
                    self.push("-");
                    self.operand(inner, PREC_NEG);
                }
                UnOp::Not => {
                    self.push("not ");
                    self.operand(inner, PREC_NOT);
                }
            },
            ExprKind::If(cond, then, otherwise) => {
                self.push("if ");
                self.expr(cond);
                self.push(" then ");
                self.expr(then);
                self.push(" else ");
                self.expr(otherwise);
            }
            ExprKind::Reject(reason) => {
                self.push("reject ");
                self.push(&escape(&reason.value));
            }
            ExprKind::List(items) => {
                self.push("[");
                for (idx, item) in items.iter().enumerate() {
                    if idx > 0 {
                        self.push(", ");
                    }
                    self.expr(item);
                }
                self.push("]");
            }
            ExprKind::Record(record) => self.record(record),
            ExprKind::EachMap {
                source,
                var,
                filter,
                body,
            } => {
                self.operand(source, PREC_ATOM);
                self.push(&format!(" as {}", var.name));
                if let Some(filter) = filter {
                    self.push(" where ");
                    self.expr(filter);
                }
                self.push(" -> ");
                self.expr(body);
            }
        }
    }

    /// Prints an operand, in parentheses when it binds looser than `min`.
    fn operand(&mut self, expr: &Expr, min: u8) {
        if prec(expr) < min {
            self.push("(");
            self.expr(expr);
            self.push(")");
        } else {
            self.expr(expr);
        }
    }

    fn literal(&mut self, lit: &Literal) {
        match lit {
            Literal::Null => self.push("null"),
            Literal::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Literal::Int(i) => self.push(&i.to_string()),
            Literal::Decimal(d) => self.push(d),
            Literal::Str(s) => self.push(&escape(s)),
            Literal::Duration(_, text) => self.push(text),
            Literal::Rate { text, .. } => self.push(text),
            Literal::Percent(p) => self.push(&format!("{p}%")),
        }
    }
}
