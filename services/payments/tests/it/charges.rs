//! ИС УНиП over real HTTP, in the current test mode: charges with issued УИНs and
//! idempotency keys, payments and their quittance outcomes, cancellation, access,
//! and the quittance report in JSON and CSV.

use std::sync::Arc;

use auth::Role;
use platform::testing::TestApp;
use primitives::Uin;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::payments_at;

const BASE: &str = "/api/payments/unip";
const TODAY: &str = "2026-09-01";

struct Tokens {
    zags: String,
    gibdd: String,
    operator: String,
    bank: String,
    parent: String,
}

fn tokens(app: &TestApp) -> Tokens {
    Tokens {
        zags: app.token("is-zags", &[Role::InformationSystem], |r| {
            r.participant = Some("ZAGS00001".into())
        }),
        gibdd: app.token("is-gibdd", &[Role::InformationSystem], |r| {
            r.participant = Some("GIBD00002".into())
        }),
        operator: app.token("op-1", &[Role::OperatorAdmin], |_| {}),
        bank: app.token("bank-user", &[Role::Bank], |r| {
            r.banks = vec!["bank-1".into()]
        }),
        parent: app.token("parent-1", &[Role::Parent], |r| {
            r.children = vec!["ls-1".into()]
        }),
    }
}

fn charge_body(amount: &str) -> Value {
    json!({
        "payer": { "name": "Иванов Иван Иванович", "snils": "112-233-445 95" },
        "purpose": "Государственная пошлина за регистрацию брака",
        "amount": amount,
        "due_date": "2026-10-01",
        "kbk": "18210807010011000110",
        "oktmo": "71701000",
        "payee": {
            "name": "УФК по Тюменской области",
            "inn": "7707083893",
            "kpp": "720301001",
            "account": "03100643000000016700",
            "bik": "017102101"
        }
    })
}

async fn create(
    app: &TestApp,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(app.url(&format!("{BASE}/charges")))
        .bearer_auth(token)
        .json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.json().await.unwrap())
}

/// Creates a charge that must succeed and returns its УИН.
async fn charge(app: &TestApp, token: &str, key: &str, amount: &str) -> String {
    let (status, body) = create(app, token, Some(key), &charge_body(amount)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["uin"].as_str().unwrap().to_string()
}

async fn pay(app: &TestApp, token: &str, id: &str, uin: &str, amount: &str) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .post(app.url(&format!("{BASE}/payments")))
        .bearer_auth(token)
        .json(&json!({
            "payment_id": id,
            "uin": uin,
            "amount": amount,
            "payment_date": TODAY,
            "payer": { "name": "Иванов И. И." }
        }))
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

async fn get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .get(app.url(&format!("{BASE}{path}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn cancel(app: &TestApp, token: &str, uin: &str, reason: &str) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .post(app.url(&format!("{BASE}/charges/{uin}/cancel")))
        .bearer_auth(token)
        .json(&json!({ "reason": reason }))
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

fn field(problem: &Value) -> &str {
    problem["errors"][0]["field"].as_str().unwrap_or("")
}

async fn stored_charges(app: &TestApp) -> i64 {
    app.context("payments")
        .db
        .read(|conn| payments::store::charges::list_charges(conn, None, None, 0, 1))
        .await
        .unwrap()
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_get_unique_valid_uins_and_repeat_by_idempotency_key() {
    let app = payments_at(2026, 9, 1, 9).await;
    let t = tokens(&app);

    let (status, first) = create(&app, &t.zags, Some("k-1"), &charge_body("1250.50")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let uin1 = first["uin"].as_str().unwrap().to_string();
    assert_eq!(uin1.chars().count(), 20);
    assert!(Uin::parse(&uin1).is_ok(), "issued УИН {uin1} must be valid");
    assert_eq!(first["supplier"], "ZAGS00001");
    assert_eq!(first["status"], "active");
    assert_eq!(first["quittance"], "not_matched");
    assert_eq!(first["amount"], "1250.50");
    assert_eq!(first["balance"], "1250.50");
    assert_eq!(first["payer"]["snils"], "11223344595");

    // The same key from the same supplier returns the same charge.
    let (status, again) = create(&app, &t.zags, Some("k-1"), &charge_body("1250.50")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["uin"], uin1.as_str());
    // The same key with different data is a conflict, not a second charge.
    let (status, problem) = create(&app, &t.zags, Some("k-1"), &charge_body("99.00")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains(&uin1));
    // The same key from another supplier is that supplier's own charge.
    let other = charge(&app, &t.gibdd, "k-1", "10.00").await;
    assert_ne!(other, uin1);

    let uin2 = charge(&app, &t.zags, "k-2", "1250.50").await;
    assert!(Uin::parse(&uin2).is_ok());
    assert_ne!(uin1, uin2);
    // One supplier, one fixed prefix; the sequence differs.
    assert_eq!(uin1[..8], uin2[..8]);
    assert_ne!(other[..8], uin1[..8]);

    // Without a key: 400 naming the header, nothing stored.
    let before = stored_charges(&app).await;
    let (status, problem) = create(&app, &t.zags, None, &charge_body("1.00")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field(&problem), "Idempotency-Key");
    assert_eq!(stored_charges(&app).await, before);

    // The operator names the supplier; without one it is 400.
    let mut body = charge_body("5.00");
    let (status, problem) = create(&app, &t.operator, Some("op-1"), &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field(&problem), "supplier");
    body["supplier"] = json!("ZAGS00001");
    let (status, by_operator) = create(&app, &t.operator, Some("op-1"), &body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(by_operator["supplier"], "ZAGS00001");
    // An information system cannot issue for another one.
    body["supplier"] = json!("ZAGS00001");
    let (status, _) = create(&app, &t.gibdd, Some("x"), &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A configured prefix is used for the supplier's УИНs.
    let res = reqwest::Client::new()
        .put(app.url(&format!("{BASE}/suppliers/MFC000003")))
        .bearer_auth(&t.operator)
        .json(&json!({ "prefix": "TYUM0001" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mfc = app.token("is-mfc", &[Role::InformationSystem], |r| {
        r.participant = Some("MFC000003".into())
    });
    let uin = charge(&app, &mfc, "m-1", "100.00").await;
    assert!(uin.starts_with("TYUM0001"), "{uin}");
    assert!(Uin::parse(&uin).is_ok());
    // Another supplier cannot take that prefix.
    let res = reqwest::Client::new()
        .put(app.url(&format!("{BASE}/suppliers/ZAGS00001")))
        .bearer_auth(&t.operator)
        .json(&json!({ "prefix": "TYUM0001" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);

    // The list shows the supplier's own charges only.
    let (status, page) = get(&app, &t.zags, "/charges").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 3);
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["supplier"] == "ZAGS00001"));
    let (_, page) = get(&app, &t.gibdd, "/charges?status=active&per_page=1").await;
    assert_eq!(page["total"], 1);
    let (status, problem) = get(&app, &t.zags, "/charges?status=open").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field(&problem), "status");
    let (_, page) = get(&app, &t.operator, "/charges").await;
    assert_eq!(page["total"], 5);

    app.stop().await;
}

/// A change that spoils one field of a charge body.
type Edit = fn(&mut Value);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_charge_input_names_the_field_and_creates_nothing() {
    let app = payments_at(2026, 9, 1, 9).await;
    let t = tokens(&app);
    let cases: Vec<(&str, Edit)> = vec![
        ("payer.inn", |b| {
            b["payer"] = json!({ "name": "ООО Ромашка", "inn": "7707083894" });
        }),
        ("payer.snils", |b| {
            b["payer"]["snils"] = json!("112-233-445 96")
        }),
        ("amount", |b| b["amount"] = json!("-5.00")),
        ("amount", |b| b["amount"] = json!("0.00")),
        ("amount", |b| b["amount"] = json!("12.345")),
        ("kbk", |b| b["kbk"] = json!("1821080701001100011")),
        ("oktmo", |b| b["oktmo"] = json!("717010")),
        ("due_date", |b| b["due_date"] = json!("2026-08-31")),
        ("purpose", |b| b["purpose"] = json!("  ")),
        ("payee.kpp", |b| b["payee"]["kpp"] = json!("72030100")),
        ("payee.bik", |b| b["payee"]["bik"] = json!("0171021")),
        ("payee.account", |b| {
            // Not a treasury account, and its key does not match the БИК.
            b["payee"]["bik"] = json!("044525225");
            b["payee"]["account"] = json!("40702810000000000001");
        }),
    ];
    for (i, (expected, edit)) in cases.iter().enumerate() {
        let mut body = charge_body("100.00");
        edit(&mut body);
        let (status, problem) = create(&app, &t.zags, Some(&format!("bad-{i}")), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{expected}: {problem}");
        assert_eq!(field(&problem), *expected, "{problem}");
    }
    // Not a number at all is still 400.
    let mut body = charge_body("100.00");
    body["amount"] = json!(100);
    let (status, _) = create(&app, &t.zags, Some("bad-num"), &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(stored_charges(&app).await, 0);
    let (_, page) = get(&app, &t.zags, "/charges").await;
    assert_eq!(page["total"], 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_are_matched_by_uin_and_reported() {
    let app = payments_at(2026, 9, 1, 9).await;
    let t = tokens(&app);
    let a = charge(&app, &t.zags, "a", "1000.00").await;
    let b = charge(&app, &t.zags, "b", "500.00").await;
    let c = charge(&app, &t.zags, "c", "200.00").await;
    let g = charge(&app, &t.gibdd, "g", "800.00").await;

    // Partial, then the rest: paid.
    let (status, p1) = pay(
        &app,
        &t.bank,
        "10445252250000012609202600000001",
        &a,
        "300.00",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{p1}");
    assert_eq!(p1["outcome"], "partial");
    assert_eq!(p1["remaining"], "700.00");
    assert_eq!(p1["charge_status"], "partly_paid");
    assert_eq!(p1["source"], "bank:bank-1");
    let (_, view) = get(&app, &t.zags, &format!("/charges/{a}")).await;
    assert_eq!(view["status"], "partly_paid");
    assert_eq!(view["quittance"], "partly_matched");
    assert_eq!(view["balance"], "700.00");
    let (_, p2) = pay(&app, &t.bank, "P-2", &a, "700.00").await;
    assert_eq!(p2["outcome"], "matched");
    assert_eq!(p2["charge_status"], "paid");
    let (_, view) = get(&app, &t.zags, &format!("/charges/{a}")).await;
    assert_eq!(view["status"], "paid");
    assert_eq!(view["quittance"], "matched");
    assert_eq!(view["paid"], "1000.00");
    assert_eq!(view["balance"], "0.00");
    let lines = view["payments"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["outcome"], "partial");
    assert_eq!(lines[1]["outcome"], "matched");

    // Overpayment: the excess is recorded and the balance goes negative.
    let (_, p3) = pay(&app, &t.bank, "P-3", &b, "650.00").await;
    assert_eq!(p3["outcome"], "overpaid");
    assert_eq!(p3["overpayment"], "150.00");
    let (_, view) = get(&app, &t.zags, &format!("/charges/{b}")).await;
    assert_eq!(view["status"], "overpaid");
    assert_eq!(view["balance"], "-150.00");
    assert_eq!(view["overpayment"], "150.00");

    // A well-formed УИН nobody issued: kept as unmatched.
    let unknown = Uin::with_check_digit("9999999900000009999")
        .unwrap()
        .to_string();
    let (status, p4) = pay(&app, &t.bank, "P-4", &unknown, "42.00").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(p4["outcome"], "unknown_uin");
    assert!(p4.get("charge_status").is_none());

    // A cancelled charge: kept as unmatched with that reason.
    let (status, _) = cancel(&app, &t.zags, &c, "заявление отозвано").await;
    assert_eq!(status, StatusCode::OK);
    let (_, p5) = pay(&app, &t.bank, "P-5", &c, "200.00").await;
    assert_eq!(p5["outcome"], "cancelled_charge");
    let (_, view) = get(&app, &t.zags, &format!("/charges/{c}")).await;
    assert_eq!(view["status"], "cancelled");
    assert_eq!(view["paid"], "0.00");

    // Another supplier's charge, paid by an information system (e.g. the portal).
    let (_, p6) = pay(&app, &t.gibdd, "P-6", &g, "800.00").await;
    assert_eq!(p6["outcome"], "matched");
    assert_eq!(p6["source"], "is:GIBD00002");

    // A wrong check digit is 400 naming `uin`; nothing is stored.
    let mut bad = a.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    let (status, problem) = pay(&app, &t.bank, "P-7", &bad, "1.00").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field(&problem), "uin");

    // The same payment id again: 409, nothing doubles.
    let report = |token: String| {
        let app = &app;
        async move {
            get(
                app,
                &token,
                &format!("/quittance-report?from={TODAY}&to={TODAY}"),
            )
            .await
        }
    };
    let (_, before) = report(t.operator.clone()).await;
    let (status, problem) = pay(&app, &t.bank, "P-2", &a, "700.00").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["type"], "urn:problem:already-present");
    let (status, _) = pay(&app, &t.bank, "P-3", &a, "1.00").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, after) = report(t.operator.clone()).await;
    assert_eq!(before, after);
    let (_, view) = get(&app, &t.zags, &format!("/charges/{a}")).await;
    assert_eq!(view["paid"], "1000.00");
    assert_eq!(view["payments"].as_array().unwrap().len(), 2);

    // The operator's report: every payment with its outcome, totals per outcome.
    let (status, r) = report(t.operator.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["count"], 6);
    assert_eq!(r["amount"], "2692.00");
    let total = |outcome: &str| {
        r["totals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["outcome"] == outcome)
            .cloned()
            .unwrap()
    };
    assert_eq!(total("matched")["count"], 2);
    assert_eq!(total("matched")["amount"], "1500.00");
    assert_eq!(total("partial")["amount"], "300.00");
    assert_eq!(total("overpaid")["overpayment"], "150.00");
    assert_eq!(total("unknown_uin")["count"], 1);
    assert_eq!(total("unknown_uin")["amount"], "42.00");
    assert_eq!(total("cancelled_charge")["count"], 1);
    let unmatched = r["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["payment_id"] == "P-4")
        .unwrap();
    assert_eq!(unmatched["outcome"], "unknown_uin");
    assert_eq!(unmatched["uin"], unknown.as_str());

    // An information system sees its own charges' lines only.
    let (_, mine) = report(t.zags.clone()).await;
    let ids: Vec<&str> = mine["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["payment_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        4,
        "P1, P-2, P-3 and P-5, not P-4 or P-6: {ids:?}"
    );
    assert!(!ids.contains(&"P-4") && !ids.contains(&"P-6"));
    let (_, theirs) = report(t.gibdd.clone()).await;
    assert_eq!(theirs["count"], 1);

    // Another day has nothing; a reversed period is 400 naming `to`.
    let (_, empty) = get(
        &app,
        &t.operator,
        "/quittance-report?from=2026-08-01&to=2026-08-31",
    )
    .await;
    assert_eq!(empty["count"], 0);
    let (status, problem) = get(
        &app,
        &t.operator,
        "/quittance-report?from=2026-09-02&to=2026-09-01",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field(&problem), "to");

    // CSV: a header, the lines, then totals.
    let res = reqwest::Client::new()
        .get(app.url(&format!(
            "{BASE}/quittance-report?from={TODAY}&to={TODAY}&format=csv"
        )))
        .bearer_auth(&t.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = res.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "payment_id;uin;payment_date;amount;outcome;overpayment;supplier;payer;source"
    );
    assert!(rows.contains(
        &format!("P-4;{unknown};{TODAY};42.00;unknown_uin;0.00;;Иванов И. И.;bank:bank-1").as_str()
    ));
    assert!(rows.contains(
        &format!("P-3;{b};{TODAY};650.00;overpaid;150.00;ZAGS00001;Иванов И. И.;bank:bank-1")
            .as_str()
    ));
    assert_eq!(
        rows.iter().position(|r| r.is_empty()),
        Some(7),
        "6 lines under the header"
    );
    assert!(rows[1].starts_with("10445252250000012609202600000001;"));
    assert!(rows.contains(&"outcome;count;amount;overpayment"));
    assert!(rows.contains(&"matched;2;1500.00;0.00"));
    assert!(rows.contains(&"unknown_uin;1;42.00;0.00"));
    assert!(rows.contains(&"total;6;2692.00;150.00"));

    // A payment quoting a УИН before it is issued stays unmatched when the
    // charge appears: four charges were issued, so the next sequence is 5.
    let res = reqwest::Client::new()
        .put(app.url(&format!("{BASE}/suppliers/MFC000003")))
        .bearer_auth(&t.operator)
        .json(&json!({ "prefix": "TYUM0002" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let future = Uin::with_check_digit("TYUM000200000000005")
        .unwrap()
        .to_string();
    let (_, early) = pay(&app, &t.bank, "P-early", &future, "5.00").await;
    assert_eq!(early["outcome"], "unknown_uin");
    let mfc = app.token("is-mfc", &[Role::InformationSystem], |r| {
        r.participant = Some("MFC000003".into())
    });
    assert_eq!(charge(&app, &mfc, "m-1", "5.00").await, future);
    let (_, view) = get(&app, &mfc, &format!("/charges/{future}")).await;
    assert_eq!(view["status"], "active");
    assert_eq!(view["balance"], "5.00");
    assert_eq!(view["payments"].as_array().unwrap().len(), 0);
    let (_, r) = report(t.operator.clone()).await;
    let unknown_total = r["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["outcome"] == "unknown_uin")
        .cloned()
        .unwrap();
    assert_eq!(unknown_total["count"], 2);
    let (_, theirs) = report(mfc).await;
    assert_eq!(theirs["count"], 0);

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_and_access() {
    let app = payments_at(2026, 9, 1, 9).await;
    let t = tokens(&app);
    let uin = charge(&app, &t.zags, "x", "300.00").await;
    let path = format!("/charges/{uin}");

    // Another participant sees nothing (404); roles without access get 403.
    let (status, _) = get(&app, &t.gibdd, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = cancel(&app, &t.gibdd, &uin, "чужое").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&app, &t.parent, &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(&app, &t.bank, &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(&app, &t.parent, "/charges").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = create(&app, &t.parent, Some("p"), &charge_body("1.00")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = pay(&app, &t.parent, "P-x", &uin, "1.00").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = pay(&app, &t.operator, "P-x", &uin, "1.00").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another supplier's information system cannot pay into the charge, nor
    // learn from the answer what it still owes; the charge stays unpaid.
    let (status, answer) = pay(&app, &t.gibdd, "P-other", &uin, "1.00").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(answer.get("remaining").is_none(), "{answer}");
    let (_, view) = get(&app, &t.zags, &path).await;
    assert_eq!(view["status"], "active");
    assert_eq!(view["payments"].as_array().unwrap().len(), 0);
    let (status, _) = get(
        &app,
        &t.bank,
        &format!("/quittance-report?from={TODAY}&to={TODAY}"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(&app, &t.operator, &path).await;
    assert_eq!(status, StatusCode::OK);
    let res = reqwest::Client::new()
        .get(app.url(&format!("{BASE}{path}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // A charge with a payment matched cannot be cancelled; the refusal names the sum.
    let (_, p) = pay(&app, &t.bank, "P-1", &uin, "120.50").await;
    assert_eq!(p["outcome"], "partial");
    let (status, problem) = cancel(&app, &t.zags, &uin, "ошибка").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        problem["detail"].as_str().unwrap().contains("120.50"),
        "{problem}"
    );
    let (_, view) = get(&app, &t.zags, &path).await;
    assert_eq!(view["status"], "partly_paid");

    // Without payments: cancelled; a repeat changes nothing.
    let other = charge(&app, &t.zags, "y", "50.00").await;
    let (status, problem) = cancel(&app, &t.zags, &other, " ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field(&problem), "reason");
    let (status, view) = cancel(&app, &t.zags, &other, "заявитель отказался").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "cancelled");
    assert_eq!(view["quittance"], "cancelled");
    assert_eq!(view["cancel_reason"], "заявитель отказался");
    let (status, view) = cancel(&app, &t.operator, &other, "повтор").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["cancel_reason"], "заявитель отказался");
    let (_, page) = get(&app, &t.zags, "/charges?status=cancelled").await;
    assert_eq!(page["total"], 1);

    // A malformed УИН in the path is 400 naming it.
    let (status, problem) = get(&app, &t.zags, "/charges/123").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field(&problem), "uin");

    // The OpenAPI document lists the routes.
    let doc: Value = reqwest::Client::new()
        .get(app.url("/api/docs/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/payments/unip/charges",
        "/api/payments/unip/charges/{uin}/cancel",
        "/api/payments/unip/payments",
        "/api/payments/unip/quittance-report",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_take_effect_once() {
    let app = payments_at(2026, 9, 1, 9).await;
    let t = tokens(&app);
    let app = Arc::new(app);

    // Eight parallel creates with one key: one charge, the same УИН for all.
    let same_key = (0..8).map(|_| {
        let (app, token) = (app.clone(), t.zags.clone());
        tokio::spawn(async move { create(&app, &token, Some("same"), &charge_body("10.00")).await })
    });
    let mut uins = std::collections::BTreeSet::new();
    let mut created = 0;
    for h in same_key {
        let (status, body) = h.await.unwrap();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status} {body}"
        );
        created += usize::from(status == StatusCode::CREATED);
        uins.insert(body["uin"].as_str().unwrap().to_string());
    }
    assert_eq!((created, uins.len()), (1, 1));
    let uin = uins.into_iter().next().unwrap();

    // Eight parallel creates with distinct keys: eight distinct valid УИНs.
    let distinct = (0..8).map(|i| {
        let (app, token) = (app.clone(), t.gibdd.clone());
        tokio::spawn(async move { charge(&app, &token, &format!("d-{i}"), "1.00").await })
    });
    let mut issued = std::collections::BTreeSet::new();
    for h in distinct {
        let u = h.await.unwrap();
        assert!(Uin::parse(&u).is_ok());
        issued.insert(u);
    }
    assert_eq!(issued.len(), 8);

    // Eight parallel imports of one payment id: one accepted, the charge paid once.
    let same_payment = (0..8).map(|_| {
        let (app, token, uin) = (app.clone(), t.bank.clone(), uin.clone());
        tokio::spawn(async move { pay(&app, &token, "P-same", &uin, "4.00").await.0 })
    });
    let mut statuses = Vec::new();
    for h in same_payment {
        statuses.push(h.await.unwrap());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1
    );
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT));
    let (_, view) = get(&app, &t.zags, &format!("/charges/{uin}")).await;
    assert_eq!(view["paid"], "4.00");
    assert_eq!(view["payments"].as_array().unwrap().len(), 1);

    // Parallel distinct payments on one charge add up exactly.
    let parts = (0..6).map(|i| {
        let (app, token, uin) = (app.clone(), t.bank.clone(), uin.clone());
        tokio::spawn(async move {
            pay(&app, &token, &format!("P-part-{i}"), &uin, "1.00")
                .await
                .0
        })
    });
    for h in parts {
        assert_eq!(h.await.unwrap(), StatusCode::CREATED);
    }
    let (_, view) = get(&app, &t.zags, &format!("/charges/{uin}")).await;
    assert_eq!(view["paid"], "10.00");
    assert_eq!(view["status"], "paid");
    let (_, r) = get(
        &app,
        &t.operator,
        &format!("/quittance-report?from={TODAY}&to={TODAY}"),
    )
    .await;
    let total = |o: &str| {
        r["totals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["outcome"] == o)
            .cloned()
            .unwrap()
    };
    // The 4.00 and five 1.00 parts are partial, the last one matched; none overpaid.
    assert_eq!(total("partial")["count"], 6);
    assert_eq!(total("matched")["count"], 1);
    assert_eq!(total("overpaid")["count"], 0);

    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("app still shared"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_uin_payment_is_matched_by_hand_with_a_reason_once() {
    let app = payments_at(2026, 9, 1, 9).await;
    let t = tokens(&app);
    let uin = charge(&app, &t.zags, "m", "300.00").await;
    // The payer mistyped the УИН: a well-formed one nobody issued.
    let typo = Uin::with_check_digit("9999999900000009998")
        .unwrap()
        .to_string();
    let (_, p) = pay(&app, &t.bank, "P-typo", &typo, "300.00").await;
    assert_eq!(p["outcome"], "unknown_uin");
    let match_it = |token: String, payment: &'static str, body: Value| {
        let app = &app;
        async move {
            let res = reqwest::Client::new()
                .post(app.url(&format!("{BASE}/payments/{payment}/match")))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Only the operator; a reason is required; the charge must exist.
    let (status, _) = match_it(
        t.zags.clone(),
        "P-typo",
        json!({"uin": uin, "reason": "письмо плательщика"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, problem) = match_it(
        t.operator.clone(),
        "P-typo",
        json!({"uin": uin, "reason": " "}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field(&problem), "reason");
    let nobody = Uin::with_check_digit("9999999900000009997")
        .unwrap()
        .to_string();
    let (status, _) = match_it(
        t.operator.clone(),
        "P-typo",
        json!({"uin": nobody, "reason": "письмо"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = match_it(
        t.operator.clone(),
        "P-none",
        json!({"uin": uin, "reason": "письмо"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, view) = get(&app, &t.zags, &format!("/charges/{uin}")).await;
    assert_eq!(view["status"], "active", "nothing changed so far");

    let (status, matched) = match_it(
        t.operator.clone(),
        "P-typo",
        json!({"uin": uin, "reason": "письмо плательщика с квитанцией"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{matched}");
    assert_eq!(matched["payment"]["outcome"], "matched");
    assert_eq!(
        matched["payment"]["uin"],
        typo.as_str(),
        "the payment keeps what it quoted"
    );
    assert_eq!(matched["charge_uin"], uin.as_str());
    assert_eq!(matched["outcome_before"], "unknown_uin");
    assert_eq!(matched["reason"], "письмо плательщика с квитанцией");
    assert_eq!(matched["matched_by"], "op-1");
    // The quittance follows: the charge is paid and the payment is its.
    let (_, view) = get(&app, &t.zags, &format!("/charges/{uin}")).await;
    assert_eq!(view["status"], "paid");
    assert_eq!(view["balance"], "0.00");
    assert_eq!(view["payments"].as_array().unwrap().len(), 1);
    let (_, report) = get(
        &app,
        &t.zags,
        &format!("/quittance-report?from={TODAY}&to={TODAY}"),
    )
    .await;
    assert_eq!(report["lines"][0]["outcome"], "matched", "{report}");
    // Once: a second match (or of a payment matched by its УИН) changes nothing.
    let (status, problem) = match_it(
        t.operator.clone(),
        "P-typo",
        json!({"uin": uin, "reason": "ещё раз"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (_, view) = get(&app, &t.zags, &format!("/charges/{uin}")).await;
    assert_eq!(view["payments"].as_array().unwrap().len(), 1);
    app.stop().await;
}
