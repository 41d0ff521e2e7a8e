//! `file.write`: appends each message as one JSONL line; a failed write is transient.

use super::Settings;
use crate::api::{ConnectorError, Map};
use crate::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::Value;
use std::cell::RefCell;
use std::io::Write;
use std::path::Path;

/// `file.write`: appends each message as one line.
pub struct FileSink {
    file: RefCell<std::fs::File>,
}

impl FileSink {
    /// Opens the target file (`dir` + `path`) for appending.
    pub fn new(settings: &Settings, options: &Map) -> Result<FileSink, ConnectorError> {
        let dir = &settings.dir;
        let name = options
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("out.jsonl");
        if let Some(problem) = omniflow_ir::path::file_path_problem(name, false) {
            return Err(ConnectorError::BadSetting(format!(
                "file sink path `{name}` {problem}"
            )));
        }
        let path = Path::new(dir).join(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                ConnectorError::BadSetting(format!("cannot open `{}`: {e}", path.display()))
            })?;
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
