//! Test databases: a fresh SQLite file or a fresh PostgreSQL schema per test, so
//! tests run in parallel without seeing each other's rows.

use std::time::Duration;

use crate::{Db, DbLocation, StorageError};

/// Environment variable that selects the distributed stores in tests.
pub const TEST_MODE_ENV: &str = "PORTAL_TEST_MODE";
/// PostgreSQL used by tests in distributed mode.
pub const TEST_DATABASE_URL_ENV: &str = "PORTAL_TEST_DATABASE_URL";
pub const DEFAULT_TEST_DATABASE_URL: &str =
    "postgres://postgres:postgres@127.0.0.1:5432/portal_test";

/// Whether this test run is the distributed one (PostgreSQL and RabbitMQ).
pub fn distributed() -> bool {
    std::env::var(TEST_MODE_ENV).is_ok_and(|m| m == "distributed")
}

pub fn test_database_url() -> String {
    std::env::var(TEST_DATABASE_URL_ENV).unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_string())
}

/// A database for one test; the SQLite directory is removed when dropped.
pub struct TestDb {
    pub db: Db,
    pub location: DbLocation,
    _dir: Option<tempdir::TempDir>,
}

/// A short unique name for schemas and queues of one test.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid_like();
    format!("{prefix}_{id}")
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:x}{:x}{n:x}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff
    )
}

impl TestDb {
    /// A fresh database in the back end of the current test mode.
    pub fn new(service: &str) -> Result<TestDb, StorageError> {
        if distributed() {
            Self::postgres(service)
        } else {
            Self::sqlite(service)
        }
    }

    pub fn sqlite(service: &str) -> Result<TestDb, StorageError> {
        let dir = tempdir::TempDir::new()?;
        let location = DbLocation::Sqlite {
            path: dir
                .path()
                .join(format!("{service}.db"))
                .to_string_lossy()
                .into_owned(),
        };
        let db = Db::open(&location, 8, Duration::from_secs(10))?;
        Ok(TestDb {
            db,
            location,
            _dir: Some(dir),
        })
    }

    pub fn postgres(service: &str) -> Result<TestDb, StorageError> {
        let location = DbLocation::Postgres {
            url: test_database_url(),
            schema: unique_name(&format!("t_{service}")),
        };
        let db = Db::open(&location, 16, Duration::from_secs(10))?;
        Ok(TestDb {
            db,
            location,
            _dir: None,
        })
    }
}

/// A minimal temporary directory, removed on drop.
pub mod tempdir {
    use std::path::{Path, PathBuf};

    use crate::StorageError;

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> Result<TempDir, StorageError> {
            let path = std::env::temp_dir().join(super::unique_name("portal"));
            std::fs::create_dir_all(&path).map_err(|e| {
                StorageError::Config(format!("cannot create {}: {e}", path.display()))
            })?;
            Ok(TempDir(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// What a migrated database looks like, as far as the code relies on it:
/// per table, its columns (name, kind, nullability) in name order, its primary
/// key and its unique keys. Both back ends' migrations must give the same.
pub type Schema = std::collections::BTreeMap<String, TableShape>;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableShape {
    /// `(name, kind, nullable)`; kind is one of int, text, bool, date,
    /// timestamp, decimal, bytes, as the back end's type maps to diesel's.
    pub columns: Vec<(String, &'static str, bool)>,
    pub primary_key: Vec<String>,
    /// The column lists of unique constraints and unique indexes, sorted.
    pub unique: Vec<Vec<String>>,
}

/// The kind a back end's column type maps to.
fn kind_of(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    if t.contains("bool") {
        "bool"
    } else if t.contains("int") || t == "serial" || t == "bigserial" {
        "int"
    } else if t.contains("char") || t.contains("text") || t == "uuid" || t == "json" || t == "jsonb"
    {
        "text"
    } else if t.starts_with("timestamp") || t == "datetime" {
        "timestamp"
    } else if t == "date" {
        "date"
    } else if t.contains("numeric") || t.contains("decimal") {
        "decimal"
    } else if t == "bytea" || t == "blob" {
        "bytes"
    } else if t.starts_with("time") {
        "time"
    } else {
        "other"
    }
}

#[derive(diesel::QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    data_type: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    nullable: bool,
}

#[derive(diesel::QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    key_name: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    primary: bool,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    position: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
}

/// The [`Schema`] of `db` (its own schema on PostgreSQL), leaving out
/// diesel's migration bookkeeping.
pub fn schema_of(db: &Db) -> Result<Schema, StorageError> {
    use diesel::RunQueryDsl;
    let mut conn = db.conn()?;
    let (columns, keys): (Vec<ColumnRow>, Vec<KeyRow>) = match &mut *conn {
        crate::DbConnection::Pg(c) => (
            diesel::sql_query(
                "SELECT table_name::text, column_name::text, data_type::text, \
                        (is_nullable = 'YES') AS nullable \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema()",
            )
            .load(c)?,
            diesel::sql_query(
                "SELECT t.relname::text AS table_name, i.relname::text AS key_name, \
                        x.indisprimary AS primary, k.n::int AS position, a.attname::text AS column_name \
                 FROM pg_index x \
                 JOIN pg_class i ON i.oid = x.indexrelid \
                 JOIN pg_class t ON t.oid = x.indrelid \
                 JOIN pg_namespace s ON s.oid = t.relnamespace \
                 CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) \
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
                 WHERE s.nspname = current_schema() AND x.indisunique",
            )
            .load(c)?,
        ),
        crate::DbConnection::Sqlite(c) => (
            diesel::sql_query(
                "SELECT m.name AS table_name, p.name AS column_name, p.type AS data_type, \
                        (p.\"notnull\" = 0 AND p.pk = 0) AS nullable \
                 FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
            )
            .load(c)?,
            diesel::sql_query(
                "SELECT m.name AS table_name, l.name AS key_name, (l.origin = 'pk') AS \"primary\", \
                        i.seqno AS position, i.name AS column_name \
                 FROM sqlite_master m, pragma_index_list(m.name) l, pragma_index_info(l.name) i \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND l.\"unique\" = 1 \
                 UNION ALL \
                 SELECT m.name, 'pk', 1, p.pk, p.name \
                 FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND p.pk > 0 \
                   AND NOT EXISTS (SELECT 1 FROM pragma_index_list(m.name) l WHERE l.origin = 'pk')",
            )
            .load(c)?,
        ),
    };
    let mut schema = Schema::new();
    for c in columns {
        if c.table_name == "__diesel_schema_migrations" {
            continue;
        }
        schema.entry(c.table_name).or_default().columns.push((
            c.column_name,
            kind_of(&c.data_type),
            c.nullable,
        ));
    }
    // (table, key) → (primary, [(position, column)])
    type Key = (bool, Vec<(i32, String)>);
    let mut grouped: std::collections::BTreeMap<(String, String), Key> = Default::default();
    for k in keys {
        let e = grouped.entry((k.table_name, k.key_name)).or_default();
        e.0 |= k.primary;
        e.1.push((k.position, k.column_name));
    }
    for ((table, _), (primary, mut cols)) in grouped {
        let Some(shape) = schema.get_mut(&table) else {
            continue;
        };
        cols.sort();
        let cols: Vec<String> = cols.into_iter().map(|(_, c)| c).collect();
        if primary {
            shape.primary_key = cols;
        } else {
            shape.unique.push(cols);
        }
    }
    for shape in schema.values_mut() {
        shape.columns.sort();
        shape.unique.sort();
        shape.unique.dedup();
    }
    Ok(schema)
}
