//! Binary and unary operators on run-time values.

use crate::decimal::Decimal;
use crate::reject::{Eval, Reject};
use crate::value::{equal, Val};
use omniflow_ir::{BinOp, UnOp};
use std::borrow::Cow;
use std::cmp::Ordering;

fn cannot(op: BinOp, left: &Val, right: &Val) -> Reject {
    Reject(format!(
        "`{}` cannot combine {} and {}",
        op.symbol(),
        left.kind(),
        right.kind()
    ))
}

fn overflow(op: BinOp) -> Reject {
    Reject(format!("`{}` overflowed", op.symbol()))
}

fn decimal_op(op: BinOp, a: Decimal, b: Decimal) -> Option<Decimal> {
    match op {
        BinOp::Add => a.checked_add(b),
        BinOp::Sub => a.checked_sub(b),
        BinOp::Mul => a.checked_mul(b),
        BinOp::Div => a.checked_div(b),
        _ => None,
    }
}

/// An RFC 3339 timestamp as an instant, so offsets compare correctly.
fn timestamp(text: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[10] != b'T' {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(text).ok()
}

/// Orders two values when they are comparable.
pub fn compare(left: &Val, right: &Val) -> Option<Ordering> {
    match (left, right) {
        (Val::Int(a), Val::Int(b)) => Some(a.cmp(b)),
        (Val::Str(a), Val::Str(b)) => Some(match (timestamp(a), timestamp(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => a.cmp(b),
        }),
        (Val::Money(a), Val::Money(b)) if a.currency == b.currency => Some(a.amount.cmp(&b.amount)),
        (a, b) => Some(a.as_decimal()?.cmp(&b.as_decimal()?)),
    }
}

/// Applies a binary operator (not `and`, `or`, `??`, which short-circuit).
pub fn binary<'a>(op: BinOp, left: Val<'a>, right: Val<'a>) -> Eval<'a> {
    match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => arithmetic(op, left, right),
        BinOp::And | BinOp::Or | BinOp::Coalesce => Err(cannot(op, &left, &right)),
        _ => Ok(Val::Bool(relation(op, &left, &right))),
    }
}

/// Applies a comparing operator to two values by reference; false for the others.
pub fn relation(op: BinOp, left: &Val, right: &Val) -> bool {
    match op {
        BinOp::Eq => equal(left, right),
        BinOp::Ne => !equal(left, right),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let Some(ordering) = compare(left, right) else {
                return false;
            };
            match op {
                BinOp::Lt => ordering == Ordering::Less,
                BinOp::Le => ordering != Ordering::Greater,
                BinOp::Gt => ordering == Ordering::Greater,
                _ => ordering != Ordering::Less,
            }
        }
        BinOp::In | BinOp::NotIn => {
            let found = match right {
                Val::List(items) => items.iter().any(|item| equal(left, item)),
                Val::Str(haystack) => match left {
                    Val::Str(needle) => haystack.contains(needle.as_ref()),
                    _ => false,
                },
                Val::Obj(fields) => match left {
                    Val::Str(key) => fields.iter().any(|(k, _)| k == key),
                    _ => false,
                },
                _ => false,
            };
            found == (op == BinOp::In)
        }
        _ => false,
    }
}

fn arithmetic<'a>(op: BinOp, left: Val<'a>, right: Val<'a>) -> Eval<'a> {
    // A chain of concatenations grows the string the first one built.
    let left = match (op, left, &right) {
        (BinOp::Add, Val::Str(Cow::Owned(mut text)), Val::Str(tail)) => {
            text.push_str(tail);
            return Ok(Val::Str(Cow::Owned(text)));
        }
        (_, left, _) => left,
    };
    match (op, &left, &right) {
        (BinOp::Add, Val::Str(a), Val::Str(b)) => {
            let mut text = String::with_capacity(a.len() + b.len());
            text.push_str(a);
            text.push_str(b);
            Ok(Val::Str(Cow::Owned(text)))
        }
        // Strings absorb a missing value, as an absent name part leaves the rest.
        (BinOp::Add, Val::Str(_), Val::Null) => Ok(left),
        (BinOp::Add, Val::Null, Val::Str(_)) => Ok(right),
        (BinOp::Add, Val::Str(a), other) | (BinOp::Add, other, Val::Str(a))
            if other.as_decimal().is_some() =>
        {
            let number = other.text().unwrap_or_default();
            Ok(Val::Str(Cow::Owned(if matches!(left, Val::Str(_)) {
                format!("{a}{number}")
            } else {
                format!("{number}{a}")
            })))
        }
        (_, Val::Int(a), Val::Int(b)) if op != BinOp::Div => {
            let result = match op {
                BinOp::Add => a.checked_add(*b),
                BinOp::Sub => a.checked_sub(*b),
                _ => a.checked_mul(*b),
            };
            result.map(Val::Int).ok_or_else(|| overflow(op))
        }
        (BinOp::Add | BinOp::Sub, Val::Money(a), Val::Money(b)) => {
            if a.currency != b.currency {
                return Err(Reject(format!(
                    "cannot combine money in {} and {}",
                    a.currency, b.currency
                )));
            }
            let result = if op == BinOp::Add {
                a.amount.checked_add(b.amount)
            } else {
                a.amount.checked_sub(b.amount)
            };
            result
                .map(|v| Val::money(v, a.currency.clone()))
                .ok_or_else(|| overflow(op))
        }
        (BinOp::Mul, Val::Money(m), Val::Int(n)) | (BinOp::Mul, Val::Int(n), Val::Money(m)) => m
            .amount
            .checked_mul(*n)
            .map(|v| Val::money(v, m.currency.clone()))
            .ok_or_else(|| overflow(op)),
        (BinOp::Div, _, right_value)
            if right_value.as_decimal().is_some_and(|d| d.mantissa == 0) =>
        {
            Err(Reject("division by zero".into()))
        }
        (_, a, b) => match (a.as_decimal(), b.as_decimal()) {
            (Some(x), Some(y)) => decimal_op(op, x, y)
                .map(|d| match d.to_i64() {
                    Some(i) if op != BinOp::Div && d.scale == 0 => Val::Int(i),
                    _ => Val::dec(d),
                })
                .ok_or_else(|| overflow(op)),
            _ => Err(cannot(op, a, b)),
        },
    }
}

/// Applies `-` or `not`.
pub fn unary(op: UnOp, value: Val<'_>) -> Eval<'_> {
    match (op, value) {
        (UnOp::Not, value) => Ok(Val::Bool(!value.is_true())),
        (UnOp::Neg, Val::Int(i)) => i
            .checked_neg()
            .map(Val::Int)
            .ok_or(Reject("`-` overflowed".into())),
        (UnOp::Neg, Val::Dec(d)) => Ok(Val::dec(Decimal {
            mantissa: -d.mantissa,
            scale: d.scale,
        })),
        (UnOp::Neg, Val::Money(m)) => m
            .amount
            .checked_neg()
            .map(|v| Val::money(v, m.currency.clone()))
            .ok_or(Reject("`-` overflowed".into())),
        (UnOp::Neg, Val::Null) => Ok(Val::Null),
        (UnOp::Neg, other) => Err(Reject(format!("`-` cannot negate {}", other.kind()))),
    }
}
