//! A bank's day registry of 1,000,000 lines through the SOAP door, end to end:
//! `UploadRegistry` with the file as the AppDocument (ACCEPT), the gateway
//! keeping it in 1 MiB chunks and sending payments a reference, payments
//! fetching the chunks over request/reply and importing every line (each one
//! a credit to a personal account), and `RegistryState` polled until RESULT
//! with the reconciliation report as the answer's document. Reports the file
//! and body sizes, the time to ACCEPT, to RESULT, the report's size and the
//! process's peak resident memory.
//!
//! Run: `cargo bench -p gateway --bench registry` (embedded: SQLite, the
//! in-process bus). `PORTAL_TEST_MODE=distributed` runs it on PostgreSQL and
//! RabbitMQ (`bash scripts/services.sh` first). `BENCH_REGISTRY_LINES`
//! (default 1,000,000) and `BENCH_ACCOUNTS` (default 1,000) scale it.

#![allow(
    clippy::unwrap_used,
    clippy::float_arithmetic,
    clippy::cast_precision_loss
)]

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

mod common;
use common::env;

fn message(op: &str, id: &str, status: &str, refs: &str, data: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:smev="http://smev.gosuslugi.ru/rev120315" xmlns:b="urn:tyumen:portal:gateway:banks:1">
<soapenv:Header><smev:Header><smev:NodeId>node-1</smev:NodeId><smev:MessageId>{id}</smev:MessageId><smev:TimeStamp>2026-09-14T18:00:00+05:00</smev:TimeStamp><smev:MessageClass>REQUEST</smev:MessageClass></smev:Header></soapenv:Header>
<soapenv:Body><b:{op}><smev:Message>
<smev:Sender><smev:Code>BANK01</smev:Code><smev:Name>Bank</smev:Name></smev:Sender>
<smev:Recipient><smev:Code>TMNPORTAL</smev:Code><smev:Name>Portal</smev:Name></smev:Recipient>
<smev:ServiceName>banks</smev:ServiceName><smev:TypeCode>OTHR</smev:TypeCode><smev:Status>{status}</smev:Status>
<smev:Date>2026-09-14T18:00:00+05:00</smev:Date><smev:ExchangeType>1</smev:ExchangeType>{refs}
</smev:Message><b:MessageData>{data}</b:MessageData></b:{op}></soapenv:Body></soapenv:Envelope>"#
    )
}

/// Peak resident memory of this process (VmHWM), MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn between<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find("</")?;
    Some(&xml[start..end])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let lines = env("BENCH_REGISTRY_LINES", 1_000_000);
    let accounts = env("BENCH_ACCOUNTS", 1_000);
    let mode = common::mode();
    let app = common::spawn(
        chrono::NaiveDate::from_ymd_opt(2026, 9, 14)
            .unwrap()
            .and_hms_opt(18, 0, 0)
            .unwrap(),
        |s| {
            s.http.workers = 2;
            s.gateway.service_timeout_ms = 60_000;
        },
    )
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let operator = common::register_bank(
        &app,
        &http,
        &["banks.UploadRegistry", "banks.RegistryState"],
        &[],
    )
    .await;
    for a in 0..accounts {
        let res = http
            .post(app.url("/api/payments/accounts"))
            .bearer_auth(&operator)
            .json(&json!({
                "account": format!("ls-{a:06}"), "student_name": "Сидорова Мария Ивановна",
                "school": "school-5", "class_name": "2В", "municipality": "tyumen", "organizer": "org-1"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }

    // The file: one credit per line, in Windows-1251 as banks send it.
    let mut csv = String::with_capacity(lines * 64);
    let mut total_kopecks: i64 = 0;
    for i in 0..lines {
        let kopecks = 10_000 + (i as i64 % 50) * 100;
        total_kopecks += kopecks;
        csv.push_str(&format!(
            "R{i:09};ls-{:06};{}.{:02};14.09.2026 {:02}:{:02}:00;Payer\r\n",
            i % accounts,
            kopecks / 100,
            kopecks % 100,
            8 + (i / 60) % 10,
            i % 60
        ));
    }
    csv.push_str(&format!(
        "ИТОГО;{lines};{}.{:02}\r\n",
        total_kopecks / 100,
        total_kopecks % 100
    ));
    let file = encoding_rs::WINDOWS_1251.encode(&csv).0.into_owned();
    drop(csv);
    let data = base64::engine::general_purpose::STANDARD.encode(&file);
    let body = message(
        "UploadRegistry",
        "bench-upload",
        "REQUEST",
        "",
        &format!(
            "<b:AppData><b:UploadRegistry><b:Format>csv</b:Format><b:Date>2026-09-14</b:Date><b:FileName>bench.csv</b:FileName></b:UploadRegistry></b:AppData>\
             <smev:AppDocument><smev:RequestCode>bench.csv</smev:RequestCode><smev:BinaryData>{data}</smev:BinaryData></smev:AppDocument>"
        ),
    );
    drop(data);
    let body_mib = body.len() as f64 / 1048576.0;
    let file_mib = file.len() as f64 / 1048576.0;
    println!("{mode}: {lines} lines over {accounts} accounts, file {file_mib:.1} MiB, SOAP body {body_mib:.1} MiB");
    let rss_before = peak_rss_mib();

    let started = Instant::now();
    let res = http
        .post(app.url("/soap/banks"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header(
            "SOAPAction",
            "\"urn:tyumen:portal:gateway:banks:1:UploadRegistry\"",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let accepted = res.text().await.unwrap();
    let to_accept = started.elapsed();
    assert!(
        accepted.contains("<smev:Status>ACCEPT</smev:Status>"),
        "{accepted}"
    );
    println!("ACCEPT after {:.1} s", to_accept.as_secs_f64());

    let mut polls = 0;
    let outcome = loop {
        polls += 1;
        let state = message(
            "RegistryState",
            &format!("bench-state-{polls}"),
            "STATE",
            "<smev:RequestIdRef>bench-upload</smev:RequestIdRef>",
            "",
        );
        let answer = http
            .post(app.url("/soap/banks"))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(state)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !answer.contains("<smev:Status>PROCESS</smev:Status>") {
            break answer;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let to_result = started.elapsed();
    assert!(
        outcome.contains("<smev:Status>RESULT</smev:Status>"),
        "{}",
        &outcome[..outcome.len().min(4000)]
    );
    assert_eq!(
        between(&outcome, "tns:Lines"),
        Some(lines.to_string().as_str())
    );
    let credited = format!("<tns:Outcome name=\"credited\"><tns:Count>{lines}</tns:Count>");
    assert!(outcome.contains(&credited), "every line credited");
    let report = base64::engine::general_purpose::STANDARD
        .decode(between(&outcome, "smev:BinaryData").unwrap())
        .unwrap();
    let report_lines = report.iter().filter(|b| **b == b'\n').count();
    println!(
        "RESULT after {:.1} s ({polls} STATE requests; import {:.0} lines/s from the upload); report {:.1} MiB, {report_lines} lines, answer {:.1} MiB",
        to_result.as_secs_f64(),
        lines as f64 / to_result.as_secs_f64(),
        report.len() as f64 / 1048576.0,
        outcome.len() as f64 / 1048576.0
    );
    println!(
        "peak resident memory of the process: {:.0} MiB (before the upload: {rss_before:.0} MiB, which holds the bench's own copy of the body)",
        peak_rss_mib()
    );
    app.stop().await;
}
