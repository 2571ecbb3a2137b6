//! Two weeks around the May holidays of 2026 for one school with four students
//! (three ПЧВР categories and one without, one living on credit), with the meals
//! and payments services both running and talking over the bus of the current
//! mode: orders, the lock, the «комплекс дня», the request an hour before the
//! meal, exclusion by credit, confirmation at 22:59, the close at 23:00, the
//! write-off to the kopeck landing in payments, a re-run that changes nothing,
//! and the close caught up after the service was down at 23:00.

use auth::Role;
use chrono::NaiveDate;
use contracts::Contract;
use diesel::prelude::*;
use platform::testing::TestApp;
use primitives::Money;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{call, m, meals_and_payments, ok, wait_for};

fn at(d: u32, h: u32, mi: u32) -> chrono::DateTime<chrono::Utc> {
    calendar::local_to_utc(
        NaiveDate::from_ymd_opt(2026, if d >= 20 { 4 } else { 5 }, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap(),
    )
}

async fn payments_balance(app: &TestApp, account: &str) -> Option<Money> {
    let a = account.to_string();
    app.context("payments")
        .db
        .read(move |c| Ok::<_, storage::StorageError>(payments::store::balance(c, &a).ok()))
        .await
        .unwrap()
}

async fn meals_balance(app: &TestApp, account: &str) -> Option<i64> {
    let a = account.to_string();
    app.context("meals")
        .db
        .read(move |c| {
            meals::store::balances::table
                .find(&a)
                .select(meals::store::balances::balance_kopecks)
                .first::<i64>(c)
                .optional()
                .map_err(storage::StorageError::from)
        })
        .await
        .unwrap()
}

async fn write_offs(app: &TestApp, day: NaiveDate) -> Vec<meals::store::WriteOff> {
    app.context("meals")
        .db
        .read(move |c| {
            meals::store::write_offs::table
                .filter(meals::store::write_offs::date.eq(day))
                .order(meals::store::write_offs::account)
                .select(meals::store::WriteOff::as_select())
                .load(c)
                .map_err(storage::StorageError::from)
        })
        .await
        .unwrap()
}

async fn debit_messages(app: &TestApp) -> i64 {
    app.context("meals")
        .db
        .read(|c| {
            bus::store::outbox::table
                .filter(bus::store::outbox::kind.eq(contracts::meals::DebitRequested::KIND))
                .count()
                .get_result::<i64>(c)
                .map_err(storage::StorageError::from)
        })
        .await
        .unwrap()
}

const O: &str = "/api/meals/organizers/org-1";

fn order(acc: &str, day: &str) -> String {
    format!("/api/meals/students/{acc}/orders/{day}/lunch")
}

/// The app with meals and payments, its clock, and the people of the walk.
struct Walk {
    app: TestApp,
    clock: calendar::FixedClock,
    http: reqwest::Client,
    muni: String,
    admin: String,
    org: String,
    teacher: String,
    other_teacher: String,
    parent: String,
    stranger: String,
    operator: String,
}

/// 27 April, 09:00: the services start; everyone gets a token.
async fn start() -> Walk {
    let clock = calendar::FixedClock::new(at(27, 9, 0));
    let app = TestApp::spawn(meals_and_payments(), clock.clone()).await;
    let http = reqwest::Client::new();
    let muni = app.token("officer", &[Role::MunicipalOfficer], |r| {
        r.municipalities = vec!["tyumen".into()]
    });
    let admin = app.token("admin", &[Role::MealAdmin], |r| {
        r.schools = vec!["s1".into()]
    });
    let org = app.token("cook", &[Role::MealOrganizer], |r| {
        r.organizers = vec!["org-1".into()]
    });
    let teacher = app.token("teacher", &[Role::ClassTeacher], |r| {
        r.schools = vec!["s1".into()];
        r.classes = vec!["4a".into()];
    });
    let other_teacher = app.token("teacher-b", &[Role::ClassTeacher], |r| {
        r.classes = vec!["4b".into()]
    });
    let parent = app.token("parent", &[Role::Parent], |r| {
        r.children = vec!["ls-a".into(), "ls-b".into(), "ls-c".into(), "ls-d".into()]
    });
    let stranger = app.token("stranger", &[Role::Parent], |r| {
        r.children = vec!["ls-x".into()]
    });
    let operator = app.token("op", &[Role::OperatorAdmin], |_| {});
    Walk {
        app,
        clock,
        http,
        muni,
        admin,
        org,
        teacher,
        other_teacher,
        parent,
        stranger,
        operator,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_weeks_around_the_may_holidays() {
    let w = start().await;
    the_municipality_sets_its_dictionaries_and_the_school(&w).await;
    payments_opens_the_accounts_and_scopes_teachers_by_class(&w).await;
    the_organizer_publishes_the_catalogue_and_the_menus(&w).await;
    parents_order_within_the_window_before_the_lock(&w).await;
    the_lock_of_12_may_comes_over_the_holidays(&w).await;
    let request = attendance_arrives_and_the_request_is_formed(&w).await;
    the_teacher_confirms_and_the_day_closes(&w, &request).await;
    a_rerun_of_the_close_changes_nothing(&w).await;
    the_close_catches_up_after_the_service_was_down(w).await;
}

/// The municipality's dictionaries, then the school, its class, meal times, students and settings.
async fn the_municipality_sets_its_dictionaries_and_the_school(w: &Walk) {
    let Walk {
        app, muni, admin, ..
    } = w;
    // Dictionaries of the municipality.
    let d = "/api/meals/municipalities/tyumen";
    ok(
        app,
        "PUT",
        &format!("{d}/menu-types/standard"),
        muni,
        json!({"name": "Основное"}),
    )
    .await;
    ok(
        app,
        "PUT",
        &format!("{d}/age-categories/7-11"),
        muni,
        json!({"name": "7–11 лет", "min_age": 7, "max_age": 11}),
    )
    .await;
    ok(app, "PUT", &format!("{d}/pchvr-categories/full"), muni,
        json!({"name": "Многодетные", "funder": "regional", "kind": "percent", "rates": [{"meal_kind": "lunch", "percent": "100"}]})).await;
    ok(app, "PUT", &format!("{d}/pchvr-categories/half"), muni,
        json!({"name": "Малоимущие", "funder": "municipal", "kind": "percent", "rates": [{"meal_kind": "lunch", "percent": "50"}]})).await;
    ok(app, "PUT", &format!("{d}/pchvr-categories/fixed"), muni,
        json!({"name": "Участники СВО", "funder": "regional", "kind": "fixed", "rates": [{"meal_kind": "lunch", "amount": "80.50"}]})).await;
    // Someone else's municipality is refused.
    let (s, _) = call(
        app,
        "PUT",
        "/api/meals/municipalities/ishim/menu-types/x",
        muni,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The school, its class, meal times, students and settings.
    ok(
        app,
        "PUT",
        "/api/meals/schools/s1",
        muni,
        json!({"municipality": "tyumen", "name": "СОШ № 1"}),
    )
    .await;
    ok(
        app,
        "PUT",
        "/api/meals/schools/s1/classes/4a",
        admin,
        json!({"name": "4А", "shift": 1}),
    )
    .await;
    ok(
        app,
        "PUT",
        "/api/meals/schools/s1/meal-times/lunch-1",
        admin,
        json!({"kind": "lunch", "shift": 1, "starts_at": "12:30"}),
    )
    .await;
    ok(
        app,
        "PUT",
        "/api/meals/schools/s1/meal-times/breakfast-1",
        admin,
        json!({"kind": "breakfast", "shift": 1, "starts_at": "09:00"}),
    )
    .await;
    ok(
        app,
        "PUT",
        "/api/meals/schools/s1/organizer",
        admin,
        json!({"organizer": "org-1"}),
    )
    .await;
    ok(
        app,
        "PUT",
        "/api/meals/schools/s1/credit-limit",
        admin,
        json!({"amount": "100.00"}),
    )
    .await;
    for (acc, name, cat) in [
        ("ls-a", "Антонов Антон", Some("full")),
        ("ls-b", "Борисова Бэлла", Some("half")),
        ("ls-c", "Власов Виктор", Some("fixed")),
        ("ls-d", "Гусев Глеб", None),
    ] {
        ok(
            app,
            "PUT",
            &format!("/api/meals/schools/s1/students/{acc}"),
            admin,
            json!({"class": "4a", "full_name": name, "birth_date": "2016-01-10"}),
        )
        .await;
        ok(
            app,
            "PUT",
            &format!("/api/meals/schools/s1/students/{acc}/settings"),
            admin,
            json!({"category": cat, "meal_kinds": ["lunch"], "menu_type": "standard"}),
        )
        .await;
    }
    let (s, v) = call(
        app,
        "PUT",
        "/api/meals/schools/s1/students/ls-a/settings",
        admin,
        Some(json!({"category": "nope", "meal_kinds": ["lunch"], "menu_type": "standard"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

/// Payments opens the personal accounts it learns about over the bus; a class teacher's scope is the class id there too; parents' money arrives.
async fn payments_opens_the_accounts_and_scopes_teachers_by_class(w: &Walk) {
    let Walk {
        app,
        http,
        admin,
        teacher,
        other_teacher,
        operator,
        ..
    } = w;
    // Payments opens the personal accounts it learns about over the bus.
    for acc in ["ls-a", "ls-b", "ls-c", "ls-d"] {
        wait_for("the account in payments", || {
            payments_balance(app, acc).map(|b| b.is_some())
        })
        .await;
    }
    // A class teacher's scope is the class id, in payments too: another class
    // of the school with the same name is another teacher's.
    ok(
        app,
        "PUT",
        "/api/meals/schools/s1/classes/4b",
        admin,
        json!({"name": "4А", "shift": 2}),
    )
    .await;
    let (s, v) = call(app, "GET", "/api/payments/accounts/ls-a", teacher, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["class_id"], "4a", "{v}");
    let (s, v) = call(
        app,
        "GET",
        "/api/payments/accounts/ls-a",
        other_teacher,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    for (acc, amount) in [("ls-b", "200.00"), ("ls-c", "50.00"), ("ls-d", "10.00")] {
        let res = http
            .post(app.url(&format!("/api/payments/accounts/{acc}/adjustments")))
            .bearer_auth(operator)
            .header("Idempotency-Key", format!("seed-{acc}"))
            .json(&json!({"amount": amount, "reason": "cash at the school office"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let want = m(amount).kopecks();
        wait_for("the balance in meals", || {
            meals_balance(app, acc).map(move |b| b == Some(want))
        })
        .await;
    }
}

/// The organizer's catalogue and the menus of 12 and 13 May.
async fn the_organizer_publishes_the_catalogue_and_the_menus(w: &Walk) {
    let Walk { app, org, .. } = w;
    // The organizer's catalogue and the menus of 12 and 13 May.
    ok(app, "POST", &format!("{O}/catalog"), org, json!({
        "dishes": [
            {"id": "soup", "name": "Суп куриный", "yield_grams": 250, "price": "40.00", "allergens": ["celery"]},
            {"id": "cutlet", "name": "Котлета с пюре", "yield_grams": 230, "price": "90.00"},
            {"id": "fish", "name": "Рыба с рисом", "yield_grams": 230, "price": "110.00", "allergens": ["fish"]}
        ],
        "complexes": [
            {"code": "c1", "name": "Обед №1", "menu_type": "standard", "age_category": "7-11", "meal_kind": "lunch", "price": "150.00", "dishes": ["soup", "cutlet"]},
            {"code": "c2", "name": "Обед №2", "menu_type": "standard", "age_category": "7-11", "meal_kind": "lunch", "price": "171.15", "dishes": ["soup", "fish"]}
        ],
        "extras": [{"id": "juice", "name": "Сок", "kind": "supplement", "price": "25.10"}]
    })).await;
    // A bad upload changes nothing: the negative price is named, c3 is not created.
    let (s, v) = call(app, "POST", &format!("{O}/catalog"), org, Some(json!({"complexes": [
        {"code": "c3", "name": "x", "menu_type": "standard", "age_category": "7-11", "meal_kind": "lunch", "price": "10.00", "dishes": ["soup"]},
        {"code": "c4", "name": "y", "menu_type": "standard", "age_category": "7-11", "meal_kind": "lunch", "price": "-1.00", "dishes": ["soup"]}]}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v.to_string().contains("complexes[1].price"), "{v}");
    let (_, cat) = call(app, "GET", &format!("{O}/catalog"), org, None).await;
    assert_eq!(cat["complexes"].as_array().unwrap().len(), 2);
    ok(
        app,
        "PUT",
        "/api/meals/schools/s1/menus/2026-05-12/lunch",
        org,
        json!({"complexes": ["c1", "c2"], "default": "c1"}),
    )
    .await;
    ok(
        app,
        "PUT",
        "/api/meals/schools/s1/menus/2026-05-13/lunch",
        org,
        json!({"complexes": ["c1"], "default": "c1"}),
    )
    .await;
    let (s, _) = call(
        app,
        "PUT",
        "/api/meals/schools/s1/menus/2026-05-12/lunch",
        org,
        Some(json!({"complexes": ["c1", "zz"], "default": "c1"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// 27 and 30 April: the two-week window, the menu, orders, bad orders, the procurement view, a versioned complex.
async fn parents_order_within_the_window_before_the_lock(w: &Walk) {
    let Walk {
        app,
        clock,
        org,
        parent,
        stranger,
        ..
    } = w;
    // 27 April: 12 May is past the two-week window.
    let (s, v) = call(
        app,
        "PUT",
        &order("ls-b", "2026-05-12"),
        parent,
        Some(json!({"complex": "c2"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("outside the ordering window"),
        "{v}"
    );

    // 30 April: within the window, before the lock (4 May).
    clock.set(at(30, 10, 0));
    let (_, menu) = call(
        app,
        "GET",
        "/api/meals/students/ls-b/menu?from=2026-05-12&to=2026-05-13",
        parent,
        None,
    )
    .await;
    let day12 = &menu[0]["meals"][0];
    assert_eq!(day12["lock_date"], "2026-05-04");
    let c2 = day12["complexes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "c2")
        .unwrap();
    assert_eq!(
        c2["price"],
        json!({"price": "171.15", "reimbursed": "85.58", "extras": "0.00", "to_pay": "85.57"})
    );
    assert_eq!(menu[1]["meals"][0]["incomplete"], true);
    let (_, notices) = call(app, "GET", &format!("{O}/notices"), org, None).await;
    assert_eq!(notices[0]["date"], "2026-05-13", "{notices}");
    // Noticed when the one-complex menu was set (27 April), not when the
    // parent looked: reading a menu writes nothing.
    assert!(
        notices[0]["noticed_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-04-27"),
        "{notices}"
    );
    // Someone else's child: as if it did not exist.
    let (s, _) = call(app, "GET", "/api/meals/students/ls-b/menu", stranger, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        app,
        "PUT",
        &order("ls-b", "2026-05-12"),
        stranger,
        Some(json!({"complex": "c2"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A parent's double click (or two devices) at once: each PUT answers, and
    // one order stands (before, two inserts raced and one answered 500).
    let path = order("ls-b", "2026-05-12");
    let puts = (0..8).map(|i| {
        let body = if i % 2 == 0 {
            json!({"complex": "c1"})
        } else {
            json!({"complex": "c2"})
        };
        call(app, "PUT", &path, parent, Some(body))
    });
    for (s, v) in futures::future::join_all(puts).await {
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let v = ok(
        app,
        "PUT",
        &order("ls-b", "2026-05-12"),
        parent,
        json!({"complex": "c2", "extras": [{"item": "juice"}]}),
    )
    .await;
    assert_eq!(v["orders"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["orders"][0]["price"]["to_pay"], "110.67");
    ok(
        app,
        "PUT",
        &order("ls-c", "2026-05-12"),
        parent,
        json!({"complex": "c2"}),
    )
    .await;
    let v = ok(
        app,
        "PUT",
        &order("ls-d", "2026-05-12"),
        parent,
        json!({"complex": "c1"}),
    )
    .await;
    // 150.00 ordered against 10.00 + 100.00 credit: 40.00 short.
    assert_eq!(v["shortfall"], "40.00", "{v}");
    // Bad orders change nothing.
    let (s, v) = call(
        app,
        "PUT",
        &order("ls-a", "2026-05-12"),
        parent,
        Some(json!({"complex": null, "extras": [{"item": "juice"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v.to_string().contains("only together with a complex"),
        "{v}"
    );
    let (s, _) = call(
        app,
        "PUT",
        &order("ls-a", "2026-05-12"),
        parent,
        Some(json!({"complex": "c9"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = call(
        app,
        "PUT",
        &order("ls-a", "2026-05-13"),
        parent,
        Some(json!({"complex": "c1"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["type"], "urn:problem:menu-incomplete", "{v}");
    let (s, _) = call(
        app,
        "PUT",
        &order("ls-a", "2026-05-11"),
        parent,
        Some(json!({"complex": "c1"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "11 May is a day off");
    ok(
        app,
        "POST",
        "/api/meals/students/ls-b/orders/confirm",
        parent,
        json!({}),
    )
    .await;
    let (_, proc) = call(
        app,
        "GET",
        &format!("{O}/procurement?from=2026-05-12&to=2026-05-12"),
        org,
        None,
    )
    .await;
    let rows = proc["rows"].as_array().unwrap();
    let c2row = rows.iter().find(|r| r[3] == "c2").unwrap();
    assert_eq!(c2row[4], 1, "one confirmed order of c2: {proc}");
    let c1row = rows.iter().find(|r| r[3] == "c1").unwrap();
    assert_eq!(
        c1row[5], 1,
        "ls-a without an order gets the «комплекс дня»: {proc}"
    );

    // A complex a parent chose is versioned, not changed in place.
    let v = ok(app, "PUT", &format!("{O}/complexes/c2"), org, json!({"name": "Обед №2", "menu_type": "standard",
        "age_category": "7-11", "meal_kind": "lunch", "price": "180.00", "dishes": ["soup", "fish"]})).await;
    assert_eq!(v["id"], "c2.v2");
}

/// 4 May: the lock of 12 May has come.
async fn the_lock_of_12_may_comes_over_the_holidays(w: &Walk) {
    let Walk {
        app, clock, parent, ..
    } = w;
    // 4 May: the lock of 12 May has come (5 working days before, over the holidays).
    clock.set(at(4, 8, 0));
    let (s, v) = call(
        app,
        "PUT",
        &order("ls-c", "2026-05-12"),
        parent,
        Some(json!({"complex": "c1"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("2026-05-04"), "{v}");
}

/// 12 May: attendance over the bus, the request an hour before lunch.
/// Answers the request's id.
async fn attendance_arrives_and_the_request_is_formed(w: &Walk) -> String {
    let Walk {
        app,
        clock,
        http,
        org,
        teacher,
        other_teacher,
        ..
    } = w;
    // 12 May: attendance from the Electronic school over the bus.
    clock.set(at(12, 8, 0));
    let marks = contracts::school::AttendanceMarked {
        school: "s1".into(),
        class: "4a".into(),
        date: "2026-05-12".into(),
        marks: ["ls-a", "ls-b", "ls-c", "ls-d"]
            .iter()
            .map(|a| contracts::school::AttendanceMark {
                account: (*a).into(),
                present: true,
            })
            .collect(),
    };
    let env = bus::Envelope::json(
        contracts::school::AttendanceMarked::TOPIC,
        contracts::school::AttendanceMarked::KIND,
        &marks,
    )
    .unwrap();
    app.context("meals")
        .bus
        .bus
        .publish(vec![env])
        .await
        .unwrap()
        .await
        .unwrap();
    wait_for("attendance", || async {
        app.context("meals")
            .db
            .read(|c| {
                meals::store::attendance::table
                    .count()
                    .get_result::<i64>(c)
                    .map_err(storage::StorageError::from)
            })
            .await
            .unwrap()
            == 4
    })
    .await;

    // 11:29, an hour and a minute before lunch: the request is formed.
    clock.set(at(12, 11, 29));
    let (s, _) = call(
        app,
        "POST",
        "/api/meals/classes/4a/requests",
        other_teacher,
        Some(json!({"meal_time": "lunch-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another class's teacher");
    let (s, v) = call(
        app,
        "POST",
        "/api/meals/classes/4a/requests",
        teacher,
        Some(json!({"meal_time": "breakfast-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "breakfast froze at 08:00: {v}");
    let (s, req) = call(
        app,
        "POST",
        "/api/meals/classes/4a/requests",
        teacher,
        Some(json!({"meal_time": "lunch-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{req}");
    let line = |acc: &str| {
        req["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["account"] == acc)
            .unwrap()
            .clone()
    };
    assert_eq!(line("ls-a")["source"], "default");
    assert_eq!(line("ls-a")["price"]["to_pay"], "0.00");
    assert_eq!(line("ls-b")["price"]["to_pay"], "110.67");
    assert_eq!(
        line("ls-b")["complex"],
        "c2",
        "the order keeps the version chosen"
    );
    assert_eq!(line("ls-c")["price"]["to_pay"], "90.65");
    assert_eq!(
        line("ls-c")["included"],
        true,
        "50.00 − 90.65 stays within the 100.00 credit"
    );
    assert_eq!(line("ls-d")["included"], false);
    assert!(line("ls-d")["reason"]
        .as_str()
        .unwrap()
        .contains("credit limit"));
    let (s, _) = call(
        app,
        "POST",
        "/api/meals/classes/4a/requests",
        teacher,
        Some(json!({"meal_time": "lunch-1"})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a second request for the same class and day"
    );
    let id = req["id"].as_str().unwrap().to_string();
    let xlsx = http
        .get(app.url(&format!("/api/meals/requests/{id}/print")))
        .bearer_auth(teacher)
        .send()
        .await
        .unwrap();
    assert_eq!(xlsx.status(), 200);
    assert!(xlsx.bytes().await.unwrap().starts_with(b"PK"));
    let (_, seen) = call(
        app,
        "GET",
        &format!("{O}/requests?date=2026-05-12"),
        org,
        None,
    )
    .await;
    assert_eq!(seen.as_array().unwrap().len(), 1);
    id
}

/// 12 May, 22:59 and 23:00: who ate, the close, the debits landing in payments to the kopeck.
async fn the_teacher_confirms_and_the_day_closes(w: &Walk, id: &str) {
    let Walk {
        app,
        clock,
        muni,
        admin,
        teacher,
        ..
    } = w;
    // 22:59: the teacher confirms who ate; 23:00 the day closes.
    clock.set(at(12, 22, 59));
    ok(
        app,
        "PUT",
        &format!("/api/meals/requests/{id}/actual"),
        teacher,
        json!({"ate": ["ls-a", "ls-b", "ls-c"]}),
    )
    .await;
    assert_eq!(debit_messages(app).await, 0);
    clock.set(at(12, 23, 0));
    let day12 = NaiveDate::from_ymd_opt(2026, 5, 12).unwrap();
    wait_for("the write-off of 12 May", || async {
        !write_offs(app, day12).await.is_empty()
    })
    .await;
    let (s, _) = call(
        app,
        "PUT",
        &format!("/api/meals/requests/{id}/actual"),
        teacher,
        Some(json!({"ate": ["ls-a"]})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "after 23:00 nothing changes");
    let w = write_offs(app, day12).await;
    let amounts: Vec<(&str, i64, i64)> = w
        .iter()
        .map(|x| (x.account.as_str(), x.amount_kopecks, x.reimbursed_kopecks))
        .collect();
    assert_eq!(
        amounts,
        vec![
            ("ls-a", 0, 150_00),
            ("ls-b", 110_67, 85_58),
            ("ls-c", 90_65, 80_50)
        ]
    );
    assert_eq!(w[1].key, "ls-b:2026-05-12:lunch-1");
    // The debits land in payments, to the kopeck, and come back accepted.
    wait_for("payments' debits", || async {
        payments_balance(app, "ls-b").await == Some(m("89.33"))
            && payments_balance(app, "ls-c").await == Some(m("-40.65"))
    })
    .await;
    assert_eq!(payments_balance(app, "ls-d").await, Some(m("10.00")));
    wait_for("debit results", || async {
        write_offs(app, day12)
            .await
            .iter()
            .all(|x| x.status == "accepted")
    })
    .await;
    wait_for("balances back in meals", || {
        meals_balance(app, "ls-c").map(|b| b == Some(-40_65))
    })
    .await;
    let (_, closes) = call(
        app,
        "GET",
        "/api/meals/day-closes?school=s1&date=2026-05-12",
        admin,
        None,
    )
    .await;
    assert_eq!(closes[0]["debits"], 3, "{closes}");
    assert_eq!(closes[0]["late"], false);
    assert_eq!(closes[0]["to_pay"], "201.32");
    let (_, sub) = call(
        app,
        "GET",
        "/api/meals/reports/subsidies?municipality=tyumen&from=2026-05-12&to=2026-05-12",
        muni,
        None,
    )
    .await;
    let sub_rows = sub["rows"].as_array().unwrap();
    assert!(
        sub_rows.contains(&json!(["full", "regional", 1, "150.00"])),
        "{sub}"
    );
    assert!(
        sub_rows.contains(&json!(["half", "municipal", 1, "85.58"])),
        "{sub}"
    );
}

/// A re-run of the close changes nothing.
async fn a_rerun_of_the_close_changes_nothing(w: &Walk) {
    let Walk { app, .. } = w;
    let day12 = NaiveDate::from_ymd_opt(2026, 5, 12).unwrap();
    // A re-run of the close changes nothing.
    let ctx = app.context("meals").clone();
    let again = tokio::task::spawn_blocking(move || meals::close::catch_up(&ctx))
        .await
        .unwrap()
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(debit_messages(app).await, 3);
    assert_eq!(write_offs(app, day12).await.len(), 3);
}

/// 13 May: the request, the credit limit a teacher cannot pass, the service down at 23:00 and the close caught up at 07:00.
async fn the_close_catches_up_after_the_service_was_down(w: Walk) {
    let Walk {
        app,
        clock,
        http,
        teacher,
        ..
    } = w;
    // 13 May: the request is formed (everyone on the «комплекс дня»), then the
    // service is down from 22:00 until 07:00 the next morning.
    clock.set(at(13, 8, 0));
    ok(&app, "POST", "/api/meals/classes/4a/attendance", &teacher,
        json!({"date": "2026-05-13", "marks": [{"account": "ls-a", "present": true}, {"account": "ls-b", "present": true}, {"account": "ls-c", "present": true}, {"account": "ls-d", "present": false}]})).await;
    let (s, _) = call(
        &app,
        "POST",
        "/api/meals/classes/4a/attendance",
        &teacher,
        Some(json!({"date": "2026-05-13", "marks": [{"account": "ls-zz", "present": true}]})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, req13) = call(
        &app,
        "POST",
        "/api/meals/classes/4a/requests",
        &teacher,
        Some(json!({"meal_time": "lunch-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let line13 = |acc: &str| {
        req13["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["account"] == acc)
            .unwrap()
            .clone()
    };
    assert_eq!(line13("ls-b")["price"]["to_pay"], "75.00");
    assert_eq!(
        line13("ls-c")["included"],
        false,
        "−40.65 − 69.50 would pass the credit limit"
    );
    assert_eq!(line13("ls-d")["reason"], "absent at the first lesson");
    // 003 §3.2.2: the teacher cannot feed ls-c past the school's credit by
    // confirming it ate; the refusal names the student and changes nothing.
    let req13_id = req13["id"].as_str().unwrap().to_string();
    let (s, problem) = call(
        &app,
        "PUT",
        &format!("/api/meals/requests/{req13_id}/actual"),
        &teacher,
        Some(json!({"ate": ["ls-a", "ls-b", "ls-c"]})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["type"], "urn:problem:over-credit-limit",
        "{problem}"
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("ls-c: balance ") && detail.contains(", below the credit limit of -"),
        "{detail}"
    );
    let (_, unchanged) = call(
        &app,
        "GET",
        &format!("/api/meals/requests/{req13_id}"),
        &teacher,
        None,
    )
    .await;
    assert!(unchanged["confirmed_at"].is_null(), "{unchanged}");
    ok(
        &app,
        "PUT",
        &format!("/api/meals/requests/{req13_id}/actual"),
        &teacher,
        json!({"ate": ["ls-a", "ls-b"]}),
    )
    .await;
    clock.set(at(13, 22, 0));
    let settings = app.settings.clone();
    let data_dir = app.data_dir.clone();
    app.running.stop().await;
    clock.set(at(14, 7, 0));
    let app = TestApp::spawn_with(meals_and_payments(), clock.clone(), settings).await;
    let day13 = NaiveDate::from_ymd_opt(2026, 5, 13).unwrap();
    wait_for("the caught-up close of 13 May", || async {
        !write_offs(&app, day13).await.is_empty()
    })
    .await;
    let w = write_offs(&app, day13).await;
    let amounts: Vec<(&str, i64, i64)> = w
        .iter()
        .map(|x| (x.account.as_str(), x.amount_kopecks, x.reimbursed_kopecks))
        .collect();
    assert_eq!(amounts, vec![("ls-a", 0, 150_00), ("ls-b", 75_00, 75_00)]);
    wait_for("payments' debit of 13 May", || async {
        payments_balance(&app, "ls-b").await == Some(m("14.33"))
    })
    .await;
    let admin = app.token("admin", &[Role::MealAdmin], |r| {
        r.schools = vec!["s1".into()]
    });
    let (_, closes) = call(
        &app,
        "GET",
        "/api/meals/day-closes?school=s1&date=2026-05-13",
        &admin,
        None,
    )
    .await;
    assert_eq!(closes[0]["late"], true, "{closes}");
    assert_eq!(closes[0]["to_pay"], "75.00", "{closes}");
    assert_eq!(closes[0]["reimbursed"], "225.00", "{closes}");
    assert_eq!(closes[0]["refused_amount"], "0.00", "{closes}");
    // Had payments refused ls-b's debit, neither its part nor the budget's
    // would count as written off or reimbursed in the day-close view.
    app.context("meals")
        .db
        .write(move |c| {
            diesel::update(
                meals::store::write_offs::table
                    .filter(meals::store::write_offs::date.eq(day13))
                    .filter(meals::store::write_offs::account.eq("ls-b")),
            )
            .set(meals::store::write_offs::status.eq("refused"))
            .execute(c)
            .map_err(storage::StorageError::from)
        })
        .await
        .unwrap();
    let (_, closes) = call(
        &app,
        "GET",
        "/api/meals/day-closes?school=s1&date=2026-05-13",
        &admin,
        None,
    )
    .await;
    assert_eq!(closes[0]["to_pay"], "0.00", "{closes}");
    assert_eq!(closes[0]["reimbursed"], "150.00", "{closes}");
    assert_eq!(closes[0]["refused_amount"], "150.00", "{closes}");
    assert_eq!(closes[0]["refused"], 1, "{closes}");
    assert_eq!(debit_messages(&app).await, 5);
    let balances = http
        .get(app.url("/api/meals/reports/balances?school=s1&format=xlsx"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(balances.status(), 200);
    app.stop().await;
    let _ = std::fs::remove_dir_all(data_dir);
}

trait MapFuture: std::future::Future + Sized {
    fn map<T, F: FnOnce(Self::Output) -> T>(self, f: F) -> impl std::future::Future<Output = T> {
        async move { f(self.await) }
    }
}
impl<F: std::future::Future> MapFuture for F {}
