//! OpenTelemetry on the engine's side: W3C `traceparent` in (a webhook's, kept with the
//! message) and out (on every sink call), and the metrics mirrored to the global meter.
//! The exporters are installed by the command (`omniflow run`) when the deployment asks;
//! until then nothing here costs more than a flag check.

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::KeyValue;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Says that exporters are installed (spans and metrics go somewhere).
pub fn set_exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// True once exporters are installed.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// A `traceparent` header value (version 00), or `None` when it is malformed or names
/// an all-zero trace or span.
pub fn parse_traceparent(text: &str) -> Option<SpanContext> {
    let mut parts = text.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    if parts.next().is_some()
        || version != "00"
        || !hex(trace, 32)
        || !hex(span, 16)
        || !hex(flags, 2)
    {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?);
    let context = SpanContext::new(trace, span, flags, true, TraceState::default());
    context.is_valid().then_some(context)
}

/// The `traceparent` of `span` (to send on a call it makes); `None` when no trace is
/// being exported.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !exporting() {
        return None;
    }
    let context = span.context();
    let span_ref = context.span();
    let sc = span_ref.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// Makes `span` a child of the remote span `traceparent` names (a malformed one is
/// ignored: the span starts a trace of its own).
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if !exporting() {
        return;
    }
    if let Some(remote) = traceparent.and_then(parse_traceparent) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
}

/// The metrics, mirrored to OpenTelemetry instruments of the same names (counters without
/// their `_total`), each labelled with `flow` and `node`.
pub struct Mirror {
    meter: Meter,
    counters: RefCell<HashMap<&'static str, Counter<u64>>>,
    gauges: RefCell<HashMap<&'static str, Gauge<i64>>>,
    histograms: RefCell<HashMap<&'static str, Histogram<f64>>>,
}

fn labels(flow: &str, node: &str) -> [KeyValue; 2] {
    [
        KeyValue::new("flow", flow.to_string()),
        KeyValue::new("node", node.to_string()),
    ]
}

impl Mirror {
    /// A mirror to the global meter provider, when exporters are installed.
    pub fn global() -> Option<Mirror> {
        exporting().then(|| Mirror {
            meter: opentelemetry::global::meter("omniflow"),
            counters: RefCell::default(),
            gauges: RefCell::default(),
            histograms: RefCell::default(),
        })
    }

    pub fn add(&self, name: &'static str, flow: &str, node: &str, by: u64) {
        let mut counters = self.counters.borrow_mut();
        let counter = counters.entry(name).or_insert_with(|| {
            let short = name.strip_suffix("_total").unwrap_or(name);
            self.meter.u64_counter(short).build()
        });
        counter.add(by, &labels(flow, node));
    }

    pub fn set(&self, name: &'static str, flow: &str, node: &str, value: i64) {
        let mut gauges = self.gauges.borrow_mut();
        let gauge = gauges
            .entry(name)
            .or_insert_with(|| self.meter.i64_gauge(name).build());
        gauge.record(value, &labels(flow, node));
    }

    pub fn observe(&self, name: &'static str, flow: &str, node: &str, seconds: f64) {
        let mut histograms = self.histograms.borrow_mut();
        let histogram = histograms
            .entry(name)
            .or_insert_with(|| self.meter.f64_histogram(name).with_unit("s").build());
        histogram.record(seconds, &labels(flow, node));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_read_as_the_w3c_recommendation_writes_them() {
        let good =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(
            good.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(good.is_remote() && good.is_sampled());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }
}
