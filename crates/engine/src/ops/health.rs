//! What `/health` reports: the state store, this replica's membership, and each source
//! that reads on its own (poll, file, schedule): whether its last attempt failed, since
//! when, and why. Sources report here; the ops endpoint renders it.

use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// One source's last outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceHealth {
    pub flow: String,
    pub source: String,
    /// Attempts failed in a row (0: the last one worked).
    pub failures: u64,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// The class of that reason (`unreadable_answer`, `auth`, `unexpected_answer`, ...).
    pub reason: Option<&'static str>,
    /// When the failures began (seconds since the epoch).
    pub failing_since: Option<i64>,
    /// When an attempt last worked.
    pub last_ok: Option<i64>,
}

/// The sources of one runner, by (flow, source).
#[derive(Default)]
pub struct Health {
    sources: RefCell<BTreeMap<(String, String), SourceHealth>>,
}

impl Health {
    fn entry<T>(&self, flow: &str, source: &str, change: impl FnOnce(&mut SourceHealth) -> T) -> T {
        let mut sources = self.sources.borrow_mut();
        let entry = sources
            .entry((flow.to_string(), source.to_string()))
            .or_insert_with(|| SourceHealth {
                flow: flow.to_string(),
                source: source.to_string(),
                ..SourceHealth::default()
            });
        change(entry)
    }

    /// A source's attempt worked.
    pub fn ok(&self, flow: &str, source: &str) {
        self.entry(flow, source, |h| {
            h.failures = 0;
            h.error = None;
            h.reason = None;
            h.failing_since = None;
            h.last_ok = Some(omniflow_state::now_secs());
        });
    }

    /// A source's attempt failed with `error`.
    pub fn failed(&self, flow: &str, source: &str, error: &str, reason: &'static str) {
        self.entry(flow, source, |h| {
            h.failures += 1;
            h.error = Some(error.chars().take(500).collect());
            h.reason = Some(reason);
            h.failing_since.get_or_insert(omniflow_state::now_secs());
        });
    }

    /// One line per source whose last attempt failed: `flow/source failing since T
    /// (N attempts, reason): error`, for `/ready`.
    pub fn failing_lines(&self) -> String {
        self.sources
            .borrow()
            .values()
            .filter(|h| h.failures > 0)
            .map(|h| {
                format!(
                    "source {}/{} failing since {} ({} attempts, {}): {}\n",
                    h.flow,
                    h.source,
                    h.failing_since.unwrap_or_default(),
                    h.failures,
                    h.reason.unwrap_or("other"),
                    h.error.as_deref().unwrap_or("")
                )
            })
            .collect()
    }

    /// Every source that reported, in (flow, source) order.
    pub fn sources(&self) -> Vec<SourceHealth> {
        self.sources.borrow().values().cloned().collect()
    }
}

/// The `/health` document: `ok` when the state takes writes, this process may act as
/// a replica and every source's last attempt worked; `degraded` when only sources fail
/// (the process still accepts and delivers); `failing` otherwise.
#[derive(Debug, Serialize)]
pub struct Report {
    pub status: &'static str,
    pub state_writable: bool,
    pub replica: Option<String>,
    pub replica_current: bool,
    pub sources: Vec<SourceHealth>,
}

impl Report {
    /// The report of a process whose store is `writable`, whose membership is `current`.
    pub fn new(health: &Health, writable: bool, replica: Option<&str>, current: bool) -> Report {
        let sources = health.sources();
        let status = match (writable && current, sources.iter().any(|s| s.failures > 0)) {
            (false, _) => "failing",
            (true, true) => "degraded",
            (true, false) => "ok",
        };
        Report {
            status,
            state_writable: writable,
            replica: replica.map(str::to_string),
            replica_current: current,
            sources,
        }
    }

    /// 503 only when the process cannot do its work (state or membership).
    pub fn http_status(&self) -> u16 {
        match self.status {
            "failing" => 503,
            _ => 200,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_source_degrades_the_report_and_a_working_attempt_clears_it() {
        let health = Health::default();
        health.ok("orders", "poll");
        assert_eq!(Report::new(&health, true, None, true).status, "ok");
        health.failed("orders", "poll", "HTTP 500 from the vendor", "server_error");
        health.failed("orders", "poll", "connection refused", "connect");
        let report = Report::new(&health, true, None, true);
        assert_eq!((report.status, report.http_status()), ("degraded", 200));
        assert_eq!(report.sources[0].failures, 2);
        assert_eq!(
            report.sources[0].error.as_deref(),
            Some("connection refused")
        );
        assert!(report.sources[0].failing_since.is_some());
        assert_eq!(report.sources[0].reason, Some("connect"));
        let lines = health.failing_lines();
        assert!(
            lines.starts_with("source orders/poll failing since ")
                && lines.ends_with("(2 attempts, connect): connection refused\n"),
            "{lines}"
        );
        let failing = Report::new(&health, false, Some("r1"), true);
        assert_eq!((failing.status, failing.http_status()), ("failing", 503));
        health.ok("orders", "poll");
        let report = Report::new(&health, true, None, true);
        assert_eq!(report.status, "ok");
        assert_eq!(report.sources[0].error, None);
        assert_eq!(health.failing_lines(), "");
    }
}
