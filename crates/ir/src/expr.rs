//! Compiled expressions: names resolved to slots, tables and input paths.

use super::{BinOp, UnOp};
use serde::{Deserialize, Serialize};

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Root {
    /// The node's input message (`$`, or a bare field name in routes and sinks).
    Input,
    /// A local slot (`let`, or the element variable of `as`).
    Local(u32),
}

/// One step of a lowered path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathSeg {
    Field(String),
    Index(i64),
    /// `[*]`: every element; the result becomes a list.
    All,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordItem {
    Let(u32, Expr),
    Field(String, Expr),
}

/// A compiled expression.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    Lit(serde_json::Value),
    /// An exact decimal literal, as written (`19.99`).
    Decimal(String),
    /// A direct field path from a root: simple JSONPath and field access lower here.
    Path {
        root: Root,
        path: Vec<PathSeg>,
    },
    /// A JSONPath that is not a simple path; the runtime parses it once at load time.
    JsonPath(String),
    /// Field access on a computed value (on a list: the field of every element).
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    /// `table[key]`: null when the key is absent.
    Lookup {
        table: String,
        key: Box<Expr>,
    },
    /// `key in table`
    InTable {
        table: String,
        key: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Unary {
        op: UnOp,
        expr: Box<Expr>,
    },
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    Call {
        func: String,
        args: Vec<Expr>,
    },
    List(Vec<Expr>),
    /// A record of a schema; `let` items bind slots for later items.
    Record {
        schema: String,
        items: Vec<RecordItem>,
    },
    /// `source as x where filter -> body`
    Each {
        source: Box<Expr>,
        slot: u32,
        filter: Option<Box<Expr>>,
        body: Box<Expr>,
    },
    /// A minijinja template with the variables it uses.
    Template {
        text: String,
        vars: Vec<(String, Expr)>,
    },
    /// `reject "reason"`: the message becomes a dead letter with this reason.
    Reject(Box<Expr>),
}

impl Expr {
    /// A constant string.
    pub fn string(text: impl Into<String>) -> Expr {
        Expr::Lit(serde_json::Value::String(text.into()))
    }
}

/// Renders a lowered path back as JSONPath (`$.a[*].b`, `$['odd.key']`), for `reads`
/// lists: a text `path::simple_path` reads back as the same path, or, for a name no
/// simple path can write (with a quote, a backslash or `]`), one it refuses, so the
/// whole document is kept.
pub fn path_text(path: &[PathSeg]) -> String {
    let mut out = String::from("$");
    for seg in path {
        match seg {
            PathSeg::Field(name)
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                out.push('.');
                out.push_str(name);
            }
            PathSeg::Field(name) if !name.contains(['\'', '"', '\\', ']']) => {
                out.push_str("['");
                out.push_str(name);
                out.push_str("']");
            }
            PathSeg::Field(_) => out.push_str("[?(unwritable)]"),
            PathSeg::Index(idx) => out.push_str(&format!("[{idx}]")),
            PathSeg::All => out.push_str("[*]"),
        }
    }
    out
}

/// Longest template text (`"... {{ x }} ..."`): minijinja's parser and renderer recurse
/// over its nesting and take time that grows faster than its length.
pub const MAX_TEMPLATE_BYTES: usize = 4096;

/// Most descendant steps (`..`) one JSONPath may take: each one walks the whole subtree
/// under every match so far, so two or more multiply (`$..a..a..a` is polynomial in the
/// document's size, per message).
pub const MAX_JSONPATH_DESCENDANTS: usize = 1;

/// Largest index, slice bound or slice step a JSONPath may write (in magnitude).
pub const MAX_JSONPATH_INDEX: i64 = (1 << 31) - 1;

/// Deepest nesting of brackets and parentheses one JSONPath may have: its parser recurses
/// once per level, and a graph read from JSON was not bounded by the `.flow` parser.
pub const MAX_JSONPATH_NESTING: usize = 32;

/// Refuses a JSONPath whose cost per message could explode: more than
/// [`MAX_JSONPATH_DESCENDANTS`] `..` steps, or an index or slice number beyond
/// [`MAX_JSONPATH_INDEX`]; and one nested deeper than [`MAX_JSONPATH_NESTING`]. The
/// compiler reports it; the runtime refuses such a graph.
pub fn jsonpath_bounds(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut descendants = 0;
    let mut depth = 0usize;
    let mut idx = 0;
    // The last byte outside quotes and spaces before the current one.
    let mut previous = 0u8;
    while idx < bytes.len() {
        let byte = bytes[idx];
        match byte {
            b'\'' | b'"' => {
                idx += 1;
                while idx < bytes.len() && bytes[idx] != byte {
                    if bytes[idx] == b'\\' {
                        idx += 1;
                    }
                    idx += 1;
                }
            }
            b'[' | b'(' => {
                depth += 1;
                if depth > MAX_JSONPATH_NESTING {
                    return Err(format!(
                        "brackets and parentheses nested deeper than {MAX_JSONPATH_NESTING} levels"
                    ));
                }
            }
            b']' | b')' => depth = depth.saturating_sub(1),
            b'.' if bytes.get(idx + 1) == Some(&b'.') => {
                descendants += 1;
                if descendants > MAX_JSONPATH_DESCENDANTS {
                    return Err(format!(
                        "more than {MAX_JSONPATH_DESCENDANTS} descendant step (`..`) in one path"
                    ));
                }
                idx += 1;
            }
            b'0'..=b'9' if matches!(previous, b'[' | b':' | b',' | b'-') => {
                let start = idx;
                while idx < bytes.len() && bytes[idx].is_ascii_digit() {
                    idx += 1;
                }
                let digits = &text[start..idx];
                if digits
                    .parse::<i64>()
                    .map_or(true, |n| n > MAX_JSONPATH_INDEX)
                {
                    return Err(format!(
                        "index or slice number {digits} is beyond {MAX_JSONPATH_INDEX}"
                    ));
                }
                previous = b'0';
                continue;
            }
            _ => {}
        }
        if !byte.is_ascii_whitespace() {
            previous = byte;
        }
        idx += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read path's text reads back as the same path, whatever its names hold; a name
    /// no simple path can write gives a text that is not a simple path at all.
    #[test]
    fn path_texts_read_back_as_their_paths() {
        let field = |name: &str| PathSeg::Field(name.to_string());
        for path in [
            vec![field("a"), PathSeg::All, field("b_2")],
            vec![field("odd.key")],
            vec![field("with space"), PathSeg::Index(3), field("x-y")],
            vec![field(""), field("[*"), field("a[b")],
        ] {
            let text = path_text(&path);
            assert_eq!(
                crate::path::simple_path(&text),
                Some(path.clone()),
                "{text}"
            );
        }
        for name in ["it's", "a\"][\"b", "a']['b", "back\\slash", "a]b"] {
            let text = path_text(&[field("x"), field(name), field("y")]);
            assert_eq!(crate::path::simple_path(&text), None, "{text}");
        }
    }

    #[test]
    fn costly_jsonpaths_are_refused() {
        assert!(jsonpath_bounds("$..sku").is_ok());
        let nested = |n: usize| format!("$[?{}@.a{}]", "(".repeat(n), ")".repeat(n));
        assert!(jsonpath_bounds(&nested(MAX_JSONPATH_NESTING - 1)).is_ok());
        let refused = jsonpath_bounds(&nested(100_000)).unwrap_err();
        assert!(refused.contains("nested deeper"), "{refused}");
        assert!(jsonpath_bounds("$['((((((((((((((((((((((((((((((((((((']").is_ok());
        assert!(jsonpath_bounds("$.items[0:10:2]").is_ok());
        assert!(jsonpath_bounds("$[?@.id == 123456789012345]").is_ok());
        assert!(jsonpath_bounds("$['a..b'].c").is_ok());
        assert!(jsonpath_bounds("$..a..a..a").is_err());
        assert!(jsonpath_bounds("$[99999999999999]").is_err());
        assert!(jsonpath_bounds("$[0:1:9223372036854775807]").is_err());
        assert!(jsonpath_bounds("$[-99999999999999:]").is_err());
    }
}
