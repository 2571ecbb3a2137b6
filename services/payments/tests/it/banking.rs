//! Banks' check/pay/cancel over real HTTP, in the current test mode.

use auth::Role;
use platform::testing::TestApp;
use serde_json::{json, Value};

use crate::common::{expect, invariants_hold, open_account, payments_at};

fn account(id: &str) -> Value {
    json!({
        "account": id, "student_name": "Сидорова Мария Ивановна", "school": "school-5",
        "class_name": "2В", "municipality": "tyumen", "organizer": "org-1"
    })
}

async fn call(app: &TestApp, token: &str, op: &str, body: Value) -> Value {
    let request = reqwest::Client::new()
        .post(app.url(&format!("/api/payments/banks/{op}")))
        .bearer_auth(token)
        .json(&body);
    expect(request, 200).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_pay_repeat_and_cancel() {
    let app = payments_at(2026, 9, 14, 10).await;
    open_account(&app, &account("ls-77")).await;
    let sber = app.token("sber-gw", &[Role::Bank], |r| r.banks = vec!["sber".into()]);
    let vtb = app.token("vtb-gw", &[Role::Bank], |r| r.banks = vec!["vtb".into()]);

    let a = call(&app, &sber, "check", json!({ "account": "ls-77" })).await;
    assert_eq!(a["code"], 0);
    assert_eq!(a["student"], "Сид*** М.", "the name is masked");
    assert_eq!(a["balance"], "0.00");
    assert_eq!(
        call(&app, &sber, "check", json!({ "account": "ls-00" })).await["result"],
        "ACCOUNT_NOT_FOUND"
    );
    assert_eq!(
        call(&app, &sber, "check", json!({ "account": "ls 77;--" })).await["code"],
        2
    );

    let pay = |txn: &str, amount: &str| json!({ "account": "ls-77", "amount": amount, "txn_id": txn, "txn_at": "2026-09-14T09:58:00+05:00" });
    let first = call(&app, &sber, "pay", pay("T-1", "750.00")).await;
    assert_eq!(first["code"], 0);
    assert_eq!(first["balance"], "750.00");
    // The bank did not hear the answer and sends it again: credited once, and the
    // answer carries the first acceptance.
    let again = call(&app, &sber, "pay", pay("T-1", "750.00")).await;
    assert_eq!(again["result"], "DUPLICATE");
    assert_eq!(again["temporary"], false);
    assert_eq!(again["payment_id"], first["payment_id"]);
    assert_eq!(again["accepted_at"], first["accepted_at"]);
    // Another bank may use the same transaction id: it is a different payment.
    assert_eq!(
        call(&app, &vtb, "pay", pay("T-1", "100.00")).await["code"],
        0
    );
    assert_eq!(
        call(&app, &sber, "pay", pay("T-2", "0.50")).await["result"],
        "AMOUNT_TOO_SMALL"
    );
    assert_eq!(
        call(&app, &sber, "pay", pay("T-3", "30000.01")).await["result"],
        "AMOUNT_TOO_LARGE"
    );
    let balance =
        call(&app, &sber, "check", json!({ "account": "ls-77" })).await["balance"].clone();
    assert_eq!(balance, "850.00");
    invariants_hold(&app).await;

    // Each bank sees only its own transactions.
    let own: Value = reqwest::Client::new()
        .get(app.url("/api/payments/banks/transactions?date=2026-09-14"))
        .bearer_auth(&vtb)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(own.as_array().unwrap().len(), 1);
    assert_eq!(own[0]["amount"], "100.00");

    // Cancel on the same banking day, once; a cancel the next day is impossible.
    let c = call(&app, &sber, "cancel", json!({ "txn_id": "T-1" })).await;
    assert_eq!(c["code"], 0);
    assert_eq!(c["balance"], "100.00");
    assert_eq!(
        call(&app, &sber, "cancel", json!({ "txn_id": "T-1" })).await["result"],
        "CANCEL_IMPOSSIBLE"
    );
    assert_eq!(
        call(&app, &sber, "cancel", json!({ "txn_id": "NOPE" })).await["result"],
        "PAYMENT_NOT_FOUND"
    );
    assert_eq!(
        call(&app, &vtb, "pay", pay("V-2", "10.00")).await["code"],
        0
    );
    app.clock.advance(chrono::Duration::days(1));
    assert_eq!(
        call(&app, &vtb, "cancel", json!({ "txn_id": "V-2" })).await["result"],
        "CANCEL_IMPOSSIBLE"
    );
    invariants_hold(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_of_one_payment_credit_once() {
    let app = payments_at(2026, 9, 14, 10).await;
    open_account(&app, &account("ls-88")).await;
    let bank = app.token("gw", &[Role::Bank], |r| r.banks = vec!["alfa".into()]);
    let body = json!({ "account": "ls-88", "amount": "300.00", "txn_id": "A-9", "txn_at": "2026-09-14T10:00:00+05:00" });
    let calls = (0..6).map(|_| call(&app, &bank, "pay", body.clone()));
    let answers = futures::future::join_all(calls).await;
    let ok = answers.iter().filter(|a| a["code"] == 0).count();
    let dup = answers
        .iter()
        .filter(|a| a["result"] == "DUPLICATE")
        .count();
    assert_eq!((ok, dup), (1, 5), "{answers:?}");
    let check = call(&app, &bank, "check", json!({ "account": "ls-88" })).await;
    assert_eq!(check["balance"], "300.00");
    invariants_hold(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_banks_may_call_and_bad_requests_are_named() {
    let app = payments_at(2026, 9, 14, 10).await;
    let parent = app.token("p", &[Role::Parent], |r| r.children = vec!["ls-1".into()]);
    let res = reqwest::Client::new()
        .post(app.url("/api/payments/banks/check"))
        .bearer_auth(&parent)
        .json(&json!({ "account": "ls-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let two_banks = app.token("gw", &[Role::Bank], |r| {
        r.banks = vec!["a".into(), "b".into()]
    });
    let res = reqwest::Client::new()
        .post(app.url("/api/payments/banks/check"))
        .bearer_auth(&two_banks)
        .json(&json!({ "account": "ls-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let bank = app.token("gw", &[Role::Bank], |r| r.banks = vec!["a".into()]);
    let res = reqwest::Client::new()
        .post(app.url("/api/payments/banks/pay"))
        .bearer_auth(&bank)
        .json(&json!({ "account": "ls-1", "amount": 100.5, "txn_id": "x", "txn_at": "2026-09-14T10:00:00+05:00" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "a float amount is refused");
    let problem: Value = res.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("amount"),
        "{problem}"
    );
    app.stop().await;
}
