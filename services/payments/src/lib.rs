//! The payments service: personal accounts (лицевые счета) on a double-entry
//! ledger. Later parts of its issue (УНиП charges, acquiring, banks' check/pay,
//! registries) build on this ledger.

use platform::{Service, ServiceContext};

pub mod api;
pub mod domain;
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
        <api::PaymentsApi as utoipa::OpenApi>::openapi()
    }
}
