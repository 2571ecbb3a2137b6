//! Reports over real HTTP: each caller sees only their scope, sums are exact,
//! and the files open as CSV and XLSX. In the current test mode.

use std::sync::Arc;

use auth::Role;
use platform::testing::TestApp;
use serde_json::{json, Value};

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_respect_scope_and_add_up() {
    let clock = calendar::FixedClock::at_local(
        chrono::NaiveDate::from_ymd_opt(2026, 10, 5)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap(),
    );
    let app = TestApp::spawn(vec![Arc::new(payments::PaymentsService)], clock).await;
    let http = reqwest::Client::new();
    let operator = app.token("op", &[Role::OperatorAdmin], |_| {});
    let accounts = [
        ("ls-1", "s1", "1А", "tyumen", "org-1"),
        ("ls-2", "s1", "1Б", "tyumen", "org-1"),
        ("ls-3", "s2", "2А", "ishim", "org-1"),
        ("ls-4", "s3", "3А", "ishim", "org-2"),
    ];
    for (id, school, class, muni, org) in accounts {
        let res = http
            .post(app.url("/api/payments/accounts"))
            .bearer_auth(&operator)
            .json(
                &json!({ "account": id, "student_name": format!("Ученик {id}"), "school": school,
                           "class_name": class, "municipality": muni, "organizer": org }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let bank = app.token("gw", &[Role::Bank], |r| r.banks = vec!["sber".into()]);
    for (txn, account, amount) in [
        ("P1", "ls-1", "500.00"),
        ("P2", "ls-2", "120.50"),
        ("P3", "ls-4", "99.99"),
    ] {
        let res: Value = http
            .post(app.url("/api/payments/banks/pay"))
            .bearer_auth(&bank)
            .json(&json!({ "account": account, "amount": amount, "txn_id": txn, "txn_at": "2026-10-05T08:59:00+05:00" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(res["code"], 0);
    }
    let res = http
        .post(app.url("/api/payments/accounts/ls-3/adjustments"))
        .bearer_auth(&operator)
        .header("Idempotency-Key", "debt")
        .json(&json!({ "amount": "-75.25", "reason": "meals eaten before the account was opened" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let org1 = app.token("o1", &[Role::MealOrganizer], |r| {
        r.organizers = vec!["org-1".into()]
    });
    let (status, page) = get(&app, &org1, "/api/payments/reports/balances").await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 3, "org-1's accounts only");
    assert_eq!(page["sum"], "545.25", "500.00 + 120.50 − 75.25");
    let (_, page) = get(
        &app,
        &org1,
        "/api/payments/reports/balances?school=s1&class_name=1%D0%91",
    )
    .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["account"], "ls-2");

    let admin = app.token("a", &[Role::MealAdmin], |r| r.schools = vec!["s1".into()]);
    let (_, page) = get(&app, &admin, "/api/payments/reports/balances").await;
    assert_eq!(page["total"], 2);

    let res = http
        .get(app.url("/api/payments/reports/balances?format=csv"))
        .bearer_auth(&org1)
        .send()
        .await
        .unwrap();
    let csv = res.text().await.unwrap();
    assert!(
        csv.contains("ls-3;Ученик ls-3;s2;2А;org-1;ishim;-75.25"),
        "{csv}"
    );
    let res = http
        .get(app.url("/api/payments/reports/balances?format=xlsx"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert!(res.bytes().await.unwrap().starts_with(b"PK"));

    let (status, turnover) = get(
        &app,
        &org1,
        "/api/payments/reports/turnover?date=2026-10-05",
    )
    .await;
    assert_eq!(status, 200, "{turnover}");
    assert_eq!(turnover["incoming"], "620.50");
    assert_eq!(turnover["outgoing"], "75.25");
    let bank_row = turnover["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "bank_payment")
        .unwrap()
        .clone();
    assert_eq!(bank_row["incoming"], "620.50");
    let (status, _) = get(
        &app,
        &org1,
        "/api/payments/reports/turnover?date=2026-10-05&organizer=org-2",
    )
    .await;
    assert_eq!(status, 403, "not its organizer");
    let (_, next_day) = get(
        &app,
        &org1,
        "/api/payments/reports/turnover?date=2026-10-06",
    )
    .await;
    assert_eq!(next_day["incoming"], "0.00", "the day is Tyumen's");

    let ishim = app.token("m", &[Role::MunicipalOfficer], |r| {
        r.municipalities = vec!["ishim".into()]
    });
    let (_, rows) = get(&app, &ishim, "/api/payments/reports/municipalities").await;
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["municipality"], "ishim");
    assert_eq!(rows[0]["balance"], "24.74", "99.99 − 75.25");
    assert_eq!(rows[0]["in_debt"], 1);
    assert_eq!(rows[0]["debt"], "-75.25");
    let (_, all) = get(&app, &operator, "/api/payments/reports/municipalities").await;
    assert_eq!(all.as_array().unwrap().len(), 2);

    let parent = app.token("p", &[Role::Parent], |r| r.children = vec!["ls-1".into()]);
    assert_eq!(
        get(&app, &parent, "/api/payments/reports/balances").await.0,
        403
    );
    let nobody = app.token("o", &[Role::MealOrganizer], |_| {});
    assert_eq!(
        get(&app, &nobody, "/api/payments/reports/balances").await.0,
        403,
        "an empty scope grants nothing"
    );
    assert_eq!(
        get(&app, &parent, "/api/payments/reports/municipalities")
            .await
            .0,
        403
    );
    app.stop().await;
}
