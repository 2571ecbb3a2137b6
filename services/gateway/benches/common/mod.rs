//! What the gateway's benches share: the mode, payments and the gateway on the
//! real HTTP server at a fixed moment, and bank participant BANK01 (bank
//! "sber") with the rights a bench needs.

use std::sync::Arc;

use auth::Role;
use platform::testing::TestApp;
use serde_json::json;

pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn mode() -> &'static str {
    if storage::testing::distributed() {
        "distributed (PostgreSQL, RabbitMQ)"
    } else {
        "embedded (SQLite, in-process bus)"
    }
}

/// Payments and the gateway, the clock at `local` in Tyumen.
pub async fn spawn(
    local: chrono::NaiveDateTime,
    configure: impl FnOnce(&mut settings::Settings),
) -> TestApp {
    TestApp::spawn_configured(
        vec![
            Arc::new(payments::PaymentsService),
            Arc::new(gateway::GatewayService),
        ],
        calendar::FixedClock::at_local(local),
        configure,
    )
    .await
}

/// Registers BANK01 with the PEM certificates of its signing keys and grants
/// it `rights`; the operator's token.
pub async fn register_bank(
    app: &TestApp,
    http: &reqwest::Client,
    rights: &[&str],
    certificates: &[String],
) -> String {
    let operator = app.token("operator-1", &[Role::OperatorAdmin], |_| {});
    let res = http
        .put(app.url("/api/gateway/participants/BANK01"))
        .bearer_auth(&operator)
        .json(&json!({
            "name": "ПАО Банк", "inn": "7707083893", "ogrn": "1027700132195",
            "kind": "bank", "contour": "production",
            "contacts": { "name": "Иванов Иван", "phone": "+7 345 200-00-00", "email": "it@bank.example" },
            "bank": "sber", "certificates": certificates
        }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    for right in rights {
        let res = http
            .put(app.url(&format!("/api/gateway/participants/BANK01/rights/{right}")))
            .bearer_auth(&operator)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    operator
}
