//! A bank's `check` through the XML gateway (read, XSD validation, the
//! envelope's judgement and rights, the message log, request/reply to payments
//! over the bus and back) at 64 concurrent clients, beside a bare actix-web
//! handler answering the same response body, in the same run on the same
//! machine. Reports requests per second, p50 and p99 of each and the ratio.
//! Then the same `check` with every request signed (XMLDSig in the SMEV
//! envelope, verified by the gateway): RSA-SHA256 and ГОСТ Р 34.10-2012
//! (256), beside the unsigned figure of the same run; and what signing one
//! answer costs the gateway (`gateway.signing_key_file`), single-threaded.
//! The signed requests are made before their run (two threads), so the
//! clients' signing is not measured.
//!
//! Run: `cargo bench -p gateway --bench check` (embedded: SQLite, the
//! in-process bus). `PORTAL_TEST_MODE=distributed` runs the gateway and
//! payments on PostgreSQL and RabbitMQ (`bash scripts/services.sh` first; both
//! services in this process). `BENCH_REQUESTS` (default 20000) and
//! `BENCH_CLIENTS` (default 64) scale it.

#![allow(
    clippy::unwrap_used,
    clippy::float_arithmetic,
    clippy::cast_precision_loss
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use auth::Role;
use gateway::soap::dsig;
use openssl::pkey::{PKey, Private};
use serde_json::json;

mod common;
use common::env;

fn envelope(message_id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:smev="http://smev.gosuslugi.ru/rev120315" xmlns:b="urn:tyumen:portal:gateway:banks:1">
<soapenv:Header><smev:Header><smev:NodeId>node-1</smev:NodeId><smev:MessageId>{message_id}</smev:MessageId><smev:TimeStamp>2026-09-14T10:00:00+05:00</smev:TimeStamp><smev:MessageClass>REQUEST</smev:MessageClass></smev:Header></soapenv:Header>
<soapenv:Body>
<b:Check>
<smev:Message>
<smev:Sender><smev:Code>BANK01</smev:Code><smev:Name>Bank</smev:Name></smev:Sender>
<smev:Recipient><smev:Code>TMNPORTAL</smev:Code><smev:Name>Portal</smev:Name></smev:Recipient>
<smev:ServiceName>banks</smev:ServiceName><smev:TypeCode>OTHR</smev:TypeCode><smev:Status>REQUEST</smev:Status>
<smev:Date>2026-09-14T10:00:00+05:00</smev:Date><smev:ExchangeType>1</smev:ExchangeType><smev:CaseNumber>{message_id}</smev:CaseNumber>
</smev:Message>
<b:MessageData><b:AppData><b:Check><b:Account>ls-77</b:Account></b:Check></b:AppData></b:MessageData>
</b:Check>
</soapenv:Body>
</soapenv:Envelope>"#
    )
}

struct Run {
    seconds: f64,
    latencies: Vec<Duration>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        l[i]
    }
}

/// What one door is asked.
#[derive(Clone)]
struct Door {
    url: String,
    /// The i-th request's body.
    body: Arc<dyn Fn(usize) -> String + Send + Sync>,
    content_type: &'static str,
    bearer: Option<String>,
    /// Every answer is a 200 whose body contains this.
    expect: &'static str,
}

/// `total` POSTs to the door from `clients` concurrent clients.
async fn load(door: &Door, total: usize, clients: usize) -> Run {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, next, door) = (http.clone(), next.clone(), door.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let body = (door.body)(i);
                let t = Instant::now();
                let mut req = http
                    .post(&door.url)
                    .header("Content-Type", door.content_type)
                    .body(body);
                if let Some(token) = &door.bearer {
                    req = req.bearer_auth(token);
                }
                let res = req.send().await.unwrap();
                let status = res.status();
                let text = res.text().await.unwrap();
                latencies.push(t.elapsed());
                assert!(
                    status == 200 && text.contains(door.expect),
                    "{status}: {text}"
                );
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    Run {
        seconds: started.elapsed().as_secs_f64(),
        latencies,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total = env("BENCH_REQUESTS", 20_000);
    let clients = env("BENCH_CLIENTS", 64);
    let mode = common::mode();
    let app = common::spawn(
        chrono::NaiveDate::from_ymd_opt(2026, 9, 14)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap(),
        |s| {
            s.http.workers = 2;
            s.storage.pool_size = 16;
        },
    )
    .await;
    let http = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    let keys = [
        ("RSA-SHA256", rsa_key()),
        ("ГОСТ Р 34.10-2012 (256)", gost_key()),
    ];
    let signers: Vec<(&str, Arc<dsig::Signer>, String)> = keys
        .iter()
        .map(|(name, key)| {
            let cert = dsig::self_signed(key, "BANK01", now - 60, now + 86_400).unwrap();
            let pem = String::from_utf8(cert.to_pem().unwrap()).unwrap();
            let signer =
                dsig::Signer::from_pem(&key.private_key_to_pem_pkcs8().unwrap(), pem.as_bytes())
                    .unwrap();
            (*name, Arc::new(signer), pem)
        })
        .collect();
    let certificates: Vec<String> = signers.iter().map(|(_, _, pem)| pem.clone()).collect();
    let operator = common::register_bank(&app, &http, &["banks.Check"], &certificates).await;
    let res = http
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(&operator)
        .json(&json!({
            "account": "ls-77", "student_name": "Сидорова Мария Ивановна", "school": "school-5",
            "class_name": "2В", "municipality": "tyumen", "organizer": "org-1"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // One real answer: the bare handler sends the same bytes back.
    let canned = http
        .post(app.url("/soap/banks"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(envelope("warm-up"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        canned.contains("<smev:Status>RESULT</smev:Status>"),
        "{canned}"
    );
    let bare_body = web::Bytes::from(canned.clone());
    let bare = HttpServer::new(move || {
        let body = bare_body.clone();
        App::new().route(
            "/bare",
            web::post().to(move |_req: web::Bytes| {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("text/xml; charset=utf-8")
                        .body(body)
                }
            }),
        )
    })
    .workers(2)
    .bind("127.0.0.1:0")
    .unwrap();
    let bare_addr = bare.addrs()[0];
    let bare = bare.run();
    let bare_handle = bare.handle();
    tokio::spawn(bare);

    println!(
        "{mode}: {total} requests, {clients} clients, answer {} bytes",
        canned.len()
    );
    let xml = "text/xml; charset=utf-8";
    let gw = load(
        &Door {
            url: app.url("/soap/banks"),
            body: Arc::new(|i| envelope(&format!("bench-{i}"))),
            content_type: xml,
            bearer: None,
            expect: "<smev:Status>RESULT</smev:Status>",
        },
        total,
        clients,
    )
    .await;
    // The work behind the gateway alone: payments' own REST door for banks
    // (the same check, JSON, a bank's token). The gateway cannot be faster.
    let bank = app.token("sber-gw", &[Role::Bank], |r| r.banks = vec!["sber".into()]);
    let rest = load(
        &Door {
            url: app.url("/api/payments/banks/check"),
            body: Arc::new(|_| r#"{"account":"ls-77"}"#.to_string()),
            content_type: "application/json",
            bearer: Some(bank),
            expect: "\"code\":0",
        },
        total,
        clients,
    )
    .await;
    let plain = load(
        &Door {
            url: format!("http://{bare_addr}/bare"),
            body: Arc::new(|i| envelope(&format!("bare-{i}"))),
            content_type: xml,
            bearer: None,
            expect: "RESULT",
        },
        total,
        clients,
    )
    .await;
    let mut signed = Vec::new();
    for (name, signer, _) in &signers {
        let bodies = sign_all(signer.clone(), name, total).await;
        let run = load(
            &Door {
                url: app.url("/soap/banks"),
                body: Arc::new(move |i| bodies[i].clone()),
                content_type: xml,
                bearer: None,
                expect: "<smev:Status>RESULT</smev:Status>",
            },
            total,
            clients,
        )
        .await;
        signed.push((*name, run));
    }
    let row = |name: &str, r: &Run| {
        println!(
            "| {name} | {:.0} | {:.1} | {:.1} |",
            r.per_second(),
            ms(r.percentile(0.5)),
            ms(r.percentile(0.99))
        );
    };
    println!("| door | requests/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    row("gateway `check` (payments behind it)", &gw);
    row(
        "payments' REST `check` alone (the work behind the gateway)",
        &rest,
    );
    row("bare actix-web handler, same body", &plain);
    for (name, run) in &signed {
        row(&format!("gateway `check`, requests signed {name}"), run);
    }
    let ratio = gw.per_second() / plain.per_second();
    println!(
        "payments alone / bare: {:.2} (the most any door in front of payments can reach)",
        rest.per_second() / plain.per_second()
    );
    let p99 = ms(gw.percentile(0.99));
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("gateway / bare: {ratio:.2}");
    println!(
        "goals (embedded): ≥ 2,000 req/s: {:.0} — {}; ≥ 0.2 × bare: {ratio:.2} — {}; p99 < 50 ms: {p99:.1} — {}",
        gw.per_second(),
        verdict(gw.per_second() >= 2000.0),
        verdict(ratio >= 0.2),
        verdict(p99 < 50.0)
    );
    for (name, run) in &signed {
        let r = run.per_second() / gw.per_second();
        println!(
            "signed {name} / unsigned: {r:.2} — goal ≥ 0.5: {}; p99 {:.1} ms",
            verdict(r >= 0.5),
            ms(run.percentile(0.99))
        );
    }
    // Checking one signed request, and signing an answer (the gateway's own
    // key), one thread.
    let unsigned = envelope("one");
    let n = 2_000;
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(dsig::check(&unsigned));
    }
    println!(
        "checking an unsigned request for a signature: {:.0} µs",
        started.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
    for (name, signer, _) in &signers {
        let request = signer.sign(&unsigned, dsig::ACTOR_SMEV).unwrap();
        let started = Instant::now();
        for _ in 0..n {
            assert!(matches!(
                std::hint::black_box(dsig::check(&request)),
                dsig::Checked::Verified(_)
            ));
        }
        println!(
            "checking one signed request ({} bytes) {name}: {:.0} µs",
            request.len(),
            started.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        );
    }
    for (name, signer, _) in &signers {
        let n = 2_000;
        let started = Instant::now();
        for _ in 0..n {
            std::hint::black_box(signer.sign(&canned, dsig::ACTOR_RECIPIENT).unwrap());
        }
        println!(
            "signing one answer ({} bytes) {name}: {:.0} µs",
            canned.len(),
            started.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        );
    }
    bare_handle.stop(true).await;
    app.stop().await;
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
}

/// A ГОСТ key by the openssl command (the gost engine OPENSSL_CONF loads).
fn gost_key() -> PKey<Private> {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "gost2012_256",
            "-pkeyopt",
            "paramset:A",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl genpkey gost2012_256: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PKey::private_key_from_pem(&out.stdout).unwrap()
}

/// `total` requests signed by `signer`, on two threads.
async fn sign_all(signer: Arc<dsig::Signer>, name: &str, total: usize) -> Arc<Vec<String>> {
    let half = total / 2;
    let tag: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    let part = |from: usize, to: usize| {
        let (signer, tag) = (signer.clone(), tag.clone());
        tokio::task::spawn_blocking(move || {
            (from..to)
                .map(|i| {
                    signer
                        .sign(&envelope(&format!("signed-{tag}-{i}")), dsig::ACTOR_SMEV)
                        .unwrap()
                })
                .collect::<Vec<_>>()
        })
    };
    let (a, b) = (part(0, half), part(half, total));
    let mut all = a.await.unwrap();
    all.extend(b.await.unwrap());
    Arc::new(all)
}
