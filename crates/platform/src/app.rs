//! Assembly and life cycle of a process: open each service's database and run its
//! migrations, connect the bus and declare the topology, start consumers and
//! relays, serve HTTP, and on shutdown let in-flight requests finish, flush the
//! outbox, then stop the consumers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{ServerHandle, Service as _};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Problem, Service, ServiceContext};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database of {service}: {source}")]
    Storage {
        service: String,
        #[source]
        source: storage::StorageError,
    },
    #[error("bus: {0}")]
    Bus(#[from] bus::BusError),
    #[error("HTTP server: {0}")]
    Http(String),
}

/// What to start.
pub struct StartOptions {
    pub settings: settings::Settings,
    pub services: Vec<Arc<dyn Service>>,
    pub clock: Arc<dyn calendar::Clock>,
    /// Address to bind; `None` takes `http.bind` (or the single service's own).
    pub bind: Option<String>,
}

/// A started process.
pub struct Running {
    pub addr: SocketAddr,
    /// The TLS listener's address, when `http.tls.bind` is set.
    pub tls_addr: Option<SocketAddr>,
    pub contexts: Vec<ServiceContext>,
    server: ServerHandle,
    server_task: Option<JoinHandle<std::io::Result<()>>>,
    relays: Vec<JoinHandle<()>>,
    relay_cancel: CancellationToken,
    work: Vec<JoinHandle<()>>,
    work_cancel: CancellationToken,
}

impl Running {
    /// Waits until the HTTP server stops (SIGINT/SIGTERM: in-flight requests
    /// finish first), then shuts down.
    pub async fn wait(mut self) {
        if let Some(task) = self.server_task.take() {
            let _ = task.await;
        }
        self.finish().await;
    }

    /// Stops the server gracefully and shuts down.
    pub async fn stop(mut self) {
        self.server.stop(true).await;
        if let Some(task) = self.server_task.take() {
            let _ = task.await;
        }
        self.finish().await;
    }

    async fn finish(self) {
        tracing::info!("HTTP stopped; flushing the outbox");
        self.relay_cancel.cancel();
        for relay in self.relays {
            if tokio::time::timeout(Duration::from_secs(15), relay)
                .await
                .is_err()
            {
                tracing::warn!(
                    "outbox relay did not flush within 15 s; the rest goes out on the next start"
                );
            }
        }
        self.work_cancel.cancel();
        for task in self.work {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
        tracing::info!("stopped");
    }
}

/// The migration sets of `service`, bus tables first.
pub fn migration_sets(service: &dyn Service) -> Vec<&'static storage::MigrationSet> {
    let mut sets = vec![&bus::store::MIGRATIONS];
    sets.extend(service.migrations());
    sets
}

/// Opens `service`'s database as configured (PostgreSQL schema or SQLite file).
pub fn open_db(settings: &settings::Settings, name: &str) -> Result<storage::Db, StartError> {
    let svc = settings.service(name);
    let url = settings.database_url_for(name);
    let schema = svc.schema.unwrap_or_else(|| name.to_string());
    let location =
        storage::DbLocation::for_service(&url, &schema, &settings.storage.data_dir, name);
    storage::Db::open(
        &location,
        settings.storage.pool_size,
        Duration::from_secs(settings.storage.connect_timeout_secs),
    )
    .map_err(|source| StartError::Storage {
        service: name.to_string(),
        source,
    })
}

/// The token verifier: the configured JWKS, else the local key of the embedded mode.
pub async fn verifier(settings: &settings::Settings) -> Result<auth::Verifier, StartError> {
    let a = &settings.auth;
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    if a.jwks_path.is_empty() && a.jwks_url.is_empty() {
        let dir = settings.storage.data_dir.join("keys");
        let signer = auth::LocalSigner::load_or_create(&dir).map_err(|e| {
            StartError::Config(format!("local signing key in {}: {e}", dir.display()))
        })?;
        return Ok(auth::Verifier::from_jwks(
            signer.jwks(),
            non_empty(&a.issuer),
            non_empty(&a.audience),
            a.leeway_secs,
        ));
    }
    let config = auth::VerifierConfig {
        jwks_path: non_empty(&a.jwks_path).map(Into::into),
        jwks_url: non_empty(&a.jwks_url),
        issuer: non_empty(&a.issuer),
        audience: non_empty(&a.audience),
        leeway_secs: a.leeway_secs,
    };
    auth::Verifier::load(config)
        .await
        .map_err(|e| StartError::Config(format!("key `auth.jwks_path`/`auth.jwks_url`: {e}")))
}

/// Starts the given services in this process.
pub async fn start(options: StartOptions) -> Result<Running, StartError> {
    let StartOptions {
        settings,
        services,
        clock,
        bind,
    } = options;
    for service in &services {
        service
            .check(&settings)
            .map_err(|e| StartError::Config(format!("{}: {e}", service.name())))?;
    }
    let settings = Arc::new(settings);
    let keyring = Arc::new(
        crate::secrets::Keyring::load(&settings)
            .map_err(|e| StartError::Config(format!("key `secrets`: {e}")))?,
    );
    let calendar = Arc::new(
        calendar::ProductionCalendar::builtin_with_dir(&settings.calendar.dir)
            .map_err(|e| StartError::Config(format!("key `calendar.dir`: {e}")))?,
    );
    let verifier = Arc::new(verifier(&settings).await?);
    let shared_bus = bus::Bus::connect(&settings.bus).await?;

    let mut contexts = Vec::new();
    for service in &services {
        let name = service.name();
        let db = open_db(&settings, name)?;
        let sets = migration_sets(service.as_ref());
        let migrate_db = db.clone();
        tokio::task::spawn_blocking(move || migrate_db.migrate(&sets))
            .await
            .map_err(|e| StartError::Config(e.to_string()))?
            .map_err(|source| StartError::Storage {
                service: name.to_string(),
                source,
            })?;
        let sb = bus::ServiceBus::new(name, db.clone(), shared_bus.clone(), settings.bus.clone());
        contexts.push(ServiceContext {
            name,
            db,
            bus: sb,
            clock: clock.clone(),
            calendar: calendar.clone(),
            settings: settings.clone(),
            secrets: keyring.clone(),
            shared: Arc::default(),
        });
        tracing::info!(service = name, backend = ?contexts.last().map(|c| c.db.backend()), "service database ready");
    }

    // The whole topology before any relay publishes (see contracts::topology).
    // The in-process bus holds and confirms a message only through a consumer
    // of this process, so it gets the queues of the services running here; a
    // broker keeps every queue, whoever consumes it and whenever it starts
    // (unless `bus.declare_all_queues` is off).
    let own_only = shared_bus.backend_name() == "memory" || !settings.bus.declare_all_queues;
    let specs: Vec<bus::QueueSpec> = contracts::topology()
        .iter()
        .filter(|q| !own_only || services.iter().any(|s| s.name() == q.consumer))
        .map(|q| bus::QueueSpec::new(q.queue, q.bindings).prefixed(&settings.bus.queue_prefix))
        .collect();
    if let Err(e) = shared_bus.declare(&specs).await {
        tracing::warn!(error = %e, "could not declare the topology yet; consumers declare their own queues on connect");
    }

    let work_cancel = CancellationToken::new();
    let relay_cancel = CancellationToken::new();
    let mut work = Vec::new();
    let mut relays = Vec::new();
    for (service, ctx) in services.iter().zip(&contexts) {
        work.extend(service.start(ctx, work_cancel.clone()));
    }
    for ctx in &contexts {
        relays.push(bus::spawn_relay(&ctx.bus, relay_cancel.clone()));
    }

    let bind = bind.unwrap_or_else(|| match services.as_slice() {
        [only] => settings
            .service(only.name())
            .bind
            .unwrap_or_else(|| settings.http.bind.clone()),
        _ => settings.http.bind.clone(),
    });
    let openapi = Arc::new(openapi_document(&services));
    let app_services = services.clone();
    let app_contexts = contexts.clone();
    let ready_contexts = contexts.clone();
    let ready_bus = shared_bus.clone();
    let mut server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(crate::problem::json_config())
            .app_data(crate::problem::query_config())
            .app_data(crate::problem::path_config())
            .app_data(web::Data::new(verifier.clone()))
            .app_data(web::Data::new(openapi.clone()))
            .app_data(web::Data::new(Readiness {
                contexts: ready_contexts.clone(),
                bus: ready_bus.clone(),
            }))
            .wrap_fn(|req, srv| {
                let started = Instant::now();
                let method = req.method().to_string();
                let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                let span = tracing::info_span!("http", %method, %route, status = tracing::field::Empty, subject = tracing::field::Empty);
                telemetry::adopt_trace_headers(
                    &span,
                    req.headers().iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
                );
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    let status = res.status().as_u16();
                    tracing::Span::current().record("status", status);
                    let m = telemetry::metrics::metrics();
                    let service = route.split('/').nth(2).unwrap_or("platform").to_string();
                    m.http_requests
                        .with_label_values(&[service.as_str(), method.as_str(), route.as_str(), &status.to_string()])
                        .inc();
                    m.http_duration
                        .with_label_values(&[service.as_str(), route.as_str()])
                        .observe(started.elapsed().as_secs_f64());
                    Ok(res)
                }
                .instrument(span)
            })
            .route("/health/live", web::get().to(live))
            .route("/health/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics))
            .route("/api/docs", web::get().to(docs))
            .route("/api/docs/openapi.json", web::get().to(docs));
        for (service, ctx) in app_services.iter().zip(&app_contexts) {
            app = app.configure(|cfg| service.routes(ctx, cfg));
        }
        app.default_service(web::to(not_found))
    })
    .shutdown_timeout(settings.http.shutdown_grace_secs)
    .on_connect(crate::tls::on_connect);
    if settings.http.workers > 0 {
        server = server.workers(settings.http.workers);
    }
    let mut server = server
        .bind(&bind)
        .map_err(|e| StartError::Http(format!("cannot bind {bind}: {e}")))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| StartError::Http("bound to no address".into()))?;
    let tls = &settings.http.tls;
    let tls_addr = if tls.bind.is_empty() {
        None
    } else {
        let config = crate::tls::server_config(tls).map_err(StartError::Http)?;
        server = server.bind_rustls_0_23(&tls.bind, config).map_err(|e| {
            StartError::Http(format!("cannot bind http.tls.bind {}: {e}", tls.bind))
        })?;
        server.addrs().into_iter().find(|a| *a != addr)
    };
    let server = server.run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    tracing::info!(%addr, services = ?services.iter().map(|s| s.name()).collect::<Vec<_>>(), bus = shared_bus.backend_name(), "listening");
    if let Some(a) = tls_addr {
        tracing::info!(addr = %a, "listening with TLS");
    }
    Ok(Running {
        addr,
        tls_addr,
        contexts,
        server: handle,
        server_task: Some(server_task),
        relays,
        relay_cancel,
        work,
        work_cancel,
    })
}

/// The OpenAPI document of the platform endpoints and every service.
pub fn openapi_document(services: &[Arc<dyn Service>]) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
    use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApiBuilder};
    let mut http = Http::new(HttpAuthScheme::Bearer);
    http.bearer_format = Some("JWT".into());
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Tyumen region e-services portal and meal accounting")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "REST API of the portal back end. Every endpoint except /health and /metrics \
                     takes a bearer JWT (ЕСИА/OIDC shape) with `roles`. Errors are \
                     application/problem+json (RFC 9457). Money is a decimal string with two places.",
                ))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme("bearer", SecurityScheme::Http(http))
                .schema_from::<Problem>()
                .schema_from::<crate::FieldError>()
                .build(),
        ))
        .build();
    doc.merge(<PlatformApi as utoipa::OpenApi>::openapi());
    for service in services {
        doc.merge(service.openapi());
    }
    complete(&mut doc);
    doc
}

/// What the platform's own layers do for every operation, written into the
/// document so a generated client knows it without each handler repeating it:
/// every `{name}` in a path is a required string parameter; a secured
/// operation may answer 401 (no or bad token) and 403 (role); an operation
/// with parameters or a body may answer 400 (they do not parse), one with a
/// body 413 (too large), one with path parameters 404 (nothing there, or
/// nothing the caller may see); every error is `application/problem+json`.
fn complete(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder};
    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    let problem_ref = Ref::from_schema_name("Problem").ref_location;
    for (path, item) in doc.paths.paths.iter_mut() {
        let names: Vec<String> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_string)
            .collect();
        let declared_on_item: Vec<String> = item
            .parameters
            .iter()
            .flatten()
            .filter(|p| p.parameter_in == ParameterIn::Path)
            .map(|p| p.name.clone())
            .collect();
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let params = op.parameters.get_or_insert_with(Vec::new);
            for name in &names {
                let declared = declared_on_item.contains(name)
                    || params
                        .iter()
                        .any(|p| p.parameter_in == ParameterIn::Path && &p.name == name);
                if !declared {
                    let param: Parameter = ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(
                            utoipa::openapi::ObjectBuilder::new()
                                .schema_type(utoipa::openapi::schema::Type::String),
                        ))
                        .build();
                    params.push(param);
                }
            }
            let has_params = !params.is_empty();
            if params.is_empty() {
                op.parameters = None;
            }
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let has_body = op.request_body.is_some();
            let responses = &mut op.responses.responses;
            let mut add = |code: &str, description: &str| {
                responses
                    .entry(code.to_string())
                    .or_insert_with(|| problem(description));
            };
            if has_params || has_body {
                add(
                    "400",
                    "The parameters or the body are invalid; the problem names the field",
                );
            }
            if secured {
                add("401", "No bearer token, or one that is invalid, expired, of another issuer or for another audience");
                add("403", "The token's roles do not allow this operation");
            }
            // A school, class, organizer or municipality named in the query is
            // looked up like one in the path.
            let names_a_scope = op.parameters.iter().flatten().any(|p| {
                p.parameter_in == ParameterIn::Query
                    && matches!(
                        p.name.as_str(),
                        "school" | "class" | "organizer" | "municipality" | "account"
                    )
            });
            if !names.is_empty() || names_a_scope {
                add("404", "Nothing there, or nothing the caller may see");
            }
            if has_body {
                add("413", "The body is larger than the platform accepts");
            }
            for response in responses.values_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                let Some(content) = response.content.shift_remove("application/json") else {
                    continue;
                };
                let is_problem =
                    matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location == problem_ref);
                let key = if is_problem {
                    "application/problem+json"
                } else {
                    "application/json"
                };
                response.content.insert(key.to_string(), content);
            }
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(live, ready))]
struct PlatformApi;

struct Readiness {
    contexts: Vec<ServiceContext>,
    bus: bus::Bus,
}

/// The process is alive.
#[utoipa::path(get, path = "/health/live", tag = "platform", responses((status = 200, description = "Alive")))]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

/// Every database of this process and the broker answer.
#[utoipa::path(get, path = "/health/ready", tag = "platform",
    responses((status = 200, description = "Ready"), (status = 503, description = "A dependency does not answer")))]
async fn ready(state: web::Data<Readiness>) -> HttpResponse {
    let mut checks = serde_json::Map::new();
    let mut ok = true;
    for ctx in &state.contexts {
        let result = tokio::time::timeout(Duration::from_secs(3), ctx.db.ping()).await;
        let status = match result {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => format!("failing: {e}"),
            Err(_) => "failing: no answer within 3 s".to_string(),
        };
        ok &= status == "ok";
        checks.insert(format!("{}.database", ctx.name), json!(status));
    }
    let bus_status = match tokio::time::timeout(Duration::from_secs(3), state.bus.ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => format!("failing: {e}"),
        Err(_) => "failing: no answer within 3 s".to_string(),
    };
    ok &= bus_status == "ok";
    checks.insert(
        format!("bus.{}", state.bus.backend_name()),
        json!(bus_status),
    );
    let body = json!({ "status": if ok { "ready" } else { "not ready" }, "checks": checks });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(state: web::Data<Readiness>) -> HttpResponse {
    for ctx in &state.contexts {
        let db = ctx.db.clone();
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(2), db.read(bus::store::count_pending)).await
        {
            telemetry::metrics::metrics()
                .outbox_pending
                .with_label_values(&[ctx.name])
                .set(n);
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(telemetry::metrics::render())
}

async fn docs(doc: web::Data<Arc<utoipa::openapi::OpenApi>>) -> HttpResponse {
    HttpResponse::Ok().json(doc.as_ref().as_ref())
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    Problem::not_found(format!("no endpoint {} {}", req.method(), req.path())).error_response()
}

/// Serves `services` until SIGINT/SIGTERM, with telemetry set up from `settings`.
pub async fn serve(
    settings: settings::Settings,
    services: Vec<Arc<dyn Service>>,
    bind: Option<String>,
    clock: Option<Arc<dyn calendar::Clock>>,
) -> Result<(), String> {
    let service_name = match services.as_slice() {
        [only] => format!("portal-{}", only.name()),
        _ => "portal".to_string(),
    };
    let _telemetry = telemetry::init(&telemetry::TelemetryConfig {
        service_name,
        log_format: match settings.telemetry.log_format {
            settings::LogFormat::Json => telemetry::LogFormat::Json,
            settings::LogFormat::Pretty => telemetry::LogFormat::Pretty,
        },
        log_filter: settings.telemetry.log_filter.clone(),
        otlp_endpoint: settings.telemetry.otlp_endpoint.clone(),
    })?;
    let running = start(StartOptions {
        settings,
        services,
        clock: clock.unwrap_or_else(|| Arc::new(calendar::SystemClock)),
        bind,
    })
    .await
    .map_err(|e| e.to_string())?;
    eprintln!(
        "portal: listening on http://{} (Ctrl-C stops)",
        running.addr
    );
    running.wait().await;
    Ok(())
}

/// The `main` of a service's own binary: `[--config FILE]… [--bind ADDR]`.
pub fn run_single(service: Arc<dyn Service>, args: &[String]) -> std::process::ExitCode {
    let mut files = Vec::new();
    let mut bind = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match (arg.as_str(), it.next()) {
            ("--config", Some(f)) => files.push(std::path::PathBuf::from(f)),
            ("--bind", Some(b)) => bind = Some(b.clone()),
            _ => {
                eprintln!(
                    "usage: {} [--config FILE]... [--bind HOST:PORT]",
                    service.name()
                );
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let dir = std::env::var("PORTAL_CONFIG_DIR").unwrap_or_else(|_| "deploy/config".into());
    let result = settings::Settings::load(std::path::Path::new(&dir), &files)
        .map_err(|e| e.to_string())
        .and_then(|settings| {
            crate::tls::use_openssl_conf(settings.gateway.openssl_conf.as_deref());
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(serve(settings, vec![service], bind, None))
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portal: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
