//! The day close and write-off for the whole Tyumen region on PostgreSQL:
//! 500 schools × 400 students = 200,000 students, every one in a formed lunch
//! request, a mix of ПЧВР categories. Measures
//!
//! 1. the floor: one bulk SQL statement computing the same debits (key, account,
//!    amount, reimbursed) into a table;
//! 2. `meals::close::catch_up` at 23:00: every school's day closed once, one
//!    write-off row and one `DebitRequested` outbox message per student;
//! 3. a re-run, which must change nothing.
//!
//! The service runs for real (PostgreSQL, its relay on the in-process bus so no
//! broker queue is left full); the clock stands at 22:00 while the population is
//! generated, then moves to 23:00 and the close is timed.
//!
//! Run: `cargo bench -p meals --bench day_close` (PostgreSQL must run:
//! `bash scripts/services.sh`). `BENCH_SCHOOLS` (default 500) and
//! `BENCH_STUDENTS` per school (default 400) scale it.

#![allow(
    clippy::unwrap_used,
    clippy::float_arithmetic,
    clippy::inconsistent_digit_grouping
)]

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use meals::store::{self, classes, meal_requests, meal_times, request_lines, schools, students};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let schools_n = env("BENCH_SCHOOLS", 500);
    let per_school = env("BENCH_STUDENTS", 400);
    let day = NaiveDate::from_ymd_opt(2026, 5, 12).unwrap();
    let clock = calendar::FixedClock::at_local(day.and_hms_opt(22, 0, 0).unwrap());
    let dir = std::env::temp_dir().join(storage::testing::unique_name("bench-close"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut settings = platform::testing::test_settings(&dir);
    settings.storage.database_url = storage::testing::test_database_url();
    settings.storage.pool_size = 4;
    settings.bus.backend = settings::BusBackend::Memory;
    settings.meals.close_poll_ms = 86_400_000;
    let schema = storage::testing::unique_name("bench_meals");
    settings.services.insert(
        "meals".into(),
        settings::ServiceSettings {
            schema: Some(schema.clone()),
            ..Default::default()
        },
    );
    let app = platform::testing::TestApp::spawn_with(
        vec![Arc::new(meals::MealsService)],
        clock.clone(),
        settings,
    )
    .await;
    let ctx = app.context("meals").clone();

    // The population, written directly (its generation is not what is measured).
    let started = Instant::now();
    let created = clock_naive(&clock);
    let db = ctx.db.clone();
    tokio::task::spawn_blocking(move || {
        db.write_blocking(|c| -> Result<(), storage::StorageError> {
            c.batch_execute(
                "INSERT INTO pchvr_categories VALUES ('tyumen','full','Многодетные','regional','percent'),
                    ('tyumen','half','Малоимущие','municipal','percent'),('tyumen','fixed','СВО','regional','fixed');
                 INSERT INTO pchvr_rates VALUES ('tyumen','full','lunch',10000),('tyumen','half','lunch',5000),('tyumen','fixed','lunch',8050);",
            )?;
            Ok(())
        })
        .unwrap();
        for s in 0..schools_n {
            db.write_blocking(|c| -> Result<(), storage::StorageError> {
                let sid = format!("s{s:03}");
                diesel::insert_into(schools::table)
                    .values(&store::School { id: sid.clone(), municipality: "tyumen".into(), name: format!("СОШ № {s}"), credit_limit_kopecks: 100_00, organizer: Some(format!("org-{}", s % 20)), created_at: created })
                    .execute(c)?;
                diesel::insert_into(meal_times::table)
                    .values(&store::MealTime { school_id: sid.clone(), code: "lunch-1".into(), kind: "lunch".into(), shift: 1, starts_at: "12:30".into() })
                    .execute(c)?;
                let classes_n = per_school.div_ceil(25);
                let mut cls = Vec::new();
                let mut reqs = Vec::new();
                let mut pupils = Vec::new();
                let mut lines = Vec::new();
                for k in 0..classes_n {
                    let cid = format!("{sid}-c{k:02}");
                    let rid = format!("{sid}-r{k:02}");
                    cls.push(store::Class { id: cid.clone(), school_id: sid.clone(), building_id: None, name: format!("{}{}", 1 + k / 2, if k % 2 == 0 { "А" } else { "Б" }), shift: 1 });
                    reqs.push(store::MealRequest { id: rid.clone(), school_id: sid.clone(), class_id: cid.clone(), date: day, meal_time: "lunch-1".into(), meal_kind: "lunch".into(), closed: 0, formed_by: "teacher".into(), formed_at: created, confirmed_by: None, confirmed_at: None });
                    for i in 0..25 {
                        let n = k * 25 + i;
                        if n >= per_school {
                            break;
                        }
                        let account = format!("{sid}-{n:04}");
                        let (cat, reimbursed) = match n % 10 {
                            0 => (Some("full"), 150_00),
                            1..=3 => (Some("half"), 75_00),
                            4 => (Some("fixed"), 80_50),
                            _ => (None, 0),
                        };
                        let extras = if n % 7 == 0 { 25_10 } else { 0 };
                        pupils.push(store::Student { account: account.clone(), school_id: sid.clone(), class_id: cid.clone(), full_name: format!("Ученик {n}"), birth_date: NaiveDate::from_ymd_opt(2015, 1, 1).unwrap(), category: cat.map(str::to_string), meal_kinds: "lunch".into(), menu_type: None, home_schooled: 0, active: 1, created_at: created });
                        lines.push(store::RequestLine { request_id: rid.clone(), account, complex_id: Some("c1.v1".into()), source: "order".into(), price_kopecks: 150_00, reimbursed_kopecks: reimbursed, extras_kopecks: extras, to_pay_kopecks: 150_00 - reimbursed + extras, balance_kopecks: 500_00, included: i32::from(n % 50 != 49), reason: None, ate: if n % 40 == 39 { Some(0) } else { None }, category: cat.map(str::to_string), funder: None });
                    }
                }
                storage::per_backend!(c, |cc| diesel::insert_into(classes::table).values(&cls).execute(cc))?;
                storage::per_backend!(c, |cc| diesel::insert_into(meal_requests::table).values(&reqs).execute(cc))?;
                for chunk in pupils.chunks(500) {
                    storage::per_backend!(c, |cc| diesel::insert_into(students::table).values(chunk).execute(cc))?;
                }
                for chunk in lines.chunks(500) {
                    storage::per_backend!(c, |cc| diesel::insert_into(request_lines::table).values(chunk).execute(cc))?;
                }
                Ok(())
            })
            .unwrap();
        }
        db.write_blocking(|c| c.batch_execute("ANALYZE").map_err(storage::StorageError::from)).unwrap();
    })
    .await
    .unwrap();
    println!(
        "population: {schools_n} schools × {per_school} students generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 1. The floor: one statement computing the same debits.
    let db = ctx.db.clone();
    let (floor, floor_rows) = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let n = db
            .write_blocking(|c| {
                diesel::sql_query(
                    "CREATE TABLE floor_debits AS
                     SELECT l.account || ':' || r.date || ':' || r.meal_time AS key, l.account, s.organizer,
                            l.to_pay_kopecks AS amount, l.reimbursed_kopecks AS reimbursed, s.credit_limit_kopecks AS credit
                     FROM request_lines l JOIN meal_requests r ON r.id = l.request_id JOIN schools s ON s.id = r.school_id
                     WHERE r.date = '2026-05-12' AND r.closed = 0 AND COALESCE(l.ate, l.included) = 1
                       AND l.to_pay_kopecks + l.reimbursed_kopecks > 0",
                )
                .execute(c)
                .map_err(storage::StorageError::from)
            })
            .unwrap();
        (t.elapsed(), n)
    })
    .await
    .unwrap();

    // 2. The close at 23:00.
    clock.set(calendar::local_to_utc(day.and_hms_opt(23, 0, 0).unwrap()));
    let c2 = ctx.clone();
    let t = Instant::now();
    let closed = tokio::task::spawn_blocking(move || meals::close::catch_up(&c2))
        .await
        .unwrap()
        .unwrap();
    let close_time = t.elapsed();
    let debits: usize = closed.iter().map(|c| c.debits).sum();
    assert_eq!(closed.len(), schools_n);
    assert_eq!(
        debits, floor_rows,
        "the close wrote off what the floor computed"
    );
    let db = ctx.db.clone();
    let (outbox, same): (i64, i64) = db
        .read(|c| -> Result<(i64, i64), storage::StorageError> {
            let outbox = bus::store::outbox::table
                .filter(bus::store::outbox::kind.eq("meals.DebitRequested.v1"))
                .count()
                .get_result(c)?;
            #[derive(QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let same: N = diesel::sql_query(
                "SELECT count(*) AS n FROM floor_debits f JOIN write_offs w ON w.key = f.key
                 WHERE w.amount_kopecks = f.amount AND w.reimbursed_kopecks = f.reimbursed",
            )
            .get_result(c)?;
            Ok((outbox, same.n))
        })
        .await
        .unwrap();
    assert_eq!(outbox as usize, debits);
    assert_eq!(
        same as usize, debits,
        "every write-off equals the floor's debit"
    );

    // 3. A re-run changes nothing.
    let c3 = ctx.clone();
    let t = Instant::now();
    let again = tokio::task::spawn_blocking(move || meals::close::catch_up(&c3))
        .await
        .unwrap()
        .unwrap();
    let rerun = t.elapsed();
    assert!(again.is_empty());

    println!(
        "floor (one bulk SQL statement): {floor_rows} debits in {:.2} s",
        floor.as_secs_f64()
    );
    println!(
        "day close + write-off: {} schools, {debits} debits (write-off rows + outbox messages) in {:.2} s = {:.0} debits/s; {:.1}× the floor",
        closed.len(),
        close_time.as_secs_f64(),
        debits as f64 / close_time.as_secs_f64(),
        close_time.as_secs_f64() / floor.as_secs_f64()
    );
    println!("re-run: nothing closed again, {:.2} s", rerun.as_secs_f64());

    app.running.stop().await;
    if std::env::var("BENCH_KEEP").is_err() {
        let mut conn =
            diesel::PgConnection::establish(&storage::testing::test_database_url()).unwrap();
        conn.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .unwrap();
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn clock_naive(clock: &calendar::FixedClock) -> chrono::NaiveDateTime {
    use calendar::Clock;
    clock.now().naive_utc()
}
