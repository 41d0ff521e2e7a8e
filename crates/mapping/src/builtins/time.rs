//! Time functions: the clock, parsing and formatting RFC 3339 timestamps.

use super::args::{take, text};
use crate::reject::{Eval, Reject};
use crate::value::Val;
use std::borrow::Cow;

fn datetime(value: &Val, func: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, Reject> {
    let s = text(value, func)?;
    chrono::DateTime::parse_from_rfc3339(&s).map_err(|e| {
        Reject(format!(
            "`{func}`: \"{s}\" is not an RFC 3339 timestamp ({e})"
        ))
    })
}

pub(super) fn now<'a>(_: &mut [Val<'a>]) -> Eval<'a> {
    Ok(Val::Str(Cow::Owned(
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )))
}

pub(super) fn parse_datetime<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    let value = take(args, 0);
    let s = text(&value, "parse_datetime")?;
    match take(args, 1) {
        Val::Str(format) => {
            let parsed = chrono::DateTime::parse_from_str(&s, &format)
                .map(|d| d.to_rfc3339())
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(&s, &format)
                        .map(|d| d.and_utc().to_rfc3339())
                })
                .map_err(|e| {
                    Reject(format!(
                        "`parse_datetime`: \"{s}\" does not match \"{format}\" ({e})"
                    ))
                })?;
            Ok(Val::Str(Cow::Owned(parsed)))
        }
        _ => Ok(Val::Str(Cow::Owned(
            datetime(&value, "parse_datetime")?.to_rfc3339(),
        ))),
    }
}

pub(super) fn format_datetime<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    let when = datetime(&take(args, 0), "format_datetime")?;
    let format = text(&take(args, 1), "format_datetime")?;
    Ok(Val::Str(Cow::Owned(when.format(&format).to_string())))
}

pub(super) fn date<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    Ok(Val::Str(Cow::Owned(
        datetime(&take(args, 0), "date")?.date_naive().to_string(),
    )))
}
