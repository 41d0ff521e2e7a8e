//! Projected JSON parsing: only the paths a mapping reads are materialised; the rest of
//! the document is skipped by the scanner, and strings borrow from the input buffer.

use crate::decimal::Decimal;
use crate::value::Val;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::rc::Rc;

/// Which parts of a document to keep.
#[derive(Debug, Default, Clone)]
pub struct Projection {
    whole: bool,
    /// Kept fields by interned name.
    fields: Vec<(&'static str, Projection)>,
    /// One bit per kept field's [`key_bit`]: most keys a document carries and the
    /// mapping never reads are passed over without a comparison.
    key_bits: u64,
    items: Option<Box<Projection>>,
}

static WHOLE: Projection = Projection {
    whole: true,
    fields: Vec::new(),
    key_bits: 0,
    items: None,
};

/// A cheap signature of a key: its length and first and last bytes.
#[inline]
fn key_bit(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let (first, last) = match bytes {
        [] => (0, 0),
        [first, .., last] => (*first, *last),
        [only] => (*only, *only),
    };
    let mixed = (bytes.len() as u32)
        .wrapping_mul(31)
        .wrapping_add(u32::from(first).wrapping_mul(7))
        .wrapping_add(u32::from(last));
    1u64 << (mixed % 64)
}

impl Projection {
    /// Keeps the whole document.
    pub fn whole() -> Projection {
        Projection {
            whole: true,
            ..Projection::default()
        }
    }

    /// The projection for a list of read paths (`$.a.b`, `$.items[*].sku`); any path that is
    /// not a simple path keeps the whole document.
    pub fn from_reads(reads: &[String]) -> Projection {
        let mut root = Projection::default();
        for read in reads {
            match omniflow_compiler::typeck::expr::simple_path(read) {
                Some(path) => root.add(&path),
                None => return Projection::whole(),
            }
        }
        root
    }

    fn add(&mut self, path: &[omniflow_compiler::ir::PathSeg]) {
        use omniflow_compiler::ir::PathSeg;
        if self.whole {
            return;
        }
        let Some((first, rest)) = path.split_first() else {
            *self = Projection::whole();
            return;
        };
        let child = match first {
            PathSeg::Field(name) => {
                let idx = match self.fields.iter().position(|(n, _)| n == name) {
                    Some(idx) => idx,
                    None => {
                        self.fields
                            .push((crate::intern::intern(name), Projection::default()));
                        self.key_bits |= key_bit(name);
                        self.fields.len() - 1
                    }
                };
                &mut self.fields[idx].1
            }
            PathSeg::All | PathSeg::Index(_) => self.items.get_or_insert_with(Box::default),
        };
        child.add(rest);
    }

    /// A kept field's interned name (`None` under a whole projection, where every key
    /// is kept as written) and projection (for the scanner).
    #[inline]
    pub(crate) fn kept(&self, key: &str) -> Option<(Option<&'static str>, &Projection)> {
        if self.whole {
            return Some((None, &WHOLE));
        }
        if self.key_bits & key_bit(key) == 0 {
            return None;
        }
        self.fields
            .iter()
            .find(|(n, _)| *n == key)
            .map(|(n, p)| (Some(*n), p))
    }

    /// The projection of list elements (for the scanner).
    pub(crate) fn items_projection(&self) -> Option<&Projection> {
        self.element()
    }

    fn element(&self) -> Option<&Projection> {
        if self.whole {
            return Some(&WHOLE);
        }
        self.items.as_deref()
    }
}

/// Parses one JSON document keeping what the projection asks for.
pub fn parse<'de>(bytes: &'de [u8], projection: &Projection) -> Result<Val<'de>, String> {
    if let Some(value) = crate::json_scan::scan(bytes, projection) {
        return Ok(value);
    }
    parse_with_serde(bytes, projection)
}

/// The same parse through serde_json (the reference, and the source of error messages).
pub fn parse_with_serde<'de>(
    bytes: &'de [u8],
    projection: &Projection,
) -> Result<Val<'de>, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Seed(projection)
        .deserialize(&mut deserializer)
        .map_err(|err| format!("malformed JSON: {err}"))?;
    deserializer
        .end()
        .map_err(|err| format!("malformed JSON: {err}"))?;
    Ok(value)
}

struct Seed<'p>(&'p Projection);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Val<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Val<'de>, D::Error> {
        deserializer.deserialize_any(ValVisitor(self.0))
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

struct ValVisitor<'p>(&'p Projection);

impl<'de> Visitor<'de> for ValVisitor<'_> {
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

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Val<'de>, E> {
        Ok(Val::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Val<'de>, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Val::Int(i),
            Err(_) => Val::dec(Decimal {
                mantissa: v as i128,
                scale: 0,
            }),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Val<'de>, E> {
        Ok(Decimal::from_f64(v).map(Val::dec).unwrap_or(Val::Null))
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
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Val::List(Rc::from(Vec::new())));
        };
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(8));
        while let Some(item) = seq.next_element_seed(Seed(element))? {
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
                // A repeated key: the first copy is the one kept, as the scanner does.
                Some(_) if fields.iter().any(|(k, _)| *k == key) => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some((name, child)) => {
                    let value = map.next_value_seed(Seed(child))?;
                    fields.push((name.map_or(key, Cow::Borrowed), value));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
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
