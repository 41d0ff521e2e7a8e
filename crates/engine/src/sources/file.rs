//! File source: JSONL or CSV files in a directory, line by line. The byte offset reached
//! in each file is the cursor; it is written in the same transaction as the lines, with a
//! mark of the bytes before it, so a file rewritten in place is read again from its start.
//! A line longer than `max_line_bytes` is never held whole: it becomes a dead letter
//! keeping its first KiB, and the file goes on. A UTF-8 byte order mark is skipped.

use crate::engine::FlowCtx;
use omniflow_connectors::file::{self as files, Found, Line, Unfinished};
use omniflow_state::cluster::Fence;
use omniflow_state::DeadLetter;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::watch;

/// Lines appended per transaction.
const BATCH: usize = 1000;

/// The longest line read whole unless the source sets `max_line_bytes`.
pub const MAX_LINE: u64 = 4 << 20;
/// The largest `max_line_bytes` (the compiler refuses more with `E0510`).
pub const LONGEST_LIMIT: u64 = 1 << 28;

/// A file source's `max_line_bytes` from its options (`omniflow map` holds lines to it too).
pub fn max_line_bytes(options: &BTreeMap<String, Value>) -> Result<u64, String> {
    match options.get("max_line_bytes") {
        None => Ok(MAX_LINE),
        Some(value) => value
            .as_u64()
            .filter(|n| (1..=LONGEST_LIMIT).contains(n))
            .ok_or_else(|| "`max_line_bytes` must be 1 to 268435456 bytes".to_string()),
    }
}

/// A running file source.
pub struct FileSource {
    ctx: Rc<FlowCtx>,
    name: String,
    dir: PathBuf,
    pattern: String,
    csv: bool,
    max_line: u64,
    /// Over-long lines still being written, by file key.
    unfinished: RefCell<HashMap<String, Unfinished>>,
    /// What was already logged once (skipped entries, names that are not UTF-8).
    warned: RefCell<HashSet<String>>,
    /// The files whose last read failed, with why (logged when it starts or changes).
    failing: RefCell<HashMap<String, String>>,
    /// The directory could not be listed last time (logged once until it can).
    unlisted: Cell<bool>,
}

/// A file's cursor: the offset reached and the mark of the bytes before it.
struct Cursor {
    offset: u64,
    mark: Option<u64>,
}

impl Cursor {
    fn parse(text: Option<String>) -> Cursor {
        let text = text.unwrap_or_default();
        let mut parts = text.split_whitespace();
        Cursor {
            offset: parts.next().and_then(|o| o.parse().ok()).unwrap_or(0),
            mark: parts.next().and_then(|m| u64::from_str_radix(m, 16).ok()),
        }
    }
}

impl FileSource {
    /// Reads `dir` from the connection and `path`/`format`/`max_line_bytes` from the
    /// source options.
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
        let max_line = max_line_bytes(options)?;
        let pattern = options
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("*.jsonl");
        if let Some(problem) = omniflow_ir::path::file_path_problem(pattern, true) {
            return Err(format!("file source path `{pattern}` {problem}"));
        }
        Ok(FileSource {
            ctx,
            name: name.to_string(),
            dir: PathBuf::from(dir),
            pattern: pattern.to_string(),
            csv: options.get("format").and_then(Value::as_str) == Some("csv"),
            max_line,
            unfinished: RefCell::default(),
            warned: RefCell::default(),
            failing: RefCell::default(),
            unlisted: Cell::new(false),
        })
    }

    /// Reads new lines until `stop`, while this process holds the source's lease.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let Some(fence) = self.ctx.source_lease(&self.name, &mut stop).await else {
            return;
        };
        loop {
            if *stop.borrow() {
                return;
            }
            let mut progressed = false;
            let mut failed = None;
            let listed = self.list();
            // A file gone from the listing is forgotten: if it comes back failing, it is
            // logged again.
            self.failing
                .borrow_mut()
                .retain(|key, _| listed.iter().any(|found| found.key == *key));
            for found in listed {
                if *stop.borrow() {
                    return;
                }
                match self.read_some(&found, &fence).await {
                    Ok(n) => {
                        progressed |= n > 0;
                        self.failing.borrow_mut().remove(&found.key);
                    }
                    Err(err) => {
                        // Logged when it starts or changes, not at every look (4 a second).
                        let mut failing = self.failing.borrow_mut();
                        if failing.get(&found.key) != Some(&err) {
                            tracing::error!(flow = %self.ctx.flow_name(), source = %self.name, file = %found.key, error = %err, "cannot read");
                            failing.insert(found.key.clone(), err.clone());
                        }
                        failed = Some(format!("{}: {err}", found.key));
                    }
                }
            }
            if self.unlisted.get() {
                failed.get_or_insert_with(|| format!("cannot list {}", self.dir.display()));
            }
            self.ctx.source_attempt(&self.name, failed.as_ref());
            if !progressed {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// The files to read now; logs once what is skipped and names that are not UTF-8.
    fn list(&self) -> Vec<Found> {
        let listing = files::matching_files(&self.dir, &self.pattern);
        let mut warned = self.warned.borrow_mut();
        match &listing.unreadable {
            Some(err) if !self.unlisted.replace(true) => {
                tracing::warn!(flow = %self.ctx.flow_name(), source = %self.name, dir = %self.dir.display(), error = %err, "cannot list the directory; retrying");
            }
            Some(_) => {}
            None => self.unlisted.set(false),
        }
        for (path, why) in &listing.skipped {
            if warned.insert(path.to_string_lossy().into_owned()) {
                tracing::warn!(flow = %self.ctx.flow_name(), source = %self.name, file = %path.to_string_lossy(), reason = %why, "file skipped");
            }
        }
        for found in &listing.not_utf8 {
            if warned.insert(found.key.clone()) {
                tracing::warn!(flow = %self.ctx.flow_name(), source = %self.name, file = %found.path.to_string_lossy(), key = %found.key, "file name is not UTF-8; read under its escaped name");
            }
        }
        listing.files
    }

    async fn read_some(&self, found: &Found, fence: &Fence) -> Result<usize, String> {
        let (flow, source, cursor_key) = (
            self.ctx.flow_name().to_string(),
            self.name.clone(),
            found.key.clone(),
        );
        let cursor = Cursor::parse(
            self.ctx
                .store
                .call(move |b| b.cursor(&flow, &source, &cursor_key))
                .await?,
        );
        let mut file = files::open_within(&self.dir, &found.within).map_err(|e| e.to_string())?;
        let offset = self.checked_offset(&mut file, found, &cursor)?;
        let first = match (self.csv, offset) {
            (false, 1..) => 0,
            _ => first_line(&mut file).map_err(|e| e.to_string())?,
        };
        let header = match self.csv {
            true => Some(self.csv_header(&mut file, first)?),
            false => None,
        };
        let start = match (&header, offset) {
            (Some((_, header_end)), 0) => *header_end,
            (None, 0) => first,
            _ => offset,
        };
        let resume = self.unfinished.borrow_mut().remove(&found.key);
        let read = files::read_lines(&mut file, start, BATCH, self.max_line, resume)
            .map_err(|e| e.to_string())?;
        if let Some(unfinished) = read.unfinished {
            self.unfinished
                .borrow_mut()
                .insert(found.key.clone(), unfinished);
        }
        if read.lines.is_empty() {
            return Ok(0);
        }
        let count = read.lines.len();
        let mut messages = Vec::with_capacity(count);
        let mut letters = Vec::new();
        for line in read.lines {
            match line {
                Line::Whole(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {}
                Line::Whole(bytes) => match &header {
                    Some((columns, _)) => match csv_row(columns, &bytes) {
                        Ok(row) => messages.push(row),
                        Err(why) => letters.push(self.refused_row(found, bytes, start, why)),
                    },
                    None => messages.push(bytes),
                },
                Line::Over { head, len, at } => letters.push(self.over_long(found, head, len, at)),
            }
        }
        let mark = files::mark(&mut file, read.next).map_err(|e| e.to_string())?;
        let n_letters = letters.len() as u64;
        let (flow, source, key, next) = (
            self.ctx.flow_name().to_string(),
            self.name.clone(),
            found.key.clone(),
            format!("{} {mark:016x}", read.next),
        );
        // The cursor moves in the same transaction as the lines it covers, only while
        // this process holds the source's lease.
        let fence = fence.clone();
        self.ctx
            .store
            .call(move |b| {
                b.fence(&fence)?;
                for letter in &letters {
                    b.add_dead_letter(letter)?;
                }
                b.append(&flow, &source, &messages, Some((&key, &next)))
                    .map(|_| ())
            })
            .await?;
        if n_letters > 0 {
            let metric = crate::ops::metrics::DEAD_LETTERS;
            self.ctx
                .metrics
                .add(metric, self.ctx.flow_name(), &self.name, n_letters);
        }
        self.ctx.appended.notify_one();
        Ok(count)
    }

    /// The stored offset, or 0 when the file shrank below it or the bytes before it
    /// changed (the file was rewritten).
    fn checked_offset(
        &self,
        file: &mut std::fs::File,
        found: &Found,
        cursor: &Cursor,
    ) -> Result<u64, String> {
        if cursor.offset == 0 {
            return Ok(0);
        }
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let rewritten = len < cursor.offset
            || match cursor.mark {
                Some(mark) => files::mark(file, cursor.offset).map_err(|e| e.to_string())? != mark,
                None => false,
            };
        if !rewritten {
            return Ok(cursor.offset);
        }
        tracing::warn!(flow = %self.ctx.flow_name(), source = %self.name, file = %found.key, offset = cursor.offset, size = len, "file shrank or changed before its cursor; reading it again from the start");
        self.unfinished.borrow_mut().remove(&found.key);
        Ok(0)
    }

    /// The CSV header's columns and where the rows start.
    fn csv_header(
        &self,
        file: &mut std::fs::File,
        first: u64,
    ) -> Result<(Vec<String>, u64), String> {
        let read =
            files::read_lines(file, first, 1, self.max_line, None).map_err(|e| e.to_string())?;
        match read.lines.first() {
            Some(Line::Whole(header)) => {
                let text = std::str::from_utf8(header)
                    .map_err(|_| "the CSV header row is not UTF-8 text".to_string())?;
                let columns = omniflow_ir::path::csv_fields(text)
                    .map_err(|why| format!("the CSV header row: {why}"))?;
                Ok((columns, read.next))
            }
            Some(Line::Over { len, .. }) => Err(format!(
                "the CSV header row ({len} bytes) is longer than max_line_bytes ({})",
                self.max_line
            )),
            None => Err("the CSV file has no header row".into()),
        }
    }

    /// The dead letter of a line over the limit.
    fn over_long(&self, found: &Found, head: Vec<u8>, len: u64, at: u64) -> DeadLetter {
        let reason = format!(
            "line of {len} bytes at byte {at} of `{}` is longer than max_line_bytes ({}); the letter keeps its first {} bytes",
            found.key,
            self.max_line,
            head.len()
        );
        tracing::warn!(flow = %self.ctx.flow_name(), source = %self.name, file = %found.key, offset = at, bytes = len, "line over max_line_bytes; dead-lettered");
        self.letter(found, head, at, reason)
    }

    /// The dead letter of a CSV row refused (read in the batch from byte `from`).
    fn refused_row(&self, found: &Found, row: Vec<u8>, from: u64, why: String) -> DeadLetter {
        let reason = format!(
            "CSV row of `{}` (read from byte {from}) refused: {why}",
            found.key
        );
        tracing::warn!(flow = %self.ctx.flow_name(), source = %self.name, file = %found.key, reason = %why, "CSV row refused; dead-lettered");
        self.letter(found, row, from, reason)
    }

    /// A dead letter of this source for bytes of `found` near byte `at`.
    fn letter(&self, found: &Found, bytes: Vec<u8>, at: u64, reason: String) -> DeadLetter {
        let head = String::from_utf8_lossy(&bytes).into_owned();
        DeadLetter {
            id: 0,
            origin: omniflow_state::Origin::Flow(self.ctx.flow_name().to_string()),
            source: self.name.clone(),
            node: self.name.clone(),
            sink: String::new(),
            key: String::new(),
            correlation_id: format!("{}@{at}", found.key),
            message: head.clone(),
            payload: head,
            error: reason,
            attempts: Vec::new(),
            created_at: 0,
            replayed_at: None,
            accepted_at: Some(omniflow_state::now_secs()),
            discarded_at: None,
            queue: None,
        }
    }
}

/// Where a file's first line starts: after a UTF-8 byte order mark, if it has one.
fn first_line(file: &mut std::fs::File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut start = [0u8; 3];
    file.seek(SeekFrom::Start(0))?;
    let n = file.read(&mut start)?;
    Ok(if start[..n] == *files::BOM { 3 } else { 0 })
}

/// A CSV row as a JSON object of its header's columns, or why the row is refused: not
/// UTF-8, a quote left open, or another number of fields than the header has (a value
/// would be dropped or made up).
fn csv_row(columns: &[String], line: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "the row is not UTF-8 text".to_string())?;
    let values = omniflow_ir::path::csv_fields(text)?;
    if values.len() != columns.len() {
        return Err(format!(
            "the row has {} fields where the header has {}",
            values.len(),
            columns.len()
        ));
    }
    let object: serde_json::Map<String, Value> = columns
        .iter()
        .zip(values)
        .map(|(c, v)| (c.clone(), Value::String(v)))
        .collect();
    Ok(serde_json::to_vec(&Value::Object(object)).unwrap_or_default())
}
