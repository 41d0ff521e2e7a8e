//! OpenTelemetry export for `omniflow run` (`telemetry:` in omniflow.yaml): the runtime's
//! spans (one trace per message: map and route, each delivery, each attempt) through the
//! tracing bridge, and its metrics through the global meter, both over OTLP/HTTP with
//! protobuf bodies, batched on threads of their own.

use omniflow_engine::deploy;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::time::Duration;
use tracing_subscriber::Layer;

/// The installed exporters; [`Telemetry::shutdown`] sends what is left.
pub struct Telemetry {
    traces: SdkTracerProvider,
    metrics: SdkMeterProvider,
}

/// The tracing layer that turns spans into OpenTelemetry spans.
pub type SpanLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

impl Telemetry {
    /// Installs the exporters `settings` names as the global providers.
    pub fn start(settings: &deploy::Telemetry) -> Result<(Telemetry, SpanLayer), String> {
        let base = settings.otlp_endpoint.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "telemetry.otlp_endpoint `{base}` is not an http:// or https:// URL"
            ));
        }
        let resource = Resource::builder()
            .with_service_name(
                settings
                    .service_name
                    .clone()
                    .unwrap_or_else(|| "omniflow".into()),
            )
            .build();
        let spans = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{base}/v1/traces"))
            .build()
            .map_err(|e| format!("telemetry: the span exporter: {e}"))?;
        let traces = SdkTracerProvider::builder()
            .with_batch_exporter(spans)
            .with_resource(resource.clone())
            .build();
        let measures = MetricExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{base}/v1/metrics"))
            .build()
            .map_err(|e| format!("telemetry: the metric exporter: {e}"))?;
        let every = settings
            .metrics_every
            .map_or(Duration::from_secs(10), |t| t.0);
        let metrics = SdkMeterProvider::builder()
            .with_reader(
                PeriodicReader::builder(measures)
                    .with_interval(every)
                    .build(),
            )
            .with_resource(resource)
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(traces.tracer("omniflow"))
            .boxed();
        opentelemetry::global::set_tracer_provider(traces.clone());
        opentelemetry::global::set_meter_provider(metrics.clone());
        omniflow_engine::ops::telemetry::set_exporting();
        Ok((Telemetry { traces, metrics }, layer))
    }

    /// Exports what is buffered and stops the exporters.
    pub fn shutdown(self) {
        if let Err(err) = self.traces.shutdown() {
            tracing::warn!(error = %err, "telemetry: the last spans were not exported");
        }
        if let Err(err) = self.metrics.shutdown() {
            tracing::warn!(error = %err, "telemetry: the last metrics were not exported");
        }
    }
}
