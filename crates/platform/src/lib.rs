//! What every service stands on at run time: the service trait, the context a
//! service gets (its database, the bus, the clock, the calendar, the settings),
//! problem+json errors, the authenticated caller, and the HTTP server that hosts
//! one service or all of them with health checks, metrics and the OpenAPI
//! document.

use std::sync::Arc;

use actix_web::web;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod app;
pub mod caller;
pub mod calls;
pub mod export;
pub mod paging;
pub mod problem;
pub mod schema;
pub mod secrets;
pub mod testing;
pub mod tls;

pub use app::{start, Running, StartError, StartOptions};
pub use caller::{Caller, Principal, Role};
pub use paging::Page;
pub use problem::{FieldError, Problem};

pub use actix_web;
pub use tokio_util;
pub use utoipa;

/// What a service gets from the platform. Cheap to clone.
#[derive(Clone)]
pub struct ServiceContext {
    pub name: &'static str,
    /// The service's own database (outbox and inbox live there too).
    pub db: storage::Db,
    /// Publishing (through the outbox) and consuming.
    pub bus: bus::ServiceBus,
    pub clock: Arc<dyn calendar::Clock>,
    pub calendar: Arc<calendar::ProductionCalendar>,
    pub settings: Arc<settings::Settings>,
    /// The keys that seal secrets at rest (see [`secrets`]).
    pub secrets: Arc<secrets::Keyring>,
    /// State a service keeps in memory for the whole process (not per HTTP
    /// worker), created on first use: see [`Shared::get_or_init`].
    pub shared: Arc<Shared>,
}

/// One value per type, shared by every clone of a [`ServiceContext`]: routes are
/// configured once per HTTP worker, and a service that batches work across
/// requests (the payments ledger's group commit) needs one batcher per process.
#[derive(Default)]
pub struct Shared {
    values: std::sync::Mutex<
        std::collections::HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>,
    >,
}

impl Shared {
    /// The value of type `T`, made by `init` the first time it is asked for.
    pub fn get_or_init<T: Send + Sync + 'static>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let mut values = self
            .values
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = std::any::TypeId::of::<T>();
        if let Some(value) = values
            .get(&key)
            .and_then(|v| v.clone().downcast::<T>().ok())
        {
            return value;
        }
        let value = Arc::new(init());
        values.insert(key, value.clone());
        value
    }
}

/// One service of the platform. The implementation is a stateless descriptor;
/// the state lives in the database behind [`ServiceContext`].
pub trait Service: Send + Sync + 'static {
    /// Lower-case name: the schema, the SQLite file, the route prefix `/api/<name>`.
    fn name(&self) -> &'static str;

    /// Migration sets of the service's own tables (the bus tables are added by
    /// the platform).
    fn migrations(&self) -> Vec<&'static storage::MigrationSet>;

    /// Registers the service's REST routes.
    fn routes(&self, ctx: &ServiceContext, cfg: &mut web::ServiceConfig);

    /// The OpenAPI description of those routes.
    fn openapi(&self) -> utoipa::openapi::OpenApi;

    /// Seals every secret the service keeps at rest again under the current
    /// key of `keys` (`portal secrets rotate`); returns how many values it
    /// sealed. Services that keep no secrets keep the default.
    fn reseal_secrets(&self, db: &storage::Db, keys: &secrets::Keyring) -> Result<usize, String> {
        let _ = (db, keys);
        Ok(0)
    }

    /// Checks what the service reads from the settings beyond their shape
    /// (key files, certificates) before anything starts; an error stops the
    /// start with its message.
    fn check(&self, settings: &settings::Settings) -> Result<(), String> {
        let _ = settings;
        Ok(())
    }

    /// Starts background work (consumers, schedules); it must stop when `cancel`
    /// fires.
    fn start(&self, ctx: &ServiceContext, cancel: CancellationToken) -> Vec<JoinHandle<()>> {
        let _ = (ctx, cancel);
        Vec::new()
    }
}
