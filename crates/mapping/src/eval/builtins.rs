//! The built-in functions (the same list as the compiler's `typeck/builtins.rs`).

use super::{Eval, Reject};
use crate::decimal::Decimal;
use crate::value::{equal, Val};
use omniflow_ir::currency;
use std::borrow::Cow;
use std::rc::Rc;

macro_rules! funcs {
    ($($variant:ident = $name:literal,)*) => {
        /// A built-in function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Func { $($variant,)* }

        impl Func {
            /// Looks a function up by its language name.
            pub fn from_name(name: &str) -> Option<Func> {
                match name { $($name => Some(Func::$variant),)* _ => None }
            }

            /// Every function name.
            pub const NAMES: &'static [&'static str] = &[$($name,)*];
        }
    };
}

funcs! {
    Lower = "lower", Upper = "upper", Trim = "trim", Len = "len", Concat = "concat",
    ToString = "to_string", ToInt = "to_int", ToDecimal = "to_decimal", MinorUnits = "minor_units",
    Money = "money", MoneyMinor = "money_minor", Round = "round", Abs = "abs", Now = "now",
    ParseDatetime = "parse_datetime", FormatDatetime = "format_datetime", Date = "date",
    IsObject = "is_object", IsString = "is_string", IsNumber = "is_number", IsList = "is_list",
    IsNull = "is_null", Exists = "exists", Sum = "sum", Count = "count", Min = "min", Max = "max",
    First = "first", Last = "last", Coalesce = "coalesce", Split = "split", Join = "join",
    Replace = "replace", StartsWith = "starts_with", EndsWith = "ends_with", Contains = "contains",
    Substring = "substring", GroupBy = "group_by", Currency = "currency", Env = "env", Secret = "secret",
}

fn arg<'a>(args: &mut std::slice::IterMut<'_, Val<'a>>) -> Val<'a> {
    args.next().map(std::mem::take).unwrap_or_default()
}

fn args_first<'v, 'a>(it: &'v std::slice::IterMut<'_, Val<'a>>) -> Option<&'v Val<'a>> {
    it.as_slice().first()
}

fn text<'a>(value: &Val<'a>, func: &str) -> Result<Cow<'a, str>, Reject> {
    match value {
        Val::Str(s) => Ok(s.clone()),
        other => Err(Reject(format!(
            "`{func}` expects a string, found {}",
            other.kind()
        ))),
    }
}

fn list<'a>(value: Val<'a>, func: &str) -> Result<Rc<[Val<'a>]>, Reject> {
    match value {
        Val::List(items) => Ok(items),
        Val::Null => Ok(Rc::from(Vec::new())),
        other => Err(Reject(format!(
            "`{func}` expects a list, found {}",
            other.kind()
        ))),
    }
}

fn decimal_of(value: &Val, func: &str) -> Result<Decimal, Reject> {
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

/// The exponent of an ISO 4217 currency, or why the code is refused.
pub fn exponent(currency: &str, func: &str) -> Result<u32, Reject> {
    currency::exponent(currency)
        .ok_or_else(|| Reject(format!("`{func}`: {}", currency::unknown(currency))))
}

/// Exact minor units of an amount at a currency's exponent (`places`): `"19.99"` → 1999 at
/// 2, `"1500"` → 1500 at 0; an amount with more decimals than that is rejected.
pub fn minor_units(value: &Val, places: u32) -> Result<i64, Reject> {
    if let Val::Str(s) = value {
        if let Some(minor) = fast_minor(s.as_bytes(), places) {
            return Ok(minor);
        }
    }
    let amount = decimal_of(value, "minor_units")?;
    amount.to_minor(places).ok_or_else(|| {
        Reject(match places {
            0 => format!("amount {amount} has decimals, the currency has none"),
            1 => format!("amount {amount} has more than one decimal"),
            2 => format!("amount {amount} has more than two decimals"),
            _ => format!("amount {amount} has more than {places} decimals"),
        })
    })
}

/// The common `-?\d+(\.\d{1,places})?` case without building a decimal.
fn fast_minor(bytes: &[u8], places: u32) -> Option<i64> {
    let (neg, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    let mut value: i64 = 0;
    let mut idx = 0;
    while idx < digits.len() && digits[idx].is_ascii_digit() {
        value = value
            .checked_mul(10)?
            .checked_add((digits[idx] - b'0') as i64)?;
        idx += 1;
    }
    if idx == 0 || idx > 14 {
        return None;
    }
    let mut frac_digits = 0;
    if idx < digits.len() {
        if digits[idx] != b'.' {
            return None;
        }
        idx += 1;
        while idx < digits.len() && frac_digits < places && digits[idx].is_ascii_digit() {
            value = value * 10 + (digits[idx] - b'0') as i64;
            frac_digits += 1;
            idx += 1;
        }
        if idx != digits.len() || frac_digits == 0 {
            return None;
        }
    }
    while frac_digits < places {
        value = value.checked_mul(10)?;
        frac_digits += 1;
    }
    Some(if neg { -value } else { value })
}

fn datetime(value: &Val, func: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, Reject> {
    let s = text(value, func)?;
    chrono::DateTime::parse_from_rfc3339(&s).map_err(|e| {
        Reject(format!(
            "`{func}`: \"{s}\" is not an RFC 3339 timestamp ({e})"
        ))
    })
}

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
            (Some(acc), value) => super::ops::binary(omniflow_ir::BinOp::Add, acc, value.clone())?,
        });
    }
    Ok(total.unwrap_or(Val::Int(0)))
}

fn extreme<'a>(items: &[Val<'a>], want: std::cmp::Ordering) -> Val<'a> {
    let mut best: Option<&Val<'a>> = None;
    for item in items {
        best = match best {
            None => Some(item),
            Some(current) if super::ops::compare(item, current) == Some(want) => Some(item),
            keep => keep,
        };
    }
    best.cloned().unwrap_or_default()
}

/// Calls a function on evaluated arguments.
impl Func {
    /// The test of one value's kind this function is, if it is one (answered by
    /// reference, so callers can skip building the argument).
    pub fn kind_test(self) -> Option<fn(&Val) -> bool> {
        Some(match self {
            Func::IsObject => |value| matches!(value, Val::Obj(_) | Val::Money(..)),
            Func::IsString => |value| matches!(value, Val::Str(_)),
            Func::IsNumber => |value| matches!(value, Val::Int(_) | Val::Dec(_)),
            Func::IsList => |value| matches!(value, Val::List(_)),
            Func::IsNull => |value| value.is_null(),
            Func::Exists => |value| !value.is_null(),
            _ => return None,
        })
    }
}

pub fn call<'a>(func: Func, args: &mut [Val<'a>]) -> Eval<'a> {
    let mut it = args.iter_mut();
    Ok(match func {
        // String functions pass a missing value through, as field access does.
        Func::Lower | Func::Upper | Func::Trim
            if matches!(args_first(&it), Some(Val::Null) | None) =>
        {
            Val::Null
        }
        Func::Lower => Val::Str(Cow::Owned(
            text(&arg(&mut it), "lower")?.to_ascii_lowercase(),
        )),
        Func::Upper => Val::Str(Cow::Owned(
            text(&arg(&mut it), "upper")?.to_ascii_uppercase(),
        )),
        Func::Trim => match text(&arg(&mut it), "trim")? {
            Cow::Borrowed(s) => Val::Str(Cow::Borrowed(s.trim())),
            Cow::Owned(s) => Val::Str(Cow::Owned(s.trim().to_string())),
        },
        Func::Len => match arg(&mut it) {
            Val::Str(s) => Val::Int(s.chars().count() as i64),
            Val::List(items) => Val::Int(items.len() as i64),
            Val::Null => Val::Int(0),
            other => {
                return Err(Reject(format!(
                    "`len` expects a string or list, found {}",
                    other.kind()
                )))
            }
        },
        Func::Concat => {
            let mut out = String::new();
            for value in it {
                if let Some(t) = std::mem::take(value).text() {
                    out.push_str(&t);
                }
            }
            Val::Str(Cow::Owned(out))
        }
        Func::ToString => match arg(&mut it) {
            Val::Null => Val::Null,
            value => match value.text() {
                Some(t) => Val::Str(t),
                None => Val::Str(Cow::Owned(crate::json_out::to_string(&value))),
            },
        },
        Func::ToInt => match arg(&mut it) {
            Val::Null => Val::Null,
            value => {
                let d = decimal_of(&value, "to_int")?;
                Val::Int(
                    d.to_i64()
                        .ok_or_else(|| Reject(format!("`to_int`: {d} is not an integer")))?,
                )
            }
        },
        Func::ToDecimal => match arg(&mut it) {
            Val::Null => Val::Null,
            value => Val::dec(decimal_of(&value, "to_decimal")?),
        },
        Func::MinorUnits => {
            let amount = arg(&mut it);
            // Without a currency: hundredths.
            let places = match it.next() {
                None => 2,
                Some(currency) => exponent(&text(currency, "minor_units")?, "minor_units")?,
            };
            if amount.is_null() {
                return Err(Reject("`minor_units`: the amount is missing".into()));
            }
            Val::Int(minor_units(&amount, places)?)
        }
        Func::Money => {
            let amount = arg(&mut it);
            let currency = text(&arg(&mut it), "money")?;
            let places = exponent(&currency, "money")?;
            if amount.is_null() {
                return Err(Reject("`money`: the amount is missing".into()));
            }
            Val::money(minor_units(&amount, places)?, currency)
        }
        Func::MoneyMinor => match (arg(&mut it), arg(&mut it)) {
            (Val::Int(units), Val::Str(currency)) => {
                exponent(&currency, "money_minor")?;
                Val::money(units, currency)
            }
            (units, currency) => {
                return Err(Reject(format!(
                    "`money_minor` expects int and string, found {} and {}",
                    units.kind(),
                    currency.kind()
                )))
            }
        },
        Func::Round => {
            let value = decimal_of(&arg(&mut it), "round")?;
            let places = match arg(&mut it) {
                Val::Int(p) if (0..=18).contains(&p) => p as u32,
                _ => return Err(Reject("`round` takes 0 to 18 places".into())),
            };
            Val::dec(value.round(places))
        }
        Func::Abs => match arg(&mut it) {
            Val::Int(i) => Val::Int(i.checked_abs().ok_or(Reject("`abs` overflowed".into()))?),
            Val::Dec(d) => Val::dec(d.abs()),
            Val::Money(m) => Val::money(
                m.amount
                    .checked_abs()
                    .ok_or(Reject("`abs` overflowed".into()))?,
                m.currency.clone(),
            ),
            other => {
                return Err(Reject(format!(
                    "`abs` expects a number, found {}",
                    other.kind()
                )))
            }
        },
        Func::Now => Val::Str(Cow::Owned(
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )),
        Func::ParseDatetime => {
            let value = arg(&mut it);
            let s = text(&value, "parse_datetime")?;
            match arg(&mut it) {
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
                    Val::Str(Cow::Owned(parsed))
                }
                _ => Val::Str(Cow::Owned(datetime(&value, "parse_datetime")?.to_rfc3339())),
            }
        }
        Func::FormatDatetime => {
            let when = datetime(&arg(&mut it), "format_datetime")?;
            let format = text(&arg(&mut it), "format_datetime")?;
            Val::Str(Cow::Owned(when.format(&format).to_string()))
        }
        Func::Date => Val::Str(Cow::Owned(
            datetime(&arg(&mut it), "date")?.date_naive().to_string(),
        )),
        Func::IsObject
        | Func::IsString
        | Func::IsNumber
        | Func::IsList
        | Func::IsNull
        | Func::Exists => Val::Bool(func.kind_test().is_some_and(|test| test(&arg(&mut it)))),
        Func::Sum => {
            let items = list(arg(&mut it), "sum")?;
            match (items.is_empty(), arg(&mut it)) {
                (true, Val::Null) => Val::Int(0),
                (true, zero) => zero,
                (false, _) => aggregate(&items, "sum")?,
            }
        }
        Func::Count => Val::Int(list(arg(&mut it), "count")?.len() as i64),
        Func::Min => extreme(&list(arg(&mut it), "min")?, std::cmp::Ordering::Less),
        Func::Max => extreme(&list(arg(&mut it), "max")?, std::cmp::Ordering::Greater),
        Func::First => list(arg(&mut it), "first")?
            .first()
            .cloned()
            .unwrap_or_default(),
        Func::Last => list(arg(&mut it), "last")?
            .last()
            .cloned()
            .unwrap_or_default(),
        Func::Coalesce => it
            .find(|v| !v.is_null())
            .map(std::mem::take)
            .unwrap_or_default(),
        Func::Split => {
            let s = text(&arg(&mut it), "split")?;
            let sep = text(&arg(&mut it), "split")?;
            Val::List(Rc::from(
                s.split(sep.as_ref())
                    .map(|p| Val::Str(Cow::Owned(p.to_string())))
                    .collect::<Vec<_>>(),
            ))
        }
        Func::Join => {
            let items = list(arg(&mut it), "join")?;
            let sep = text(&arg(&mut it), "join")?;
            let parts: Vec<String> = items
                .iter()
                .filter_map(|v| v.text().map(|t| t.into_owned()))
                .collect();
            Val::Str(Cow::Owned(parts.join(&sep)))
        }
        Func::Replace => {
            let s = text(&arg(&mut it), "replace")?;
            let from = text(&arg(&mut it), "replace")?;
            let to = text(&arg(&mut it), "replace")?;
            Val::Str(Cow::Owned(s.replace(from.as_ref(), &to)))
        }
        Func::StartsWith | Func::EndsWith | Func::Contains => {
            let s = text(&arg(&mut it), "starts_with")?;
            let p = text(&arg(&mut it), "starts_with")?;
            Val::Bool(match func {
                Func::StartsWith => s.starts_with(p.as_ref()),
                Func::EndsWith => s.ends_with(p.as_ref()),
                _ => s.contains(p.as_ref()),
            })
        }
        Func::Substring => {
            let s = text(&arg(&mut it), "substring")?;
            let start = match arg(&mut it) {
                Val::Int(i) if i >= 0 => i as usize,
                _ => 0,
            };
            let taken: String = match arg(&mut it) {
                Val::Int(n) if n >= 0 => s.chars().skip(start).take(n as usize).collect(),
                _ => s.chars().skip(start).collect(),
            };
            Val::Str(Cow::Owned(taken))
        }
        Func::GroupBy => {
            let items = list(arg(&mut it), "group_by")?;
            let field = text(&arg(&mut it), "group_by")?;
            let mut groups: Vec<(Val, Vec<Val>)> = Vec::new();
            for item in items.iter() {
                let key = item.field(&field);
                match groups.iter_mut().find(|(k, _)| equal(k, &key)) {
                    Some((_, members)) => members.push(item.clone()),
                    None => groups.push((key, vec![item.clone()])),
                }
            }
            Val::List(Rc::from(
                groups
                    .into_iter()
                    .map(|(key, members)| {
                        Val::Obj(Rc::from(vec![
                            (Cow::Borrowed("key"), key),
                            (Cow::Borrowed("items"), Val::List(Rc::from(members))),
                        ]))
                    })
                    .collect::<Vec<_>>(),
            ))
        }
        Func::Currency => match arg(&mut it) {
            Val::Money(m) => Val::Str(m.currency.clone()),
            other => {
                return Err(Reject(format!(
                    "`currency` expects money, found {}",
                    other.kind()
                )))
            }
        },
        Func::Env | Func::Secret => {
            return Err(Reject(
                "`env` and `secret` are only available in settings".into(),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_are_exact() {
        for (text, minor) in [
            ("19.99", 1999),
            ("5", 500),
            ("5.5", 550),
            ("-3.07", -307),
            ("0.00", 0),
        ] {
            assert_eq!(minor_units(&Val::str(text), 2).unwrap(), minor, "{text}");
        }
        assert!(minor_units(&Val::str("1.234"), 2).is_err());
        assert!(minor_units(&Val::str("abc"), 2).is_err());
        assert!(minor_units(&Val::str("1."), 2).is_err());
    }

    fn money(amount: &str, currency: &str) -> Result<(i64, String), String> {
        let mut args = [Val::str(amount.to_string()), Val::str(currency.to_string())];
        match call(Func::Money, &mut args) {
            Ok(Val::Money(m)) => Ok((m.amount, m.currency.to_string())),
            Ok(other) => Err(format!("not money: {other:?}")),
            Err(Reject(reason)) => Err(reason),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, failure_persistence: None, ..Default::default() })]

        /// In every ISO 4217 currency of the table, minor units → the major-unit text that
        /// connectors send → `money` and the vendor read-back give the same minor units.
        #[test]
        fn money_round_trips_in_every_currency(minor in -(1i64 << 50)..(1i64 << 50)) {
            use crate::money as client;
            for (code, places) in currency::CURRENCIES {
                let json = serde_json::json!({"amount": minor, "currency": code});
                let text = client::money_text(&json).unwrap();
                let decimals = text.split_once('.').map_or(0, |(_, frac)| frac.len());
                proptest::prop_assert_eq!(decimals, *places as usize, "{} {}", code, text);
                proptest::prop_assert_eq!(money(&text, code), Ok((minor, code.to_string())));
                proptest::prop_assert_eq!(client::minor_units(&text, code), Some(minor));
                let number = client::money_number(&json).unwrap();
                proptest::prop_assert_eq!(number.to_string().parse::<f64>().ok(), text.parse::<f64>().ok());
                let mut args = [Val::Int(minor), Val::str(*code)];
                let Ok(Val::Money(made)) = call(Func::MoneyMinor, &mut args) else {
                    return Err(proptest::test_runner::TestCaseError::fail(format!("money_minor {code}")));
                };
                proptest::prop_assert_eq!(
                    crate::json_out::to_string(&Val::Money(made)),
                    serde_json::to_string(&json).unwrap()
                );
            }
        }
    }

    #[test]
    fn money_follows_the_currency_exponent() {
        assert_eq!(money("1500", "JPY").unwrap().0, 1500);
        assert_eq!(money("1500.00", "JPY").unwrap().0, 1500);
        assert_eq!(money("19.99", "USD").unwrap().0, 1999);
        assert_eq!(money("1.250", "KWD").unwrap().0, 1250);
        assert_eq!(money("0.5", "BHD").unwrap().0, 500);
        assert_eq!(money("1.2345", "CLF").unwrap().0, 12345);
        assert!(money("1500.5", "JPY").unwrap_err().contains("none"));
        assert!(money("1.2345", "KWD").unwrap_err().contains("3 decimals"));
        assert!(money("1", "XYZ")
            .unwrap_err()
            .contains("not an active ISO 4217"));
        assert!(money("1", "usd").unwrap_err().contains("`USD`"));
        let mut args = [Val::Int(5), Val::str("ABC")];
        assert!(call(Func::MoneyMinor, &mut args).is_err());
        let mut args = [Val::str("1500"), Val::str("JPY")];
        assert!(matches!(
            call(Func::MinorUnits, &mut args),
            Ok(Val::Int(1500))
        ));
        let mut args = [Val::str("15")];
        assert!(matches!(
            call(Func::MinorUnits, &mut args),
            Ok(Val::Int(1500))
        ));
    }
}
