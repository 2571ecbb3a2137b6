//! The ledger over real HTTP, in the current test mode: accounts, adjustments
//! with idempotency keys, reversals, history, access, bad input, and the ledger
//! invariants after every step.

use auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{invariants_hold, payments_at};

fn account_body(id: &str) -> Value {
    json!({
        "account": id,
        "student_name": "Иванов Пётр",
        "school": "school-17",
        "class_name": "3А",
        "municipality": "tyumen",
        "organizer": "org-1"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_round_trip_with_idempotency_reversal_and_access() {
    let app = payments_at(2026, 9, 1, 9).await;
    let http = reqwest::Client::new();
    let organizer = app.token("org-user", &[Role::MealOrganizer], |r| {
        r.organizers = vec!["org-1".into()]
    });
    let operator = app.token("op-1", &[Role::OperatorAdmin], |_| {});
    let parent = app.token("parent-1", &[Role::Parent], |r| {
        r.children = vec!["ls-1001".into()]
    });
    let stranger = app.token("parent-2", &[Role::Parent], |r| {
        r.children = vec!["ls-9999".into()]
    });

    // Open the account; a second time is a conflict.
    let res = http
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(&operator)
        .json(&account_body("ls-1001"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["balance"], "0.00");
    let res = http
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(&operator)
        .json(&account_body("ls-1001"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    // An organizer opens no accounts here, not even under its own contract:
    // the meal module opens them, in the schools it links the organizer to.
    let res = http
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(&organizer)
        .json(&account_body("ls-2002"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = http
        .get(app.url("/api/payments/accounts/ls-2002"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "nothing was opened");

    // Bad input names the field and creates nothing.
    let mut bad = account_body("ls 1001!");
    bad["school"] = json!("");
    let res = http
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(&operator)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "account");
    let res = http
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(&operator)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // A body over the limit is too large, not malformed.
    let mut huge = account_body("ls-3003");
    huge["student_name"] = json!("я".repeat(5 * 1024 * 1024));
    let res = http
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(&operator)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(
        problem["type"], "urn:problem:payload-too-large",
        "{problem}"
    );
    // A NUL (or any control character) in a name is refused, naming the field.
    let mut nul = account_body("ls-3003");
    nul["student_name"] = json!("Иванов\u{0}Пётр");
    let res = http
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(&operator)
        .json(&nul)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "student_name", "{problem}");
    let res = http
        .get(app.url("/api/payments/accounts/ls-3003"))
        .bearer_auth(&organizer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Without a token, 401; a parent of another child sees nothing (404, not 403).
    let res = http
        .get(app.url("/api/payments/accounts/ls-1001"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = http
        .get(app.url("/api/payments/accounts/ls-1001"))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = http
        .get(app.url("/api/payments/accounts/ls-1001"))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A token the platform's key signed, but of another issuer or for another
    // system (or for none), is refused all the same.
    let parent_of = |r: &mut auth::MintRequest| r.children = vec!["ls-1001".into()];
    for (what, token) in [
        (
            "another issuer",
            app.token("p-1", &[Role::Parent], |r| {
                parent_of(r);
                r.issuer = "https://idp.elsewhere".into();
            }),
        ),
        (
            "another audience",
            app.token("p-1", &[Role::Parent], |r| {
                parent_of(r);
                r.audience = Some("billing".into());
            }),
        ),
        (
            "no audience",
            app.token("p-1", &[Role::Parent], |r| {
                parent_of(r);
                r.audience = None;
            }),
        ),
    ] {
        let res = http
            .get(app.url("/api/payments/accounts/ls-1001"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    let res = http
        .get(app.url("/api/payments/accounts/ls-1001"))
        .bearer_auth(app.token("p-1", &[Role::Parent], parent_of))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Adjustments: only the operator, only with an Idempotency-Key, once per key.
    let adjust = |amount: &str, key: Option<&str>, token: &str| {
        let mut req = http
            .post(app.url("/api/payments/accounts/ls-1001/adjustments"))
            .bearer_auth(token)
            .json(&json!({ "amount": amount, "reason": "cash paid at the school office" }));
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send()
    };
    assert_eq!(
        adjust("500.00", Some("k1"), &parent)
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        adjust("500.00", None, &operator).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let res = adjust("500.005", Some("k0"), &operator).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "three decimal places are refused, not rounded"
    );
    let res = adjust("500.00", Some("k1"), &operator).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["balance"], "500.00");
    let res = adjust("500.00", Some("k1"), &operator).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["movement"], first["movement"]);
    assert_eq!(
        again["balance"], "500.00",
        "a repeated request changes nothing"
    );
    let res = adjust("-120.50", Some("k2"), &operator).await.unwrap();
    let second: Value = res.json().await.unwrap();
    assert_eq!(second["balance"], "379.50");
    invariants_hold(&app).await;

    // The parent sees the balance and the history, newest first.
    let res = http
        .get(app.url("/api/payments/accounts/ls-1001"))
        .bearer_auth(&parent)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["balance"], "379.50");
    let res = http
        .get(app.url("/api/payments/accounts/ls-1001/movements?per_page=1&page=1"))
        .bearer_auth(&parent)
        .send()
        .await
        .unwrap();
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][0]["amount"], "-120.50");
    let res = http
        .get(app.url("/api/payments/accounts/ls-1001/movements?per_page=1000"))
        .bearer_auth(&parent)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // A page past any offset is refused, not wrapped round to the first page.
    let res = http
        .get(app.url(&format!(
            "/api/payments/accounts/ls-1001/movements?page={}",
            i64::MAX
        )))
        .bearer_auth(&parent)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "page", "{problem}");

    // A reversal undoes the first adjustment, once.
    let movement = first["movement"].as_str().unwrap();
    let reversal = |token: &str| {
        http.post(app.url(&format!("/api/payments/movements/{movement}/reversal")))
            .bearer_auth(token)
            .json(&json!({ "reason": "entered by mistake" }))
            .send()
    };
    assert_eq!(
        reversal(&operator).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        reversal(&operator).await.unwrap().status(),
        StatusCode::CONFLICT
    );
    let view: Value = http
        .get(app.url("/api/payments/accounts/ls-1001"))
        .bearer_auth(&parent)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["balance"], "-120.50");
    invariants_hold(&app).await;

    // Every balance change was announced through the outbox.
    let db = app.context("payments").db.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let pending = db.read(bus::store::count_pending).await.unwrap();
        let total: i64 = db
            .read(|c| {
                use diesel::prelude::*;
                bus::store::outbox::table
                    .count()
                    .get_result::<i64>(c)
                    .map_err(storage::StorageError::from)
            })
            .await
            .unwrap();
        if pending == 0 && total == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "outbox: {pending} pending of {total}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_endpoints_answer() {
    let app = payments_at(2026, 9, 1, 9).await;
    let http = reqwest::Client::new();
    let res = http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let ready: Value = res.json().await.unwrap();
    assert_eq!(ready["checks"]["payments.database"], "ok");
    let doc: Value = http
        .get(app.url("/api/docs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/payments/accounts/{account}"].is_object());
    assert!(doc["paths"]["/health/ready"].is_object());
    let metrics = http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    let res = http.get(app.url("/api/nothing-here")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_flows_from_http_into_the_outbox() {
    let _guard = telemetry::init(&telemetry::TelemetryConfig {
        service_name: "payments-test".into(),
        log_format: telemetry::LogFormat::Pretty,
        log_filter: "warn".into(),
        otlp_endpoint: String::new(),
    })
    .unwrap();
    let app = payments_at(2026, 9, 1, 9).await;
    let http = reqwest::Client::new();
    let operator = app.token("op-1", &[Role::OperatorAdmin], |_| {});
    http.post(app.url("/api/payments/accounts"))
        .bearer_auth(&operator)
        .json(&account_body("ls-7"))
        .send()
        .await
        .unwrap();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = http
        .post(app.url("/api/payments/accounts/ls-7/adjustments"))
        .bearer_auth(&operator)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .header("Idempotency-Key", "t1")
        .json(&json!({ "amount": "10.00", "reason": "test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let headers: Vec<String> = app
        .context("payments")
        .db
        .read(|c| {
            use diesel::prelude::*;
            bus::store::outbox::table
                .select(bus::store::outbox::headers)
                .load::<String>(c)
                .map_err(storage::StorageError::from)
        })
        .await
        .unwrap();
    assert_eq!(headers.len(), 1);
    let headers: Value = serde_json::from_str(&headers[0]).unwrap();
    let traceparent = headers["traceparent"].as_str().unwrap_or_default();
    assert!(
        traceparent.contains(trace_id),
        "the event carries the caller's trace: {headers}"
    );
    app.stop().await;
}

/// Concurrent adjustments share transactions (group commit): every key still
/// takes effect once, each answer carries the balance right after its own
/// movement, and the account ends at the exact sum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adjustments_take_effect_once_each() {
    let app = payments_at(2026, 9, 1, 9).await;
    let http = reqwest::Client::new();
    let operator = app.token("op-1", &[Role::OperatorAdmin], |_| {});
    let res = http
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(&operator)
        .json(&account_body("ls-2002"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let mut calls = Vec::new();
    // 16 keys, each sent twice at once: 16 × 10.01 … 10.16 rubles.
    for round in 0..2 {
        for k in 1..=16 {
            let (http, url, operator) = (
                http.clone(),
                app.url("/api/payments/accounts/ls-2002/adjustments"),
                operator.clone(),
            );
            calls.push(tokio::spawn(async move {
                let res = http
                    .post(url)
                    .bearer_auth(&operator)
                    .header("Idempotency-Key", format!("burst-{k}"))
                    .json(&json!({ "amount": format!("10.{k:02}"), "reason": "cash desk" }))
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let body: Value = res.json().await.unwrap();
                (round, k, status, body)
            }));
        }
    }
    let mut created = 0;
    let mut repeated = 0;
    let mut movement_of: std::collections::HashMap<i32, String> = Default::default();
    let mut balances_seen = std::collections::BTreeSet::new();
    for call in calls {
        let (_, k, status, body) = call.await.unwrap();
        let movement = body["movement"].as_str().unwrap().to_string();
        if let Some(first) = movement_of.insert(k, movement.clone()) {
            assert_eq!(first, movement, "key burst-{k} answered two movements");
        }
        match status {
            StatusCode::CREATED => {
                created += 1;
                assert_eq!(body["duplicate"], false);
                // Each new movement sees its own balance: all distinct.
                assert!(balances_seen.insert(body["balance"].as_str().unwrap().to_string()));
            }
            StatusCode::OK => {
                repeated += 1;
                assert_eq!(body["duplicate"], true);
            }
            other => panic!("burst-{k}: {other} {body}"),
        }
    }
    assert_eq!((created, repeated), (16, 16));
    // 16 × 10 rubles + (1 + … + 16) kopecks.
    assert!(balances_seen.contains("161.36"), "{balances_seen:?}");
    let account: Value = http
        .get(app.url("/api/payments/accounts/ls-2002"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(account["balance"], "161.36");
    invariants_hold(&app).await;
}
