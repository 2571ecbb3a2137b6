//! The same repository code on both back ends (the back end of the test mode:
//! SQLite in the embedded run, PostgreSQL in the distributed one): migrations,
//! typed reads and writes through diesel's DSL, transactions that roll back as a
//! whole, unique violations recognised, and concurrent writers that lose nothing.

#![allow(clippy::unwrap_used)]

use diesel::prelude::*;
use storage::testing::TestDb;
use storage::{Backend, DbConnection, MigrationSet, StorageError};

diesel::table! {
    notes (id) {
        id -> Text,
        body -> Text,
        amount_kopecks -> BigInt,
        at -> Timestamp,
        done -> Integer,
    }
}

const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("tests/migrations/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("tests/migrations/sqlite");
static NOTES: MigrationSet = MigrationSet {
    name: "notes",
    postgres: || PG,
    sqlite: || SQLITE,
};

fn db() -> TestDb {
    let t = TestDb::new("repo").unwrap();
    t.db.migrate(&[&NOTES]).unwrap();
    // Running the migrations again is a no-op.
    t.db.migrate(&[&NOTES]).unwrap();
    t
}

fn insert(conn: &mut DbConnection, id: &str, kopecks: i64) -> Result<(), StorageError> {
    diesel::insert_into(notes::table)
        .values((
            notes::id.eq(id),
            notes::body.eq("Молоко 200 мл"),
            notes::amount_kopecks.eq(kopecks),
            notes::at.eq(chrono::NaiveDate::from_ymd_opt(2026, 5, 8)
                .unwrap()
                .and_hms_opt(23, 0, 0)
                .unwrap()),
            notes::done.eq(0),
        ))
        .execute(conn)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_round_trip() {
    let t = db();
    let expected = if storage::testing::distributed() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    assert_eq!(t.db.backend(), expected);
    t.db.write(|c| insert(c, "n1", 12_550)).await.unwrap();
    let row: (String, String, i64, chrono::NaiveDateTime, i32) =
        t.db.read(|c| Ok::<_, StorageError>(notes::table.find("n1").first(c)?))
            .await
            .unwrap();
    assert_eq!(row.1, "Молоко 200 мл", "text survives in UTF-8");
    assert_eq!(row.2, 12_550);
    assert_eq!(row.3.to_string(), "2026-05-08 23:00:00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transaction_leaves_nothing() {
    let t = db();
    let result =
        t.db.write(|c| {
            insert(c, "a", 1)?;
            insert(c, "a", 2)
        })
        .await;
    let err = result.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    let n: i64 =
        t.db.read(|c| Ok::<_, StorageError>(notes::table.count().get_result(c)?))
            .await
            .unwrap();
    assert_eq!(n, 0, "the first insert rolled back with the second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_lose_no_update() {
    let t = db();
    t.db.write(|c| insert(c, "counter", 0)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let db = t.db.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                db.write(|c| {
                    diesel::update(notes::table.find("counter"))
                        .set(notes::amount_kopecks.eq(notes::amount_kopecks + 1))
                        .execute(c)?;
                    Ok::<_, StorageError>(())
                })
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total: i64 =
        t.db.read(|c| {
            Ok::<_, StorageError>(
                notes::table
                    .find("counter")
                    .select(notes::amount_kopecks)
                    .first(c)?,
            )
        })
        .await
        .unwrap();
    assert_eq!(total, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers() {
    let t = db();
    t.db.ping().await.unwrap();
}
