//! The XML gateway over real HTTP with payments behind it on the bus, in the
//! current test mode (SQLite and the in-process bus, or PostgreSQL and RabbitMQ).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use auth::Role;
use diesel::RunQueryDsl;
use platform::testing::TestApp;
use serde_json::{json, Value};

/// A clock standing at `y-m-d h:00` in Tyumen.
fn clock_at(y: i32, m: u32, d: u32, h: u32) -> calendar::FixedClock {
    calendar::FixedClock::at_local(
        chrono::NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap(),
    )
}

async fn app_with(configure: impl FnOnce(&mut settings::Settings)) -> TestApp {
    TestApp::spawn_configured(
        vec![
            Arc::new(payments::PaymentsService),
            Arc::new(gateway::GatewayService),
        ],
        clock_at(2026, 9, 14, 10),
        configure,
    )
    .await
}

fn operator(app: &TestApp) -> String {
    app.token("operator-1", &[Role::OperatorAdmin], |_| {})
}

fn participant(kind: &str, contour: &str, bank: Option<&str>) -> Value {
    json!({
        "name": "ПАО Банк", "inn": "7707083893", "ogrn": "1027700132195",
        "kind": kind, "contour": contour,
        "contacts": { "name": "Иванов Иван", "phone": "+7 345 200-00-00", "email": "it@bank.example" },
        "bank": bank
    })
}

async fn register(app: &TestApp, code: &str, body: Value, rights: &[&str]) {
    let client = reqwest::Client::new();
    let res = client
        .put(app.url(&format!("/api/gateway/participants/{code}")))
        .bearer_auth(operator(app))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    for r in rights {
        let res = client
            .put(app.url(&format!("/api/gateway/participants/{code}/rights/{r}")))
            .bearer_auth(operator(app))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
}

async fn open_account(app: &TestApp, id: &str) {
    let operator = app.token("op", &[Role::OperatorAdmin], |_| {});
    let res = reqwest::Client::new()
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(operator)
        .json(&json!({
            "account": id, "student_name": "Сидорова Мария Ивановна", "school": "school-5",
            "class_name": "2В", "municipality": "tyumen", "organizer": "org-1"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// What varies between the requests of these tests.
#[derive(Clone)]
struct Req<'a> {
    op: &'a str,
    sender: &'a str,
    recipient: &'a str,
    message_id: Option<&'a str>,
    status: &'a str,
    test: bool,
    refs: Option<(&'a str, &'a str, &'a str)>,
    app_data: &'a str,
}

fn req<'a>(op: &'a str, message_id: &'a str, app_data: &'a str) -> Req<'a> {
    Req {
        op,
        sender: "BANK01",
        recipient: "TMNPORTAL",
        message_id: Some(message_id),
        status: "REQUEST",
        test: false,
        refs: None,
        app_data,
    }
}

fn envelope(r: &Req<'_>) -> String {
    let header = r
        .message_id
        .map(|id| {
            format!(
                "<soapenv:Header><smev:Header><smev:NodeId>node-1</smev:NodeId><smev:MessageId>{id}</smev:MessageId>\
                 <smev:TimeStamp>2026-09-14T10:00:00+05:00</smev:TimeStamp><smev:MessageClass>REQUEST</smev:MessageClass></smev:Header></soapenv:Header>"
            )
        })
        .unwrap_or_default();
    let refs = r
        .refs
        .map(|(a, b, c)| {
            format!("<smev:RequestIdRef>{a}</smev:RequestIdRef><smev:OriginRequestIdRef>{b}</smev:OriginRequestIdRef><smev:CaseNumber>{c}</smev:CaseNumber>")
        })
        .unwrap_or_default();
    let test = if r.test {
        "<smev:TestMsg>test</smev:TestMsg>"
    } else {
        ""
    };
    let app_data = if r.app_data.is_empty() {
        String::new()
    } else {
        format!("<b:AppData>{}</b:AppData>", r.app_data)
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:smev="http://smev.gosuslugi.ru/rev120315" xmlns:b="urn:tyumen:portal:gateway:banks:1">
{header}
<soapenv:Body>
<b:{op}>
<smev:Message>
<smev:Sender><smev:Code>{sender}</smev:Code><smev:Name>Bank</smev:Name></smev:Sender>
<smev:Recipient><smev:Code>{recipient}</smev:Code><smev:Name>Portal</smev:Name></smev:Recipient>
<smev:ServiceName>banks</smev:ServiceName><smev:TypeCode>OTHR</smev:TypeCode><smev:Status>{status}</smev:Status>
<smev:Date>2026-09-14T10:00:00+05:00</smev:Date><smev:ExchangeType>1</smev:ExchangeType>{refs}{test}
</smev:Message>
<b:MessageData>{app_data}</b:MessageData>
</b:{op}>
</soapenv:Body>
</soapenv:Envelope>"#,
        op = r.op,
        sender = r.sender,
        recipient = r.recipient,
        status = r.status,
    )
}

async fn post(app: &TestApp, body: String) -> (u16, String) {
    let res = reqwest::Client::new()
        .post(app.url("/soap/banks"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn soap(app: &TestApp, r: &Req<'_>) -> (u16, String) {
    post(app, envelope(r)).await
}

/// The text of the last element named `name` (any prefix): `Code` is the
/// answer's or the error's, not the Sender's.
fn field(xml: &str, name: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut inside, mut found) = (false, None);
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                inside = e.local_name().into_inner() == name;
                if inside {
                    found = Some(String::new());
                }
            }
            Event::Text(t) if inside => {
                found = Some(t.xml10_content().to_string());
                inside = false;
            }
            Event::GeneralRef(_) => inside = false,
            Event::End(_) => inside = false,
            Event::Eof => return found,
            _ => {}
        }
    }
}

/// smev:Status of the answer (not a Status of its AppData).
fn status(xml: &str) -> String {
    let rest = &xml[xml.find("<smev:Status>").unwrap() + "<smev:Status>".len()..];
    rest[..rest.find('<').unwrap()].to_string()
}

const CHECK: &str = "<b:Check><b:Account>ls-77</b:Account></b:Check>";

fn pay(txn: &str, amount: &str) -> String {
    format!("<b:Pay><b:Account>ls-77</b:Account><b:Amount>{amount}</b:Amount><b:TxnId>{txn}</b:TxnId><b:TxnAt>2026-09-14T09:58:00+05:00</b:TxnAt></b:Pay>")
}

async fn bank_app() -> TestApp {
    let app = app_with(|_| {}).await;
    register(
        &app,
        "BANK01",
        participant("bank", "production", Some("sber")),
        &["banks.Check", "banks.Pay", "banks.Cancel"],
    )
    .await;
    open_account(&app, "ls-77").await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_checks_pays_repeats_and_cancels_through_the_gateway() {
    let app = bank_app().await;

    let (code, body) = soap(&app, &req("Check", "m-1", CHECK)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(status(&body), "RESULT");
    assert_eq!(field(&body, "Code").unwrap(), "0");
    assert_eq!(field(&body, "Student").unwrap(), "Сид*** М.");
    assert_eq!(field(&body, "RequestIdRef").unwrap(), "m-1");
    assert_eq!(field(&body, "OriginRequestIdRef").unwrap(), "m-1");
    assert!(
        body.contains("<smev:Recipient><smev:Code>BANK01</smev:Code>"),
        "{body}"
    );

    let payment = pay("t-1", "500.00");
    let (_, first) = soap(&app, &req("Pay", "m-2", &payment)).await;
    assert_eq!(field(&first, "Result").unwrap(), "OK", "{first}");
    assert_eq!(field(&first, "Balance").unwrap(), "500.00");

    // The same message again: the first answer, and no second credit.
    let (_, again) = soap(&app, &req("Pay", "m-2", &payment)).await;
    assert_eq!(again, first);
    // The same transaction in a new message: the protocol's DUPLICATE.
    let (_, dup) = soap(&app, &req("Pay", "m-3", &payment)).await;
    assert_eq!(field(&dup, "Code").unwrap(), "7");
    let (_, check) = soap(&app, &req("Check", "m-4", CHECK)).await;
    assert_eq!(field(&check, "Balance").unwrap(), "500.00");

    // The result codes are the REST door's.
    let (_, small) = soap(&app, &req("Pay", "m-5", &pay("t-2", "0.50"))).await;
    assert_eq!(field(&small, "Result").unwrap(), "AMOUNT_TOO_SMALL");
    let (_, nobody) = soap(
        &app,
        &req(
            "Check",
            "m-6",
            "<b:Check><b:Account>ls-00</b:Account></b:Check>",
        ),
    )
    .await;
    assert_eq!(field(&nobody, "Code").unwrap(), "3");

    let (_, cancel) = soap(
        &app,
        &req(
            "Cancel",
            "m-7",
            "<b:Cancel><b:TxnId>t-1</b:TxnId></b:Cancel>",
        ),
    )
    .await;
    assert_eq!(field(&cancel, "Result").unwrap(), "OK", "{cancel}");
    assert_eq!(field(&cancel, "Balance").unwrap(), "0.00");
    let (_, twice) = soap(
        &app,
        &req(
            "Cancel",
            "m-8",
            "<b:Cancel><b:TxnId>t-1</b:TxnId></b:Cancel>",
        ),
    )
    .await;
    assert_eq!(field(&twice, "Result").unwrap(), "CANCEL_IMPOSSIBLE");

    // PING is answered by the gateway alone.
    let mut ping = req("Check", "m-9", "");
    ping.status = "PING";
    let (code, pong) = soap(&app, &ping).await;
    assert_eq!((code, status(&pong)), (200, "PING".to_string()), "{pong}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envelope_is_judged_before_any_service_sees_it() {
    let app = bank_app().await;
    register(
        &app,
        "BANK02",
        participant("bank", "production", Some("vtb")),
        &["banks.Check"],
    )
    .await;
    register(
        &app,
        "TESTBANK",
        participant("bank", "test", Some("tb")),
        &["banks.Check", "banks.Pay"],
    )
    .await;
    let error_code = |body: &str| field(body, "Code").unwrap();

    let payment = pay("t-9", "100.00");
    type Change = fn(&mut Req<'_>);
    let cases: [(&str, Change, &str); 6] = [
        ("r-1", |r| r.sender = "NOBODY", "UNKNOWN_SENDER"),
        ("r-2", |r| r.sender = "BANK02", "NOT_GRANTED"),
        ("r-3", |r| r.recipient = "ELSEWHERE", "WRONG_RECIPIENT"),
        // A test-contour message at this production gateway.
        ("r-4", |r| r.test = true, "WRONG_CONTOUR"),
        ("r-5", |r| r.sender = "TESTBANK", "WRONG_CONTOUR"),
        ("r-6", |r| r.status = "RESULT", "STATUS_NOT_ACCEPTED"),
    ];
    for (id, change, expected) in cases {
        let mut r = req("Pay", id, &payment);
        change(&mut r);
        let (code, body) = soap(&app, &r).await;
        assert_eq!((code, status(&body)), (200, "REJECT".to_string()), "{id}");
        assert_eq!(error_code(&body), expected, "{id}: {body}");
    }

    // Nothing of it reached payments.
    let (_, check) = soap(&app, &req("Check", "r-7", CHECK)).await;
    assert_eq!(field(&check, "Balance").unwrap(), "0.00");

    // Revoking a right takes effect on the next message.
    let res = reqwest::Client::new()
        .delete(app.url("/api/gateway/participants/BANK01/rights/banks.Check"))
        .bearer_auth(operator(&app))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, body) = soap(&app, &req("Check", "r-8", CHECK)).await;
    assert_eq!(error_code(&body), "NOT_GRANTED");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_hostile_xml_is_refused_naming_where() {
    let app = app_with(|s| s.gateway.max_body_mib = 1).await;
    register(
        &app,
        "BANK01",
        participant("bank", "production", Some("sber")),
        &["banks.Pay"],
    )
    .await;

    let (code, body) = post(&app, "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\n<soapenv:Body>\n<a></b>".into()).await;
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("<faultstring>"), "{body}");
    assert_eq!(field(&body, "Code").unwrap(), "MALFORMED_XML");
    assert_eq!(field(&body, "Line").unwrap(), "3");

    let wrong_amount = "<b:Pay><b:Account>ls-77</b:Account><b:Amount>five</b:Amount><b:TxnId>t</b:TxnId><b:TxnAt>2026-09-14T09:58:00+05:00</b:TxnAt></b:Pay>";
    let (code, body) = soap(&app, &req("Pay", "x-1", wrong_amount)).await;
    assert_eq!(code, 500);
    assert_eq!(field(&body, "Code").unwrap(), "SCHEMA_VIOLATION", "{body}");
    assert!(
        field(&body, "Path")
            .unwrap()
            .ends_with("/AppData/Pay/Amount"),
        "{body}"
    );
    assert!(field(&body, "Line").is_some());
    assert!(field(&body, "Text").unwrap().contains("Amount"), "{body}");

    let missing = "<b:Pay><b:Account>ls-77</b:Account></b:Pay>";
    let (_, body) = soap(&app, &req("Pay", "x-2", missing)).await;
    assert_eq!(field(&body, "Code").unwrap(), "SCHEMA_VIOLATION");

    let xxe = r#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>&x;</soapenv:Body></soapenv:Envelope>"#;
    let (code, body) = post(&app, xxe.into()).await;
    assert_eq!(code, 500);
    assert_eq!(field(&body, "Code").unwrap(), "FORBIDDEN_XML");
    assert!(!body.contains("root:"), "no file content leaks");

    let lol = format!(
        r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">{}]><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>&l9;</soapenv:Body></soapenv:Envelope>"#,
        (1..10)
            .map(|i| format!("<!ENTITY l{i} \"{}\">", "&a;".repeat(10)))
            .collect::<String>()
    );
    let (_, body) = post(&app, lol).await;
    assert_eq!(field(&body, "Code").unwrap(), "FORBIDDEN_XML");

    let deep = format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>{}{}</soapenv:Body></soapenv:Envelope>",
        "<a>".repeat(100_000),
        "</a>".repeat(100_000)
    );
    let (_, body) = post(&app, deep).await;
    assert_eq!(field(&body, "Code").unwrap(), "FORBIDDEN_XML");

    let huge = format!(
        "<soapenv:Envelope>{}</soapenv:Envelope>",
        " ".repeat(2 * 1024 * 1024)
    );
    let (code, body) = post(&app, huge).await;
    assert_eq!(code, 413);
    assert_eq!(field(&body, "Code").unwrap(), "TOO_LARGE");

    // The gateway still answers.
    let mut ping = req("Pay", "x-3", "");
    ping.status = "PING";
    let (_, pong) = soap(&app, &ping).await;
    assert_eq!(status(&pong), "PING");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_does_not_answer_is_a_failure_that_can_be_asked_again() {
    // Payments is not running: nobody answers the bank's request.
    let app = TestApp::spawn_configured(
        vec![Arc::new(gateway::GatewayService)],
        clock_at(2026, 9, 14, 10),
        |s| s.gateway.service_timeout_ms = 1_000,
    )
    .await;
    register(
        &app,
        "BANK01",
        participant("bank", "production", Some("sber")),
        &["banks.Check"],
    )
    .await;
    let (code, body) = soap(&app, &req("Check", "f-1", CHECK)).await;
    assert_eq!(
        (code, status(&body)),
        (200, "FAILURE".to_string()),
        "{body}"
    );
    assert_eq!(field(&body, "Code").unwrap(), "SERVICE_UNAVAILABLE");
    // Asked again with the same message id, it is tried again, not replayed.
    let (_, again) = soap(&app, &req("Check", "f-1", CHECK)).await;
    assert_eq!(status(&again), "FAILURE");
    assert_ne!(field(&again, "MessageId"), field(&body, "MessageId"));
    app.stop().await;
}

/// Makes every insert into the message log fail (a full disk, a broken
/// table), or lets them through again.
async fn refuse_log_writes(app: &TestApp, refuse: bool) {
    use diesel::connection::SimpleConnection;
    app.context("gateway")
        .db
        .write(move |c| -> Result<(), storage::StorageError> {
            match c {
                storage::DbConnection::Sqlite(lite) => lite.batch_execute(if refuse {
                    "CREATE TRIGGER refuse_log BEFORE INSERT ON message_log \
                     BEGIN SELECT RAISE(ABORT, 'the log disk is full'); END;"
                } else {
                    "DROP TRIGGER refuse_log;"
                })?,
                storage::DbConnection::Pg(pg) => pg.batch_execute(if refuse {
                    "CREATE FUNCTION refuse_log() RETURNS trigger AS $$ \
                     BEGIN RAISE EXCEPTION 'the log disk is full'; END $$ LANGUAGE plpgsql; \
                     CREATE TRIGGER refuse_log BEFORE INSERT ON message_log \
                     FOR EACH ROW EXECUTE FUNCTION refuse_log();"
                } else {
                    "DROP TRIGGER refuse_log ON message_log; DROP FUNCTION refuse_log();"
                })?,
            }
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_that_cannot_be_logged_is_a_failure_and_takes_effect_once() {
    let app = bank_app().await;
    refuse_log_writes(&app, true).await;
    let (code, body) = soap(&app, &req("Pay", "lf-1", &pay("t-lf", "100.00"))).await;
    // 503: the door is open but cannot keep its evidence; ask again.
    assert_eq!(
        (code, status(&body)),
        (503, "FAILURE".to_string()),
        "{body}"
    );
    assert_eq!(field(&body, "Code").unwrap(), "LOG_UNAVAILABLE", "{body}");
    refuse_log_writes(&app, false).await;
    // Nothing was logged: no record claims an answer the bank never had.
    assert!(log_search(&app, "message_id=lf-1").await.is_empty());
    // Asked again, the same message is answered, and the money came once
    // (payments took the first request; the repeat is its duplicate).
    let (_, again) = soap(&app, &req("Pay", "lf-1", &pay("t-lf", "100.00"))).await;
    assert_eq!(status(&again), "RESULT", "{again}");
    let (_, check) = soap(&app, &req("Check", "lf-2", CHECK)).await;
    assert_eq!(field(&check, "Balance").unwrap(), "100.00", "{check}");
    assert_eq!(log_search(&app, "message_id=lf-1").await.len(), 1);
    let chain = app
        .context("gateway")
        .db
        .read(gateway::log::verify)
        .await
        .unwrap();
    assert!(chain.breaks.is_empty(), "{:?}", chain.breaks);
    app.stop().await;
}

async fn log_search(app: &TestApp, query: &str) -> Vec<Value> {
    let res = reqwest::Client::new()
        .get(app.url(&format!("/api/gateway/log?{query}")))
        .bearer_auth(operator(app))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{query}");
    res.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_found_by_every_key_and_verification_catches_tampering() {
    let app = bank_app().await;
    let mut r = req("Check", "l-1", CHECK);
    r.refs = Some(("prev-7", "origin-3", "case-42"));
    soap(&app, &r).await;
    soap(&app, &req("Pay", "l-2", &pay("t-1", "10.00"))).await;
    let mut nobody = req("Check", "l-3", CHECK);
    nobody.sender = "NOBODY";
    soap(&app, &nobody).await;

    for (query, expected) in [
        ("message_id=l-1", "l-1"),
        ("request_id_ref=prev-7", "l-1"),
        ("origin_request_id_ref=origin-3", "l-1"),
        ("case_number=case-42", "l-1"),
        ("participant=NOBODY", "l-3"),
        ("operation=Pay", "l-2"),
        ("status=REJECT", "l-3"),
    ] {
        let found = log_search(&app, query).await;
        assert_eq!(found.len(), 1, "{query}: {found:?}");
        assert_eq!(found[0]["message_id"], expected, "{query}");
    }
    let all = log_search(
        &app,
        "from=2000-01-01T00:00:00%2B05:00&to=2100-01-01T00:00:00%2B05:00",
    )
    .await;
    assert_eq!(all.len(), 3);
    assert!(log_search(&app, "to=2000-01-01T00:00:00%2B05:00")
        .await
        .is_empty());
    let seq = all[2]["seq"].as_i64().unwrap();
    let record: Value = reqwest::Client::new()
        .get(app.url(&format!("/api/gateway/log/{seq}")))
        .bearer_auth(operator(&app))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(record["request"]
        .as_str()
        .unwrap()
        .contains("<smev:CaseNumber>case-42"));
    assert!(record["response"].as_str().unwrap().contains("RESULT"));

    let db = &app.context("gateway").db;
    let clean = db.read(gateway::log::verify).await.unwrap();
    assert!(clean.breaks.is_empty(), "{:?}", clean.breaks);
    assert_eq!(clean.checked, 3);

    db.write(|c| -> Result<_, storage::StorageError> {
        Ok(diesel::sql_query("UPDATE message_log SET response_body = 'forged' WHERE seq = (SELECT MIN(seq) FROM message_log) + 1").execute(c)?)
    })
    .await
    .unwrap();
    let v = db.read(gateway::log::verify).await.unwrap();
    assert!(
        matches!(
            v.breaks.as_slice(),
            [gateway::domain::chain::Break::Altered { .. }]
        ),
        "{:?}",
        v.breaks
    );
    db.write(|c| -> Result<_, storage::StorageError> {
        Ok(diesel::sql_query(
            "DELETE FROM message_log WHERE seq = (SELECT MIN(seq) FROM message_log) + 1",
        )
        .execute(c)?)
    })
    .await
    .unwrap();
    let v = db.read(gateway::log::verify).await.unwrap();
    assert!(
        v.breaks
            .iter()
            .any(|b| matches!(b, gateway::domain::chain::Break::Removed { .. })),
        "{:?}",
        v.breaks
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_are_validated_audited_and_operator_only() {
    let app = app_with(|_| {}).await;
    let client = reqwest::Client::new();
    let mut bad = participant("bank", "production", Some("sber"));
    bad["inn"] = json!("7707083894");
    let res = client
        .put(app.url("/api/gateway/participants/BANK01"))
        .bearer_auth(operator(&app))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "inn", "{problem}");

    let res = client
        .put(app.url("/api/gateway/participants/BANK01"))
        .bearer_auth(operator(&app))
        .json(&participant("bank", "production", Some("sber")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mut changed = participant("bank", "production", Some("sber"));
    changed["name"] = json!("ПАО Новый Банк");
    let res = client
        .put(app.url("/api/gateway/participants/BANK01"))
        .bearer_auth(operator(&app))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = client
        .put(app.url("/api/gateway/participants/BANK01/rights/banks.Nothing"))
        .bearer_auth(operator(&app))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let audit: Vec<Value> = client
        .get(app.url("/api/gateway/audit?participant=BANK01"))
        .bearer_auth(operator(&app))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["action"], "update");
    assert_eq!(audit[0]["actor"], "operator-1");
    assert!(audit[0]["before"].as_str().unwrap().contains("ПАО Банк"));
    assert!(audit[0]["after"]
        .as_str()
        .unwrap()
        .contains("ПАО Новый Банк"));

    let bank = app.token("b", &[Role::Bank], |r| r.banks = vec!["sber".into()]);
    let res = client
        .get(app.url("/api/gateway/participants"))
        .bearer_auth(bank)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wsdl_names_the_address_it_was_asked_at() {
    let app = app_with(|_| {}).await;
    let res = reqwest::Client::new()
        .get(app.url("/soap/banks?wsdl"))
        .header("X-Forwarded-Host", "portal.example")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let wsdl = res.text().await.unwrap();
    assert!(
        wsdl.contains("location=\"https://portal.example/soap/banks\""),
        "{wsdl}"
    );
    assert!(wsdl.contains("schemaLocation=\"https://portal.example/soap/banks?xsd=banks.xsd\""));
    let xsd = reqwest::Client::new()
        .get(app.url("/soap/banks?xsd=smev.xsd"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(xsd.contains("targetNamespace=\"http://smev.gosuslugi.ru/rev120315\""));
    app.stop().await;
}

/// Every REST operation of the gateway × every role: the operator's alone,
/// deny by default (SOAP callers are participants, not token holders).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_operation_is_the_operators_alone() {
    let app = app_with(|_| {}).await;
    register(
        &app,
        "BANK01",
        participant("bank", "production", Some("sber")),
        &[],
    )
    .await;
    let body = participant("bank", "production", Some("sber"));
    let ops: [(&str, &str, Option<&Value>); 10] = [
        ("GET", "/api/gateway/operations", None),
        ("GET", "/api/gateway/participants", None),
        ("GET", "/api/gateway/participants/BANK01", None),
        ("PUT", "/api/gateway/participants/BANK01", Some(&body)),
        ("GET", "/api/gateway/participants/BANK01/rights", None),
        (
            "PUT",
            "/api/gateway/participants/BANK01/rights/banks.Check",
            None,
        ),
        (
            "DELETE",
            "/api/gateway/participants/BANK01/rights/banks.Check",
            None,
        ),
        ("GET", "/api/gateway/audit", None),
        ("GET", "/api/gateway/log", None),
        ("GET", "/api/gateway/log/1", None),
    ];
    let client = reqwest::Client::new();
    for role in Role::ALL {
        // Every scope a token can carry, so no role is refused for want of one.
        let token = app.token("someone", &[role], |r| {
            r.schools = vec!["s-1".into()];
            r.classes = vec!["c-1".into()];
            r.organizers = vec!["org-1".into()];
            r.municipalities = vec!["tyumen".into()];
            r.banks = vec!["sber".into()];
            r.children = vec!["ch-1".into()];
            r.participant = Some("BANK01".into());
        });
        for (method, path, json) in ops {
            let mut call = client
                .request(method.parse().unwrap(), app.url(path))
                .bearer_auth(&token);
            if let Some(j) = json {
                call = call.json(j);
            }
            let status = call.send().await.unwrap().status().as_u16();
            if role == Role::OperatorAdmin {
                assert!(
                    status != 401 && status != 403,
                    "{role:?} {method} {path}: {status}"
                );
            } else {
                assert_eq!(status, 403, "{role:?} {method} {path}");
            }
        }
    }
    app.stop().await;
}

/// An `UploadRegistry` request: the registry file as the AppDocument.
fn upload_registry(message_id: &str, app_data: &str, file: &[u8]) -> String {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(file);
    envelope(&req("UploadRegistry", message_id, app_data)).replace(
        "</b:MessageData>",
        &format!("<smev:AppDocument><smev:RequestCode>registry.csv</smev:RequestCode><smev:BinaryData>{data}</smev:BinaryData></smev:AppDocument></b:MessageData>"),
    )
}

async fn post_action(app: &TestApp, action: &str, body: String) -> (u16, String) {
    let res = reqwest::Client::new()
        .post(app.url("/soap/banks"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header(
            "SOAPAction",
            format!("\"urn:tyumen:portal:gateway:banks:1:{action}\""),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn registry_state(app: &TestApp, message_id: &str, upload_id: &str) -> String {
    let mut r = req("RegistryState", message_id, "");
    r.status = "STATE";
    let body = envelope(&r).replace(
        "<smev:ExchangeType>1</smev:ExchangeType>",
        &format!("<smev:ExchangeType>1</smev:ExchangeType><smev:RequestIdRef>{upload_id}</smev:RequestIdRef>"),
    );
    let (code, answer) = post(app, body).await;
    assert_eq!(code, 200, "{answer}");
    answer
}

/// Asks STATE until the answer is no longer PROCESS.
async fn registry_outcome(app: &TestApp, upload_id: &str) -> String {
    for n in 0..300 {
        let answer = registry_state(app, &format!("{upload_id}-state-{n}"), upload_id).await;
        if status(&answer) != "PROCESS" {
            return answer;
        }
        assert!(field(&answer, "Upload").is_some(), "{answer}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the registry of {upload_id} was still being imported after 30 s");
}

fn cp1251(text: &str) -> Vec<u8> {
    encoding_rs::WINDOWS_1251.encode(text).0.into_owned()
}

fn document_of(answer: &str) -> String {
    use base64::Engine;
    let data = field(answer, "BinaryData").unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_goes_through_soap_and_its_outcome_is_asked_with_state() {
    let app = app_with(|_| {}).await;
    register(
        &app,
        "BANK01",
        participant("bank", "production", Some("sber")),
        &["banks.Pay", "banks.UploadRegistry", "banks.RegistryState"],
    )
    .await;
    register(
        &app,
        "BANK02",
        participant("bank", "production", Some("vtb")),
        &["banks.UploadRegistry", "banks.RegistryState"],
    )
    .await;
    open_account(&app, "ls-77").await;
    let (_, paid) = soap(&app, &req("Pay", "p-1", &pay("t-1", "500.00"))).await;
    assert_eq!(field(&paid, "Result").unwrap(), "OK", "{paid}");

    // The paid payment matches, one is credited from the registry, one names
    // an account nobody has.
    let registry = "t-1;ls-77;500.00;14.09.2026 09:58:00;Сидорова\r\n\
                    t-2;ls-77;250.00;14.09.2026 11:00:00;Сидорова\r\n\
                    t-3;ls-404;10.00;14.09.2026 12:00:00;Кто-то\r\n\
                    ИТОГО;3;760.00\r\n";
    let csv = "<b:UploadRegistry><b:Format>csv</b:Format><b:Date>2026-09-14</b:Date><b:FileName>sber-20260914.csv</b:FileName></b:UploadRegistry>";

    // A CSV without its day is refused at the door, naming the field.
    let no_day = "<b:UploadRegistry><b:Format>csv</b:Format></b:UploadRegistry>";
    let (code, fault) = post_action(
        &app,
        "UploadRegistry",
        upload_registry("u-0", no_day, &cp1251(registry)),
    )
    .await;
    assert_eq!(code, 500, "{fault}");
    assert!(
        field(&fault, "Path")
            .unwrap()
            .ends_with("UploadRegistry/Date"),
        "{fault}"
    );

    let (code, accepted) = post_action(
        &app,
        "UploadRegistry",
        upload_registry("u-1", csv, &cp1251(registry)),
    )
    .await;
    assert_eq!(
        (code, status(&accepted)),
        (200, "ACCEPT".to_string()),
        "{accepted}"
    );
    assert_eq!(
        field(&accepted, "Size").unwrap(),
        cp1251(registry).len().to_string()
    );
    // The same message again: the first answer; nothing is uploaded twice.
    let (_, again) = post_action(
        &app,
        "UploadRegistry",
        upload_registry("u-1", csv, &cp1251(registry)),
    )
    .await;
    assert_eq!(again, accepted);

    let outcome = registry_outcome(&app, "u-1").await;
    assert_eq!(status(&outcome), "RESULT", "{outcome}");
    assert_eq!(field(&outcome, "OriginRequestIdRef").unwrap(), "u-1");
    assert_eq!(field(&outcome, "Lines").unwrap(), "3");
    assert_eq!(field(&outcome, "Total").unwrap(), "760.00");
    assert_eq!(field(&outcome, "AlreadyImported").unwrap(), "false");
    assert!(
        outcome.contains("<tns:Outcome name=\"credited\"><tns:Count>1</tns:Count>"),
        "{outcome}"
    );
    assert!(
        outcome.contains("<tns:Outcome name=\"unknown_account\"><tns:Count>1</tns:Count>"),
        "{outcome}"
    );
    let report = document_of(&outcome);
    assert!(report.starts_with('\u{feff}'), "{report}");
    assert!(
        report.contains("t-2;ls-77;зачислено по реестру"),
        "{report}"
    );
    assert!(report.contains("t-3;ls-404;неизвестный счёт"), "{report}");
    // The registry's credit is on the account, once, however often it is asked.
    let _ = registry_outcome(&app, "u-1").await;
    let balance = payments_balance(&app, "ls-77").await;
    assert_eq!(balance, "750.00");

    // The log keeps the document's digest, not its bytes.
    let logged = log_search(&app, "message_id=u-1").await;
    let record: Value = reqwest::Client::new()
        .get(app.url(&format!("/api/gateway/log/{}", logged[0]["seq"])))
        .bearer_auth(operator(&app))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request = record["request"].as_str().unwrap();
    assert!(request.contains("SHA-256"), "{request}");
    assert!(
        !request.contains("dC0x"),
        "the base64 of the file is not logged"
    );

    // Another bank cannot ask about it; a registry with a wrong total is
    // refused whole and STATE says why.
    let mut other = req("RegistryState", "o-1", "");
    other.sender = "BANK02";
    other.status = "STATE";
    let body = envelope(&other).replace(
        "<smev:ExchangeType>1</smev:ExchangeType>",
        "<smev:ExchangeType>1</smev:ExchangeType><smev:RequestIdRef>u-1</smev:RequestIdRef>",
    );
    let (_, foreign) = post(&app, body).await;
    assert_eq!(status(&foreign), "REJECT", "{foreign}");
    assert_eq!(field(&foreign, "Code").unwrap(), "UNKNOWN_REQUEST");

    let wrong = registry
        .replace("ИТОГО;3;760.00", "ИТОГО;3;761.00")
        .replace("t-1;", "t-9;");
    let csv15 = csv
        .replace("2026-09-14", "2026-09-15")
        .replace("14.09.2026", "15.09.2026");
    let (_, accepted) = post_action(
        &app,
        "UploadRegistry",
        upload_registry("u-2", &csv15, &cp1251(&wrong)),
    )
    .await;
    assert_eq!(status(&accepted), "ACCEPT", "{accepted}");
    let refused = registry_outcome(&app, "u-2").await;
    assert_eq!(status(&refused), "REJECT", "{refused}");
    assert_eq!(
        field(&refused, "Code").unwrap(),
        "REGISTRY_FORMAT",
        "{refused}"
    );
    assert_eq!(payments_balance(&app, "ls-77").await, "750.00");

    // Only the document may be large: padding beside it is refused.
    let padded = upload_registry("u-9", csv, &cp1251(registry)).replace(
        "<b:UploadRegistry><b:Format>",
        &format!(
            "<b:UploadRegistry><!-- {} --><b:Format>",
            "x".repeat(17 << 20)
        ),
    );
    let (code, padded) = post_action(&app, "UploadRegistry", padded).await;
    assert_eq!(code, 413, "{padded}");
    assert_eq!(field(&padded, "Code").unwrap(), "TOO_LARGE");
    // Only the operation its SOAPAction names may be larger than a message.
    let small_pay = pay("t-5", "1.00");
    let big = envelope(&req("Pay", "s-1", &small_pay)).replace(
        "<b:TxnId>",
        &format!("<!-- {} --><b:TxnId>", "x".repeat(17 << 20)),
    );
    let (code, too_large) = post_action(&app, "UploadRegistry", big).await;
    assert_eq!(code, 413, "{too_large}");
    assert_eq!(field(&too_large, "Code").unwrap(), "TOO_LARGE");
    app.stop().await;
}

async fn payments_balance(app: &TestApp, account: &str) -> String {
    let res = reqwest::Client::new()
        .get(app.url(&format!("/api/payments/accounts/{account}")))
        .bearer_auth(operator(app))
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    v["balance"].as_str().unwrap().to_string()
}

/// A request to `/soap/<endpoint>` (namespace `urn:tyumen:portal:gateway:<endpoint>:1`,
/// prefix `t`) from `sender`.
async fn call_endpoint(
    app: &TestApp,
    endpoint: &str,
    op: &str,
    sender: &str,
    message_id: &str,
    app_data: &str,
) -> (u16, String) {
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:smev="http://smev.gosuslugi.ru/rev120315" xmlns:t="urn:tyumen:portal:gateway:{endpoint}:1">
<soapenv:Header><smev:Header><smev:NodeId>node-1</smev:NodeId><smev:MessageId>{message_id}</smev:MessageId><smev:TimeStamp>2026-05-12T10:00:00+05:00</smev:TimeStamp><smev:MessageClass>REQUEST</smev:MessageClass></smev:Header></soapenv:Header>
<soapenv:Body><t:{op}><smev:Message>
<smev:Sender><smev:Code>{sender}</smev:Code><smev:Name>IS</smev:Name></smev:Sender>
<smev:Recipient><smev:Code>TMNPORTAL</smev:Code><smev:Name>Portal</smev:Name></smev:Recipient>
<smev:ServiceName>{endpoint}</smev:ServiceName><smev:TypeCode>GSRV</smev:TypeCode><smev:Status>REQUEST</smev:Status>
<smev:Date>2026-05-12T10:00:00+05:00</smev:Date><smev:ExchangeType>1</smev:ExchangeType>
</smev:Message><t:MessageData><t:AppData><t:{op}>{app_data}</t:{op}></t:AppData></t:MessageData></t:{op}></soapenv:Body></soapenv:Envelope>"#
    );
    let res = reqwest::Client::new()
        .post(app.url(&format!("/soap/{endpoint}")))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The answer passes the endpoint's XSD: what the gateway writes is what its WSDL promises.
fn valid(endpoint: &str, answer: &str) {
    let e = gateway::soap::contracts::endpoint(endpoint).unwrap();
    if let Err(v) = gateway::soap::xsd::validate(e, answer) {
        panic!("the answer does not match {endpoint}'s schema: {v:?}\n{answer}");
    }
}

/// Every text of the answer's elements `tns:<name>`, in order.
fn fields(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<tns:{name}>");
    xml.split(&open)
        .skip(1)
        .map(|rest| rest[..rest.find('<').unwrap_or(rest.len())].to_string())
        .collect()
}

async fn rest(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Value,
) -> Value {
    let res = reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

const CHARGE: &str = "<t:Payer><t:Name>Иванов Иван Иванович</t:Name><t:Snils>112-233-445 95</t:Snils></t:Payer>\
    <t:Purpose>Плата за присмотр и уход, май</t:Purpose><t:Amount>1250.50</t:Amount><t:DueDate>2026-10-01</t:DueDate>\
    <t:Kbk>07511302995020000130</t:Kbk><t:Oktmo>71701000</t:Oktmo>\
    <t:Payee><t:Name>Департамент образования</t:Name><t:Inn>7202029213</t:Inn><t:Kpp>720301001</t:Kpp><t:Account>03234643717010006700</t:Account><t:Bik>047102001</t:Bik></t:Payee>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_imports_cancels_and_exports_charges_through_the_gateway() {
    let app = app_with(|_| {}).await;
    let mut agency = participant("agency", "production", None);
    agency["name"] = json!("ИС Департамента образования");
    register(
        &app,
        "AGENCY1",
        agency,
        &[
            "unip.ImportCharge",
            "unip.CancelCharge",
            "unip.ExportPayments",
        ],
    )
    .await;
    register(
        &app,
        "BANK01",
        participant("bank", "production", Some("sber")),
        &["unip.ImportCharge"],
    )
    .await;
    let op = operator(&app);
    rest(
        &app,
        reqwest::Method::PUT,
        "/api/payments/unip/suppliers/AGENCY1",
        &op,
        json!({"prefix": "TYUM0001"}),
    )
    .await;

    let (code, first) = call_endpoint(&app, "unip", "ImportCharge", "AGENCY1", "c-1", CHARGE).await;
    assert_eq!(
        (code, status(&first)),
        (200, "RESULT".to_string()),
        "{first}"
    );
    let uin = field(&first, "Uin").unwrap();
    assert!(uin.starts_with("TYUM0001"), "{first}");
    assert!(
        first.contains("<tns:Quittance>not_matched</tns:Quittance>"),
        "{first}"
    );
    assert!(
        first.contains("<tns:Supplier>AGENCY1</tns:Supplier>"),
        "{first}"
    );
    // The same message again: the same charge; a new message: a new charge.
    let (_, again) = call_endpoint(&app, "unip", "ImportCharge", "AGENCY1", "c-1", CHARGE).await;
    assert_eq!(again, first);
    let (_, second) = call_endpoint(&app, "unip", "ImportCharge", "AGENCY1", "c-2", CHARGE).await;
    let uin2 = field(&second, "Uin").unwrap();
    assert_ne!(uin2, uin);

    // A field the rules refuse is named in the request's terms; nothing is issued.
    let bad = CHARGE.replace("07511302995020000130", "123");
    let (_, refused) = call_endpoint(&app, "unip", "ImportCharge", "AGENCY1", "c-3", &bad).await;
    assert_eq!(status(&refused), "REJECT", "{refused}");
    assert_eq!(
        field(&refused, "Code").unwrap(),
        "INVALID_REQUEST",
        "{refused}"
    );
    assert_eq!(
        field(&refused, "Path").unwrap(),
        "/Envelope/Body/ImportCharge/MessageData/AppData/ImportCharge/Kbk"
    );
    // A bank cannot issue charges, even with the right granted.
    let (_, bank) = call_endpoint(&app, "unip", "ImportCharge", "BANK01", "c-4", CHARGE).await;
    assert_eq!(field(&bank, "Code").unwrap(), "NOT_GRANTED", "{bank}");

    // A bank pays the first charge in part (REST); the export shows it.
    let bank_token = app.token("sber-1", &[Role::Bank], |r| r.banks = vec!["sber".into()]);
    rest(
        &app,
        reqwest::Method::POST,
        "/api/payments/unip/payments",
        &bank_token,
        json!({
            "payment_id": "10471020010005520092026000000001", "uin": uin, "amount": "500.00",
            "payment_date": "2026-09-14", "payer": {"name": "Иванов Иван Иванович"}
        }),
    )
    .await;
    let (_, by_uin) = call_endpoint(
        &app,
        "unip",
        "ExportPayments",
        "AGENCY1",
        "e-1",
        &format!("<t:Uins><t:Uin>{uin}</t:Uin><t:Uin>{uin2}</t:Uin></t:Uins>"),
    )
    .await;
    assert_eq!(status(&by_uin), "RESULT", "{by_uin}");
    assert_eq!(
        fields(&by_uin, "Uin"),
        vec![uin.clone(), uin2.clone()],
        "{by_uin}"
    );
    assert_eq!(
        fields(&by_uin, "Quittance"),
        vec!["partly_matched", "not_matched"]
    );
    assert_eq!(
        fields(&by_uin, "PaymentId"),
        vec!["10471020010005520092026000000001"]
    );
    for answer in [&first, &refused, &bank, &by_uin] {
        valid("unip", answer);
    }
    let unip = gateway::soap::contracts::endpoint("unip").unwrap();
    let stray = first.replace("<tns:Kbk>", "<tns:Bogus/><tns:Kbk>");
    assert!(
        gateway::soap::xsd::validate(unip, &stray).is_err(),
        "the check is real"
    );
    let (_, by_period) = call_endpoint(
        &app,
        "unip",
        "ExportPayments",
        "AGENCY1",
        "e-2",
        "<t:From>2026-09-01</t:From><t:To>2026-09-30</t:To>",
    )
    .await;
    assert_eq!(fields(&by_period, "Uin"), vec![uin.clone()], "{by_period}");
    let (_, neither) = call_endpoint(&app, "unip", "ExportPayments", "AGENCY1", "e-3", "").await;
    assert_eq!(
        field(&neither, "Code").unwrap(),
        "INVALID_REQUEST",
        "{neither}"
    );

    // A charge with a payment is not cancelled; one without is.
    let cancel = |u: &str| format!("<t:Uin>{u}</t:Uin><t:Reason>Выставлено ошибочно</t:Reason>");
    let (_, paid) = call_endpoint(
        &app,
        "unip",
        "CancelCharge",
        "AGENCY1",
        "x-1",
        &cancel(&uin),
    )
    .await;
    assert_eq!(status(&paid), "REJECT", "{paid}");
    assert_eq!(
        field(&paid, "Code").unwrap(),
        "CHARGE_HAS_PAYMENTS",
        "{paid}"
    );
    let (_, done) = call_endpoint(
        &app,
        "unip",
        "CancelCharge",
        "AGENCY1",
        "x-2",
        &cancel(&uin2),
    )
    .await;
    assert!(
        done.contains("<tns:Status>cancelled</tns:Status>"),
        "{done}"
    );
    valid("unip", &done);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caterer_uploads_the_catalogue_and_menus_and_downloads_orders_and_requests() {
    let clock = clock_at(2026, 5, 12, 9);
    let app = TestApp::spawn_configured(
        vec![
            Arc::new(payments::PaymentsService),
            Arc::new(meals::MealsService),
            Arc::new(gateway::GatewayService),
        ],
        clock.clone(),
        |s| s.meals.close_poll_ms = 100,
    )
    .await;
    // The caterer's accounting system registered its own service: formed
    // requests are pushed to it.
    let sim = Arc::new(Sim::default());
    let base = simulate(sim.clone());
    register(
        &app,
        "CATERER1",
        caterer_at(&format!("{base}/ok")),
        &[
            "caterers.UploadCatalog",
            "caterers.SetDayMenu",
            "caterers.Procurement",
            "caterers.ClassRequests",
        ],
    )
    .await;
    let muni = app.token("officer", &[Role::MunicipalOfficer], |r| {
        r.municipalities = vec!["tyumen".into()]
    });
    let admin = app.token("admin", &[Role::MealAdmin], |r| {
        r.schools = vec!["s1".into()]
    });
    let teacher = app.token("teacher", &[Role::ClassTeacher], |r| {
        r.schools = vec!["s1".into()];
        r.classes = vec!["4a".into()];
    });
    let put = reqwest::Method::PUT;
    let d = "/api/meals/municipalities/tyumen";
    rest(
        &app,
        put.clone(),
        &format!("{d}/menu-types/standard"),
        &muni,
        json!({"name": "Основное"}),
    )
    .await;
    rest(
        &app,
        put.clone(),
        &format!("{d}/age-categories/7-11"),
        &muni,
        json!({"name": "7–11 лет", "min_age": 7, "max_age": 11}),
    )
    .await;
    rest(
        &app,
        put.clone(),
        "/api/meals/schools/s1",
        &muni,
        json!({"municipality": "tyumen", "name": "СОШ № 1"}),
    )
    .await;
    rest(
        &app,
        put.clone(),
        "/api/meals/schools/s1/classes/4a",
        &admin,
        json!({"name": "4А", "shift": 1}),
    )
    .await;
    rest(
        &app,
        put.clone(),
        "/api/meals/schools/s1/meal-times/lunch-1",
        &admin,
        json!({"kind": "lunch", "shift": 1, "starts_at": "12:30"}),
    )
    .await;
    rest(
        &app,
        put.clone(),
        "/api/meals/schools/s1/organizer",
        &admin,
        json!({"organizer": "org-1"}),
    )
    .await;
    rest(
        &app,
        put.clone(),
        "/api/meals/schools/s1/students/ls-a",
        &admin,
        json!({"class": "4a", "full_name": "Антонов Антон", "birth_date": "2016-01-10"}),
    )
    .await;
    rest(
        &app,
        put.clone(),
        "/api/meals/schools/s1/students/ls-a/settings",
        &admin,
        json!({"category": null, "meal_kinds": ["lunch"], "menu_type": "standard"}),
    )
    .await;

    let dish = |id: &str, price: &str| {
        format!("<t:Dish><t:Id>{id}</t:Id><t:Name>Блюдо {id}</t:Name><t:YieldGrams>250</t:YieldGrams><t:Price>{price}</t:Price><t:Allergens><t:Allergen>celery</t:Allergen></t:Allergens></t:Dish>")
    };
    let complex = |code: &str, dishes: &str| {
        format!("<t:Complex><t:Code>{code}</t:Code><t:Name>Обед {code}</t:Name><t:MenuType>standard</t:MenuType><t:AgeCategory>7-11</t:AgeCategory><t:MealKind>lunch</t:MealKind><t:Price>150.00</t:Price><t:Dishes>{dishes}</t:Dishes></t:Complex>")
    };
    // All or nothing: the second complex names a dish nobody has; the error
    // names that complex, and neither the dishes nor c1 are saved.
    let bad = format!(
        "<t:Dishes>{}{}</t:Dishes><t:Complexes>{}{}</t:Complexes>",
        dish("soup", "40.00"),
        dish("cutlet", "90.00"),
        complex("c1", "<t:Dish>soup</t:Dish><t:Dish>cutlet</t:Dish>"),
        complex("c2", "<t:Dish>soup</t:Dish><t:Dish>nothing</t:Dish>")
    );
    let (_, refused) =
        call_endpoint(&app, "caterers", "UploadCatalog", "CATERER1", "k-1", &bad).await;
    assert_eq!(status(&refused), "REJECT", "{refused}");
    assert!(
        field(&refused, "Path")
            .unwrap()
            .ends_with("UploadCatalog/Complexes/Complex[2]/Dishes/Dish[2]"),
        "{refused}"
    );
    let org = app.token("cook", &[Role::MealOrganizer], |r| {
        r.organizers = vec!["org-1".into()]
    });
    let catalog: Value = reqwest::Client::new()
        .get(app.url("/api/meals/organizers/org-1/catalog"))
        .bearer_auth(&org)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        catalog["dishes"],
        json!([]),
        "nothing of the refused upload was saved"
    );

    let good = bad.replace("<t:Dish>nothing</t:Dish>", "");
    let (code, saved) =
        call_endpoint(&app, "caterers", "UploadCatalog", "CATERER1", "k-2", &good).await;
    assert_eq!(
        (code, status(&saved)),
        (200, "RESULT".to_string()),
        "{saved}"
    );
    assert_eq!(fields(&saved, "Code"), vec!["c1", "c2"], "{saved}");
    assert!(saved.contains("<tns:Id>c1.v1</tns:Id>"), "{saved}");

    // The day menu of tomorrow, with the «комплекс дня».
    let menu = "<t:School>s1</t:School><t:Date>2026-05-13</t:Date><t:MealKind>lunch</t:MealKind>\
                <t:Complexes><t:Complex>c1</t:Complex><t:Complex>c2</t:Complex></t:Complexes><t:Default>c1</t:Default>";
    let (_, set) = call_endpoint(&app, "caterers", "SetDayMenu", "CATERER1", "m-1", menu).await;
    assert_eq!(status(&set), "RESULT", "{set}");
    assert_eq!(field(&set, "Default").unwrap(), "c1");
    let (_, past) = call_endpoint(
        &app,
        "caterers",
        "SetDayMenu",
        "CATERER1",
        "m-2",
        &menu.replace("2026-05-13", "2026-05-12"),
    )
    .await;
    assert!(
        field(&past, "Path").unwrap().ends_with("SetDayMenu/Date"),
        "{past}"
    );

    // Procurement for two weeks: the student without an order eats the «комплекс дня».
    let (_, procurement) =
        call_endpoint(&app, "caterers", "Procurement", "CATERER1", "p-1", "").await;
    assert_eq!(status(&procurement), "RESULT", "{procurement}");
    assert_eq!(
        fields(&procurement, "Date"),
        vec!["2026-05-13"],
        "{procurement}"
    );
    assert_eq!(fields(&procurement, "ByDefault"), vec!["1"]);
    assert_eq!(fields(&procurement, "Total"), vec!["1"]);

    // Tomorrow the teacher forms the class request; the caterer downloads it.
    clock.set(calendar::local_to_utc(
        chrono::NaiveDate::from_ymd_opt(2026, 5, 13)
            .unwrap()
            .and_hms_opt(9, 30, 0)
            .unwrap(),
    ));
    rest(
        &app,
        reqwest::Method::POST,
        "/api/meals/classes/4a/requests",
        &teacher,
        json!({"meal_time": "lunch-1"}),
    )
    .await;
    let (_, requests) = call_endpoint(
        &app,
        "caterers",
        "ClassRequests",
        "CATERER1",
        "r-1",
        "<t:School>s1</t:School>",
    )
    .await;
    assert_eq!(status(&requests), "RESULT", "{requests}");
    assert_eq!(fields(&requests, "Account"), vec!["ls-a"], "{requests}");
    // The formed request was pushed to the caterer's service, once.
    let pushed = until("the formed request pushed to the caterer", || {
        sim.bodies.lock().unwrap().first().cloned()
    })
    .await;
    assert!(
        pushed.contains("<tns:Reason>formed</tns:Reason>"),
        "{pushed}"
    );
    assert!(
        pushed.contains("<tns:Account>ls-a</tns:Account>"),
        "{pushed}"
    );
    assert_eq!(sim.accepted.lock().unwrap().len(), 1);
    // No attendance mark yet: the line is there, excluded, saying why (as the REST door shows it).
    assert_eq!(
        fields(&requests, "Reason"),
        vec!["no attendance mark"],
        "{requests}"
    );
    assert_eq!(fields(&requests, "ClassName"), vec!["4А"]);
    for answer in [&refused, &saved, &set, &procurement, &requests] {
        valid("caterers", answer);
    }
    let (_, elsewhere) = call_endpoint(
        &app,
        "caterers",
        "ClassRequests",
        "CATERER1",
        "r-2",
        "<t:School>s2</t:School>",
    )
    .await;
    assert!(fields(&elsewhere, "Account").is_empty(), "{elsewhere}");

    // At the day's close the final request is pushed too.
    clock.set(calendar::local_to_utc(
        chrono::NaiveDate::from_ymd_opt(2026, 5, 13)
            .unwrap()
            .and_hms_opt(23, 30, 0)
            .unwrap(),
    ));
    let closed = until("the closed request pushed to the caterer", || {
        sim.bodies
            .lock()
            .unwrap()
            .iter()
            .find(|b| b.contains("<tns:Reason>closed</tns:Reason>"))
            .cloned()
    })
    .await;
    assert!(closed.contains("<tns:Closed>true</tns:Closed>"), "{closed}");
    app.stop().await;
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(operator(app));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_is_connected_step_by_step_on_working_day_deadlines() {
    // Tuesday 1 December 2026.
    let app = TestApp::spawn_configured(
        vec![Arc::new(gateway::GatewayService)],
        clock_at(2026, 12, 1, 10),
        |_| {},
    )
    .await;
    use reqwest::Method;
    register(
        &app,
        "NEWBANK",
        participant("bank", "test", Some("nb")),
        &[],
    )
    .await;
    register(&app, "AGENCY2", participant("agency", "test", None), &[]).await;
    let c = "/api/gateway/participants/NEWBANK/connection";

    // The bank's application arrived on Monday 23 November: 5 working days to answer.
    let (code, started) = send(
        &app,
        Method::POST,
        c,
        Some(json!({"received_on": "2026-11-23"})),
    )
    .await;
    assert_eq!(code, 201, "{started}");
    assert_eq!(started["state"], "review");
    assert_eq!(started["review_due"], "2026-11-30");
    assert_eq!(started["overdue_days"], 1, "{started}");
    // An agency's application: 10 working days.
    let (_, agency) = send(
        &app,
        Method::POST,
        "/api/gateway/participants/AGENCY2/connection",
        Some(json!({})),
    )
    .await;
    assert_eq!(agency["review_due"], "2026-12-15", "{agency}");
    let (_, overdue) = send(&app, Method::GET, "/api/gateway/connections/overdue", None).await;
    assert_eq!(
        overdue,
        json!([{"participant": "NEWBANK", "name": "ПАО Банк", "kind": "bank", "state": "review",
        "received_on": "2026-11-23", "review_due": "2026-11-30", "working_days_late": 1}])
    );

    // Rights and the production contour follow the state.
    let (code, refused) = send(
        &app,
        Method::PUT,
        "/api/gateway/participants/NEWBANK/rights/banks.Check",
        None,
    )
    .await;
    assert_eq!(code, 409, "{refused}");
    let (code, _) = send(
        &app,
        Method::PUT,
        "/api/gateway/participants/NEWBANK",
        Some(participant("bank", "production", Some("nb"))),
    )
    .await;
    assert_eq!(code, 409);
    let step = |s: &str| json!({"step": s});
    let (code, order) = send(
        &app,
        Method::POST,
        &format!("{c}/steps"),
        Some(json!({"step": "act", "act_number": "1"})),
    )
    .await;
    assert_eq!(code, 409);
    assert!(
        order["detail"]
            .as_str()
            .unwrap()
            .contains("possible: shortcomings, approved, declined"),
        "{order}"
    );

    // Shortcomings sent back a working day late; the corrected application starts a new review.
    let (_, back) = send(
        &app,
        Method::POST,
        &format!("{c}/steps"),
        Some(json!({"step": "shortcomings", "note": "нет схемы услуги"})),
    )
    .await;
    assert_eq!(back["state"], "shortcomings");
    assert_eq!(back["steps"][1]["late_days"], 1, "{back}");
    let (_, overdue) = send(&app, Method::GET, "/api/gateway/connections/overdue", None).await;
    assert_eq!(overdue, json!([]));
    let (_, again) = send(
        &app,
        Method::POST,
        &format!("{c}/steps"),
        Some(step("resubmitted")),
    )
    .await;
    assert_eq!(
        (again["state"].as_str(), again["review_due"].as_str()),
        (Some("review"), Some("2026-12-08")),
        "{again}"
    );
    for s in ["approved", "requirements_sent", "testing"] {
        let (code, v) = send(&app, Method::POST, &format!("{c}/steps"), Some(step(s))).await;
        assert_eq!(code, 200, "{s}: {v}");
    }
    // Testing: rights may be granted (in the test contour).
    let (code, rights) = send(
        &app,
        Method::PUT,
        "/api/gateway/participants/NEWBANK/rights/banks.Check",
        None,
    )
    .await;
    assert_eq!((code, rights), (200, json!(["banks.Check"])));
    let (code, _) = send(&app, Method::GET, &format!("{c}/act"), None).await;
    assert_eq!(code, 409, "no act before the act");
    let (code, missing) = send(&app, Method::POST, &format!("{c}/steps"), Some(step("act"))).await;
    assert_eq!(code, 400);
    assert_eq!(missing["errors"][0]["field"], "act_number");
    let (_, connected) = send(
        &app,
        Method::POST,
        &format!("{c}/steps"),
        Some(json!({"step": "act", "act_number": "17/2026"})),
    )
    .await;
    assert_eq!(
        (
            connected["state"].as_str(),
            connected["act_number"].as_str()
        ),
        (Some("connected"), Some("17/2026"))
    );
    let res = reqwest::Client::new()
        .get(app.url(&format!("{c}/act")))
        .bearer_auth(operator(&app))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("act-NEWBANK-17-2026.xlsx"));
    assert!(res.bytes().await.unwrap().starts_with(b"PK"), "an XLSX");
    let (_, live) = send(
        &app,
        Method::POST,
        &format!("{c}/steps"),
        Some(step("production")),
    )
    .await;
    assert_eq!(live["state"], "production");
    let (_, p) = send(&app, Method::GET, "/api/gateway/participants/NEWBANK", None).await;
    assert_eq!(p["contour"], "production");

    // A declined application: the participant is deactivated.
    let (_, declined) = send(
        &app,
        Method::POST,
        "/api/gateway/participants/AGENCY2/connection/steps",
        Some(step("declined")),
    )
    .await;
    assert_eq!(declined["state"], "declined");
    let (_, a) = send(&app, Method::GET, "/api/gateway/participants/AGENCY2", None).await;
    assert_eq!(a["active"], false);
    let (_, audit) = send(
        &app,
        Method::GET,
        "/api/gateway/audit?participant=NEWBANK",
        None,
    )
    .await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["entity"] == "connection" && e["action"] == "act"),
        "{audit}"
    );
    app.stop().await;
}

/// A participant's own SOAP service, simulated: per path, how it answers, and
/// what it received.
#[derive(Default)]
struct Sim {
    /// (path, MessageId) of every call, in order.
    calls: std::sync::Mutex<Vec<(String, String)>>,
    /// (path, MessageId) of every call it accepted.
    accepted: std::sync::Mutex<Vec<(String, String)>>,
    /// The bodies it accepted.
    bodies: std::sync::Mutex<Vec<String>>,
    /// `/dead` answers 500 while this is set.
    dead: std::sync::atomic::AtomicBool,
}

const ACCEPT: &str = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:smev="http://smev.gosuslugi.ru/rev120315"><soapenv:Body><c:PushClassRequestsResponse xmlns:c="urn:tyumen:portal:gateway:caterers:1"><smev:Message><smev:Sender><smev:Code>CAT</smev:Code><smev:Name>c</smev:Name></smev:Sender><smev:Recipient><smev:Code>TMNPORTAL</smev:Code><smev:Name>p</smev:Name></smev:Recipient><smev:ServiceName>caterer-push</smev:ServiceName><smev:TypeCode>OTHR</smev:TypeCode><smev:Status>ACCEPT</smev:Status><smev:Date>2026-05-13T10:00:00+05:00</smev:Date><smev:ExchangeType>1</smev:ExchangeType></smev:Message><c:MessageData/></c:PushClassRequestsResponse></soapenv:Body></soapenv:Envelope>"#;

/// Starts the simulated service; its base URL.
fn simulate(sim: Arc<Sim>) -> String {
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    let server = HttpServer::new(move || {
        let sim = sim.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: String| {
            let sim = sim.clone();
            async move {
                let path = req.path().to_string();
                let id = body
                    .split("<smev:MessageId>")
                    .nth(1)
                    .and_then(|r| r.split('<').next())
                    .unwrap_or_default()
                    .to_string();
                let n = {
                    let mut calls = sim.calls.lock().unwrap();
                    calls.push((path.clone(), id.clone()));
                    calls.iter().filter(|(p, _)| *p == path).count()
                };
                let fail = match path.as_str() {
                    "/flaky" => n <= 2,
                    "/dead" => sim.dead.load(std::sync::atomic::Ordering::SeqCst),
                    "/slow" if n == 1 => {
                        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                        false
                    }
                    "/hang" => {
                        tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
                        true
                    }
                    _ => false,
                };
                if fail {
                    return HttpResponse::ServiceUnavailable().body("down");
                }
                sim.accepted.lock().unwrap().push((path, id));
                sim.bodies.lock().unwrap().push(body);
                HttpResponse::Ok().content_type("text/xml").body(ACCEPT)
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    format!("http://{addr}")
}

async fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = probe() {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("waited 10 s for {what}");
}

fn caterer_at(address: &str) -> Value {
    let mut c = participant("caterer", "production", None);
    c["organizer"] = json!("org-1");
    c["address"] = json!(address);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_deliveries_are_retried_parked_replayed_and_sent_once() {
    let sim = Arc::new(Sim::default());
    sim.dead.store(true, std::sync::atomic::Ordering::SeqCst);
    let base = simulate(sim.clone());
    let keys = std::env::temp_dir().join(format!("portal-outbound-{}", uuid_like()));
    std::fs::create_dir_all(&keys).unwrap();
    openssl_pair(&keys, "gateway", "rsa:2048");
    let key_path = |f: &str| Some(keys.join(f).to_string_lossy().into_owned());
    let app = TestApp::spawn_configured(
        vec![Arc::new(gateway::GatewayService)],
        clock_at(2026, 5, 13, 10),
        |s| {
            s.gateway.signing_key_file = key_path("gateway.key");
            s.gateway.signing_cert_file = key_path("gateway.pem");
            s.gateway.outbound_timeout_ms = 500;
            s.gateway.outbound_retry_ms = 50;
            s.gateway.outbound_max_attempts = 3;
            s.gateway.outbound_breaker_failures = 2;
            s.gateway.outbound_breaker_open_ms = 100;
        },
    )
    .await;
    for (code, path) in [
        ("OKCAT", "/ok"),
        ("FLAKY", "/flaky"),
        ("SLOW", "/slow"),
        ("DEAD", "/dead"),
    ] {
        register(&app, code, caterer_at(&format!("{base}{path}")), &[]).await;
    }
    // The event a formed request brings, queued as the consumer queues it.
    let ctx = app.context("gateway");
    let event = contracts::meals::ClassRequestReady {
        organizer: "org-1".into(),
        school: "s1".into(),
        date: chrono::NaiveDate::from_ymd_opt(2026, 5, 13).unwrap(),
        reason: "formed".into(),
        request: json!({"id": "r-1", "school": "s1", "class": "4a", "class_name": "4А", "date": "2026-05-13",
            "meal_time": "lunch-1", "meal_kind": "lunch", "formed_by": "t", "formed_at": "2026-05-13T09:30:00+05:00",
            "confirmed_at": null, "closed": false, "included": 1, "excluded": 0, "lines": [
                {"account": "ls-a", "student": "Антонов Антон", "complex": "c1", "source": "default",
                 "price": {"price": "150.00", "reimbursed": "0.00", "extras": "0.00", "to_pay": "150.00"},
                 "balance": "10.00", "included": true, "reason": null, "ate": null, "category": null}]}),
    };
    let envelope = bus::Envelope::json(
        "meals.class-request.ready.v1",
        "meals.ClassRequestReady.v1",
        &event,
    )
    .unwrap()
    .with_id("class-request:r-1:formed");
    for _ in 0..2 {
        // Delivered twice by the bus: queued once.
        let e = envelope.clone();
        let h = gateway::outbound::ClassRequestHandler;
        ctx.db
            .write(move |c| {
                bus::Handler::handle(&h, c, &e)
                    .map_err(|e| storage::StorageError::Config(e.to_string()))
            })
            .await
            .unwrap();
    }
    let deliveries = |app: &TestApp, status: &str| {
        let app_url = app.url(&format!("/api/gateway/deliveries?status={status}"));
        let token = operator(app);
        async move {
            let v: Value = reqwest::Client::new()
                .get(app_url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v.as_array()
                .unwrap()
                .iter()
                .map(|d| d["participant"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    // The healthy, the flaky and the slow one are delivered while the dead one fails.
    let mut delivered = Vec::new();
    for _ in 0..200 {
        delivered = deliveries(&app, "delivered").await;
        if delivered.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    delivered.sort();
    assert_eq!(delivered, vec!["FLAKY", "OKCAT", "SLOW"]);
    let accepted = sim.accepted.lock().unwrap().clone();
    let flaky: Vec<_> = sim
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == "/flaky")
        .cloned()
        .collect();
    assert_eq!(flaky.len(), 3, "down twice, then back");
    assert!(
        flaky
            .iter()
            .all(|(_, id)| id == "class-request:r-1:formed@FLAKY"),
        "one MessageId: {flaky:?}"
    );
    assert_eq!(
        accepted.iter().filter(|(p, _)| p == "/flaky").count(),
        1,
        "taken once"
    );
    assert_eq!(accepted.iter().filter(|(p, _)| p == "/ok").count(), 1);
    let body = sim.bodies.lock().unwrap()[0].clone();
    assert!(
        body.contains("<tns:Reason>formed</tns:Reason>")
            && body.contains("<tns:Account>ls-a</tns:Account>"),
        "{body}"
    );
    let push = gateway::soap::contracts::endpoint("caterer-push").unwrap();
    gateway::soap::xsd::validate(push, &body).unwrap_or_else(|v| panic!("{v:?}\n{body}"));
    // Signed with the gateway's key (actor recipient).
    let gateway_der =
        openssl::x509::X509::from_pem(&std::fs::read(keys.join("gateway.pem")).unwrap())
            .unwrap()
            .to_der()
            .unwrap();
    match gateway::soap::dsig::check_as(&body, gateway::soap::dsig::ACTOR_RECIPIENT) {
        gateway::soap::dsig::Checked::Verified(s) => assert_eq!(s.certificate, gateway_der),
        other => panic!("the delivery's signature: {other:?}\n{body}"),
    }

    // The dead one is parked after its attempts; the operator replays it once it is back.
    let mut parked = Vec::new();
    for _ in 0..200 {
        parked = deliveries(&app, "parked").await;
        if !parked.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(parked, vec!["DEAD"]);
    let dead_calls = sim
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == "/dead")
        .count();
    assert_eq!(dead_calls, 3, "outbound_max_attempts");
    sim.dead.store(false, std::sync::atomic::Ordering::SeqCst);
    let (code, replayed) = send(
        &app,
        reqwest::Method::POST,
        "/api/gateway/deliveries/class-request:r-1:formed@DEAD/replay",
        None,
    )
    .await;
    assert_eq!(code, 200, "{replayed}");
    until("DEAD delivered after the replay", || {
        sim.accepted
            .lock()
            .unwrap()
            .iter()
            .any(|(p, _)| p == "/dead")
            .then_some(())
    })
    .await;
    let (code, _) = send(
        &app,
        reqwest::Method::POST,
        "/api/gateway/deliveries/class-request:r-1:formed@DEAD/replay",
        None,
    )
    .await;
    // Not parked any more (pending or delivered): nothing to replay.
    assert_eq!(code, 409);
    // Every call is in the message log, outbound.
    let logged = log_search(&app, "participant=FLAKY").await;
    assert_eq!(logged.len(), 3, "{logged:?}");
    app.stop().await;
    let _ = std::fs::remove_dir_all(&keys);
}

/// A participants' CA, a server certificate for 127.0.0.1 and client
/// certificates for `clients`, made with the openssl command in `dir`.
fn make_pki(dir: &std::path::Path, clients: &[&str]) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=Participants CA",
    ]);
    let issue = |name: &str, ext: &str| {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "30",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    };
    issue("server", "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
    for c in clients {
        issue(c, "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_maps_the_client_certificate_to_its_participant() {
    let dir = std::env::temp_dir().join(format!("portal-pki-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    make_pki(&dir, &["bank01", "bank02"]);
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let app = app_with(|s| {
        s.http.tls = settings::TlsSettings {
            bind: "127.0.0.1:0".into(),
            cert_file: path("server.pem"),
            key_file: path("server.key"),
            client_ca_file: path("ca.pem"),
            require_client_cert: true,
        };
        s.gateway.require_client_certificate = true;
    })
    .await;
    let pem = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let mut bank01 = participant("bank", "production", Some("sber"));
    bank01["certificates"] = json!([pem("bank01.pem")]);
    register(&app, "BANK01", bank01, &["banks.Check"]).await;
    let mut bank02 = participant("bank", "production", Some("vtb"));
    bank02["certificates"] = json!([pem("bank02.pem")]);
    register(&app, "BANK02", bank02, &["banks.Check"]).await;
    open_account(&app, "ls-77").await;

    let client = |who: Option<&str>| {
        let mut b = reqwest::Client::builder().add_root_certificate(
            reqwest::Certificate::from_pem(pem("ca.pem").as_bytes()).unwrap(),
        );
        if let Some(w) = who {
            let identity = reqwest::Identity::from_pkcs8_pem(
                pem(&format!("{w}.pem")).as_bytes(),
                pem(&format!("{w}.key")).as_bytes(),
            )
            .unwrap();
            b = b.identity(identity);
        }
        b.build().unwrap()
    };
    let call = |c: reqwest::Client, url: String, id: &'static str| async move {
        c.post(url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(envelope(&req("Check", id, CHECK)))
            .send()
            .await
    };
    // BANK01's own certificate: answered.
    let ok = call(client(Some("bank01")), app.tls_url("/soap/banks"), "tls-1")
        .await
        .unwrap();
    let ok = ok.text().await.unwrap();
    assert_eq!(status(&ok), "RESULT", "{ok}");
    assert_eq!(field(&ok, "Code").unwrap(), "0");
    // BANK02's certificate with BANK01 as the Sender: refused.
    let other = call(client(Some("bank02")), app.tls_url("/soap/banks"), "tls-2")
        .await
        .unwrap();
    let other = other.text().await.unwrap();
    assert_eq!(status(&other), "REJECT", "{other}");
    assert_eq!(field(&other, "Code").unwrap(), "CERTIFICATE_MISMATCH");
    // That refusal is not BANK01's first answer: BANK01's own message of that
    // id is answered on its merits.
    let own = call(client(Some("bank01")), app.tls_url("/soap/banks"), "tls-2")
        .await
        .unwrap();
    let own = own.text().await.unwrap();
    assert_eq!(status(&own), "RESULT", "{own}");
    // No certificate: the TLS handshake itself is refused.
    let none = call(client(None), app.tls_url("/soap/banks"), "tls-3").await;
    assert!(none.is_err(), "{none:?}");
    // Plain HTTP where mutual TLS is required: refused by the gateway.
    let (_, plain) = soap(&app, &req("Check", "tls-4", CHECK)).await;
    assert_eq!(
        field(&plain, "Code").unwrap(),
        "CERTIFICATE_REQUIRED",
        "{plain}"
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_participant_with_a_backlog_holds_no_one_back() {
    let sim = Arc::new(Sim::default());
    let base = simulate(sim.clone());
    let app = TestApp::spawn_configured(
        vec![Arc::new(gateway::GatewayService)],
        clock_at(2026, 5, 13, 10),
        |s| {
            s.gateway.outbound_timeout_ms = 500;
            s.gateway.outbound_retry_ms = 60_000;
        },
    )
    .await;
    register(&app, "HANG", caterer_at(&format!("{base}/hang")), &[]).await;
    register(&app, "OKCAT", caterer_at(&format!("{base}/ok")), &[]).await;
    // 400 deliveries to the hanging one, queued before the healthy one's.
    let earlier = storage::now_naive() - chrono::Duration::seconds(10);
    let row =
        |id: String, participant: &str, at: chrono::NaiveDateTime| gateway::store::DeliveryRow {
            id,
            participant: participant.into(),
            operation: "PushClassRequests".into(),
            payload: json!({"reason": "formed", "requests": []}).to_string(),
            status: gateway::store::PENDING.into(),
            attempts: 0,
            next_at: at,
            last_error: None,
            created_at: at,
            delivered_at: None,
        };
    let mut rows: Vec<_> = (0..400)
        .map(|i| row(format!("hang-{i:03}"), "HANG", earlier))
        .collect();
    rows.push(row("ok-1".into(), "OKCAT", storage::now_naive()));
    let started = std::time::Instant::now();
    app.context("gateway")
        .db
        .write(move |c| -> Result<(), storage::StorageError> {
            for r in &rows {
                gateway::store::queue_delivery(c, r)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    until("the healthy participant's delivery", || {
        sim.accepted
            .lock()
            .unwrap()
            .iter()
            .any(|(p, _)| p == "/ok")
            .then_some(())
    })
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "delivered after {:?}: the backlog held it back",
        started.elapsed()
    );
    let hang_calls = sim
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == "/hang")
        .count();
    assert!(
        hang_calls <= 8,
        "at most 4 in flight to one participant at a time: {hang_calls}"
    );
    app.stop().await;
}

/// `openssl req -x509` in `dir`: a key and a self-signed certificate of
/// `algorithm` (`rsa:2048`, or `gost2012_256` through the gost engine that
/// OPENSSL_CONF loads), named `name.key` / `name.pem`.
fn openssl_pair(dir: &std::path::Path, name: &str, algorithm: &str) {
    let mut args = vec![
        "req", "-x509", "-newkey", algorithm, "-nodes", "-days", "30",
    ];
    if algorithm.starts_with("gost") {
        args.extend(["-pkeyopt", "paramset:A", "-md_gost12_256"]);
    }
    let (key, pem, subj) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={name}"),
    );
    args.extend(["-keyout", &key, "-out", &pem, "-subj", &subj]);
    let out = std::process::Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
        .expect("the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?} (OPENSSL_CONF={:?}): {}",
        std::env::var("OPENSSL_CONF"),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_messages_are_verified_and_their_certificates_judged() {
    use gateway::soap::dsig;
    let dir = std::env::temp_dir().join(format!("portal-dsig-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, algorithm) in [
        ("gateway", "gost2012_256"),
        ("rsa01", "rsa:2048"),
        ("gost01", "gost2012_256"),
        ("bank02", "rsa:2048"),
    ] {
        openssl_pair(&dir, name, algorithm);
    }
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let pem = |f: &str| String::from_utf8(read(f)).unwrap();
    // A certificate of BANK01's that ran out a year ago.
    let expired_key = openssl::pkey::PKey::private_key_from_pem(&read("rsa01.key")).unwrap();
    let year = 365 * 86_400;
    let now = chrono::Utc::now().timestamp();
    let expired = dsig::self_signed(&expired_key, "rsa01-old", now - 2 * year, now - year).unwrap();
    let expired_pem = String::from_utf8(expired.to_pem().unwrap()).unwrap();
    let signer = |name: &str| {
        dsig::Signer::from_pem(&read(&format!("{name}.key")), &read(&format!("{name}.pem")))
            .unwrap()
    };
    let expired_signer =
        dsig::Signer::from_pem(&read("rsa01.key"), expired_pem.as_bytes()).unwrap();

    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let app = app_with(|s| {
        s.gateway.require_signature = true;
        s.gateway.signing_key_file = Some(path("gateway.key"));
        s.gateway.signing_cert_file = Some(path("gateway.pem"));
    })
    .await;
    let mut bank01 = participant("bank", "production", Some("sber"));
    bank01["certificates"] = json!([pem("rsa01.pem"), pem("gost01.pem"), expired_pem]);
    register(&app, "BANK01", bank01.clone(), &["banks.Check"]).await;
    let mut bank02 = participant("bank", "production", Some("vtb"));
    bank02["certificates"] = json!([pem("bank02.pem")]);
    register(&app, "BANK02", bank02, &["banks.Check"]).await;
    open_account(&app, "ls-77").await;
    let gateway_der = openssl::x509::X509::from_pem(&read("gateway.pem"))
        .unwrap()
        .to_der()
        .unwrap();
    let code = |xml: &str| field(xml, "Code").unwrap_or_default();
    // Each message its own Body (its case number names it): the Body, not
    // the MessageId, is what is signed.
    let signed_req = |id: &str, case: &str, app_data: &str| {
        let mut r = req("Check", id, app_data);
        r.refs = Some(("prev", "origin", case));
        envelope(&r)
    };

    // Unsigned where signatures are required.
    let (_, unsigned) = soap(&app, &req("Check", "s-0", CHECK)).await;
    assert_eq!(
        (status(&unsigned).as_str(), code(&unsigned).as_str()),
        ("REJECT", "SIGNATURE_REQUIRED"),
        "{unsigned}"
    );

    // Signed by each algorithm: answered, and the answer carries the
    // gateway's own signature (actor recipient) that verifies.
    for (name, id, algorithm) in [
        ("rsa01", "s-rsa", "RSA-SHA256"),
        ("gost01", "s-gost", "ГОСТ Р 34.10-2012 (256)"),
    ] {
        let signed = signer(name)
            .sign(&signed_req(id, id, CHECK), dsig::ACTOR_SMEV)
            .unwrap();
        let (http, answer) = post(&app, signed).await;
        assert_eq!(
            (http, status(&answer).as_str(), code(&answer).as_str()),
            (200, "RESULT", "0"),
            "{name}: {answer}"
        );
        match dsig::check_as(&answer, dsig::ACTOR_RECIPIENT) {
            dsig::Checked::Verified(s) => assert_eq!(s.certificate, gateway_der),
            other => panic!("the answer's signature: {other:?}\n{answer}"),
        }
        let logged = log_search(&app, &format!("message_id={id}")).await;
        let outcome = logged[0]["outcome"].as_str().unwrap();
        assert!(
            outcome.contains(&format!("signed {algorithm}")),
            "{outcome}"
        );
    }

    // The MessageId is not signed: another signed Body of BANK01's with
    // s-rsa's MessageId does not fetch s-rsa's answer; s-rsa itself again does.
    let other_body = signed_req(
        "s-rsa",
        "s-rsa",
        "<b:Check><b:Account>ls-78</b:Account></b:Check>",
    );
    let (_, answer) = post(
        &app,
        signer("rsa01").sign(&other_body, dsig::ACTOR_SMEV).unwrap(),
    )
    .await;
    assert_eq!(code(&answer), "MESSAGE_ID_REUSED", "{answer}");
    let again = signer("rsa01")
        .sign(&signed_req("s-rsa", "s-rsa", CHECK), dsig::ACTOR_SMEV)
        .unwrap();
    let (_, answer) = post(&app, again).await;
    assert_eq!(
        (status(&answer).as_str(), code(&answer).as_str()),
        ("RESULT", "0"),
        "{answer}"
    );
    // s-rsa's signed Body under a new MessageId: a replay.
    let replay = signer("rsa01")
        .sign(&signed_req("s-replay", "s-rsa", CHECK), dsig::ACTOR_SMEV)
        .unwrap();
    let (_, answer) = post(&app, replay).await;
    assert_eq!(code(&answer), "BODY_REPLAYED", "{answer}");
    assert!(answer.contains("MessageId s-rsa"), "{answer}");
    // Past the log's retention the Body is forgotten with its record.
    let ctx = app.context("gateway");
    let later = chrono::Utc::now().naive_utc() + chrono::Duration::days(1);
    let removed = ctx
        .db
        .write(move |c| gateway::store::prune_signed_bodies(c, later))
        .await
        .unwrap();
    assert!(removed >= 2, "{removed}");
    let again = signer("rsa01")
        .sign(&signed_req("s-replay2", "s-rsa", CHECK), dsig::ACTOR_SMEV)
        .unwrap();
    let (_, answer) = post(&app, again).await;
    assert_eq!(status(&answer), "RESULT", "{answer}");

    // Altered after signing: refused, and the log keeps both digests.
    let signed = signer("rsa01")
        .sign(&signed_req("s-alt", "s-alt", CHECK), dsig::ACTOR_SMEV)
        .unwrap();
    let altered = signed.replace("ls-77", "ls-78");
    let (_, answer) = post(&app, altered.clone()).await;
    assert_eq!(
        (status(&answer).as_str(), code(&answer).as_str()),
        ("REJECT", "SIGNATURE_INVALID"),
        "{answer}"
    );
    let dsig::Checked::Failed(_, Some(digests)) = dsig::check(&altered) else {
        panic!("not a digest mismatch")
    };
    let logged = log_search(&app, "message_id=s-alt").await;
    let outcome = logged[0]["outcome"].as_str().unwrap();
    assert!(
        outcome.contains(&digests.computed) && outcome.contains(&digests.claimed),
        "{outcome}"
    );
    // That refusal is not the message's first answer: the untouched one is answered.
    let (_, answer) = post(&app, signed).await;
    assert_eq!(status(&answer), "RESULT", "{answer}");

    // A certificate of another participant.
    let theirs = signer("bank02")
        .sign(&signed_req("s-other", "s-other", CHECK), dsig::ACTOR_SMEV)
        .unwrap();
    let (_, answer) = post(&app, theirs).await;
    assert_eq!(code(&answer), "CERTIFICATE_NOT_REGISTERED", "{answer}");

    // An expired one, though registered.
    let old = expired_signer
        .sign(&signed_req("s-old", "s-old", CHECK), dsig::ACTOR_SMEV)
        .unwrap();
    let (_, answer) = post(&app, old).await;
    assert_eq!(code(&answer), "CERTIFICATE_EXPIRED", "{answer}");

    // A superseded algorithm, named.
    let v2001 = signer("rsa01")
        .sign(&signed_req("s-2001", "s-2001", CHECK), dsig::ACTOR_SMEV)
        .unwrap()
        .replace(
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2001/04/xmldsig-more#gostr34102001-gostr3411",
        );
    let (_, answer) = post(&app, v2001).await;
    assert_eq!(code(&answer), "SIGNATURE_ALGORITHM_UNSUPPORTED", "{answer}");

    // The RSA certificate replaced by the operator: refused as revoked.
    bank01["certificates"] = json!([pem("gost01.pem")]);
    register(&app, "BANK01", bank01, &[]).await;
    let replaced = signer("rsa01")
        .sign(
            &signed_req("s-replaced", "s-replaced", CHECK),
            dsig::ACTOR_SMEV,
        )
        .unwrap();
    let (_, answer) = post(&app, replaced).await;
    assert_eq!(code(&answer), "CERTIFICATE_REVOKED", "{answer}");
    assert!(answer.contains("taken off BANK01"), "{answer}");
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
