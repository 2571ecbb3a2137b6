//! Order placement under load in embedded mode (SQLite, the in-process bus, the
//! real HTTP server): 200 parents at once, each placing orders for their child
//! over the next school days (alternating complexes, some with an additional
//! item), every request a real `PUT /api/meals/students/{account}/orders/...`
//! with a JWT. Reports orders per second and the latency percentiles.
//!
//! Run: `cargo bench -p meals --bench orders`. `BENCH_PARENTS` (default 200)
//! and `BENCH_ORDERS` per parent (default 20) scale it.

#![allow(
    clippy::unwrap_used,
    clippy::float_arithmetic,
    clippy::inconsistent_digit_grouping
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth::Role;
use chrono::NaiveDate;
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let parents = env("BENCH_PARENTS", 200);
    let per_parent = env("BENCH_ORDERS", 20);
    let today = NaiveDate::from_ymd_opt(2026, 4, 20).unwrap();
    let clock = calendar::FixedClock::at_local(today.and_hms_opt(9, 0, 0).unwrap());
    let dir = std::env::temp_dir().join(storage::testing::unique_name("bench-orders"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut settings = platform::testing::test_settings(&dir);
    settings.storage.database_url = String::new();
    settings.bus.backend = settings::BusBackend::Memory;
    settings.http.workers = 2;
    let app = platform::testing::TestApp::spawn_with(
        vec![Arc::new(meals::MealsService)],
        clock.clone(),
        settings,
    )
    .await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(parents)
        .build()
        .unwrap();
    let muni = app.token("officer", &[Role::MunicipalOfficer], |r| {
        r.municipalities = vec!["tyumen".into()]
    });
    let admin = app.token("admin", &[Role::MealAdmin], |r| {
        r.schools = vec!["s1".into()]
    });
    let org = app.token("cook", &[Role::MealOrganizer], |r| {
        r.organizers = vec!["org-1".into()]
    });
    let put = |path: String, token: String, body: serde_json::Value| {
        let http = http.clone();
        let url = app.url(&path);
        async move {
            let res = http
                .put(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(
                res.status().is_success(),
                "{path}: {} {}",
                res.status(),
                res.text().await.unwrap()
            );
        }
    };
    let d = "/api/meals/municipalities/tyumen";
    put(
        format!("{d}/menu-types/standard"),
        muni.clone(),
        json!({"name": "Основное"}),
    )
    .await;
    put(
        format!("{d}/age-categories/7-11"),
        muni.clone(),
        json!({"name": "7–11", "min_age": 7, "max_age": 11}),
    )
    .await;
    put(format!("{d}/pchvr-categories/half"), muni.clone(), json!({"name": "Малоимущие", "funder": "municipal", "kind": "percent", "rates": [{"meal_kind": "lunch", "percent": "50"}]})).await;
    put(
        "/api/meals/schools/s1".into(),
        muni.clone(),
        json!({"municipality": "tyumen", "name": "СОШ № 1"}),
    )
    .await;
    put(
        "/api/meals/schools/s1/meal-times/lunch-1".into(),
        admin.clone(),
        json!({"kind": "lunch", "shift": 1, "starts_at": "12:30"}),
    )
    .await;
    put(
        "/api/meals/schools/s1/organizer".into(),
        admin.clone(),
        json!({"organizer": "org-1"}),
    )
    .await;
    for k in 0..parents.div_ceil(25) {
        put(
            format!("/api/meals/schools/s1/classes/c{k}"),
            admin.clone(),
            json!({"name": format!("{k}А"), "shift": 1}),
        )
        .await;
    }
    for p in 0..parents {
        put(format!("/api/meals/schools/s1/students/ls-{p}"), admin.clone(), json!({"class": format!("c{}", p / 25), "full_name": format!("Ученик {p}"), "birth_date": "2016-03-01"})).await;
        put(format!("/api/meals/schools/s1/students/ls-{p}/settings"), admin.clone(), json!({"category": if p % 3 == 0 { Some("half") } else { None }, "meal_kinds": ["lunch"], "menu_type": "standard"})).await;
    }
    let client = reqwest::Client::new();
    let res = client.post(app.url("/api/meals/organizers/org-1/catalog")).bearer_auth(&org).json(&json!({
        "dishes": [{"id": "soup", "name": "Суп", "yield_grams": 250, "price": "40.00"}, {"id": "fish", "name": "Рыба", "yield_grams": 230, "price": "110.00"}],
        "complexes": [
            {"code": "c1", "name": "Обед №1", "menu_type": "standard", "age_category": "7-11", "meal_kind": "lunch", "price": "150.00", "dishes": ["soup"]},
            {"code": "c2", "name": "Обед №2", "menu_type": "standard", "age_category": "7-11", "meal_kind": "lunch", "price": "171.15", "dishes": ["soup", "fish"]}],
        "extras": [{"id": "juice", "name": "Сок", "kind": "supplement", "price": "25.10"}]
    })).send().await.unwrap();
    assert!(res.status().is_success());
    // The orderable school days: not locked yet, within two weeks.
    let mut days = Vec::new();
    let mut day = today + chrono::Duration::days(1);
    while day <= today + chrono::Duration::days(14) {
        if meals::domain::may_order(&app.context("meals").calendar, today, day).is_ok() {
            put(
                format!("/api/meals/schools/s1/menus/{day}/lunch"),
                org.clone(),
                json!({"complexes": ["c1", "c2"], "default": "c1"}),
            )
            .await;
            days.push(day);
        }
        day += chrono::Duration::days(1);
    }
    assert!(!days.is_empty());

    let tokens: Vec<String> = (0..parents)
        .map(|p| {
            app.token(&format!("parent-{p}"), &[Role::Parent], |r| {
                r.children = vec![format!("ls-{p}")]
            })
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (p, token) in tokens.into_iter().enumerate() {
        let http = http.clone();
        let base = app.base.clone();
        let days = days.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_parent);
            for i in 0..per_parent {
                let day = days[i % days.len()];
                let body = if (p + i) % 2 == 0 {
                    json!({"complex": "c1"})
                } else {
                    json!({"complex": "c2", "extras": [{"item": "juice"}]})
                };
                let t = Instant::now();
                let res = http
                    .put(format!(
                        "{base}/api/meals/students/ls-{p}/orders/{day}/lunch"
                    ))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let _ = res.bytes().await.unwrap();
                assert!(status.is_success(), "order: {status}");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    println!(
        "orders: {} parents × {per_parent} = {} orders in {:.2} s = {:.0} orders/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        parents,
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        all[all.len() - 1].as_secs_f64() * 1000.0
    );
    app.stop().await;
}
