//! The region's population for the meals benches: 500 schools × 400 students
//! (scaled by the caller), every student in a formed lunch request for `day`,
//! a mix of ПЧВР categories (a tenth fully reimbursed, three tenths half, a
//! tenth a fixed sum), some extras, some excluded or marked as not eating.
//! Written directly to the meals tables: its generation is not what is measured.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use meals::store::{self, classes, meal_requests, meal_times, request_lines, schools, students};

/// A count from the environment (`BENCH_SCHOOLS` …), or `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Settings for the meals service alone on the test PostgreSQL, in `schema`,
/// with its own close loop idle (the bench runs the close).
pub fn meals_settings(dir: &std::path::Path, schema: &str) -> settings::Settings {
    let mut settings = platform::testing::test_settings(dir);
    settings.storage.database_url = storage::testing::test_database_url();
    settings.meals.close_poll_ms = 86_400_000;
    // On PostgreSQL the keys for secrets at rest must be configured.
    settings.secrets.keys.insert(
        "n1".into(),
        "bmlnaHQtYmVuY2gta2V5LW9mLXRoaXJ0eS10d28tYnk".into(),
    );
    settings.secrets.current = "n1".into();
    settings.services.insert(
        "meals".into(),
        settings::ServiceSettings {
            schema: Some(schema.to_string()),
            ..Default::default()
        },
    );
    settings
}

/// The account of student `n` of school `s`.
#[allow(dead_code)]
pub fn account(s: usize, n: usize) -> String {
    format!("s{s:03}-{n:04}")
}

/// Writes the population (blocking; call from `spawn_blocking`).
pub fn populate(
    db: &storage::Db,
    created: NaiveDateTime,
    day: NaiveDate,
    schools_n: usize,
    per_school: usize,
) {
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
                .values(&store::School {
                    id: sid.clone(),
                    municipality: "tyumen".into(),
                    name: format!("СОШ № {s}"),
                    credit_limit_kopecks: 100_00,
                    organizer: Some(format!("org-{}", s % 20)),
                    created_at: created,
                })
                .execute(c)?;
            diesel::insert_into(meal_times::table)
                .values(&store::MealTime {
                    school_id: sid.clone(),
                    code: "lunch-1".into(),
                    kind: "lunch".into(),
                    shift: 1,
                    starts_at: "12:30".into(),
                })
                .execute(c)?;
            let classes_n = per_school.div_ceil(25);
            let mut cls = Vec::new();
            let mut reqs = Vec::new();
            let mut pupils = Vec::new();
            let mut lines = Vec::new();
            for k in 0..classes_n {
                let cid = format!("{sid}-c{k:02}");
                let rid = format!("{sid}-r{k:02}");
                cls.push(store::Class {
                    id: cid.clone(),
                    school_id: sid.clone(),
                    building_id: None,
                    name: format!("{}{}", 1 + k / 2, if k % 2 == 0 { "А" } else { "Б" }),
                    shift: 1,
                });
                reqs.push(store::MealRequest {
                    id: rid.clone(),
                    school_id: sid.clone(),
                    class_id: cid.clone(),
                    date: day,
                    meal_time: "lunch-1".into(),
                    meal_kind: "lunch".into(),
                    closed: false,
                    formed_by: "teacher".into(),
                    formed_at: created,
                    confirmed_by: None,
                    confirmed_at: None,
                });
                for i in 0..25 {
                    let n = k * 25 + i;
                    if n >= per_school {
                        break;
                    }
                    let account = account(s, n);
                    let (cat, reimbursed) = match n % 10 {
                        0 => (Some("full"), 150_00),
                        1..=3 => (Some("half"), 75_00),
                        4 => (Some("fixed"), 80_50),
                        _ => (None, 0),
                    };
                    let extras = if n % 7 == 0 { 25_10 } else { 0 };
                    pupils.push(store::Student {
                        account: account.clone(),
                        school_id: sid.clone(),
                        class_id: cid.clone(),
                        full_name: format!("Ученик {n}"),
                        birth_date: NaiveDate::from_ymd_opt(2015, 1, 1).unwrap(),
                        category: cat.map(str::to_string),
                        meal_kinds: "lunch".into(),
                        menu_type: None,
                        home_schooled: false,
                        active: true,
                        created_at: created,
                    });
                    lines.push(store::RequestLine {
                        request_id: rid.clone(),
                        account,
                        complex_id: Some("c1.v1".into()),
                        source: "order".into(),
                        price_kopecks: 150_00,
                        reimbursed_kopecks: reimbursed,
                        extras_kopecks: extras,
                        to_pay_kopecks: 150_00 - reimbursed + extras,
                        balance_kopecks: 500_00,
                        included: n % 50 != 49,
                        reason: None,
                        ate: if n % 40 == 39 { Some(false) } else { None },
                        category: cat.map(str::to_string),
                        funder: None,
                    });
                }
            }
            storage::per_backend!(c, |cc| diesel::insert_into(classes::table)
                .values(&cls)
                .execute(cc))?;
            storage::per_backend!(c, |cc| diesel::insert_into(meal_requests::table)
                .values(&reqs)
                .execute(cc))?;
            for chunk in pupils.chunks(500) {
                storage::per_backend!(c, |cc| diesel::insert_into(students::table)
                    .values(chunk)
                    .execute(cc))?;
            }
            for chunk in lines.chunks(500) {
                storage::per_backend!(c, |cc| diesel::insert_into(request_lines::table)
                    .values(chunk)
                    .execute(cc))?;
            }
            Ok(())
        })
        .unwrap();
    }
    db.write_blocking(|c| {
        c.batch_execute(
            "ANALYZE schools, meal_times, classes, meal_requests, students, request_lines",
        )
        .map_err(storage::StorageError::from)
    })
    .unwrap();
}
