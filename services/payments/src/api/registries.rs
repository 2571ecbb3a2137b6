//! Payment registries over REST: a bank uploads its daily registry (CSV or XML),
//! the organizer and the operator download the reconciliation report.

use std::io::Write;
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use futures::StreamExt;
use platform::{Caller, Problem, Role, ServiceContext};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiError;
use crate::registry::{self, Format, ImportError, ImportRequest, Progress};
use crate::store::registry as reg_store;

pub fn scope(ctx: &ServiceContext) -> actix_web::Scope {
    web::scope("/api/payments/registries")
        .app_data(web::Data::new(ctx.clone()))
        // A day's registry of a large bank runs to tens of megabytes.
        .app_data(web::PayloadConfig::new(512 * 1024 * 1024))
        .route("", web::post().to(upload))
        .route("/{id}", web::get().to(summary))
        .route("/{id}/report", web::get().to(report))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(upload, summary, report),
    components(schemas(RegistryView, Format)),
    tags((name = "registries", description = "Daily payment registries (реестры платежей) and reconciliation. \
        CSV: Windows-1251, `;`, lines `txn_id;account;amount;DD.MM.YYYY HH:MM:SS;payer`, last line `ИТОГО;<count>;<amount>`. \
        XML: wsdl/payment-registry.xsd. The same file uploaded again changes nothing."))
)]
pub struct RegistriesApi;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    pub format: Format,
    /// The registry's day (YYYY-MM-DD); required for CSV.
    pub date: Option<chrono::NaiveDate>,
    /// The bank, for an operator uploading on a bank's behalf.
    pub bank: Option<String>,
    pub file_name: Option<String>,
}

/// A registry and how its lines were reconciled.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RegistryView {
    pub id: String,
    pub bank: String,
    pub date: chrono::NaiveDate,
    pub format: String,
    pub file_name: String,
    pub lines: i64,
    #[schema(value_type = String)]
    pub total: primitives::Money,
    pub status: String,
    /// Lines per outcome: matched, credited, amount_differs, unknown_account,
    /// duplicate_line, missing_from_registry.
    pub outcomes: std::collections::BTreeMap<String, i64>,
    pub already_imported: bool,
}

fn view(r: &reg_store::RegistryRow, already_imported: bool) -> RegistryView {
    RegistryView {
        id: r.id.clone(),
        bank: r.bank.clone(),
        date: r.registry_date,
        format: r.format.clone(),
        file_name: r.file_name.clone(),
        lines: r.lines_total,
        total: primitives::Money::from_kopecks(r.amount_total_kopecks),
        status: r.status.clone(),
        outcomes: r.outcome_counts(),
        already_imported,
    }
}

fn import_problem(e: ImportError) -> ApiError {
    ApiError(match e {
        ImportError::Format(f) => Problem::unprocessable(
            "registry-format",
            "The registry is not acceptable; nothing was imported",
            f.to_string(),
        ),
        // The message names its field first ("date: …"); the problem names it once.
        ImportError::Invalid(m) => match m.split_once(": ") {
            Some((field, message)) => Problem::invalid(field, message),
            None => Problem::invalid("registry", m),
        },
        e @ ImportError::OtherRegistryForDay { .. } => {
            Problem::conflict("registry-exists", e.to_string())
        }
        e @ ImportError::Busy => Problem::conflict("registry-busy", e.to_string()),
        ImportError::Store(s) => return ApiError::from(s),
        ImportError::Io(m) => Problem::internal(m),
    })
}

/// Upload a bank's registry; the body is the file.
#[utoipa::path(post, path = "/api/payments/registries", tag = "registries", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    security(("bearer" = [])),
    responses((status = 201, body = RegistryView), (status = 200, body = RegistryView, description = "The same file again: nothing changed"),
        (status = 400, body = Problem, description = "The upload's date or bank disagrees with the registry's own, or this file was imported as the registry of another day or bank; the problem names the field"), (status = 409, body = Problem, description = "Another registry of the bank for that day was imported, or this one is being imported by another request (ask again later)"), (status = 422, body = Problem)))]
async fn upload(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    query: web::Query<UploadQuery>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Bank, Role::OperatorAdmin])?;
    let query = query.into_inner();
    let bank = if caller.has_role(Role::OperatorAdmin) {
        query
            .bank
            .clone()
            .ok_or_else(|| Problem::invalid("bank", "name the bank whose registry this is"))?
    } else {
        super::banking::bank_of(&caller)?
    };
    // The file goes to disk first: the import reads it twice and never holds its lines.
    let dir = ctx.settings.storage.data_dir.join("uploads");
    std::fs::create_dir_all(&dir).map_err(Problem::internal)?;
    let path = dir.join(format!("{}.registry", uuid::Uuid::now_v7()));
    let mut file = std::fs::File::create(&path).map_err(Problem::internal)?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Problem::invalid("body", e.to_string()))?;
        file.write_all(&chunk).map_err(Problem::internal)?;
    }
    drop(file);
    let request = ImportRequest {
        format: query.format,
        bank,
        date: query.date,
        file_name: query
            .file_name
            .unwrap_or_else(|| format!("upload.{}", query.format.as_str())),
        uploaded_by: caller.subject.clone(),
    };
    let db = ctx.db.clone();
    let now = ctx.clock.now();
    let upload_path = path.clone();
    let result = tokio::task::spawn_blocking(move || {
        registry::import(
            &db,
            now,
            &upload_path,
            &request,
            &Arc::new(Progress::default()),
        )
    })
    .await
    .map_err(Problem::internal)?;
    let _ = std::fs::remove_file(&path);
    let imported = result.map_err(import_problem)?;
    ctx.bus.wake_relay();
    let status = if imported.already_imported {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::CREATED
    };
    Ok(HttpResponse::build(status).json(view(&imported.registry, imported.already_imported)))
}

/// Who may see a registry, and which of its items: `None` = all of them.
fn scope_of(
    caller: &Caller,
    registry: &reg_store::RegistryRow,
) -> Result<Option<Vec<String>>, ApiError> {
    if caller.has_role(Role::OperatorAdmin)
        || (caller.has_role(Role::Bank) && caller.is_bank(&registry.bank))
    {
        return Ok(None);
    }
    if caller.has_role(Role::MealOrganizer) && !caller.organizers.is_empty() {
        return Ok(Some(caller.organizers.iter().cloned().collect()));
    }
    Err(Problem::not_found("no such registry").into())
}

async fn load(ctx: &ServiceContext, id: String) -> Result<reg_store::RegistryRow, ApiError> {
    ctx.db
        .read(move |conn| reg_store::find(conn, &id))
        .await?
        .ok_or_else(|| Problem::not_found("no such registry").into())
}

/// A registry's summary.
#[utoipa::path(get, path = "/api/payments/registries/{id}", tag = "registries", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = RegistryView), (status = 404, body = Problem)))]
async fn summary(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let registry = load(&ctx, path.into_inner()).await?;
    scope_of(&caller, &registry)?;
    Ok(HttpResponse::Ok().json(view(&registry, false)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
}

/// The reconciliation report (an organizer sees the lines of its own accounts).
#[utoipa::path(get, path = "/api/payments/registries/{id}/report", tag = "registries", params(("id" = String, Path), ReportQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "text/csv or XLSX"), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn report(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let format = query.into_inner().format.unwrap_or_else(|| "csv".into());
    if format != "csv" && format != "xlsx" {
        return Err(Problem::invalid("format", "csv or xlsx").into());
    }
    let registry = load(&ctx, path.into_inner()).await?;
    let organizers = scope_of(&caller, &registry)?;
    let id = registry.id.clone();
    let items = ctx
        .db
        .read(move |conn| reg_store::items(conn, &id, organizers.as_deref()))
        .await?;
    let name = format!(
        "reconciliation-{}-{}",
        registry.bank, registry.registry_date
    );
    let (content_type, body) = if format == "xlsx" {
        (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            registry::report::xlsx(&registry, &items).map_err(Problem::internal)?,
        )
    } else {
        (
            "text/csv; charset=utf-8",
            registry::report::csv(&registry, &items).into_bytes(),
        )
    };
    Ok(super::download(
        content_type,
        &format!("{name}.{format}"),
        body,
    ))
}
