//! Every component's PostgreSQL and SQLite migrations give the same tables:
//! the same columns of the same kinds and nullability, the same primary keys
//! and the same unique keys (what idempotency rests on). A migration written
//! for one back end and forgotten, or written differently, for the other fails
//! here. Needs PostgreSQL, so it runs in the distributed pass.
#![allow(clippy::unwrap_used)]

use storage::testing::{distributed, schema_of, TestDb};
use storage::MigrationSet;

fn sets() -> Vec<&'static MigrationSet> {
    vec![
        &bus::store::MIGRATIONS,
        &payments::store::MIGRATIONS,
        &meals::store::MIGRATIONS,
        &gateway::store::MIGRATIONS,
    ]
}

#[test]
fn postgres_and_sqlite_migrations_give_the_same_schema() {
    if !distributed() {
        eprintln!("needs PostgreSQL: checked in the distributed pass");
        return;
    }
    for set in sets() {
        let pg = TestDb::postgres(set.name).unwrap();
        let lite = TestDb::sqlite(set.name).unwrap();
        pg.db.migrate(&[set]).unwrap();
        lite.db.migrate(&[set]).unwrap();
        let (pg, mut lite) = (schema_of(&pg.db).unwrap(), schema_of(&lite.db).unwrap());
        // SQLite has no boolean type: diesel keeps a Bool as 0/1, and a column
        // an earlier SQLite migration declared INTEGER stays so (changing a
        // declared type means rebuilding the table, for nothing). Such a
        // column is a boolean where PostgreSQL's is.
        for (table, shape) in lite.iter_mut() {
            for (name, kind, _) in shape.columns.iter_mut() {
                let in_pg = pg
                    .get(table)
                    .and_then(|t| t.columns.iter().find(|c| &c.0 == name));
                if *kind == "int" && in_pg.is_some_and(|c| c.1 == "bool") {
                    *kind = "bool";
                }
            }
        }
        assert!(!pg.is_empty(), "{}: no tables", set.name);
        let tables: Vec<&String> = pg.keys().chain(lite.keys()).collect();
        for table in tables {
            assert_eq!(
                pg.get(table),
                lite.get(table),
                "{}: table {table} differs (left PostgreSQL, right SQLite)",
                set.name
            );
        }
    }
}
