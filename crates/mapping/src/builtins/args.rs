//! Reading a built-in's arguments: taking one, and each as text, a list or a decimal.

use crate::decimal::Decimal;
use crate::reject::Reject;
use crate::value::Val;
use std::borrow::Cow;
use std::rc::Rc;

/// Argument `idx`, taken out of the arguments; null when the call left it out.
pub(super) fn take<'a>(args: &mut [Val<'a>], idx: usize) -> Val<'a> {
    args.get_mut(idx).map(std::mem::take).unwrap_or_default()
}

pub(super) fn text<'a>(value: &Val<'a>, func: &str) -> Result<Cow<'a, str>, Reject> {
    match value {
        Val::Str(s) => Ok(s.clone()),
        other => Err(Reject(format!(
            "`{func}` expects a string, found {}",
            other.kind()
        ))),
    }
}

pub(super) fn list<'a>(value: Val<'a>, func: &str) -> Result<Rc<[Val<'a>]>, Reject> {
    match value {
        Val::List(items) => Ok(items),
        Val::Null => Ok(Rc::from(Vec::new())),
        other => Err(Reject(format!(
            "`{func}` expects a list, found {}",
            other.kind()
        ))),
    }
}

pub(super) fn decimal_of(value: &Val, func: &str) -> Result<Decimal, Reject> {
    match value {
        Val::Int(i) => Ok(Decimal::from_int(*i)),
        Val::Dec(d) => Ok(**d),
        Val::Str(s) => Decimal::parse(s)
            .ok_or_else(|| Reject(format!("`{func}`: \"{s}\" is not a decimal number"))),
        other => Err(Reject(format!(
            "`{func}` expects a number, found {}",
            other.kind()
        ))),
    }
}
