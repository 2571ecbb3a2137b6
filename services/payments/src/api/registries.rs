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

/// The uploaded file on disk, removed however the request ends.
struct Upload(std::path::PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn scope(ctx: &ServiceContext) -> actix_web::Scope {
    web::scope("/api/payments/registries")
        .app_data(web::Data::new(ctx.clone()))
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
#[into_params(parameter_in = Query)]
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
        ImportError::Invalid { field, message } => Problem::invalid(field, message),
        ImportError::Ledger(e) => Problem::invalid("registry", e.to_string()),
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
        (status = 400, body = Problem, description = "The upload's date or bank disagrees with the registry's own, or this file was imported as the registry of another day or bank; the problem names the field"), (status = 409, body = Problem, description = "Another registry of the bank for that day was imported, or this one is being imported by another request (ask again later)"), (status = 413, body = Problem, description = "The file is larger than `http.max_upload_mib` (512 MiB by default); nothing was imported"), (status = 422, body = Problem)))]
async fn upload(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    query: web::Query<UploadQuery>,
    request: actix_web::HttpRequest,
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
    let too_large = || {
        ApiError::from(
            Problem::new(
                413,
                "registry-too-large",
                "The registry is larger than the platform accepts",
            )
            .detail(format!(
                "a registry file may be at most {} MiB; nothing was imported",
                ctx.settings.http.max_upload_mib
            )),
        )
    };
    // A day of a large bank runs to tens of megabytes (1,000,000 lines are
    // about 70 MiB of CSV); `http.max_upload_mib` bounds what a client can send,
    // whether it announces the length or not.
    let limit = ctx.settings.http.max_upload_mib.saturating_mul(1 << 20);
    if content_length(&request).is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // The file goes to disk first: the import reads it twice and never holds its lines.
    let dir = ctx.settings.storage.data_dir.join("uploads");
    std::fs::create_dir_all(&dir).map_err(Problem::internal)?;
    let path = dir.join(format!("{}.registry", uuid::Uuid::now_v7()));
    let upload = Upload(path.clone());
    let mut file = std::fs::File::create(&path).map_err(Problem::internal)?;
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Problem::invalid("body", e.to_string()))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large());
        }
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
    drop(upload);
    let imported = result.map_err(import_problem)?;
    ctx.bus.wake_relay();
    let status = if imported.already_imported {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::CREATED
    };
    Ok(HttpResponse::build(status).json(view(&imported.registry, imported.already_imported)))
}

fn content_length(request: &actix_web::HttpRequest) -> Option<u64> {
    request
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The registry as `caller` may see it, with the items it may see. The bank
/// that sent it and the operator see all of it. An organizer sees only the
/// lines of accounts under its contracts, and figures counted over those lines
/// alone (the bank's own totals are the bank's business); a registry with none
/// of its lines does not exist for it, nor for anyone else. The items are read
/// for the bank and the operator only when `with_items`.
async fn visible(
    ctx: &ServiceContext,
    caller: &Caller,
    id: String,
    with_items: bool,
) -> Result<(reg_store::RegistryRow, Vec<reg_store::ItemRow>), ApiError> {
    let not_found = || ApiError::from(Problem::not_found("no such registry"));
    let organizers: Option<Vec<String>> = if caller.has_role(Role::OperatorAdmin) {
        None
    } else if caller.has_role(Role::MealOrganizer) && !caller.organizers.is_empty() {
        Some(caller.organizers.iter().cloned().collect())
    } else if caller.has_role(Role::Bank) {
        None
    } else {
        return Err(not_found());
    };
    let whole = organizers.is_none();
    let (registry, items) = ctx
        .db
        .read(move |conn| {
            let Some(registry) = reg_store::find(conn, &id)? else {
                return Ok::<_, crate::store::StoreError>((None, Vec::new()));
            };
            let items = if with_items || organizers.is_some() {
                reg_store::items(conn, &id, organizers.as_deref())?
            } else {
                Vec::new()
            };
            Ok((Some(registry), items))
        })
        .await?;
    let registry = registry.ok_or_else(not_found)?;
    if whole {
        let own_bank = caller.has_role(Role::OperatorAdmin) || caller.is_bank(&registry.bank);
        return if own_bank {
            Ok((registry, items))
        } else {
            Err(not_found())
        };
    }
    if items.is_empty() {
        return Err(not_found());
    }
    Ok((registry::report::restricted(&registry, &items), items))
}

/// A registry's summary.
#[utoipa::path(get, path = "/api/payments/registries/{id}", tag = "registries", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = RegistryView), (status = 404, body = Problem)))]
async fn summary(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (registry, _) = visible(&ctx, &caller, path.into_inner(), false).await?;
    Ok(HttpResponse::Ok().json(view(&registry, false)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
    let (registry, items) = visible(&ctx, &caller, path.into_inner(), true).await?;
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
