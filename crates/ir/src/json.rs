//! The graph IR as JSON text: written with indentation only near the top, so the file
//! grows linearly with nesting, and read back on a large stack with a depth bound.

use super::{Graph, COMPILER_VERSION};
use serde::Serialize;
use std::io::{self, Write};

/// Container levels written indented; deeper ones are written compactly.
const INDENTED_LEVELS: usize = 8;

/// Deepest JSON nesting a graph file may have: well above what any program the
/// compiler accepts produces (expressions at most `MAX_EXPR_DEPTH` deep, a few JSON
/// levels each), and small enough to read on the loader's stack.
pub const MAX_GRAPH_JSON_DEPTH: usize = 4096;

/// Stack of the thread that parses a graph file.
const LOADER_STACK_BYTES: usize = 256 << 20;

/// The graph as JSON text (see [`INDENTED_LEVELS`]).
pub fn to_text(graph: &Graph) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(1 << 16);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, CappedPretty::default());
    graph.serialize(&mut serializer)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Why a graph.json cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(
        "not a graph IR file: nested deeper than {MAX_GRAPH_JSON_DEPTH} levels at byte {offset}"
    )]
    TooDeep { offset: usize },
    #[error("cannot start the graph loader: {0}")]
    Loader(std::io::Error),
    #[error("the graph loader crashed on this file")]
    Crashed,
    #[error("not a graph IR file: {0}")]
    NotJson(serde_json::Error),
    #[error("graph IR was built by omniflowc {found}, this is {COMPILER_VERSION}; rebuild it")]
    Version { found: String },
    #[error("invalid graph IR: {0}")]
    Invalid(serde_json::Error),
}

/// Parses a graph written by `omniflowc build`, refusing other compiler versions and
/// files nested deeper than [`MAX_GRAPH_JSON_DEPTH`].
pub fn from_text(text: &str) -> Result<Graph, GraphError> {
    if let Some(offset) = too_deep(text) {
        return Err(GraphError::TooDeep { offset });
    }
    let text = text.to_string();
    std::thread::Builder::new()
        .name("graph-loader".into())
        .stack_size(LOADER_STACK_BYTES)
        .spawn(move || parse(&text))
        .map_err(GraphError::Loader)?
        .join()
        .map_err(|_| GraphError::Crashed)?
}

fn parse(text: &str) -> Result<Graph, GraphError> {
    use serde::Deserialize;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    // Depth is bounded by `too_deep` and the loader's stack instead.
    deserializer.disable_recursion_limit();
    let value = serde_json::Value::deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(GraphError::NotJson)?;
    let version = value
        .get("compiler_version")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if version != COMPILER_VERSION {
        return Err(GraphError::Version {
            found: version.to_string(),
        });
    }
    serde_json::from_value(value).map_err(GraphError::Invalid)
}

/// The offset where JSON nesting first exceeds [`MAX_GRAPH_JSON_DEPTH`].
fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'"' => {
                idx += 1;
                while idx < bytes.len() && bytes[idx] != b'"' {
                    if bytes[idx] == b'\\' {
                        idx += 1;
                    }
                    idx += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_GRAPH_JSON_DEPTH {
                    return Some(idx);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        idx += 1;
    }
    None
}

/// serde_json's pretty layout for the first [`INDENTED_LEVELS`] levels, compact below:
/// indentation that grows with depth would make deep expressions quadratic in size.
#[derive(Default)]
struct CappedPretty {
    level: usize,
    has_value: bool,
}

impl CappedPretty {
    fn indented(&self) -> bool {
        self.level <= INDENTED_LEVELS
    }

    fn newline<W: ?Sized + Write>(writer: &mut W, level: usize) -> io::Result<()> {
        writer.write_all(b"\n")?;
        for _ in 0..level {
            writer.write_all(b"  ")?;
        }
        Ok(())
    }

    fn begin<W: ?Sized + Write>(&mut self, writer: &mut W, open: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        writer.write_all(open)
    }

    fn end<W: ?Sized + Write>(&mut self, writer: &mut W, close: &[u8]) -> io::Result<()> {
        let indented = self.indented();
        self.level -= 1;
        if indented && self.has_value {
            Self::newline(writer, self.level)?;
        }
        writer.write_all(close)
    }

    fn item<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if !first {
            writer.write_all(b",")?;
        }
        if self.indented() {
            Self::newline(writer, self.level)?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for CappedPretty {
    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.begin(writer, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.end(writer, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(writer, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.begin(writer, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.end(writer, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(writer, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(if self.indented() { b": " } else { b":" })
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shallow_graphs_look_like_serde_json_pretty() {
        let graph = Graph {
            compiler_version: COMPILER_VERSION.to_string(),
            ..Graph::default()
        };
        assert_eq!(
            to_text(&graph).ok(),
            serde_json::to_string_pretty(&graph).ok()
        );
    }

    #[test]
    fn deep_graphs_round_trip_and_deeper_files_are_refused() {
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_GRAPH_JSON_DEPTH + 1),
            "]".repeat(MAX_GRAPH_JSON_DEPTH + 1)
        );
        assert!(from_text(&deep).is_err_and(|err| matches!(err, GraphError::TooDeep { .. })));
        let graph = Graph {
            compiler_version: COMPILER_VERSION.to_string(),
            ..Graph::default()
        };
        let text = to_text(&graph).unwrap_or_default();
        assert!(from_text(&text).is_ok());
    }
}
