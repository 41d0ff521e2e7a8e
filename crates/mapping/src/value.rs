//! Runtime values. Strings borrow from the input buffer where they can; lists and objects
//! are reference counted so passing them around never copies.

use crate::decimal::Decimal;
use serde::ser::{SerializeMap, SerializeSeq};
use std::borrow::Cow;
use std::rc::Rc;

/// A value during evaluation.
#[derive(Debug, Default)]
pub enum Val<'a> {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    /// Boxed so a value stays three words (decimals are rare on the hot path).
    Dec(Rc<Decimal>),
    Str(Cow<'a, str>),
    /// Integer minor units and a currency code, boxed for the same reason.
    Money(Rc<Money<'a>>),
    List(Rc<[Val<'a>]>),
    /// Fields in order (objects are small, so a slice beats a map).
    Obj(Rc<[(Cow<'a, str>, Val<'a>)]>),
}

impl Clone for Val<'_> {
    /// Borrowed strings, numbers and shared containers copy in place; only an owned
    /// string allocates.
    #[inline]
    fn clone(&self) -> Self {
        match self {
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(*b),
            Val::Int(i) => Val::Int(*i),
            Val::Str(Cow::Borrowed(s)) => Val::Str(Cow::Borrowed(s)),
            Val::Str(Cow::Owned(s)) => Val::Str(Cow::Owned(s.clone())),
            Val::Dec(d) => Val::Dec(Rc::clone(d)),
            Val::Money(m) => Val::Money(Rc::clone(m)),
            Val::List(items) => Val::List(Rc::clone(items)),
            Val::Obj(fields) => Val::Obj(Rc::clone(fields)),
        }
    }
}

/// An amount in integer minor units with its currency code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money<'a> {
    pub amount: i64,
    pub currency: Cow<'a, str>,
}

impl<'a> Val<'a> {
    /// A decimal value.
    pub fn dec(value: Decimal) -> Val<'a> {
        Val::Dec(Rc::new(value))
    }

    /// A money value.
    pub fn money(amount: i64, currency: impl Into<Cow<'a, str>>) -> Val<'a> {
        Val::Money(Rc::new(Money {
            amount,
            currency: currency.into(),
        }))
    }

    /// A string value.
    pub fn str(text: impl Into<Cow<'a, str>>) -> Val<'a> {
        Val::Str(text.into())
    }

    /// True for null.
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// True for an int or a decimal.
    pub fn is_number(&self) -> bool {
        matches!(self, Val::Int(_) | Val::Dec(_))
    }

    /// The JSON type name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Dec(_) => "decimal",
            Val::Str(_) => "string",
            Val::Money(..) => "money",
            Val::List(_) => "list",
            Val::Obj(_) => "object",
        }
    }

    /// A field of an object (money exposes `amount` and `currency`).
    pub fn field(&self, name: &str) -> Val<'a> {
        match self {
            Val::Obj(fields) => fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or(Val::Null),
            Val::Money(money) => match name {
                "amount" => Val::Int(money.amount),
                "currency" => Val::Str(money.currency.clone()),
                _ => Val::Null,
            },
            _ => Val::Null,
        }
    }

    /// The value as a decimal, if it is a number.
    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Val::Int(i) => Some(Decimal::from_int(*i)),
            Val::Dec(d) => Some(**d),
            _ => None,
        }
    }

    /// The text of a string, or the decimal text of a number.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        match self {
            Val::Str(s) => Some(s.clone()),
            Val::Int(i) => Some(Cow::Owned(itoa::Buffer::new().format(*i).to_string())),
            Val::Dec(d) => Some(Cow::Owned(d.to_string())),
            Val::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            _ => None,
        }
    }

    /// Truthiness for conditions: only `true` is true.
    pub fn is_true(&self) -> bool {
        matches!(self, Val::Bool(true))
    }

    /// Converts to an owned `'static` value.
    pub fn into_owned(self) -> Val<'static> {
        match self {
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(b),
            Val::Int(i) => Val::Int(i),
            Val::Dec(d) => Val::Dec(d),
            Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
            Val::Money(money) => Val::money(money.amount, money.currency.to_string()),
            Val::List(items) => Val::List(Rc::from(
                items
                    .iter()
                    .map(|v| v.clone().into_owned())
                    .collect::<Vec<_>>(),
            )),
            Val::Obj(fields) => Val::Obj(Rc::from(
                fields
                    .iter()
                    .map(|(k, v)| (Cow::Owned(k.to_string()), v.clone().into_owned()))
                    .collect::<Vec<_>>(),
            )),
        }
    }

    /// Converts from a serde_json value.
    pub fn from_json(value: &serde_json::Value) -> Val<'static> {
        match value {
            serde_json::Value::Null => Val::Null,
            serde_json::Value::Bool(b) => Val::Bool(*b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Val::Int(i),
                (None, Some(u)) => Val::dec(Decimal {
                    mantissa: u.into(),
                    scale: 0,
                }),
                _ => n
                    .as_f64()
                    .and_then(Decimal::from_f64)
                    .map(Val::dec)
                    .unwrap_or(Val::Null),
            },
            serde_json::Value::String(s) => Val::Str(Cow::Owned(s.clone())),
            serde_json::Value::Array(items) => Val::List(Rc::from(
                items.iter().map(Val::from_json).collect::<Vec<_>>(),
            )),
            serde_json::Value::Object(map) => Val::Obj(Rc::from(
                map.iter()
                    .map(|(k, v)| (Cow::Owned(k.clone()), Val::from_json(v)))
                    .collect::<Vec<_>>(),
            )),
        }
    }

    /// Converts to a serde_json value (a decimal no JSON number of serde_json holds exactly
    /// becomes its exact text; see the `Serialize` impl).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Converts to a serde_json value for JSONPath: a number no `serde_json::Value` holds
    /// exactly becomes a marked string that [`Val::from_json_exact`] turns back.
    pub fn to_json_exact(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Val::Dec(d) => match Number::of(d) {
                Number::Int(i) => i64::try_from(i)
                    .map(J::from)
                    .or_else(|_| u64::try_from(i).map(J::from))
                    .unwrap_or_else(|_| J::String(format!("{EXACT_NUMBER}{i}"))),
                Number::Float(f) => J::from(f),
                Number::Text(text) => J::String(format!("{EXACT_NUMBER}{text}")),
            },
            Val::List(items) => J::Array(items.iter().map(Val::to_json_exact).collect()),
            Val::Obj(fields) => J::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_json_exact()))
                    .collect(),
            ),
            other => other.to_json(),
        }
    }

    /// Converts from a serde_json value made by [`Val::to_json_exact`].
    pub fn from_json_exact(value: &serde_json::Value) -> Val<'static> {
        use serde_json::Value as J;
        match value {
            J::String(s) => match s.strip_prefix(EXACT_NUMBER).and_then(Decimal::parse_exact) {
                Some(number) => Val::dec(number),
                None => Val::Str(Cow::Owned(s.clone())),
            },
            J::Array(items) => Val::List(items.iter().map(Val::from_json_exact).collect()),
            J::Object(map) => Val::Obj(
                map.iter()
                    .map(|(k, v)| (Cow::Owned(k.clone()), Val::from_json_exact(v)))
                    .collect(),
            ),
            other => Val::from_json(other),
        }
    }

    /// Converts to a template value, every digit kept: integers beyond 64 bits as 128-bit
    /// integers, decimals as floats only when the float is the same number, else as text.
    pub fn to_template(&self) -> minijinja::Value {
        use minijinja::Value as T;
        match self {
            Val::Null => T::from(()),
            Val::Bool(b) => T::from(*b),
            Val::Int(i) => T::from(*i),
            Val::Dec(d) => match Number::of(d) {
                Number::Int(i) => T::from(i),
                Number::Float(f) => T::from(f),
                Number::Text(text) => T::from(text),
            },
            Val::Str(s) => T::from(s.as_ref()),
            Val::Money(money) => T::from_iter([
                ("amount", T::from(money.amount)),
                ("currency", T::from(money.currency.as_ref())),
            ]),
            Val::List(items) => T::from(items.iter().map(Val::to_template).collect::<Vec<_>>()),
            Val::Obj(fields) => {
                T::from_iter(fields.iter().map(|(k, v)| (k.to_string(), v.to_template())))
            }
        }
    }
}

/// Marks a string that stands for a number while a value passes through serde_json.
const EXACT_NUMBER: &str = "\u{0}omniflow-number:";

/// How a decimal travels where only ints and floats exist (serde, templates).
enum Number {
    Int(i128),
    /// A float that is exactly the decimal's value.
    Float(f64),
    Text(String),
}

impl Number {
    fn of(d: &Decimal) -> Number {
        let normal = d.normalize();
        if normal.scale == 0 {
            return Number::Int(normal.mantissa);
        }
        let text = normal.to_string();
        match text.parse::<f64>() {
            Ok(float)
                if Decimal::parse_exact(&float.to_string()).is_some_and(|back| back == normal) =>
            {
                Number::Float(float)
            }
            _ => Number::Text(text),
        }
    }
}

/// Structural equality with numeric comparison across int and decimal.
pub fn equal(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Money(x), Val::Money(y)) => x == y,
        (Val::List(x), Val::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| equal(p, q))
        }
        (Val::Obj(x), Val::Obj(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.iter().any(|(k2, v2)| k == k2 && equal(v, v2)))
        }
        (x, y) => match (x.as_decimal(), y.as_decimal()) {
            (Some(p), Some(q)) => p == q,
            _ => false,
        },
    }
}

impl serde::Serialize for Val<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Null => serializer.serialize_unit(),
            Val::Bool(b) => serializer.serialize_bool(*b),
            Val::Int(i) => serializer.serialize_i64(*i),
            // serde_json's numbers end at 64 bits and floats: past that, the exact text.
            Val::Dec(d) => match Number::of(d) {
                Number::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
                    (Ok(i), _) => serializer.serialize_i64(i),
                    (_, Ok(u)) => serializer.serialize_u64(u),
                    _ => serializer.serialize_str(&i.to_string()),
                },
                Number::Float(f) => serializer.serialize_f64(f),
                Number::Text(text) => serializer.serialize_str(&text),
            },
            Val::Str(s) => serializer.serialize_str(s),
            Val::Money(money) => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("amount", &money.amount)?;
                map.serialize_entry("currency", money.currency.as_ref())?;
                map.end()
            }
            Val::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items.iter() {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Val::Obj(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (k, v) in fields.iter() {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_three_words() {
        assert_eq!(std::mem::size_of::<Val>(), 24);
    }

    #[test]
    fn jsonpath_values_keep_every_digit() {
        let doc = br#"{"a": [{"id": 12345678901234567890123, "p": 0.12345678901234567890123}, {"id": 7, "p": 1.5, "s": "x"}]}"#;
        let value = crate::json_in::parse(doc, &crate::json_in::Projection::whole()).unwrap();
        let back = Val::from_json_exact(&value.to_json_exact());
        assert_eq!(
            crate::json_out::to_string(&back),
            crate::json_out::to_string(&value)
        );
        assert!(equal(&back, &value));
    }

    #[test]
    fn templates_and_json_keep_every_digit() {
        let env = minijinja::Environment::new();
        for (text, shown) in [
            ("12345678901234567890123", "12345678901234567890123"),
            ("0.12345678901234567890123", "0.12345678901234567890123"),
            ("19.99", "19.99"),
            ("1E-7", "0.0000001"),
            ("18446744073709551615", "18446744073709551615"),
        ] {
            let value = crate::json_number::value(text).unwrap();
            let context = minijinja::Value::from_iter([("id", value.to_template())]);
            let rendered = env.render_str("/orders/{{ id }}", context).unwrap();
            assert_eq!(rendered, format!("/orders/{shown}"), "{text}");
            let json = value.to_json();
            let back = match &json {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(
                Decimal::parse_exact(&back),
                Decimal::parse_exact(shown),
                "{text} through serde_json: {json}"
            );
        }
    }
}
