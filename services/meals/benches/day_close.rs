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

#[path = "common/region.rs"]
mod region;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let schools_n = region::env("BENCH_SCHOOLS", 500);
    let per_school = region::env("BENCH_STUDENTS", 400);
    let day = NaiveDate::from_ymd_opt(2026, 5, 12).unwrap();
    let clock = calendar::FixedClock::at_local(day.and_hms_opt(22, 0, 0).unwrap());
    let dir = std::env::temp_dir().join(storage::testing::unique_name("bench-close"));
    std::fs::create_dir_all(&dir).unwrap();
    let schema = storage::testing::unique_name("bench_meals");
    let mut settings = region::meals_settings(&dir, &schema);
    settings.storage.pool_size = 4;
    settings.bus.backend = settings::BusBackend::Memory;
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
    tokio::task::spawn_blocking(move || region::populate(&db, created, day, schools_n, per_school))
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
                     WHERE r.date = '2026-05-12' AND NOT r.closed AND COALESCE(l.ate, l.included)
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
