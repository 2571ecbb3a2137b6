//! A bank's daily registry over real HTTP: totals checked before anything
//! changes, every line reconciled against the online payments, cash-desk payments
//! of earlier days credited, mismatches reported (CSV and XLSX), and the same
//! file twice changing nothing. In the current test mode.

use std::sync::Arc;

use auth::Role;
use platform::testing::TestApp;
use primitives::Money;
use serde_json::{json, Value};

use crate::common::{balance, invariants_hold, m, payments_at};

fn cp1251(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

async fn upload(app: &TestApp, token: &str, query: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(&format!("/api/payments/registries?{query}")))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn setup(app: &TestApp) -> String {
    let http = reqwest::Client::new();
    let operator = app.token("op", &[Role::OperatorAdmin], |_| {});
    for (id, org) in [("ls-1", "org-1"), ("ls-2", "org-1"), ("ls-3", "org-2")] {
        let res = http
            .post(app.url("/api/payments/accounts"))
            .bearer_auth(&operator)
            .json(&json!({ "account": id, "student_name": "Орлова Дарья", "school": "s", "class_name": "5Б",
                           "municipality": "tyumen", "organizer": org }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let bank = app.token("gw", &[Role::Bank], |r| r.banks = vec!["sber".into()]);
    let pay = |txn: &str, account: &str, amount: &str| {
        http.post(app.url("/api/payments/banks/pay"))
            .bearer_auth(&bank)
            .json(&json!({ "account": account, "amount": amount, "txn_id": txn, "txn_at": "2026-09-11T11:00:00+05:00" }))
            .send()
    };
    // Online payment three days before the registry's day, confirmed by it.
    assert_eq!(
        pay("T4", "ls-2", "60.00")
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["code"],
        0
    );
    app.clock.advance(chrono::Duration::days(3));
    for (txn, account, amount) in [
        ("T1", "ls-1", "100.00"),
        ("T2", "ls-2", "200.00"),
        ("T3", "ls-1", "50.00"),
    ] {
        assert_eq!(
            pay(txn, account, amount)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()["code"],
            0
        );
    }
    bank
}

const REGISTRY: &str = "T1;ls-1;100,00;14.09.2026 10:01:00;Орлов Иван\r\n\
T2;ls-2;250.00;14.09.2026 10:02:00;Орлов Иван\r\n\
T9;ls-3;300.00;10.09.2026 16:30:00;касса школы 5\r\n\
T10;ls-999;40.00;14.09.2026 11:00:00;Неизвестный\r\n\
T1;ls-1;100.00;14.09.2026 10:01:00;Орлов Иван\r\n\
T4;ls-2;60.00;11.09.2026 11:00:00;Орлов Иван\r\n\
ИТОГО;6;850.00\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_reconciles_reports_and_is_idempotent() {
    let app = payments_at(2026, 9, 11, 12).await;
    let bank = setup(&app).await;
    let before = (
        balance(&app, "ls-1").await,
        balance(&app, "ls-2").await,
        balance(&app, "ls-3").await,
    );
    assert_eq!(before, (m("150.00"), m("260.00"), m("0.00")));

    // A wrong total refuses the whole registry and changes nothing.
    let wrong = REGISTRY.replace("ИТОГО;6;850.00", "ИТОГО;6;851.00");
    let res = upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&wrong)).await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("says 6 payments for 851.00, the lines hold 6 for 850.00"),
        "{problem}"
    );
    assert_eq!(balance(&app, "ls-3").await, m("0.00"));
    // A bad line names its number.
    let bad = REGISTRY.replace("T10;ls-999;40.00", "T10;ls-999;4O.00");
    let problem: Value = upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&bad))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("line 4: amount `4O.00`"),
        "{problem}"
    );

    let res = upload(
        &app,
        &bank,
        "format=csv&date=2026-09-14&file_name=sber-20260914.csv",
        cp1251(REGISTRY),
    )
    .await;
    assert_eq!(res.status(), 201);
    let summary: Value = res.json().await.unwrap();
    assert_eq!(summary["lines"], 6);
    assert_eq!(summary["total"], "850.00");
    let o = &summary["outcomes"];
    assert_eq!(
        (
            o["matched"].as_i64(),
            o["amount_differs"].as_i64(),
            o["credited"].as_i64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(
        (
            o["unknown_account"].as_i64(),
            o["duplicate_line"].as_i64(),
            o["missing_from_registry"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    // The cash-desk payment of 10.09 is credited; the amount that differs moves nothing.
    assert_eq!(balance(&app, "ls-3").await, m("300.00"));
    assert_eq!(balance(&app, "ls-2").await, m("260.00"));
    assert_eq!(balance(&app, "suspense").await, m("40.00"));

    // The same file again: nothing changes.
    let res = upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(REGISTRY)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["already_imported"], true);
    assert_eq!(balance(&app, "ls-3").await, m("300.00"));
    assert_eq!(balance(&app, "suspense").await, m("40.00"));
    // The same file as another day's registry, or from another bank, is refused
    // by name (not answered "imported before"), and another bank is not told whose.
    let res = upload(&app, &bank, "format=csv&date=2026-09-15", cp1251(REGISTRY)).await;
    assert_eq!(res.status(), 400);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "date", "{problem}");
    assert_eq!(
        problem["detail"],
        "date: this file was imported as the registry of 2026-09-14, the upload says 2026-09-15"
    );
    let vtb = app.token("gw2", &[Role::Bank], |r| r.banks = vec!["vtb".into()]);
    let res = upload(&app, &vtb, "format=csv&date=2026-09-14", cp1251(REGISTRY)).await;
    assert_eq!(res.status(), 400);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "bank", "{problem}");
    assert!(!problem.to_string().contains("sber"), "{problem}");
    assert_eq!(balance(&app, "ls-3").await, m("300.00"));
    assert_eq!(balance(&app, "suspense").await, m("40.00"));
    // A different file for the same bank and day is a conflict.
    let other = REGISTRY.replace("касса школы 5", "касса школы 6");
    assert_eq!(
        upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&other))
            .await
            .status(),
        409
    );

    // The online payment the bank later repeats is a duplicate of the registry's credit.
    let again: Value = reqwest::Client::new()
        .post(app.url("/api/payments/banks/pay"))
        .bearer_auth(&bank)
        .json(&json!({ "account": "ls-3", "amount": "300.00", "txn_id": "T9", "txn_at": "2026-09-10T16:30:00+05:00" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["result"], "DUPLICATE");

    // Reports: the operator sees every line, the organizer only its accounts'.
    let id = summary["id"].as_str().unwrap();
    let operator = app.token("op", &[Role::OperatorAdmin], |_| {});
    let csv = reqwest::Client::new()
        .get(app.url(&format!("/api/payments/registries/{id}/report?format=csv")))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "T2;ls-2;сумма расходится",
        "T10;ls-999;неизвестный счёт",
        "T3;ls-1;нет в реестре",
        "T9;ls-3;зачислено по реестру",
        "5;T1;ls-1;повтор строки",
    ] {
        assert!(csv.contains(expected), "missing {expected:?} in\n{csv}");
    }
    let org1 = app.token("org", &[Role::MealOrganizer], |r| {
        r.organizers = vec!["org-1".into()]
    });
    let theirs = reqwest::Client::new()
        .get(app.url(&format!("/api/payments/registries/{id}/report")))
        .bearer_auth(&org1)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        theirs.contains("T2;ls-2") && !theirs.contains("ls-999") && !theirs.contains("ls-3"),
        "{theirs}"
    );
    // An organizer's summary counts its own accounts' lines, never the bank's
    // whole file; an organizer or another bank with no line in it finds no registry.
    let org2 = app.token("org2", &[Role::MealOrganizer], |r| {
        r.organizers = vec!["org-2".into()]
    });
    let theirs: Value = reqwest::Client::new()
        .get(app.url(&format!("/api/payments/registries/{id}")))
        .bearer_auth(&org2)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["lines"], 1, "{theirs}");
    assert_eq!(theirs["total"], "300.00", "{theirs}");
    assert_eq!(theirs["outcomes"], json!({ "credited": 1 }), "{theirs}");
    let csv2 = reqwest::Client::new()
        .get(app.url(&format!("/api/payments/registries/{id}/report")))
        .bearer_auth(&org2)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv2.contains("T9;ls-3") && !csv2.contains("850.00") && !csv2.contains("ls-1"),
        "{csv2}"
    );
    let org3 = app.token("org3", &[Role::MealOrganizer], |r| {
        r.organizers = vec!["org-3".into()]
    });
    let vtb = app.token("vtb", &[Role::Bank], |r| r.banks = vec!["vtb".into()]);
    for (who, token) in [("organizer without lines", &org3), ("another bank", &vtb)] {
        for path in [
            format!("/api/payments/registries/{id}"),
            format!("/api/payments/registries/{id}/report"),
        ] {
            let res = reqwest::Client::new()
                .get(app.url(&path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 404, "{who} {path}");
        }
    }
    let res = reqwest::Client::new()
        .get(app.url(&format!("/api/payments/registries/{id}/report?format=xlsx")))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK"), "an XLSX is a zip");
    let parent = app.token("p", &[Role::Parent], |r| r.children = vec!["ls-1".into()]);
    let res = reqwest::Client::new()
        .get(app.url(&format!("/api/payments/registries/{id}")))
        .bearer_auth(&parent)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    invariants_hold(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_registry_is_accepted_and_checked() {
    let app = payments_at(2026, 9, 11, 12).await;
    let bank = setup(&app).await;
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<PaymentRegistry xmlns="urn:tyumen:portal:payments:registry:1" bank="sber" date="2026-09-14">
  <Payment txnId="T1" account="ls-1" amount="100.00" paidAt="2026-09-14T10:01:00+05:00" payer="Орлов И."/>
  <Payment txnId="T2" account="ls-2" amount="200.00" paidAt="2026-09-14T10:02:00+05:00"/>
  <Payment txnId="T3" account="ls-1" amount="50.00" paidAt="2026-09-14T10:03:00+05:00"/>
  <Totals count="3" amount="350.00"/>
</PaymentRegistry>"#;
    let res = upload(&app, &bank, "format=xml", xml.as_bytes().to_vec()).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let summary: Value = upload(&app, &bank, "format=xml", xml.as_bytes().to_vec())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["already_imported"], true);
    assert_eq!(summary["outcomes"]["matched"], 3);
    let wrong_bank = xml
        .replace("bank=\"sber\"", "bank=\"vtb\"")
        .replace("T3", "T33");
    let res = upload(&app, &bank, "format=xml", wrong_bank.into_bytes()).await;
    assert_eq!(res.status(), 400);
    // The upload's date must be the registry's; it is checked before the lines.
    let other_day = xml.replace("T3", "T34");
    let res = upload(
        &app,
        &bank,
        "format=xml&date=2026-09-15",
        other_day.into_bytes(),
    )
    .await;
    assert_eq!(res.status(), 400);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(
        problem["detail"],
        "date: the registry is for 2026-09-14, the upload says 2026-09-15"
    );
    assert_eq!(problem["errors"][0]["field"], "date");
    let missing = xml.replace(" amount=\"50.00\"", "");
    let res = upload(&app, &bank, "format=xml", missing.into_bytes()).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("amount"));
    app.stop().await;
}

/// A registry of the 14th longer than one chunk (`registry::CHUNK` lines), whose
/// second chunk repeats lines of the first: an unknown account's (`U1`), a
/// credited one's (`C20`), an online payment of the same day (`T1`: no mark is
/// written for it, only the import's set of ids knows it was seen) and one of
/// three days earlier (`T4`, marked as confirmed by this registry). Every other
/// line is a cash-desk payment of 1.00 to `ls-3`; `T2` and `T3`, paid online on
/// the 14th, are missing from it.
fn long_registry() -> String {
    let lines = payments::registry::CHUNK + 200;
    let mut text = String::new();
    let mut total = Money::ZERO;
    for i in 1..=lines {
        // The special lines of the first chunk come back in the second.
        let special = |at: usize, back: usize| i == at || i == lines - back;
        let line = if special(10, 50) {
            "U1;ls-999;5.00;13.09.2026 09:00:00;x".to_string()
        } else if special(20, 10) {
            "C20;ls-3;1.00;13.09.2026 09:00:00;x".to_string()
        } else if special(30, 30) {
            "T1;ls-1;100.00;14.09.2026 10:01:00;x".to_string()
        } else if special(40, 20) {
            "T4;ls-2;60.00;11.09.2026 11:00:00;x".to_string()
        } else {
            format!("C{i};ls-3;1.00;13.09.2026 09:00:00;x")
        };
        total += Money::parse(line.split(';').nth(2).unwrap()).unwrap();
        text.push_str(&line);
        text.push_str("\r\n");
    }
    text.push_str(&format!("ИТОГО;{lines};{total}\r\n"));
    text
}

/// What [`long_registry`] must come to, however many runs it took.
async fn assert_long_registry_outcome(app: &TestApp, summary: &Value) {
    // Every line but the eight special ones, and the first `C20`.
    let credited = i64::try_from(payments::registry::CHUNK + 200 - 8 + 1).unwrap();
    let o = &summary["outcomes"];
    assert_eq!(o["duplicate_line"], 4, "{summary}");
    assert_eq!(o["matched"], 2, "{summary}");
    assert_eq!(o["unknown_account"], 1, "{summary}");
    assert_eq!(o["credited"], credited, "{summary}");
    assert_eq!(o["missing_from_registry"], 2, "{summary}");
    assert_eq!(
        balance(app, "ls-3").await,
        Money::from_kopecks(credited * 100)
    );
    assert_eq!(balance(app, "ls-1").await, m("150.00"));
    assert_eq!(balance(app, "ls-2").await, m("260.00"));
    assert_eq!(balance(app, "suspense").await, m("5.00"));
    let operator = app.token("op", &[Role::OperatorAdmin], |_| {});
    let id = summary["id"].as_str().unwrap();
    let csv = reqwest::Client::new()
        .get(app.url(&format!("/api/payments/registries/{id}/report?format=csv")))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let missing: Vec<&str> = csv
        .lines()
        .filter(|l| l.starts_with(";T") && l.contains("нет в реестре"))
        .collect();
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(
        missing.iter().any(|l| l.contains("T2;ls-2"))
            && missing.iter().any(|l| l.contains("T3;ls-1")),
        "{missing:?}"
    );
    invariants_hold(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_recognised_across_chunks() {
    let app = payments_at(2026, 9, 11, 12).await;
    let bank = setup(&app).await;
    let text = long_registry();
    let res = upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&text)).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let summary: Value = upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&text))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["already_imported"], true);
    assert_long_registry_outcome(&app, &summary).await;
    app.stop().await;
}

/// Makes inserting the bank payment of transaction `txn` fail (`None` removes it).
async fn break_insert_of(app: &TestApp, txn: Option<String>) {
    use diesel::connection::SimpleConnection;
    app.context("payments")
        .db
        .write(move |conn| -> Result<(), storage::StorageError> {
            let pg = matches!(conn, storage::DbConnection::Pg(_));
            let sql = match (txn.as_deref(), pg) {
                (Some(t), true) => format!(
                    "CREATE FUNCTION test_break() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN IF NEW.txn_id = '{t}' THEN RAISE EXCEPTION 'broken'; END IF; \
                     RETURN NEW; END $$; \
                     CREATE TRIGGER test_break BEFORE INSERT ON bank_payments \
                     FOR EACH ROW EXECUTE FUNCTION test_break();"
                ),
                (Some(t), false) => format!(
                    "CREATE TRIGGER test_break BEFORE INSERT ON bank_payments \
                     WHEN NEW.txn_id = '{t}' BEGIN SELECT RAISE(ABORT, 'broken'); END;"
                ),
                (None, true) => "DROP TRIGGER test_break ON bank_payments; \
                                 DROP FUNCTION test_break();"
                    .into(),
                (None, false) => "DROP TRIGGER test_break;".into(),
            };
            conn.batch_execute(&sql)
                .map_err(storage::StorageError::from)
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_resumes_where_it_stopped() {
    let app = payments_at(2026, 9, 11, 12).await;
    let bank = setup(&app).await;
    let text = long_registry();
    // The second chunk fails: the first stays reconciled, the import unfinished.
    let breaking = format!("C{}", payments::registry::CHUNK + 100);
    break_insert_of(&app, Some(breaking)).await;
    let res = upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&text)).await;
    assert!(res.status().is_server_error(), "{}", res.status());
    // A chunk is CHUNK lines that wait for the database: the matching `T1`
    // does not wait, so the first chunk runs to line CHUNK + 1 and credits
    // all its lines but `U1` (suspense) and `T4` (an online payment).
    let first_chunk = i64::try_from(payments::registry::CHUNK - 2).unwrap();
    assert_eq!(
        balance(&app, "ls-3").await,
        Money::from_kopecks(first_chunk * 100)
    );
    break_insert_of(&app, None).await;

    // The same file again picks up after the first chunk.
    let res = upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&text)).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let summary: Value = res.json().await.unwrap();
    assert_eq!(summary["already_imported"], false);
    assert_long_registry_outcome(&app, &summary).await;
    app.stop().await;
}

/// A registry whose waiting lines do not all fit (a limit of 7 here, of
/// `registry::PENDING_LIMIT` in service) is reconciled by reading the file
/// again from the first line that did not: the same outcome, and an interrupted
/// run of it resumes as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_beyond_the_waiting_limit_are_read_again() {
    let app = payments_at(2026, 9, 11, 12).await;
    let bank = setup(&app).await;
    let text = long_registry();
    let path = std::env::temp_dir().join(format!(
        "registry-limit-{}-{:?}.csv",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, cp1251(&text)).unwrap();
    let import = |limit: usize| {
        use calendar::Clock;
        let db = app.context("payments").db.clone();
        let now = app.clock.now();
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            payments::registry::import_with_limit(
                &db,
                now,
                &path,
                &payments::registry::ImportRequest {
                    format: payments::registry::Format::Csv,
                    bank: "sber".into(),
                    date: chrono::NaiveDate::from_ymd_opt(2026, 9, 14),
                    file_name: "limit.csv".into(),
                    uploaded_by: "test".into(),
                },
                &Arc::new(payments::registry::Progress::default()),
                limit,
            )
        })
    };
    // A line past the limit fails: what was flushed before it stays.
    break_insert_of(&app, Some(format!("C{}", payments::registry::CHUNK))).await;
    // The failure is the database's, not the file's.
    let failed = import(7).await.unwrap();
    assert!(
        matches!(failed, Err(payments::registry::ImportError::Store(_))),
        "{failed:?}"
    );
    let before = balance(&app, "ls-3").await;
    // Lines up to `C4999`, but `U1`, `T1` and `T4`, less at most one flush of 7.
    assert!(before >= m("4989.00") && before < m("4997.00"), "{before}");
    break_insert_of(&app, None).await;
    let imported = import(7).await.unwrap().unwrap();
    assert!(!imported.already_imported);
    std::fs::remove_file(&path).unwrap();
    // The summary as the API shows it.
    let summary: Value = upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&text))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["already_imported"], true);
    assert_long_registry_outcome(&app, &summary).await;
    app.stop().await;
}

/// The same file uploaded twice at once (a bank retrying after a time-out)
/// takes effect once: one request imports it; the other is told it is being
/// imported (409, nothing changed) or, if it came late, that it was (200).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_registry_uploaded_twice_at_once_takes_effect_once() {
    let app = payments_at(2026, 9, 11, 12).await;
    let bank = setup(&app).await;
    let text = long_registry();
    let (a, b) = tokio::join!(
        upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&text)),
        upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&text)),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    for res in [a, b] {
        if res.status() == 409 {
            let body = res.text().await.unwrap();
            assert!(body.contains("being imported"), "{body}");
        }
    }
    assert!(matches!(statuses, [201, 409] | [200, 201]), "{statuses:?}");
    let res = upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&text)).await;
    assert_eq!(res.status(), 200);
    let summary: Value = res.json().await.unwrap();
    assert_long_registry_outcome(&app, &summary).await;
    app.stop().await;
}

/// The same file uploaded at once as the registry of two days: one is
/// imported as the day it asked for; the other is refused (400 naming the
/// date, or 409 when both reached the database at once) and never resumes the
/// first's import under its own date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_file_as_two_days_at_once_is_imported_once() {
    let app = payments_at(2026, 9, 11, 12).await;
    let bank = setup(&app).await;
    let text = long_registry();
    let days = ["2026-09-14", "2026-09-15"];
    let queries = days.map(|d| format!("format=csv&date={d}"));
    let (a, b) = tokio::join!(
        upload(&app, &bank, &queries[0], cp1251(&text)),
        upload(&app, &bank, &queries[1], cp1251(&text)),
    );
    let mut winner = None;
    let mut losers = 0;
    for (at, res) in [a, b].into_iter().enumerate() {
        match res.status().as_u16() {
            201 => {
                let summary: Value = res.json().await.unwrap();
                assert_eq!(
                    summary["date"], days[at],
                    "imported as the day it asked for"
                );
                winner = Some(at);
            }
            400 | 409 => losers += 1,
            other => panic!("{}: {other} {}", days[at], res.text().await.unwrap()),
        }
    }
    assert_eq!(losers, 1);
    let winner = winner.expect("one is imported");
    let res = upload(&app, &bank, &queries[winner], cp1251(&text)).await;
    assert_eq!(res.status(), 200);
    let res = upload(&app, &bank, &queries[1 - winner], cp1251(&text)).await;
    assert_eq!(res.status(), 400);
    app.stop().await;
}

/// Two different files of one bank and day uploaded at once: one is imported,
/// the other refused (409) whichever order their requests reach the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_registries_of_one_day_at_once_are_one() {
    let app = payments_at(2026, 9, 11, 12).await;
    let bank = setup(&app).await;
    let other = REGISTRY.replace(
        "ИТОГО;6;850.00",
        "T11;ls-3;1.00;14.09.2026 12:00:00;x\r\nИТОГО;7;851.00",
    );
    let (a, b) = tokio::join!(
        upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(REGISTRY)),
        upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&other)),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    let registries = app
        .context("payments")
        .db
        .read(|conn| -> Result<i64, storage::StorageError> {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            storage::per_backend!(conn, |c| diesel::sql_query(
                "SELECT COUNT(*) AS n FROM registries"
            )
            .get_result::<Count>(c))
            .map(|c| c.n)
            .map_err(storage::StorageError::from)
        })
        .await
        .unwrap();
    assert_eq!(registries, 1);
    app.stop().await;
}

/// Online payments of the registry's day that arrive while it is imported
/// (after the import read the day's payments): one the registry names (`T9`)
/// is matched, not credited and not missing; one it does not name (`A77`) is
/// missing from it, beside `T3`. The day also holds 600 payments the registry
/// names (`P0001`…), so the import's index has ranges it would not read back
/// if it trusted the index: `A77` sorts before them all, far from `T3`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_arriving_during_the_import_are_checked_too() {
    use diesel::connection::SimpleConnection;
    let app = payments_at(2026, 9, 11, 12).await;
    let bank = setup(&app).await;
    let row = |txn: &str, account: &str, kopecks: i64| {
        format!(
            "('bp-{txn}', 'sber', '{txn}', '{account}', {kopecks}, '2026-09-14 04:00:00', \
             '2026-09-14 04:00:00', '2026-09-14', 'm-{txn}', 'accepted')"
        )
    };
    let insert = |rows: Vec<String>| {
        format!(
            "INSERT INTO bank_payments (id, bank, txn_id, account, amount_kopecks, txn_at, \
             accepted_at, banking_day, movement_id, status) VALUES {};",
            rows.join(", ")
        )
    };
    let named: Vec<String> = (1..=600)
        .map(|i| row(&format!("P{i:04}"), "ls-3", 100))
        .collect();
    let arriving = insert(vec![row("T9", "ls-3", 30000), row("A77", "ls-1", 7000)]);
    let setup_sql = insert(named);
    // The arriving ones come with the registry's row, which is inserted after
    // the day's payments were read.
    app.context("payments")
        .db
        .write(move |conn| -> Result<(), storage::StorageError> {
            let trigger = match conn {
                storage::DbConnection::Pg(_) => format!(
                    "CREATE FUNCTION test_arrive() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN {arriving} RETURN NEW; END $$; \
                     CREATE TRIGGER test_arrive AFTER INSERT ON registries \
                     FOR EACH ROW EXECUTE FUNCTION test_arrive();"
                ),
                storage::DbConnection::Sqlite(_) => format!(
                    "CREATE TRIGGER test_arrive AFTER INSERT ON registries BEGIN {arriving} END;"
                ),
            };
            conn.batch_execute(&format!("{setup_sql} {trigger}"))
                .map_err(storage::StorageError::from)
        })
        .await
        .unwrap();
    let mut text = REGISTRY.replace("ИТОГО;6;850.00\r\n", "");
    for i in 1..=600 {
        text.push_str(&format!("P{i:04};ls-3;1.00;14.09.2026 09:00:00;x\r\n"));
    }
    text.push_str("ИТОГО;606;1450.00\r\n");
    let res = upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&text)).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let summary: Value = res.json().await.unwrap();
    let o = &summary["outcomes"];
    assert_eq!(
        (
            o["matched"].as_i64(),
            o["credited"].as_i64(),
            o["missing_from_registry"].as_i64()
        ),
        (Some(603), None, Some(2)),
        "{summary}"
    );
    assert_eq!(balance(&app, "ls-3").await, m("0.00"));
    let operator = app.token("op", &[Role::OperatorAdmin], |_| {});
    let id = summary["id"].as_str().unwrap();
    let csv = reqwest::Client::new()
        .get(app.url(&format!("/api/payments/registries/{id}/report?format=csv")))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let missing: Vec<&str> = csv
        .lines()
        .filter(|l| l.starts_with(';') && l.contains("нет в реестре"))
        .collect();
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(
        missing.iter().any(|l| l.contains(";A77;ls-1"))
            && missing.iter().any(|l| l.contains(";T3;ls-1")),
        "{missing:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_over_the_size_limit_is_refused_and_changes_nothing() {
    let clock = calendar::FixedClock::at_local(
        chrono::NaiveDate::from_ymd_opt(2026, 9, 11)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap(),
    );
    let app = TestApp::spawn_configured(vec![Arc::new(payments::PaymentsService)], clock, |s| {
        s.http.max_upload_mib = 1
    })
    .await;
    let bank = setup(&app).await;
    let line = "T1;ls-1;100,00;14.09.2026 10:01:00;Орлов Иван\r\n";
    let big = line.repeat(2 * (1 << 20) / line.len());
    let res = upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(&big)).await;
    assert_eq!(res.status(), 413);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(
        problem["type"], "urn:problem:registry-too-large",
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("at most 1 MiB"),
        "{problem}"
    );
    // Nothing was imported and nothing was left on disk; a file within the limit goes through.
    let uploads = app.data_dir.join("uploads");
    let left = std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0);
    assert_eq!(balance(&app, "ls-1").await, m("150.00"));
    let res = upload(&app, &bank, "format=csv&date=2026-09-14", cp1251(REGISTRY)).await;
    assert_eq!(res.status(), 201);
    app.stop().await;
}
