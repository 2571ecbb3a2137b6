//! With an endpoint configured, spans leave the process over OTLP/HTTP: a local
//! stand-in collector receives `POST /v1/traces` with a protobuf body.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn spans_are_exported_to_the_configured_collector() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = vec![0_u8; 64 * 1024];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
            let _ = tx.send(head);
        }
    });
    let guard = telemetry::init(&telemetry::TelemetryConfig {
        service_name: "otlp-test".into(),
        log_format: telemetry::LogFormat::Json,
        log_filter: "warn".into(),
        otlp_endpoint: format!("http://127.0.0.1:{port}"),
    })
    .unwrap();
    {
        let span = tracing::info_span!("registry_import", bank = "sber");
        let _entered = span.enter();
        assert!(
            telemetry::trace_id(&span).is_some(),
            "spans get real trace ids"
        );
    }
    // Dropping the guard flushes the exporter.
    drop(guard);
    let request = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the collector got nothing");
    assert!(request.starts_with("POST /v1/traces"), "{request}");
    assert!(
        request
            .to_ascii_lowercase()
            .contains("application/x-protobuf"),
        "{request}"
    );
}
