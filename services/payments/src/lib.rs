//! The payments service: personal accounts (лицевые счета) on a double-entry
//! ledger. Later parts of its issue (УНиП charges, acquiring, banks' check/pay,
//! registries) build on this ledger.

use platform::{Service, ServiceContext};

pub mod acquiring;
pub mod api;
pub mod banks;
pub mod consumers;
pub mod domain;
pub mod events;
pub use platform::export;
pub mod registry;
pub mod store;

/// The payments service descriptor.
pub struct PaymentsService;

impl Service for PaymentsService {
    fn name(&self) -> &'static str {
        "payments"
    }

    fn migrations(&self) -> Vec<&'static storage::MigrationSet> {
        vec![&store::MIGRATIONS]
    }

    fn routes(&self, ctx: &ServiceContext, cfg: &mut platform::actix_web::web::ServiceConfig) {
        api::routes(ctx, cfg);
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = <api::PaymentsApi as utoipa::OpenApi>::openapi();
        doc.merge(<api::banking::BankingApi as utoipa::OpenApi>::openapi());
        doc.merge(<api::registries::RegistriesApi as utoipa::OpenApi>::openapi());
        doc.merge(<api::reports::ReportsApi as utoipa::OpenApi>::openapi());
        doc.merge(<api::charges::ChargesApi as utoipa::OpenApi>::openapi());
        doc.merge(<api::acquiring::AcquiringApi as utoipa::OpenApi>::openapi());
        doc
    }

    fn reseal_secrets(
        &self,
        db: &storage::Db,
        keys: &platform::secrets::Keyring,
    ) -> Result<usize, String> {
        let mut conn = db.conn().map_err(|e| e.to_string())?;
        use diesel::Connection;
        conn.transaction(|c| store::acquiring::reseal(c, keys))
            .map_err(|e| e.to_string())
    }

    fn start(
        &self,
        ctx: &ServiceContext,
        cancel: platform::tokio_util::sync::CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        tasks.extend(consumers::spawn(ctx, cancel.clone()));
        tasks.push(acquiring::spawn_poller(ctx.clone(), cancel.clone()));
        tasks
    }
}
