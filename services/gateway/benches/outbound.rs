//! Outbound deliveries to a fast simulated participant service at 64 in
//! flight: 16 caterer participants (the default 4 in flight each) behind one
//! bare actix-web handler answering ACCEPT; `BENCH_DELIVERIES` (default
//! 20,000) deliveries queued at once; the time until all are delivered, each
//! one an SMEV envelope built, signed with the gateway's ГОСТ Р 34.10-2012
//! key (as in production), posted, answered, logged and marked.
//!
//! Run: `cargo bench -p gateway --bench outbound` (embedded);
//! `PORTAL_TEST_MODE=distributed` for PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::float_arithmetic,
    clippy::cast_precision_loss
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;

mod common;
use common::env;

const ACCEPT: &str = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:smev="http://smev.gosuslugi.ru/rev120315"><soapenv:Body><c:PushClassRequestsResponse xmlns:c="urn:tyumen:portal:gateway:caterers:1"><smev:Message><smev:Sender><smev:Code>CAT</smev:Code><smev:Name>c</smev:Name></smev:Sender><smev:Recipient><smev:Code>TMNPORTAL</smev:Code><smev:Name>p</smev:Name></smev:Recipient><smev:ServiceName>caterer-push</smev:ServiceName><smev:TypeCode>OTHR</smev:TypeCode><smev:Status>ACCEPT</smev:Status><smev:Date>2026-05-13T10:00:00+05:00</smev:Date><smev:ExchangeType>1</smev:ExchangeType></smev:Message><c:MessageData/></c:PushClassRequestsResponse></soapenv:Body></soapenv:Envelope>"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total = env("BENCH_DELIVERIES", 20_000);
    let participants = 16;
    let received = Arc::new(AtomicUsize::new(0));
    let r2 = received.clone();
    let server = HttpServer::new(move || {
        let r = r2.clone();
        App::new().default_service(web::to(move |_b: web::Bytes| {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::Relaxed);
                HttpResponse::Ok().content_type("text/xml").body(ACCEPT)
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());

    // The gateway's ГОСТ key and certificate, made by the openssl command.
    let keys = std::env::temp_dir().join(format!("portal-bench-keys-{}", std::process::id()));
    std::fs::create_dir_all(&keys).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "gost2012_256",
            "-pkeyopt",
            "paramset:A",
            "-md_gost12_256",
            "-nodes",
            "-days",
            "30",
            "-keyout",
            "gateway.key",
            "-out",
            "gateway.pem",
            "-subj",
            "/CN=TMNPORTAL",
        ])
        .current_dir(&keys)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl req gost2012_256: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key_file = |f: &str| Some(keys.join(f).to_string_lossy().into_owned());
    let app = common::spawn(
        chrono::NaiveDate::from_ymd_opt(2026, 5, 13)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap(),
        |s| {
            s.http.workers = 1;
            s.gateway.signing_key_file = key_file("gateway.key");
            s.gateway.signing_cert_file = key_file("gateway.pem");
        },
    )
    .await;
    let http = reqwest::Client::new();
    let operator = common::register_bank(&app, &http, &[], &[]).await;
    for p in 0..participants {
        let res = http
            .put(app.url(&format!("/api/gateway/participants/CAT{p:02}")))
            .bearer_auth(&operator)
            .json(&json!({
                "name": "Комбинат питания", "inn": "7707083893", "ogrn": "1027700132195",
                "kind": "caterer", "contour": "production", "organizer": "org-1",
                "address": format!("http://{addr}/push/{p}"),
                "contacts": { "name": "Иванов Иван", "phone": "+7 345 200-00-00", "email": "it@cat.example" }
            }))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
    }
    let ctx = app.context("gateway");
    let request = json!({"id": "r", "school": "s1", "class": "4a", "class_name": "4А", "date": "2026-05-13",
        "meal_time": "lunch-1", "meal_kind": "lunch", "formed_by": "t", "formed_at": "2026-05-13T09:30:00+05:00",
        "closed": false, "included": 1, "excluded": 0, "lines": [
            {"account": "ls-a", "student": "Антонов Антон", "complex": "c1", "source": "default",
             "price": {"price": "150.00", "reimbursed": "0.00", "extras": "0.00", "to_pay": "150.00"},
             "balance": "10.00", "included": true}]});
    let payload = json!({"reason": "formed", "requests": [request]}).to_string();
    let now = storage::now_naive() + chrono::Duration::days(1);
    let rows: Vec<gateway::store::DeliveryRow> = (0..total)
        .map(|i| gateway::store::DeliveryRow {
            id: format!("bench-{i}"),
            participant: format!("CAT{:02}", i % participants),
            operation: "PushClassRequests".into(),
            payload: payload.clone(),
            status: gateway::store::PENDING.into(),
            attempts: 0,
            next_at: now,
            last_error: None,
            created_at: now,
            delivered_at: None,
        })
        .collect();
    // Queued with next_at tomorrow, then all made due at once.
    ctx.db
        .write(move |c| -> Result<(), storage::StorageError> {
            for r in &rows {
                gateway::store::queue_delivery(c, r)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    println!(
        "{}: {total} deliveries to {participants} participants (4 in flight each: 64)",
        common::mode()
    );
    let started = Instant::now();
    ctx.db
        .write(|c| {
            use diesel::prelude::*;
            diesel::sql_query("UPDATE deliveries SET next_at = created_at - INTERVAL '2 days'")
                .execute(c)
                .or_else(|_| {
                    diesel::sql_query(
                        "UPDATE deliveries SET next_at = datetime(created_at, '-2 days')",
                    )
                    .execute(c)
                })
                .map_err(storage::StorageError::from)
        })
        .await
        .unwrap();
    loop {
        let delivered = ctx
            .db
            .read(|c| {
                gateway::store::list_deliveries(c, Some(gateway::store::DELIVERED), None, i64::MAX)
            })
            .await
            .unwrap()
            .len();
        if delivered >= total {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{delivered} of {total} after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "all delivered in {secs:.1} s: {:.0} deliveries/s (the service received {} calls)",
        total as f64 / secs,
        received.load(Ordering::Relaxed)
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(&keys);
}
