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
