//! Number functions: conversions, rounding and the absolute value.

use super::args::{decimal_of, take};
use crate::reject::{Eval, Reject};
use crate::value::Val;

pub(super) fn to_int<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    match take(args, 0) {
        Val::Null => Ok(Val::Null),
        value => {
            let d = decimal_of(&value, "to_int")?;
            Ok(Val::Int(d.to_i64().ok_or_else(|| {
                Reject(format!("`to_int`: {d} is not an integer"))
            })?))
        }
    }
}

pub(super) fn to_decimal<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    match take(args, 0) {
        Val::Null => Ok(Val::Null),
        value => Ok(Val::dec(decimal_of(&value, "to_decimal")?)),
    }
}

pub(super) fn round<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    let value = decimal_of(&take(args, 0), "round")?;
    let places = match take(args, 1) {
        Val::Int(p) if (0..=18).contains(&p) => p as u32,
        _ => return Err(Reject("`round` takes 0 to 18 places".into())),
    };
    Ok(Val::dec(value.round(places)))
}

pub(super) fn abs<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    match take(args, 0) {
        Val::Int(i) => Ok(Val::Int(
            i.checked_abs().ok_or(Reject("`abs` overflowed".into()))?,
        )),
        Val::Dec(d) => Ok(Val::dec(d.abs())),
        Val::Money(m) => Ok(Val::money(
            m.amount
                .checked_abs()
                .ok_or(Reject("`abs` overflowed".into()))?,
            m.currency.clone(),
        )),
        other => Err(Reject(format!(
            "`abs` expects a number, found {}",
            other.kind()
        ))),
    }
}
