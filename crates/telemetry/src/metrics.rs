//! The process-wide Prometheus registry and the platform's own metrics.

use std::sync::OnceLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub bus_published: IntCounterVec,
    pub bus_consumed: IntCounterVec,
    pub bus_retried: IntCounterVec,
    pub bus_dead_lettered: IntCounterVec,
    pub outbox_pending: IntGaugeVec,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new();
    let http_requests = IntCounterVec::new(
        Opts::new("http_requests_total", "HTTP requests answered"),
        &["service", "method", "route", "status"],
    )?;
    let http_duration = HistogramVec::new(
        HistogramOpts::new("http_request_duration_seconds", "HTTP request duration"),
        &["service", "route"],
    )?;
    let bus_published = IntCounterVec::new(
        Opts::new("bus_published_total", "Messages published from the outbox"),
        &["service"],
    )?;
    let bus_consumed = IntCounterVec::new(
        Opts::new("bus_consumed_total", "Messages consumed, by outcome"),
        &["consumer", "outcome"],
    )?;
    let bus_retried = IntCounterVec::new(
        Opts::new(
            "bus_retried_total",
            "Messages scheduled for another attempt",
        ),
        &["consumer"],
    )?;
    let bus_dead_lettered = IntCounterVec::new(
        Opts::new("bus_dead_lettered_total", "Messages parked as dead letters"),
        &["consumer"],
    )?;
    let outbox_pending = IntGaugeVec::new(
        Opts::new("outbox_pending", "Outbox rows not yet published"),
        &["service"],
    )?;
    registry.register(Box::new(http_requests.clone()))?;
    registry.register(Box::new(http_duration.clone()))?;
    registry.register(Box::new(bus_published.clone()))?;
    registry.register(Box::new(bus_consumed.clone()))?;
    registry.register(Box::new(bus_retried.clone()))?;
    registry.register(Box::new(bus_dead_lettered.clone()))?;
    registry.register(Box::new(outbox_pending.clone()))?;
    Ok(Metrics {
        registry,
        http_requests,
        http_duration,
        bus_published,
        bus_consumed,
        bus_retried,
        bus_dead_lettered,
        outbox_pending,
    })
}

/// The platform metrics, registered on first use.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| build().expect("metric definitions are static and valid"))
}

/// The registry in Prometheus' text exposition format.
pub fn render() -> String {
    let mut buf = Vec::new();
    let families = metrics().registry.gather();
    if TextEncoder::new().encode(&families, &mut buf).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}
