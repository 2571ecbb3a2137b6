//! Every write is checked against role and scope: a meal admin only for their
//! school, an organizer only for linked schools, a municipal officer only for
//! their municipality, a parent only for their children, a teacher only for
//! their class. A refused write changes nothing.

use auth::Role;
use chrono::NaiveDate;
use platform::testing::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common;

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    common::call(app, method, path, token, Some(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_checked_against_role_and_scope() {
    let app = common::meals_at(
        NaiveDate::from_ymd_opt(2026, 4, 27)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap(),
    )
    .await;
    let muni = app.token("officer", &[Role::MunicipalOfficer], |r| {
        r.municipalities = vec!["tyumen".into()]
    });
    let admin = app.token("admin", &[Role::MealAdmin], |r| {
        r.schools = vec!["s1".into()]
    });
    let other_admin = app.token("admin2", &[Role::MealAdmin], |r| {
        r.schools = vec!["s2".into()]
    });
    let org = app.token("cook", &[Role::MealOrganizer], |r| {
        r.organizers = vec!["org-1".into()]
    });
    let other_org = app.token("cook2", &[Role::MealOrganizer], |r| {
        r.organizers = vec!["org-2".into()]
    });
    let parent = app.token("parent", &[Role::Parent], |r| {
        r.children = vec!["ls-1".into()]
    });

    let ok = |s: StatusCode, v: &Value| assert!(s.is_success(), "{s} {v}");
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/municipalities/tyumen/menu-types/standard",
        &muni,
        json!({"name": "Основное"}),
    )
    .await;
    ok(s, &v);
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/municipalities/tyumen/age-categories/7-11",
        &muni,
        json!({"name": "7–11", "min_age": 7, "max_age": 11}),
    )
    .await;
    ok(s, &v);
    // Only the municipality's officer registers its schools.
    let (s, _) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1",
        &admin,
        json!({"municipality": "tyumen", "name": "СОШ"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &app,
        "PUT",
        "/api/meals/schools/s9",
        &muni,
        json!({"municipality": "ishim", "name": "СОШ"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1",
        &muni,
        json!({"municipality": "tyumen", "name": "СОШ № 1"}),
    )
    .await;
    ok(s, &v);
    // Another municipality's officer reusing the id learns nothing of whose it
    // is (404, the other municipality unnamed); the operator, who sees both, a
    // 409 naming it.
    let ishim = app.token("officer-ishim", &[Role::MunicipalOfficer], |r| {
        r.municipalities = vec!["ishim".into()]
    });
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1",
        &ishim,
        json!({"municipality": "ishim", "name": "Чужая"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(!v.to_string().contains("tyumen"), "{v}");
    let operator = app.token("op", &[Role::OperatorAdmin], |_| {});
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1",
        &operator,
        json!({"municipality": "ishim", "name": "Чужая"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("tyumen"), "{v}");
    // Only the school's own meal admin sets its credit, links and students.
    let (s, _) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/credit-limit",
        &other_admin,
        json!({"amount": "500.00"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/organizer",
        &other_admin,
        json!({"organizer": "org-2"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/credit-limit",
        &admin,
        json!({"amount": "-1.00"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/organizer",
        &admin,
        json!({"organizer": "org-1"}),
    )
    .await;
    ok(s, &v);
    let (_, school) = call(&app, "GET", "/api/meals/schools/s1", &admin, json!(null)).await;
    assert_eq!(
        school["credit_limit"], "0.00",
        "the refused writes changed nothing"
    );
    assert_eq!(school["organizer"], "org-1");
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/classes/1a",
        &admin,
        json!({"name": "1А", "shift": 3}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/classes/1a",
        &admin,
        json!({"name": "1А", "shift": 1}),
    )
    .await;
    ok(s, &v);
    let (s, _) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/students/ls-1",
        &other_admin,
        json!({"class": "1a", "full_name": "Иванов Иван", "birth_date": "2019-02-01"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/students/ls-1",
        &admin,
        json!({"class": "1a", "full_name": "Иванов Иван", "birth_date": "2019-02-31"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/students/ls-1",
        &admin,
        json!({"class": "1a", "full_name": "Иванов Иван", "birth_date": "2019-02-01"}),
    )
    .await;
    ok(s, &v);

    // A school's information system registers students and marks attendance in
    // the schools its token names only; to any other, or with no school in its
    // token, the school does not exist, and nothing changes.
    let system = |schools: &[&str]| {
        let schools: Vec<String> = schools.iter().map(|s| s.to_string()).collect();
        app.token("is-school", &[Role::InformationSystem], move |r| {
            r.schools = schools
        })
    };
    let rename = json!({"class": "1a", "full_name": "Чужой Ученик", "birth_date": "2019-02-01"});
    for token in [system(&["s2"]), system(&[])] {
        let (s, v) = call(
            &app,
            "PUT",
            "/api/meals/schools/s1/students/ls-1",
            &token,
            rename.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        let (s, v) = call(
            &app,
            "POST",
            "/api/meals/classes/1a/attendance",
            &token,
            json!({"date": "2026-04-27", "marks": [{"account": "ls-1", "present": true}]}),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    }
    let (s, v) = call(
        &app,
        "GET",
        "/api/meals/reports/balances?school=s1",
        &admin,
        json!(null),
    )
    .await;
    ok(s, &v);
    assert_eq!(v["rows"][0][3], "Иванов Иван", "{v}");
    let own = system(&["s1"]);
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/students/ls-1",
        &own,
        json!({"class": "1a", "full_name": "Иванов Иван Петрович", "birth_date": "2019-02-01"}),
    )
    .await;
    ok(s, &v);
    let (s, v) = call(
        &app,
        "POST",
        "/api/meals/classes/1a/attendance",
        &own,
        json!({"date": "2026-04-27", "marks": [{"account": "ls-1", "present": true}]}),
    )
    .await;
    ok(s, &v);

    // The organizer's catalogue is its own; menus only for linked schools.
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/organizers/org-1/dishes/soup",
        &org,
        json!({"name": "Суп", "yield_grams": 250, "price": "40.00"}),
    )
    .await;
    ok(s, &v);
    let (s, _) = call(
        &app,
        "PUT",
        "/api/meals/organizers/org-1/dishes/soup",
        &other_org,
        json!({"name": "Суп", "yield_grams": 250, "price": "1.00"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &app,
        "PUT",
        "/api/meals/organizers/org-1/dishes/cake",
        &org,
        json!({"name": "Торт", "yield_grams": 100, "price": "-5.00"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    for code in ["c1", "c2"] {
        let (s, v) = call(&app, "PUT", &format!("/api/meals/organizers/org-1/complexes/{code}"), &org,
            json!({"name": code, "menu_type": "standard", "age_category": "7-11", "meal_kind": "lunch", "price": "150.00", "dishes": ["soup"]})).await;
        ok(s, &v);
    }
    let (s, _) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/menus/2026-05-05/lunch",
        &other_org,
        json!({"complexes": ["c1", "c2"], "default": "c1"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/menus/2026-05-05/lunch",
        &org,
        json!({"complexes": ["c1", "c2"], "default": "c3"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = call(
        &app,
        "PUT",
        "/api/meals/schools/s1/menus/2026-05-05/lunch",
        &org,
        json!({"complexes": ["c1", "c2"], "default": "c1"}),
    )
    .await;
    ok(s, &v);
    let (s, _) = call(
        &app,
        "GET",
        "/api/meals/organizers/org-1/procurement",
        &other_org,
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Reports: a school's admin sees their school, not another's; the
    // municipality's officer sees all of it; a parent none of it.
    let (s, _) = call(
        &app,
        "GET",
        "/api/meals/reports/balances?school=s1",
        &other_admin,
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &app,
        "GET",
        "/api/meals/reports/balances?school=s1",
        &admin,
        json!(null),
    )
    .await;
    ok(s, &v);
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    let (s, _) = call(
        &app,
        "GET",
        "/api/meals/reports/money-flow?municipality=tyumen",
        &parent,
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &app,
        "GET",
        "/api/meals/reports/links?municipality=tyumen",
        &muni,
        json!(null),
    )
    .await;
    ok(s, &v);
    assert_eq!(v["rows"][0][3], "org-1");
    app.stop().await;
}
