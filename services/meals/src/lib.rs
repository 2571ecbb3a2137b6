//! The meals service: the «Учет питания» module. Reference data, the organizers'
//! catalogue and day menus, parents' orders two weeks ahead, class teachers'
//! daily meal requests, and the day close at 23:00 that sends one debit per
//! student per day per meal time to payments over the bus.

use platform::{Service, ServiceContext};

pub mod api;
pub mod close;
pub mod consumers;
pub mod domain;
pub mod events;
pub mod store;

/// The meals service descriptor.
pub struct MealsService;

impl Service for MealsService {
    fn name(&self) -> &'static str {
        "meals"
    }

    fn migrations(&self) -> Vec<&'static storage::MigrationSet> {
        vec![&store::MIGRATIONS]
    }

    fn routes(&self, ctx: &ServiceContext, cfg: &mut platform::actix_web::web::ServiceConfig) {
        api::routes(ctx, cfg);
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        api::openapi()
    }

    fn start(
        &self,
        ctx: &ServiceContext,
        cancel: platform::tokio_util::sync::CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = consumers::spawn(ctx, cancel.clone());
        tasks.push(close::spawn_closer(ctx.clone(), cancel));
        tasks
    }
}
