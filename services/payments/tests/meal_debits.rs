//! Meal debits arrive over the bus (as the meals service sends them after the day
//! closed), are written off once per key, may take the balance down to minus the
//! credit limit and no further, and each is answered with a DebitResult event.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth::Role;
use contracts::meals::DebitRequested;
use contracts::payments::DebitResult;
use contracts::Contract;
use platform::testing::TestApp;
use primitives::Money;
use serde_json::json;

fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

fn debit(key: &str, amount: &str, reimbursed: &str, limit: &str) -> DebitRequested {
    DebitRequested {
        key: key.into(),
        account: "ls-5".into(),
        amount: m(amount),
        reimbursed: m(reimbursed),
        credit_limit: m(limit),
        organizer: "org-1".into(),
        municipality: "tyumen".into(),
        date: "2026-05-12".into(),
        meal_time: "lunch".into(),
    }
}

async fn send(app: &TestApp, request: &DebitRequested) {
    let env = bus::Envelope::json(DebitRequested::TOPIC, DebitRequested::KIND, request).unwrap();
    let confirms = app
        .context("payments")
        .bus
        .bus
        .publish(vec![env])
        .await
        .unwrap();
    // The in-process bus confirms when the consumer committed; RabbitMQ when queued.
    confirms.await.unwrap();
}

async fn results(app: &TestApp) -> Vec<DebitResult> {
    use diesel::prelude::*;
    let payloads: Vec<String> = app
        .context("payments")
        .db
        .read(|c| {
            bus::store::outbox::table
                .filter(bus::store::outbox::kind.eq(DebitResult::KIND))
                .order(bus::store::outbox::id)
                .select(bus::store::outbox::payload)
                .load(c)
                .map_err(storage::StorageError::from)
        })
        .await
        .unwrap();
    payloads
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect()
}

async fn wait_results(app: &TestApp, n: usize) -> Vec<DebitResult> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = results(app).await;
        if r.len() >= n {
            return r;
        }
        assert!(Instant::now() < deadline, "only {} results of {n}", r.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn balance(app: &TestApp, account: &str) -> Money {
    let account = account.to_string();
    app.context("payments")
        .db
        .read(move |c| payments::store::balance(c, &account))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debits_respect_the_credit_limit_and_take_effect_once() {
    let clock = calendar::FixedClock::at_local(
        chrono::NaiveDate::from_ymd_opt(2026, 5, 12)
            .unwrap()
            .and_hms_opt(23, 0, 0)
            .unwrap(),
    );
    let app = TestApp::spawn(vec![Arc::new(payments::PaymentsService)], clock).await;
    let http = reqwest::Client::new();
    let operator = app.token("op", &[Role::OperatorAdmin], |_| {});
    let res = http
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(&operator)
        .json(&json!({ "account": "ls-5", "student_name": "Козлов Иван", "school": "s", "class_name": "4А",
                       "municipality": "tyumen", "organizer": "org-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = http
        .post(app.url("/api/payments/accounts/ls-5/adjustments"))
        .bearer_auth(&operator)
        .header("Idempotency-Key", "seed")
        .json(&json!({ "amount": "100.00", "reason": "opening balance" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // 80.00 of 100.00: written off; the budget's 45.50 goes to the organizer too.
    send(
        &app,
        &debit("ls-5:2026-05-12:lunch", "80.00", "45.50", "50.00"),
    )
    .await;
    let r = wait_results(&app, 1).await;
    assert!(r[0].accepted, "{:?}", r[0]);
    assert_eq!(r[0].balance, m("20.00"));
    // The same debit again (meals retried with a new message): no second write-off.
    send(
        &app,
        &debit("ls-5:2026-05-12:lunch", "80.00", "45.50", "50.00"),
    )
    .await;
    let r = wait_results(&app, 2).await;
    assert!(r[1].accepted);
    assert_eq!(r[1].movement_id, r[0].movement_id);
    assert_eq!(balance(&app, "ls-5").await, m("20.00"));
    // 70.01 would take 20.00 to −50.01, past the −50.00 credit: refused, with the reason.
    send(&app, &debit("ls-5:2026-05-12:snack", "70.01", "0", "50.00")).await;
    let r = wait_results(&app, 3).await;
    assert!(!r[2].accepted);
    assert!(
        r[2].reason
            .as_deref()
            .unwrap()
            == "balance 20.00 less 70.01 for this meal would be -50.01, below the credit limit of -50.00",
        "{:?}",
        r[2].reason
    );
    assert_eq!(balance(&app, "ls-5").await, m("20.00"));
    // Exactly to the limit is allowed.
    send(&app, &debit("ls-5:2026-05-13:lunch", "70.00", "0", "50.00")).await;
    let r = wait_results(&app, 4).await;
    assert!(r[3].accepted);
    assert_eq!(balance(&app, "ls-5").await, m("-50.00"));
    // An unknown account is refused, not retried.
    let mut unknown = debit("ls-404:2026-05-12:lunch", "10.00", "0", "0");
    unknown.account = "ls-404".into();
    send(&app, &unknown).await;
    let r = wait_results(&app, 5).await;
    assert!(!r[4].accepted);

    assert_eq!(
        balance(&app, "settlement:org-1").await,
        m("195.50"),
        "80.00 + 45.50 + 70.00"
    );
    assert_eq!(balance(&app, "budget:tyumen").await, m("-45.50"));
    let problems = app
        .context("payments")
        .db
        .read(payments::store::check_invariants)
        .await
        .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    app.stop().await;
}
