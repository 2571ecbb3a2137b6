//! Two replicas of the meals service on the same database, each with its own
//! closer, plus extra concurrent close runs from both: a school's day closes
//! exactly once at 23:00, and one debit per student and meal time is sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use contracts::Contract;
use diesel::prelude::*;
use meals::store::{self, classes, meal_requests, meal_times, request_lines, schools, students};
use platform::testing::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_replicas_close_a_day_once() {
    let day = NaiveDate::from_ymd_opt(2026, 5, 12).unwrap();
    let clock = calendar::FixedClock::at_local(day.and_hms_opt(22, 0, 0).unwrap());
    let first = TestApp::spawn(vec![Arc::new(meals::MealsService)], clock.clone()).await;
    let created = calendar::local_to_utc(day.and_hms_opt(7, 0, 0).unwrap()).naive_utc();
    first
        .context("meals")
        .db
        .write(move |c| -> Result<(), storage::StorageError> {
            diesel::insert_into(schools::table)
                .values(&store::School {
                    id: "s1".into(),
                    municipality: "tyumen".into(),
                    name: "СОШ".into(),
                    credit_limit_kopecks: 0,
                    organizer: Some("org-1".into()),
                    created_at: created,
                })
                .execute(c)?;
            diesel::insert_into(meal_times::table)
                .values(&store::MealTime {
                    school_id: "s1".into(),
                    code: "lunch-1".into(),
                    kind: "lunch".into(),
                    shift: 1,
                    starts_at: "12:30".into(),
                })
                .execute(c)?;
            diesel::insert_into(classes::table)
                .values(&store::Class {
                    id: "4a".into(),
                    school_id: "s1".into(),
                    building_id: None,
                    name: "4А".into(),
                    shift: 1,
                })
                .execute(c)?;
            diesel::insert_into(meal_requests::table)
                .values(&store::MealRequest {
                    id: "r1".into(),
                    school_id: "s1".into(),
                    class_id: "4a".into(),
                    date: day,
                    meal_time: "lunch-1".into(),
                    meal_kind: "lunch".into(),
                    closed: false,
                    formed_by: "t".into(),
                    formed_at: created,
                    confirmed_by: None,
                    confirmed_at: None,
                })
                .execute(c)?;
            for n in 0..30 {
                let account = format!("ls-{n}");
                diesel::insert_into(students::table)
                    .values(&store::Student {
                        account: account.clone(),
                        school_id: "s1".into(),
                        class_id: "4a".into(),
                        full_name: format!("Ученик {n}"),
                        birth_date: NaiveDate::from_ymd_opt(2016, 1, 1).unwrap(),
                        category: None,
                        meal_kinds: "lunch".into(),
                        menu_type: None,
                        home_schooled: false,
                        active: true,
                        created_at: created,
                    })
                    .execute(c)?;
                diesel::insert_into(request_lines::table)
                    .values(&store::RequestLine {
                        request_id: "r1".into(),
                        account,
                        complex_id: Some("c1.v1".into()),
                        source: "order".into(),
                        price_kopecks: 150_00,
                        reimbursed_kopecks: 0,
                        extras_kopecks: 0,
                        to_pay_kopecks: 150_00,
                        balance_kopecks: 0,
                        included: true,
                        reason: None,
                        ate: None,
                        category: None,
                        funder: None,
                    })
                    .execute(c)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    // The second replica: same database, its own closer. Replicas exist in the
    // distributed mode only; embedded is one process, where the concurrent runs
    // below come from the one replica.
    let second_app = if storage::testing::distributed() {
        Some(
            TestApp::spawn_with(
                vec![Arc::new(meals::MealsService)],
                clock.clone(),
                first.settings.clone(),
            )
            .await,
        )
    } else {
        None
    };
    let second = second_app.as_ref().unwrap_or(&first);

    clock.set(calendar::local_to_utc(day.and_hms_opt(23, 0, 0).unwrap()));
    let mut runs = Vec::new();
    for app in [&first, second, &first, second] {
        let ctx = app.context("meals").clone();
        runs.push(tokio::task::spawn_blocking(move || {
            meals::close::catch_up(&ctx).unwrap()
        }));
    }
    let mut closed = 0;
    for r in runs {
        closed += r.await.unwrap().iter().filter(|c| c.date == day).count();
    }
    assert!(closed <= 1, "closed {closed} times");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (w, o, d) = count(&first, day).await.unwrap();
        if d == 1 {
            assert_eq!((w, o), (30, 30));
            break;
        }
        assert!(Instant::now() < deadline, "the day never closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both closers keep running; nothing more happens.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(second, day).await.unwrap(), (30, 30, 1));
    if let Some(second) = second_app {
        second.running.stop().await;
    }
    first.stop().await;
}

async fn count(app: &TestApp, day: NaiveDate) -> Result<(i64, i64, i64), storage::StorageError> {
    app.context("meals")
        .db
        .read(move |c| -> Result<(i64, i64, i64), storage::StorageError> {
            Ok((
                store::write_offs::table.count().get_result(c)?,
                bus::store::outbox::table
                    .filter(bus::store::outbox::kind.eq(contracts::meals::DebitRequested::KIND))
                    .count()
                    .get_result(c)?,
                store::day_closes::table
                    .filter(store::day_closes::date.eq(day))
                    .count()
                    .get_result(c)?,
            ))
        })
        .await
}

/// Two parents' PUTs of one order at once, as two transactions: the second
/// starts after the first inserted and before it commits. Both succeed and one
/// order stands, the later one's (update-then-insert made the second fail on
/// the key on PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_orders_saved_at_once_are_one() {
    let day = NaiveDate::from_ymd_opt(2026, 5, 12).unwrap();
    let clock = calendar::FixedClock::at_local(day.and_hms_opt(9, 0, 0).unwrap());
    let app = TestApp::spawn(vec![Arc::new(meals::MealsService)], clock).await;
    let at = calendar::local_to_utc(day.and_hms_opt(9, 0, 0).unwrap()).naive_utc();
    let db = app.context("meals").db.clone();
    db.write(move |c| -> Result<(), storage::StorageError> {
        diesel::insert_into(schools::table)
            .values(&store::School {
                id: "s1".into(),
                municipality: "tyumen".into(),
                name: "СОШ".into(),
                credit_limit_kopecks: 0,
                organizer: None,
                created_at: at,
            })
            .execute(c)?;
        diesel::insert_into(classes::table)
            .values(&store::Class {
                id: "4a".into(),
                school_id: "s1".into(),
                building_id: None,
                name: "4А".into(),
                shift: 1,
            })
            .execute(c)?;
        diesel::insert_into(students::table)
            .values(&store::Student {
                account: "ls-1".into(),
                school_id: "s1".into(),
                class_id: "4a".into(),
                full_name: "Ученик".into(),
                birth_date: NaiveDate::from_ymd_opt(2016, 1, 1).unwrap(),
                category: None,
                meal_kinds: "lunch".into(),
                menu_type: None,
                home_schooled: false,
                active: true,
                created_at: at,
            })
            .execute(c)?;
        Ok(())
    })
    .await
    .unwrap();
    let order = |extras: &str| store::Order {
        account: "ls-1".into(),
        date: day,
        meal_kind: "lunch".into(),
        complex_id: None,
        extras: extras.into(),
        confirmed: false,
        updated_by: "parent".into(),
        updated_at: at,
    };
    let (first, second) = (order("[\"first\"]"), order("[\"second\"]"));
    let (inserted_tx, inserted_rx) = std::sync::mpsc::channel();
    let db1 = db.clone();
    let a = std::thread::spawn(move || {
        let mut conn = db1.conn().unwrap();
        conn.transaction(|c| -> Result<(), storage::StorageError> {
            store::save_order(c, &first)?;
            inserted_tx.send(()).unwrap();
            // The second transaction runs into this one's row meanwhile.
            std::thread::sleep(Duration::from_millis(500));
            Ok(())
        })
    });
    inserted_rx.recv().unwrap();
    let db2 = db.clone();
    let b = std::thread::spawn(move || {
        let mut conn = db2.conn().unwrap();
        conn.transaction(|c| store::save_order(c, &second))
    });
    a.join().unwrap().unwrap();
    b.join().unwrap().unwrap();
    let stored: Vec<String> = db
        .read(|c| {
            meals::store::orders::table
                .select(meals::store::orders::extras)
                .load::<String>(c)
                .map_err(storage::StorageError::from)
        })
        .await
        .unwrap();
    assert_eq!(stored, vec!["[\"second\"]".to_string()]);
    app.stop().await;
}
