//! What the meals tests share: the service (alone or with payments) at a
//! moment of the clock, calls that return or expect a status, money from text,
//! and waiting for what the bus delivers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::testing::TestApp;
use primitives::Money;
use reqwest::StatusCode;
use serde_json::Value;

/// An amount written as people write it: `m("100.50")`.
pub fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

/// The meals service alone, its clock at local (Tyumen) `at`.
pub async fn meals_at(at: chrono::NaiveDateTime) -> TestApp {
    TestApp::spawn(
        vec![Arc::new(meals::MealsService)],
        calendar::FixedClock::at_local(at),
    )
    .await
}

/// Meals with payments beside it, talking over the bus of the current mode.
pub fn meals_and_payments() -> Vec<Arc<dyn platform::Service>> {
    vec![
        Arc::new(payments::PaymentsService),
        Arc::new(meals::MealsService),
    ]
}

/// `method path` as `token`, with a JSON `body` if any: the status and the
/// body (JSON, or the text as a JSON string).
pub async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let http = reqwest::Client::new();
    let mut req = match method {
        "PUT" => http.put(app.url(path)),
        "POST" => http.post(app.url(path)),
        "DELETE" => http.delete(app.url(path)),
        _ => http.get(app.url(path)),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// [`call`] that must succeed; the body.
pub async fn ok(app: &TestApp, method: &str, path: &str, token: &str, body: Value) -> Value {
    let (s, v) = call(app, method, path, token, Some(body)).await;
    assert!(s.is_success(), "{method} {path}: {s} {v}");
    v
}

/// Polls `f` every 100 ms until it holds; fails naming `what` after 30 s.
pub async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
