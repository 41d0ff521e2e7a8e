//! File source: JSONL or CSV files in a directory, line by line. The byte offset reached
//! in each file is the cursor; it is written in the same transaction as the lines.

use crate::engine::FlowCtx;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::watch;

/// Lines appended per transaction.
const BATCH: usize = 1000;

/// A running file source.
pub struct FileSource {
    ctx: Rc<FlowCtx>,
    name: String,
    dir: PathBuf,
    pattern: String,
    csv: bool,
}

impl FileSource {
    /// Reads `dir` from the connection and `path`/`format` from the source options.
    pub fn new(
        ctx: Rc<FlowCtx>,
        name: &str,
        settings: &BTreeMap<String, Value>,
        options: &BTreeMap<String, Value>,
    ) -> Result<FileSource, String> {
        let dir = settings
            .get("dir")
            .and_then(Value::as_str)
            .ok_or("file connection needs `dir`")?;
        Ok(FileSource {
            ctx,
            name: name.to_string(),
            dir: PathBuf::from(dir),
            pattern: options
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("*.jsonl")
                .to_string(),
            csv: options.get("format").and_then(Value::as_str) == Some("csv"),
        })
    }

    /// Reads new lines until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let mut progressed = false;
            for path in crate::connectors::matching_files(&self.dir, &self.pattern) {
                if *stop.borrow() {
                    return;
                }
                match self.read_some(&path).await {
                    Ok(n) => progressed |= n > 0,
                    Err(err) => {
                        tracing::error!(flow = %self.ctx.flow_name(), source = %self.name, file = %path.display(), error = %err, "cannot read")
                    }
                }
            }
            if !progressed {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    async fn read_some(&self, path: &std::path::Path) -> Result<usize, String> {
        let key = path
            .strip_prefix(&self.dir)
            .unwrap_or(path)
            .display()
            .to_string();
        let (flow, source, cursor_key) = (
            self.ctx.flow_name().to_string(),
            self.name.clone(),
            key.clone(),
        );
        let offset: u64 = self
            .ctx
            .store
            .call(move |b| b.cursor(&flow, &source, &cursor_key))
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let header = if self.csv {
            Some(csv_header(path)?)
        } else {
            None
        };
        let start = match (&header, offset) {
            (Some((_, header_len)), 0) => *header_len,
            _ => offset,
        };
        let (lines, next) =
            crate::connectors::read_lines(path, start, BATCH).map_err(|e| e.to_string())?;
        if lines.is_empty() {
            return Ok(0);
        }
        let count = lines.len();
        let messages: Vec<Vec<u8>> = lines
            .into_iter()
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(|line| match &header {
                Some((columns, _)) => csv_row(columns, &line),
                None => line,
            })
            .collect();
        let (flow, source, next) = (
            self.ctx.flow_name().to_string(),
            self.name.clone(),
            next.to_string(),
        );
        // The cursor moves in the same transaction as the lines it covers.
        self.ctx
            .store
            .call(move |b| {
                b.append(&flow, &source, &messages, Some((&key, &next)))
                    .map(|_| ())
            })
            .await?;
        self.ctx.appended.notify_one();
        Ok(count)
    }
}

fn csv_header(path: &std::path::Path) -> Result<(Vec<String>, u64), String> {
    let (lines, end) = crate::connectors::read_lines(path, 0, 1).map_err(|e| e.to_string())?;
    let header = lines.first().ok_or("the CSV file has no header row")?;
    Ok((
        omniflow_compiler::typeck::tables::csv_fields(&String::from_utf8_lossy(header)),
        end,
    ))
}

fn csv_row(columns: &[String], line: &[u8]) -> Vec<u8> {
    let values = omniflow_compiler::typeck::tables::csv_fields(&String::from_utf8_lossy(line));
    let object: serde_json::Map<String, Value> = columns
        .iter()
        .zip(values)
        .map(|(c, v)| (c.clone(), Value::String(v)))
        .collect();
    serde_json::to_vec(&Value::Object(object)).unwrap_or_default()
}
