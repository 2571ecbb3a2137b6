//! One storage code path over PostgreSQL and SQLite: diesel's `MultiConnection`,
//! pooled by r2d2, migrations embedded per service for both back ends.
//!
//! Diesel is synchronous; [`Db::read`] and [`Db::write`] run the closure on tokio's
//! blocking pool so async handlers never block a worker thread.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

pub use diesel;
pub use diesel_migrations;

/// A connection to either back end. Queries written once with diesel's DSL run
/// on both; back-end specific SQL matches on the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// The back end behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database unavailable: {0}")]
    Pool(String),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration of {set} failed: {reason}")]
    Migration { set: &'static str, reason: String },
    #[error("bad database configuration: {0}")]
    Config(String),
    #[error("database task failed: {0}")]
    Task(String),
}

impl StorageError {
    /// A unique-constraint violation: the row exists already (used for
    /// idempotency keys and inbox records).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StorageError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// The migrations of one component, for both back ends.
///
/// The fields are functions because `EmbeddedMigrations` is consumed by the
/// harness; a `const` made by `embed_migrations!` hands out a fresh one each time.
pub struct MigrationSet {
    pub name: &'static str,
    pub postgres: fn() -> EmbeddedMigrations,
    pub sqlite: fn() -> EmbeddedMigrations,
}

/// Where a service's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A PostgreSQL database and the schema the service's tables live in.
    Postgres { url: String, schema: String },
    /// A SQLite file (created if missing).
    Sqlite { path: String },
}

impl DbLocation {
    /// The location of `service`'s data: PostgreSQL when a URL is set, else
    /// `<data_dir>/<service>.db`.
    pub fn for_service(database_url: &str, schema: &str, data_dir: &Path, service: &str) -> Self {
        if database_url.is_empty() {
            DbLocation::Sqlite {
                path: data_dir
                    .join(format!("{service}.db"))
                    .to_string_lossy()
                    .into_owned(),
            }
        } else {
            DbLocation::Postgres {
                url: database_url.to_string(),
                schema: schema.to_string(),
            }
        }
    }
}

#[derive(Debug)]
struct Setup {
    backend: Backend,
    schema: Option<String>,
}

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for Setup {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        let sql = match (self.backend, &self.schema) {
            (Backend::Postgres, Some(schema)) => format!("SET search_path TO \"{schema}\""),
            (Backend::Postgres, None) => String::new(),
            // busy_timeout first: a second process (or the CLI) waits instead of
            // failing. WAL is set once when the pool opens; it stays in the file.
            (Backend::Sqlite, _) => "PRAGMA busy_timeout = 15000; PRAGMA foreign_keys = ON; \
                 PRAGMA synchronous = NORMAL;"
                .to_string(),
        };
        if sql.is_empty() {
            return Ok(());
        }
        conn.batch_execute(&sql)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A pooled database of one service.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<DbConnection>>,
    backend: Backend,
    schema: Option<String>,
    /// SQLite allows one writer; serialising writes in-process turns lock
    /// conflicts (SQLITE_BUSY on upgrade) into a short wait.
    write_lock: Option<Arc<Mutex<()>>>,
}

pub type PooledConn = PooledConnection<ConnectionManager<DbConnection>>;

impl Db {
    /// Opens a pool. For PostgreSQL the schema is created if missing and every
    /// connection's `search_path` points at it.
    pub fn open(
        location: &DbLocation,
        pool_size: u32,
        timeout: Duration,
    ) -> Result<Db, StorageError> {
        let (url, backend, schema) = match location {
            DbLocation::Postgres { url, schema } => {
                if !is_identifier(schema) {
                    return Err(StorageError::Config(format!(
                        "schema `{schema}` is not a plain identifier"
                    )));
                }
                let mut conn = PgConnection::establish(url).map_err(|e| {
                    StorageError::Pool(format!("cannot connect to PostgreSQL: {e}"))
                })?;
                conn.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .or_else(|e| {
                        // Two processes creating the same schema at once race on the catalog.
                        if schema_exists(&mut conn, schema) {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })?;
                (url.clone(), Backend::Postgres, Some(schema.clone()))
            }
            DbLocation::Sqlite { path } => {
                if let Some(parent) = Path::new(path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            StorageError::Config(format!("cannot create {}: {e}", parent.display()))
                        })?;
                    }
                }
                // WAL lets readers run beside the one writer. Switching needs the
                // file to itself, so it happens once here, before the pool opens its
                // connections all at once.
                let mut conn = SqliteConnection::establish(path)
                    .map_err(|e| StorageError::Pool(format!("cannot open {path}: {e}")))?;
                conn.batch_execute("PRAGMA busy_timeout = 15000; PRAGMA journal_mode = WAL;")?;
                (path.clone(), Backend::Sqlite, None)
            }
        };
        let manager = ConnectionManager::<DbConnection>::new(url);
        let pool = Pool::builder()
            .max_size(pool_size)
            .connection_timeout(timeout)
            .connection_customizer(Box::new(Setup {
                backend,
                schema: schema.clone(),
            }))
            .build(manager)
            .map_err(|e| StorageError::Pool(e.to_string()))?;
        Ok(Db {
            pool,
            backend,
            schema,
            write_lock: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// A connection from the pool (blocking; use inside [`Db::read`] or from
    /// blocking code such as CLI commands).
    pub fn conn(&self) -> Result<PooledConn, StorageError> {
        self.pool
            .get()
            .map_err(|e| StorageError::Pool(e.to_string()))
    }

    /// Applies the pending migrations of each set, in order.
    pub fn migrate(&self, sets: &[&MigrationSet]) -> Result<(), StorageError> {
        let mut conn = self.conn()?;
        for set in sets {
            let result = match &mut *conn {
                DbConnection::Pg(c) => c.run_pending_migrations((set.postgres)()).map(|_| ()),
                DbConnection::Sqlite(c) => c.run_pending_migrations((set.sqlite)()).map(|_| ()),
            };
            result.map_err(|e| StorageError::Migration {
                set: set.name,
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Runs `f` with a connection on the blocking pool, outside a transaction.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let db = self.clone();
        // The caller's span goes along, so work done inside (events written to the
        // outbox, logs) belongs to the request's trace.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = db.conn()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| E::from(StorageError::Task(e.to_string())))?
    }

    /// Runs `f` inside one transaction on the blocking pool: everything it writes
    /// commits together or not at all.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let db = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            db.write_blocking(f)
        })
        .await
        .map_err(|e| E::from(StorageError::Task(e.to_string())))?
    }

    /// The blocking form of [`Db::write`].
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StorageError> + From<diesel::result::Error>,
        F: FnOnce(&mut DbConnection) -> Result<T, E>,
    {
        let mut conn = self.conn()?;
        let _guard = self
            .write_lock
            .as_ref()
            .map(|lock| lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let conn: &mut DbConnection = &mut conn;
        conn.transaction(f)
    }

    /// A cheap query that proves the database answers (readiness probe).
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.read(|conn| conn.batch_execute("SELECT 1").map_err(StorageError::from))
            .await
    }
}

fn schema_exists(conn: &mut PgConnection, schema: &str) -> bool {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = $1")
        .bind::<diesel::sql_types::Text, _>(schema)
        .get_result::<Count>(conn)
        .map(|c| c.n > 0)
        .unwrap_or(false)
}

/// A plain lower-case SQL identifier (schema names are interpolated into SQL).
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Current UTC time as the naive timestamp both back ends store.
pub fn now_naive() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

pub mod testing;

/// Runs the same diesel code on the concrete connection of either back end, for
/// the few statements `MultiConnection` cannot express (multi-row inserts).
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::DbConnection::Pg($c) => $body,
            $crate::DbConnection::Sqlite($c) => $body,
        }
    };
}
