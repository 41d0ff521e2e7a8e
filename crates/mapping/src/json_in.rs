//! Projected JSON parsing: only the paths a mapping reads are materialised; the rest of
//! the document is skipped by the scanner, and strings borrow from the input buffer.

use crate::value::Val;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

pub use crate::projection::Projection;

/// Parses one JSON document keeping what the projection asks for.
pub fn parse<'de>(bytes: &'de [u8], projection: &Projection) -> Result<Val<'de>, String> {
    if let Some(value) = crate::json_scan::scan(bytes, projection) {
        return Ok(value);
    }
    parse_with_serde(bytes, projection)
}

/// The same parse through serde_json (the reference, and the source of error messages).
/// Numbers are read from their own text, never through a float: serde_json reports each
/// number in document order, and [`Numbers`] hands over its exact text.
pub fn parse_with_serde<'de>(
    bytes: &'de [u8],
    projection: &Projection,
) -> Result<Val<'de>, String> {
    let numbers = Numbers::new(bytes);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Seed(projection, &numbers)
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    value.map_err(|err| reason(&err, &numbers))
}

/// Nesting deeper than this is refused (serde_json's own limit; the scanner stops earlier).
pub const MAX_DEPTH: usize = 128;

/// A dead letter's reason for a document serde_json refused.
fn reason(err: &serde_json::Error, numbers: &Numbers) -> String {
    let text = err.to_string();
    let what = text.split(" at line ").next().unwrap_or(&text);
    let place = format!("at line {} column {}", err.line(), err.column());
    match what {
        "recursion limit exceeded" => {
            format!("the document nests deeper than {MAX_DEPTH} levels ({place})")
        }
        "number out of range" => match numbers.pending().map(crate::json_number::value) {
            Some(Err(inexact)) => format!("{inexact} ({place})"),
            _ => format!("malformed JSON: {text}"),
        },
        "lone leading surrogate in hex escape" | "unexpected end of hex escape" => format!(
            "a string holds a lone UTF-16 surrogate escape (\\uD800-\\uDFFF must come in \
             pairs), refused rather than dropped ({place})"
        ),
        _ if err.is_data() => text,
        _ => format!("malformed JSON: {text}"),
    }
}

/// The text of every number in a document in order, and how many were read so far.
struct Numbers<'de> {
    /// (end offset, text) of each number token outside strings.
    tokens: Vec<(usize, &'de str)>,
    next: Cell<usize>,
    base: usize,
}

impl<'de> Numbers<'de> {
    fn new(bytes: &'de [u8]) -> Numbers<'de> {
        let mut tokens = Vec::new();
        let mut idx = 0;
        while idx < bytes.len() {
            match bytes[idx] {
                b'"' => {
                    idx += 1;
                    while idx < bytes.len() && bytes[idx] != b'"' {
                        idx += if bytes[idx] == b'\\' { 2 } else { 1 };
                    }
                    idx += 1;
                }
                b'-' | b'0'..=b'9' => {
                    let start = idx;
                    while idx < bytes.len()
                        && matches!(bytes[idx], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                    {
                        idx += 1;
                    }
                    if let Ok(text) = std::str::from_utf8(&bytes[start..idx]) {
                        tokens.push((idx, text));
                    }
                }
                _ => idx += 1,
            }
        }
        Numbers {
            tokens,
            next: Cell::new(0),
            base: bytes.as_ptr() as usize,
        }
    }

    /// The next number's text.
    fn take(&self) -> Option<&'de str> {
        let text = self.pending();
        self.next.set(self.next.get() + 1);
        text
    }

    fn pending(&self) -> Option<&'de str> {
        self.tokens.get(self.next.get()).map(|(_, text)| *text)
    }

    /// Passes over the numbers inside a skipped value.
    fn skip(&self, raw: &RawValue) {
        let end = raw.get().as_ptr() as usize + raw.get().len() - self.base;
        let mut next = self.next.get();
        while self
            .tokens
            .get(next)
            .is_some_and(|(token_end, _)| *token_end <= end)
        {
            next += 1;
        }
        self.next.set(next);
    }

    /// The exact value of the number serde_json just reported.
    fn value<E: de::Error>(&self) -> Result<Val<'de>, E> {
        let text = self
            .take()
            .ok_or_else(|| E::custom("a number out of place"))?;
        crate::json_number::value(text).map_err(E::custom)
    }
}

struct Seed<'p, 'n, 'de>(&'p Projection, &'n Numbers<'de>);

impl<'de> DeserializeSeed<'de> for Seed<'_, '_, 'de> {
    type Value = Val<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Val<'de>, D::Error> {
        deserializer.deserialize_any(ValVisitor(self.0, self.1))
    }
}

struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct ValVisitor<'p, 'n, 'de>(&'p Projection, &'n Numbers<'de>);

impl<'de> Visitor<'de> for ValVisitor<'_, '_, 'de> {
    type Value = Val<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Val<'de>, E> {
        Ok(Val::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Val<'de>, E> {
        self.1.value()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Val<'de>, E> {
        self.1.value()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Val<'de>, E> {
        self.1.value()
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
        let Some(element) = self.0.element() else {
            while let Some(raw) = seq.next_element::<&'de RawValue>()? {
                self.1.skip(raw);
            }
            return Ok(Val::List(Rc::from(Vec::new())));
        };
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(8));
        while let Some(item) = seq.next_element_seed(Seed(element, self.1))? {
            items.push(item);
        }
        Ok(Val::List(Rc::from(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<'de>, A::Error> {
        let mut fields = Vec::with_capacity(if self.0.whole {
            16
        } else {
            self.0.fields.len()
        });
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match self.0.kept(&key) {
                // A key read twice is ambiguous (most senders' parsers keep its last copy).
                Some((name, _)) if fields.iter().any(|(k, _)| *k == name.map_or(&*key, |n| n)) => {
                    return Err(de::Error::custom(format!(
                        "the key `{key}` is given twice in one object"
                    )));
                }
                Some((name, child)) => {
                    let value = map.next_value_seed(Seed(child, self.1))?;
                    fields.push((name.map_or(key, Cow::Borrowed), value));
                }
                None => self.1.skip(map.next_value::<&'de RawValue>()?),
            }
        }
        Ok(Val::Obj(Rc::from(fields)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_what_is_read() {
        let doc = br#"{"id": 1, "note": "skip \"me\"", "items": [{"sku": "A", "x": [1,2]}, {"sku": "B"}], "c": {"n": "x"}}"#;
        let projection =
            Projection::from_reads(&["$.id".into(), "$.items[*].sku".into(), "$.c".into()]);
        let value = parse(doc, &projection).unwrap();
        assert_eq!(
            value.to_json(),
            serde_json::json!({"id": 1, "items": [{"sku": "A"}, {"sku": "B"}], "c": {"n": "x"}})
        );
    }

    #[test]
    fn reports_malformed_input() {
        assert!(parse(b"{\"a\": ", &Projection::whole()).is_err());
        assert!(parse(b"{} trailing", &Projection::whole()).is_err());
    }
}
