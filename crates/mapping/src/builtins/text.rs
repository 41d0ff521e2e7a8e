//! String functions: case, trimming, length, concatenation, splitting and tests.

use super::args::{list, take, text};
use crate::reject::{Eval, Reject};
use crate::value::Val;
use std::borrow::Cow;
use std::rc::Rc;

/// The string functions that pass a missing value through, as field access does.
fn missing(args: &[Val]) -> bool {
    matches!(args.first(), Some(Val::Null) | None)
}

pub(super) fn lower<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    if missing(args) {
        return Ok(Val::Null);
    }
    Ok(Val::Str(Cow::Owned(
        text(&take(args, 0), "lower")?.to_ascii_lowercase(),
    )))
}

pub(super) fn upper<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    if missing(args) {
        return Ok(Val::Null);
    }
    Ok(Val::Str(Cow::Owned(
        text(&take(args, 0), "upper")?.to_ascii_uppercase(),
    )))
}

pub(super) fn trim<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    if missing(args) {
        return Ok(Val::Null);
    }
    Ok(match text(&take(args, 0), "trim")? {
        Cow::Borrowed(s) => Val::Str(Cow::Borrowed(s.trim())),
        Cow::Owned(s) => Val::Str(Cow::Owned(s.trim().to_string())),
    })
}

pub(super) fn len<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    match take(args, 0) {
        Val::Str(s) => Ok(Val::Int(s.chars().count() as i64)),
        Val::List(items) => Ok(Val::Int(items.len() as i64)),
        Val::Null => Ok(Val::Int(0)),
        other => Err(Reject(format!(
            "`len` expects a string or list, found {}",
            other.kind()
        ))),
    }
}

pub(super) fn concat<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    let mut out = String::new();
    for value in args {
        if let Some(t) = std::mem::take(value).text() {
            out.push_str(&t);
        }
    }
    Ok(Val::Str(Cow::Owned(out)))
}

pub(super) fn to_string<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    Ok(match take(args, 0) {
        Val::Null => Val::Null,
        value => match value.text() {
            Some(t) => Val::Str(t),
            None => Val::Str(Cow::Owned(crate::json_out::to_string(&value))),
        },
    })
}

pub(super) fn split<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    let s = text(&take(args, 0), "split")?;
    let sep = text(&take(args, 1), "split")?;
    Ok(Val::List(Rc::from(
        s.split(sep.as_ref())
            .map(|p| Val::Str(Cow::Owned(p.to_string())))
            .collect::<Vec<_>>(),
    )))
}

pub(super) fn join<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    let items = list(take(args, 0), "join")?;
    let sep = text(&take(args, 1), "join")?;
    let parts: Vec<String> = items
        .iter()
        .filter_map(|v| v.text().map(|t| t.into_owned()))
        .collect();
    Ok(Val::Str(Cow::Owned(parts.join(&sep))))
}

pub(super) fn replace<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    let s = text(&take(args, 0), "replace")?;
    let from = text(&take(args, 1), "replace")?;
    let to = text(&take(args, 2), "replace")?;
    Ok(Val::Str(Cow::Owned(s.replace(from.as_ref(), &to))))
}

/// A test of a string against a pattern. The three tests share their refusal, which
/// names `starts_with`.
fn pattern_test<'a>(args: &mut [Val<'a>], test: fn(&str, &str) -> bool) -> Eval<'a> {
    let s = text(&take(args, 0), "starts_with")?;
    let p = text(&take(args, 1), "starts_with")?;
    Ok(Val::Bool(test(&s, &p)))
}

pub(super) fn starts_with<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    pattern_test(args, |s, p| s.starts_with(p))
}

pub(super) fn ends_with<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    pattern_test(args, |s, p| s.ends_with(p))
}

pub(super) fn contains<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    pattern_test(args, |s, p| s.contains(p))
}

pub(super) fn substring<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    let s = text(&take(args, 0), "substring")?;
    let start = match take(args, 1) {
        Val::Int(i) if i >= 0 => i as usize,
        _ => 0,
    };
    let taken: String = match take(args, 2) {
        Val::Int(n) if n >= 0 => s.chars().skip(start).take(n as usize).collect(),
        _ => s.chars().skip(start).collect(),
    };
    Ok(Val::Str(Cow::Owned(taken)))
}
