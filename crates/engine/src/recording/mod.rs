//! Recording a run for golden tests: each message a flow accepts, masked ([`mask`]), with
//! what the flow makes of it (the documents each sink is given, or the rejection), and the
//! answer each sink's delivery ended with. `omniflow test --from-recording` runs the
//! recorded messages through changed flows and reports every output that differs.
//!
//! A recording is JSON lines: `{"kind":"message", "flow", "source", "correlation",
//! "message", "outcome"}` and `{"kind":"answer", "flow", "correlation", "sink", "step",
//! "detail"}`. The outcome is computed from the masked message, so a replay of the same
//! flows gives it again; what masking changed in it (values the flow took from elsewhere)
//! is a pseudonym, which a replay does not compare. The file is readable by its owner only.

pub mod mask;

use crate::mapper::map_message;
use mask::Masking;
use omniflow_mapping::json_in::Projection;
use omniflow_mapping::pipeline::Pipeline;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Writes a recording while its window is open.
pub struct Recorder {
    out: RefCell<std::io::BufWriter<std::fs::File>>,
    masking: Masking,
    /// When the window closes (`None`: when the run stops).
    until: Option<Instant>,
    /// The first write error, reported once; nothing more is written after it.
    failed: std::cell::Cell<bool>,
}

impl Recorder {
    /// Creates `path` (it must not exist: a recording is never overwritten).
    pub fn create(
        path: &Path,
        window: Option<Duration>,
        masking: Masking,
    ) -> Result<Recorder, String> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(path)
            .map_err(|err| format!("cannot create the recording `{}`: {err}", path.display()))?;
        Ok(Recorder {
            out: RefCell::new(std::io::BufWriter::new(file)),
            masking,
            until: window.map(|w| Instant::now() + w),
            failed: std::cell::Cell::new(false),
        })
    }

    fn open(&self) -> bool {
        !self.failed.get() && self.until.is_none_or(|until| Instant::now() < until)
    }

    fn write(&self, line: &Value) {
        let mut out = self.out.borrow_mut();
        let written = serde_json::to_writer(&mut *out, line)
            .map_err(std::io::Error::other)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        if let Err(err) = written {
            self.failed.set(true);
            tracing::error!(error = %err, "cannot write the recording; recording stopped");
        }
    }

    /// Records a message `source` of flow `flow_idx` accepted, masked, with what the flow
    /// makes of the masked message.
    pub fn message(
        &self,
        pipeline: &Pipeline,
        (flow_idx, source_idx): (usize, usize),
        correlation: &str,
        message: &[u8],
    ) {
        if !self.open() {
            return;
        }
        let flow = &pipeline.flows[flow_idx];
        let source = &flow.nodes[source_idx].name;
        let masked = match serde_json::from_slice::<Value>(message) {
            Ok(mut value) => {
                self.masking.mask(&mut value);
                value
            }
            // Not JSON: nothing of it is kept, and a replay skips it.
            Err(_) => Value::Null,
        };
        let mut outcome = match &masked {
            Value::Null => Value::Null,
            value => outcome(pipeline, (flow_idx, source_idx), &value.to_string()),
        };
        // What the flow adds from elsewhere (a table of customers) is masked too; a replay
        // does not compare masked values.
        self.masking.mask(&mut outcome);
        self.write(&json!({
            "kind": "message",
            "flow": flow.name,
            "source": source,
            "correlation": correlation,
            "message": masked,
            "outcome": outcome,
        }));
    }

    /// Records how a delivery ended (`delivered` with the answer's document, or
    /// `dead_lettered` with the reason), masked.
    pub fn answer(&self, event: &omniflow_state::lineage::Event) {
        if !self.open() || !matches!(event.step.as_str(), "delivered" | "dead_lettered") {
            return;
        }
        let mut detail = event.detail.clone();
        self.masking.mask(&mut detail);
        self.write(&json!({
            "kind": "answer",
            "flow": event.flow,
            "correlation": event.correlation,
            "sink": event.node,
            "step": event.step,
            "detail": detail,
        }));
    }
}

/// What a flow makes of a message from `source`: `{"rejected": {node, reason}}` or
/// `{"deliveries": [{sink, key, document}]}` in the order the flow asks for them.
pub fn outcome(pipeline: &Pipeline, at: (usize, usize), message: &str) -> Value {
    let flow = &pipeline.flows[at.0];
    let source = &flow.nodes[at.1].name;
    match map_message(
        pipeline,
        at,
        source,
        &Projection::whole(),
        message.as_bytes(),
    ) {
        Err((node, reason)) => json!({"rejected": {"node": node, "reason": reason}}),
        Ok((jobs, _)) => {
            let deliveries: Vec<Value> = jobs
                .iter()
                .map(|job| {
                    json!({
                        "sink": flow.nodes[job.sink].name,
                        "key": job.key,
                        "document": serde_json::from_slice::<Value>(&job.payload).unwrap_or_else(
                            |_| Value::String(String::from_utf8_lossy(&job.payload).into_owned())
                        ),
                    })
                })
                .collect();
            json!({ "deliveries": deliveries })
        }
    }
}
