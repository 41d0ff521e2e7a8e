//! List functions: aggregates, picks, `coalesce` and `group_by`.

use super::args::{list, take, text};
use crate::ops;
use crate::reject::{Eval, Reject};
use crate::value::{equal, Val};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::rc::Rc;

fn aggregate<'a>(items: &[Val<'a>], func: &str) -> Eval<'a> {
    let mut total: Option<Val<'a>> = None;
    for item in items {
        total = Some(match (total, item) {
            (None, value) => value.clone(),
            (Some(Val::Money(a)), Val::Money(b)) if a.currency == b.currency => Val::money(
                a.amount
                    .checked_add(b.amount)
                    .ok_or(Reject(format!("`{func}` overflowed")))?,
                a.currency.clone(),
            ),
            (Some(acc), value) => ops::binary(omniflow_ir::BinOp::Add, acc, value.clone())?,
        });
    }
    Ok(total.unwrap_or(Val::Int(0)))
}

fn extreme<'a>(items: &[Val<'a>], want: Ordering) -> Val<'a> {
    let mut best: Option<&Val<'a>> = None;
    for item in items {
        best = match best {
            None => Some(item),
            Some(current) if ops::compare(item, current) == Some(want) => Some(item),
            keep => keep,
        };
    }
    best.cloned().unwrap_or_default()
}

pub(super) fn sum<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    let items = list(take(args, 0), "sum")?;
    match (items.is_empty(), take(args, 1)) {
        (true, Val::Null) => Ok(Val::Int(0)),
        (true, zero) => Ok(zero),
        (false, _) => aggregate(&items, "sum"),
    }
}

pub(super) fn count<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    Ok(Val::Int(list(take(args, 0), "count")?.len() as i64))
}

pub(super) fn min<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    Ok(extreme(&list(take(args, 0), "min")?, Ordering::Less))
}

pub(super) fn max<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    Ok(extreme(&list(take(args, 0), "max")?, Ordering::Greater))
}

pub(super) fn first<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    Ok(list(take(args, 0), "first")?
        .first()
        .cloned()
        .unwrap_or_default())
}

pub(super) fn last<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    Ok(list(take(args, 0), "last")?
        .last()
        .cloned()
        .unwrap_or_default())
}

pub(super) fn coalesce<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    Ok(args
        .iter_mut()
        .find(|v| !v.is_null())
        .map(std::mem::take)
        .unwrap_or_default())
}

pub(super) fn group_by<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    let items = list(take(args, 0), "group_by")?;
    let field = text(&take(args, 1), "group_by")?;
    let mut groups: Vec<(Val, Vec<Val>)> = Vec::new();
    for item in items.iter() {
        let key = item.field(&field);
        match groups.iter_mut().find(|(k, _)| equal(k, &key)) {
            Some((_, members)) => members.push(item.clone()),
            None => groups.push((key, vec![item.clone()])),
        }
    }
    Ok(Val::List(Rc::from(
        groups
            .into_iter()
            .map(|(key, members)| {
                Val::Obj(Rc::from(vec![
                    (Cow::Borrowed("key"), key),
                    (Cow::Borrowed("items"), Val::List(Rc::from(members))),
                ]))
            })
            .collect::<Vec<_>>(),
    )))
}
