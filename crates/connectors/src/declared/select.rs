//! Reading an answer by the simple JSONPaths a declaration gives, on the answer's own
//! bytes: a selected record keeps every digit of its numbers.

use omniflow_ir::PathSeg;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;

/// A compiled path (checked by the compiler; an unreadable one selects nothing).
#[derive(Debug, Clone, Default)]
pub struct Path {
    pub text: String,
    segs: Vec<PathSeg>,
}

impl Path {
    /// Compiles `text` (`$.a.b[*]`).
    pub fn new(text: &str) -> Result<Path, String> {
        omniflow_ir::path::simple_path(text)
            .map(|segs| Path {
                text: text.to_string(),
                segs,
            })
            .ok_or_else(|| format!("`{text}` is not a simple JSONPath"))
    }

    /// True when the path has a `[*]` step (it selects a list of matches).
    pub fn fans_out(&self) -> bool {
        self.segs.contains(&PathSeg::All)
    }

    /// Every value the path selects in `value`.
    pub fn select<'v>(&self, value: &'v Value) -> Vec<&'v Value> {
        let mut at = vec![value];
        for seg in &self.segs {
            let mut next = Vec::new();
            for v in at {
                match seg {
                    PathSeg::Field(name) => next.extend(v.get(name.as_str())),
                    PathSeg::Index(i) => {
                        next.extend(usize::try_from(*i).ok().and_then(|i| v.get(i)))
                    }
                    PathSeg::All => {
                        if let Value::Array(items) = v {
                            next.extend(items.iter());
                        }
                    }
                }
            }
            at = next;
        }
        at
    }

    /// The first value selected, `None` for none or null.
    pub fn first<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.select(value).into_iter().find(|v| !v.is_null())
    }

    /// Every value the path selects, as the answer's own bytes; `None` when a step
    /// does not exist (as opposed to an empty list).
    pub fn select_raw<'r>(&self, raw: &'r RawValue) -> Option<Vec<&'r RawValue>> {
        let mut at = vec![raw];
        for seg in &self.segs {
            let mut next = Vec::new();
            for r in at {
                match seg {
                    PathSeg::Field(name) => {
                        let fields: HashMap<String, &RawValue> =
                            serde_json::from_str(r.get()).ok()?;
                        next.push(*fields.get(name.as_str())?);
                    }
                    PathSeg::Index(i) => {
                        let items: Vec<&RawValue> = serde_json::from_str(r.get()).ok()?;
                        next.push(*items.get(usize::try_from(*i).ok()?)?);
                    }
                    PathSeg::All => {
                        let items: Vec<&RawValue> = serde_json::from_str(r.get()).ok()?;
                        next.extend(items);
                    }
                }
            }
            at = next;
        }
        Some(at)
    }
}

/// A selected value as text: a string's own text, a number's digits, `None` for null;
/// other values as JSON.
pub fn text(raw: &RawValue) -> Option<String> {
    let source = raw.get().trim();
    if source == "null" {
        return None;
    }
    if source.starts_with('"') {
        return serde_json::from_str::<String>(source).ok();
    }
    Some(source.to_string())
}

/// A JSON value as text (strings unquoted), `None` for null.
pub fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_select_values_and_raw_bytes() {
        let body = r#"{"data": {"orders": {"edges": [{"node": {"id": 12345678901234567890123, "at": "x"}}, {"node": {"id": 2}}]}}}"#;
        let raw: Box<RawValue> = serde_json::from_str(body).unwrap();
        let nodes = Path::new("$.data.orders.edges[*].node").unwrap();
        let found = nodes.select_raw(&raw).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].get(),
            r#"{"id": 12345678901234567890123, "at": "x"}"#
        );
        let id = Path::new("$.id").unwrap();
        assert_eq!(
            text(id.select_raw(found[0]).unwrap()[0]).unwrap(),
            "12345678901234567890123"
        );
        assert!(Path::new("$.data.missing[*]")
            .unwrap()
            .select_raw(&raw)
            .is_none());
        let value: Value = serde_json::from_str(body).unwrap();
        assert_eq!(nodes.select(&value).len(), 2);
        assert_eq!(
            Path::new("$.data.orders.edges[1].node.id")
                .unwrap()
                .first(&value),
            Some(&json!(2))
        );
        assert!(Path::new("$..x").is_err());
    }
}
