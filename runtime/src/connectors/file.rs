//! Files: JSONL/CSV lines as a source, JSONL appends as a sink.

use super::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// `file.write`: appends each message as one line.
pub struct FileSink {
    file: RefCell<std::fs::File>,
}

impl FileSink {
    /// Opens the target file (`dir` + `path`) for appending.
    pub fn new(
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<FileSink, String> {
        let dir = settings
            .get("dir")
            .and_then(Value::as_str)
            .ok_or("file connection needs `dir`")?;
        let name = options
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("out.jsonl");
        let path = Path::new(dir).join(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
        Ok(FileSink {
            file: RefCell::new(file),
        })
    }
}

impl SinkConnector for FileSink {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let mut line = Vec::with_capacity(call.body.len() + 1);
            line.extend_from_slice(call.body);
            line.push(b'\n');
            match self.file.borrow_mut().write_all(&line) {
                Ok(()) => CallOutcome::Ok,
                Err(err) => CallOutcome::Transient {
                    class: "connect".into(),
                    reason: format!("write failed: {err}"),
                    retry_after: None,
                },
            }
        })
    }
}

/// Files in `dir` whose name matches `pattern` (`*` wildcards; an optional sub-folder).
pub fn matching_files(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let (sub, name_pattern) = match pattern.rsplit_once('/') {
        Some((sub, name)) => (dir.join(sub), name),
        None => (dir.to_path_buf(), pattern),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&sub)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| wildcard(name_pattern, n))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            if tail.is_empty() {
                return true;
            }
            (0..=rest.len()).any(|idx| rest.is_char_boundary(idx) && wildcard(tail, &rest[idx..]))
        }
    }
}

/// Reads up to `max` complete lines from byte `offset`; returns them and the new offset.
/// A last line without its newline is left for later (it may still be being written).
pub fn read_lines(path: &Path, offset: u64, max: usize) -> std::io::Result<(Vec<Vec<u8>>, u64)> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut lines = Vec::new();
    let mut position = offset;
    let mut line = Vec::new();
    while lines.len() < max {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 || line.last() != Some(&b'\n') {
            break;
        }
        position += read as u64;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        lines.push(text.to_vec());
    }
    Ok((lines, position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_names() {
        assert!(wildcard("*.jsonl", "orders.jsonl"));
        assert!(wildcard("orders-*.jsonl", "orders-1.jsonl"));
        assert!(!wildcard("*.jsonl", "orders.csv"));
        assert!(wildcard("exact.csv", "exact.csv"));
    }
}
