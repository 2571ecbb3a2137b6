//! The XML gateway: the one door for every external information system (ИС).
//! SOAP endpoints in the SMEV 2 envelope described by the WSDL/XSD in `wsdl/`,
//! a registry of participants with per-operation rights (deny by default), and
//! a hash-chained message log. It reaches the other services only over the bus
//! (request/reply), never their crates or tables.

use std::sync::Arc;
use std::time::Duration;

use platform::{Service, ServiceContext};

pub mod api;
pub mod domain;
pub mod log;
pub mod outbound;
pub mod soap;
pub mod store;

/// The gateway service descriptor.
pub struct GatewayService;

fn state(ctx: &ServiceContext) -> Arc<soap::GatewayState> {
    ctx.shared.get_or_init(|| {
        // `check` has read the key and the certificate before the start.
        let signer = soap::dsig::Signer::from_settings(&ctx.settings.gateway)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "the gateway's signing key cannot be read: answers go out unsigned");
                None
            });
        soap::GatewayState::new(log::LogWriter::spawn(ctx.db.clone()).0, signer)
    })
}

impl Service for GatewayService {
    fn name(&self) -> &'static str {
        "gateway"
    }

    fn migrations(&self) -> Vec<&'static storage::MigrationSet> {
        vec![&store::MIGRATIONS]
    }

    fn routes(&self, ctx: &ServiceContext, cfg: &mut platform::actix_web::web::ServiceConfig) {
        cfg.service(soap::scope(ctx, state(ctx)));
        cfg.service(api::scope(ctx));
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <api::GatewayApi as utoipa::OpenApi>::openapi()
    }

    fn check(&self, settings: &settings::Settings) -> Result<(), String> {
        soap::dsig::Signer::from_settings(&settings.gateway).map(|_| ())
    }

    fn start(
        &self,
        ctx: &ServiceContext,
        cancel: platform::tokio_util::sync::CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        // The log writer starts here, on the process's runtime, before any request.
        state(ctx);
        let def = contracts::gateway::DOCUMENTS;
        let opts = bus::ConsumerOptions::new(
            "gateway.documents",
            ctx.bus.queue_spec(def.queue, def.bindings),
        );
        let mut tasks = bus::spawn_responder(
            &ctx.bus,
            opts,
            Arc::new(soap::registry::DocumentResponder),
            cancel.clone(),
        );
        let def = contracts::meals::CLASS_REQUESTS_QUEUE;
        let opts = bus::ConsumerOptions::new(
            "gateway.class-requests",
            ctx.bus.queue_spec(def.queue, def.bindings),
        );
        tasks.extend(bus::spawn_consumer(
            &ctx.bus,
            opts,
            Arc::new(outbound::ClassRequestHandler),
            cancel.clone(),
        ));
        tasks.push(outbound::spawn(ctx.clone(), state(ctx), cancel.clone()));
        tasks.push(tokio::spawn(retention(ctx.clone(), cancel)));
        tasks
    }
}

/// Removes log records and documents older than `gateway.log_retention_days`,
/// hourly.
async fn retention(ctx: ServiceContext, cancel: platform::tokio_util::sync::CancellationToken) {
    loop {
        let days = i64::from(ctx.settings.gateway.log_retention_days);
        let before = (ctx.clock.now() - chrono::Duration::days(days)).naive_utc();
        match ctx.db.write(move |conn| log::prune(conn, before)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "message log records past retention removed"),
            Err(e) => tracing::warn!(error = %e, "message log retention did not run"),
        }
        match ctx
            .db
            .write(move |conn| -> Result<usize, storage::StorageError> {
                store::prune_signed_bodies(conn, before)?;
                store::prune_documents(conn, before)
            })
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "documents past retention removed"),
            Err(e) => tracing::warn!(error = %e, "document retention did not run"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
