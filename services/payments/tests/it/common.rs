//! What the payments tests share: the service at a moment of the clock, money
//! from text, the ledger's balances and invariants, an account opened as the
//! operator, and calls that expect a status.

use std::sync::Arc;

use auth::Role;
use platform::testing::TestApp;
use primitives::Money;
use serde_json::Value;

/// An amount written as people write it: `m("100.50")`.
pub fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

/// Local (Tyumen) time `y-mo-d h:mi`.
pub fn clock_at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> calendar::FixedClock {
    calendar::FixedClock::at_local(
        chrono::NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap(),
    )
}

/// The payments service alone, over real HTTP in the current test mode, its
/// clock at local `y-mo-d h:00`.
pub async fn payments_at(y: i32, mo: u32, d: u32, h: u32) -> TestApp {
    TestApp::spawn(
        vec![Arc::new(payments::PaymentsService)],
        clock_at(y, mo, d, h, 0),
    )
    .await
}

/// The ledger's balance of `account`, read from the service's database.
pub async fn balance(app: &TestApp, account: &str) -> Money {
    let account = account.to_string();
    app.context("payments")
        .db
        .read(move |c| payments::store::balance(c, &account))
        .await
        .unwrap()
}

/// Every movement balanced, every balance the sum of its postings.
pub async fn invariants_hold(app: &TestApp) {
    let problems = app
        .context("payments")
        .db
        .read(payments::store::check_invariants)
        .await
        .unwrap();
    assert!(
        problems.is_empty(),
        "ledger invariants broken: {problems:?}"
    );
}

/// Opens a personal account as the operator (the only REST caller who may).
pub async fn open_account(app: &TestApp, body: &Value) {
    let operator = app.token("op", &[Role::OperatorAdmin], |_| {});
    let res = reqwest::Client::new()
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(operator)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

/// Sends `request`, asserts the answer's status (naming the body when it
/// differs) and returns the JSON body (`null` when there is none).
pub async fn expect(request: reqwest::RequestBuilder, status: u16) -> Value {
    let res = request.send().await.unwrap();
    let got = res.status().as_u16();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}
