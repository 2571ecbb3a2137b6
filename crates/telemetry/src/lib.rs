//! Telemetry set up once per process: `tracing` with JSON (or pretty) logs,
//! OpenTelemetry export over OTLP/HTTP when an endpoint is configured, W3C trace
//! context carried across HTTP and AMQP, and the Prometheus registry.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub mod metrics;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// What [`init`] needs to know.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    pub service_name: String,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// OTLP/HTTP base endpoint, e.g. `http://collector:4318`; empty disables export.
    pub otlp_endpoint: String,
}

/// Keeps the tracer provider alive; dropping it flushes pending spans.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the global subscriber. Safe to call more than once (tests): later
/// calls leave the first subscriber in place.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, String> {
    if INSTALLED.get().is_some() {
        return Ok(TelemetryGuard { provider: None });
    }
    let filter = EnvFilter::try_new(&config.log_filter)
        .map_err(|e| format!("key `telemetry.log_filter`: {e}"))?;

    // A provider exists even without an exporter so spans get real trace ids,
    // which is what carries the W3C context into AMQP headers.
    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder_empty()
            .with_service_name(config.service_name.clone())
            .build(),
    );
    if !config.otlp_endpoint.is_empty() {
        use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
        let endpoint = format!("{}/v1/traces", config.otlp_endpoint.trim_end_matches('/'));
        // The SDK's batch processor exports from a thread of its own, outside any
        // Tokio runtime, so the client is reqwest's blocking one — built on a
        // plain thread, since building it inside a runtime is not allowed.
        let client = std::thread::spawn(reqwest::blocking::Client::new)
            .join()
            .map_err(|_| {
                "key `telemetry.otlp_endpoint`: cannot build the HTTP client".to_string()
            })?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| format!("key `telemetry.otlp_endpoint`: {e}"))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer("portal");
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    // The log filter applies to the log output only: spans stay enabled for
    // OpenTelemetry at INFO, so trace context is carried even when logs are quiet.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    let registry = tracing_subscriber::registry().with(otel);
    let result = match config.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
    };
    let _ = INSTALLED.set(());
    if result.is_err() {
        // Another subscriber (a test harness) is installed already.
        return Ok(TelemetryGuard { provider: None });
    }
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// The W3C `traceparent`/`tracestate` of the current span, for outgoing headers.
pub fn current_trace_headers() -> BTreeMap<String, String> {
    let context = tracing::Span::current().context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.into_iter().collect()
}

/// Makes `span` a child of the trace named in incoming headers (HTTP or AMQP),
/// if they carry one.
pub fn adopt_trace_headers<'a>(
    span: &tracing::Span,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    let carrier: HashMap<String, String> = headers
        .into_iter()
        .filter(|(k, _)| {
            k.eq_ignore_ascii_case("traceparent") || k.eq_ignore_ascii_case("tracestate")
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    if carrier.is_empty() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

/// The trace id of `span` as 32 hex digits, if it has one (for problem details and logs).
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let context = span.context();
    let span_ref = context.span();
    let sc = span_ref.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}
