//! Registries banks deliver through the XML gateway. The gateway keeps the
//! file and sends a [`RegistryDelivered`] naming it; the delivery is recorded
//! (once, however often the message comes), and the importer fetches the file
//! chunk by chunk over request/reply, checks its size and digest, and imports
//! it with the same [`super::import`] the REST upload uses. The outcome is kept
//! for the bank's STATE requests ([`QueryResponder`]), with the reconciliation
//! report in pages that each fit a bus message. A delivery that could not be
//! fetched (the gateway down) or imported yet (the registry busy, the
//! database away) stays `received` and is tried again; a restart resumes it.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use contracts::gateway::{DocumentChunk, DocumentChunkRequest, RegistryDelivered};
use contracts::payments::{RegistryQuery, RegistryState, RegistrySummary, UploadState};
use contracts::Contract;
use platform::tokio_util::sync::CancellationToken;
use platform::ServiceContext;
use sha2::Digest;

use super::{Format, ImportError, ImportRequest, Progress};
use crate::store::registry::{self as reg_store, UploadEnd, UploadRow};

/// Report items per page of a [`RegistryState`]: about 1.5 MiB of CSV.
pub const REPORT_PAGE: i64 = 10_000;

/// How long the importer waits for one chunk.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);

/// Records a delivery; a repeated message changes nothing.
pub struct DeliveryHandler {
    pub clock: Arc<dyn calendar::Clock>,
}

impl bus::Handler for DeliveryHandler {
    fn handle(
        &self,
        conn: &mut storage::DbConnection,
        message: &bus::Envelope,
    ) -> Result<(), bus::HandlerError> {
        let d: RegistryDelivered = message.decode()?;
        if parse_format(&d.format).is_none() {
            return Err(bus::HandlerError::Permanent(format!(
                "registry format {:?} is neither csv nor xml",
                d.format
            )));
        }
        let row = UploadRow {
            upload: d.upload,
            bank: d.bank,
            sender: d.sender,
            format: d.format,
            registry_date: d.date,
            file_name: d.file_name,
            size: i64::try_from(d.size).unwrap_or(i64::MAX),
            sha256: d.sha256,
            chunks: i32::try_from(d.chunks).unwrap_or(i32::MAX),
            status: reg_store::RECEIVED.into(),
            registry_id: None,
            already_imported: false,
            error_code: None,
            error_text: None,
            received_at: self.clock.now().naive_utc(),
            finished_at: None,
        };
        reg_store::record_upload(conn, &row)
            .map(|_| ())
            .map_err(|e| bus::HandlerError::Transient(e.to_string()))
    }
}

fn parse_format(s: &str) -> Option<Format> {
    match s {
        "csv" => Some(Format::Csv),
        "xml" => Some(Format::Xml),
        _ => None,
    }
}

/// Imports the received deliveries, one at a time, until cancelled.
pub fn spawn_importer(
    ctx: ServiceContext,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let pending = ctx
                .db
                .read(|conn| reg_store::received_uploads(conn, 10))
                .await;
            let mut idle = true;
            match pending {
                Ok(rows) => {
                    for row in rows {
                        if cancel.is_cancelled() {
                            return;
                        }
                        idle &= !import_one(&ctx, &row).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "registry deliveries could not be read"),
            }
            let pause = if idle { 1000 } else { 0 };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(pause)) => {}
            }
        }
    })
}

/// Why a delivery did not end this time.
enum Retry {
    /// Try again later (the gateway or the database did not answer).
    Later(String),
    /// Refuse it for good: a code and a text for the bank.
    Refuse(&'static str, String),
}

/// Fetches and imports one delivery; `true` if it ended (imported or refused).
async fn import_one(ctx: &ServiceContext, row: &UploadRow) -> bool {
    let dir = ctx.settings.storage.data_dir.join("uploads");
    let path = dir.join(format!("{}.delivered", row.upload));
    let outcome = match fetch(ctx, row, &dir, &path).await {
        Ok(()) => import(ctx, row, &path).await,
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&path);
    let upload = row.upload.clone();
    let at = ctx.clock.now().naive_utc();
    let (status, registry_id, already_imported, error) = match outcome {
        Ok(imported) => {
            ctx.bus.wake_relay();
            let id = imported.registry.id.clone();
            (
                reg_store::IMPORTED,
                Some(id),
                imported.already_imported,
                None,
            )
        }
        Err(Retry::Refuse(code, text)) => {
            tracing::info!(upload = %row.upload, code, %text, "a delivered registry was refused");
            (reg_store::REFUSED, None, false, Some((code, text)))
        }
        Err(Retry::Later(why)) => {
            tracing::warn!(upload = %row.upload, %why, "a delivered registry will be tried again");
            return false;
        }
    };
    let ended = ctx
        .db
        .write(move |conn| {
            reg_store::end_upload(
                conn,
                &upload,
                &UploadEnd {
                    status,
                    registry_id: registry_id.as_deref(),
                    already_imported,
                    error: error.as_ref().map(|(c, t)| (*c, t.as_str())),
                    at,
                },
            )
        })
        .await;
    match ended {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(upload = %row.upload, error = %e, "a delivered registry's outcome was not recorded; it will be imported again (which changes nothing)");
            false
        }
    }
}

/// Writes the document to `path`, chunk by chunk, and checks it.
async fn fetch(
    ctx: &ServiceContext,
    row: &UploadRow,
    dir: &std::path::Path,
    path: &std::path::Path,
) -> Result<(), Retry> {
    let io = |e: std::io::Error| Retry::Later(format!("the upload file: {e}"));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = std::fs::File::create(path).map_err(io)?;
    let mut digest = sha2::Sha256::new();
    let mut size = 0u64;
    for index in 0..u32::try_from(row.chunks).unwrap_or(0) {
        let request = DocumentChunkRequest {
            document: row.upload.clone(),
            index,
        };
        let env = bus::Envelope::json(
            DocumentChunkRequest::TOPIC,
            DocumentChunkRequest::KIND,
            &request,
        )
        .map_err(|e| Retry::Later(e.to_string()))?;
        let reply = ctx
            .bus
            .bus
            .request(env, CHUNK_TIMEOUT)
            .await
            .map_err(|e| Retry::Later(format!("chunk {index} of the document: {e}")))?;
        let chunk: DocumentChunk = reply.decode().map_err(|e| Retry::Later(e.to_string()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(chunk.data.as_bytes())
            .map_err(|e| {
                Retry::Refuse(
                    "DOCUMENT_DAMAGED",
                    format!("chunk {index} is not base64: {e}"),
                )
            })?;
        digest.update(&bytes);
        size += bytes.len() as u64;
        file.write_all(&bytes).map_err(io)?;
    }
    file.flush().map_err(io)?;
    let hex: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if size != u64::try_from(row.size).unwrap_or(0) || hex != row.sha256 {
        return Err(Retry::Refuse(
            "DOCUMENT_DAMAGED",
            format!(
                "the document arrived as {size} bytes with SHA-256 {hex}, it was sent as {} bytes with {}",
                row.size, row.sha256
            ),
        ));
    }
    Ok(())
}

async fn import(
    ctx: &ServiceContext,
    row: &UploadRow,
    path: &std::path::Path,
) -> Result<super::Imported, Retry> {
    let format = parse_format(&row.format)
        .ok_or_else(|| Retry::Refuse("REGISTRY_FORMAT", format!("format {:?}", row.format)))?;
    let request = ImportRequest {
        format,
        bank: row.bank.clone(),
        date: row.registry_date,
        file_name: row.file_name.clone(),
        uploaded_by: format!("gateway:{}", row.sender),
    };
    let (db, now, path) = (ctx.db.clone(), ctx.clock.now(), path.to_path_buf());
    let result = tokio::task::spawn_blocking(move || {
        super::import(&db, now, &path, &request, &Arc::new(Progress::default()))
    })
    .await
    .map_err(|e| Retry::Later(e.to_string()))?;
    result.map_err(|e| match e {
        ImportError::Format(f) => Retry::Refuse("REGISTRY_FORMAT", f.to_string()),
        e @ (ImportError::Invalid { .. } | ImportError::Ledger(_)) => {
            Retry::Refuse("REGISTRY_INVALID", e.to_string())
        }
        e @ ImportError::OtherRegistryForDay { .. } => {
            Retry::Refuse("REGISTRY_EXISTS", e.to_string())
        }
        e @ (ImportError::Busy | ImportError::Store(_) | ImportError::Io(_)) => {
            Retry::Later(e.to_string())
        }
    })
}

/// Answers how a delivery fared, with one page of its report.
pub struct QueryResponder;

impl bus::Responder for QueryResponder {
    fn respond(
        &self,
        conn: &mut storage::DbConnection,
        request: &bus::Envelope,
    ) -> Result<String, bus::HandlerError> {
        let q: RegistryQuery = request.decode()?;
        let state = state(conn, &q).map_err(|e| bus::HandlerError::Transient(e.to_string()))?;
        serde_json::to_string(&state).map_err(|e| bus::HandlerError::Permanent(e.to_string()))
    }
}

fn pending() -> RegistryState {
    RegistryState {
        state: UploadState::Pending,
        error: None,
        registry: None,
        report: String::new(),
        pages: 0,
    }
}

fn state(
    conn: &mut storage::DbConnection,
    q: &RegistryQuery,
) -> Result<RegistryState, crate::store::StoreError> {
    // Not recorded yet (the delivery is still on its way), or another bank's.
    let Some(upload) = reg_store::find_upload(conn, &q.upload)?.filter(|u| u.bank == q.bank) else {
        return Ok(pending());
    };
    match upload.status.as_str() {
        reg_store::REFUSED => Ok(RegistryState {
            state: UploadState::Refused,
            error: Some((
                upload.error_code.unwrap_or_default(),
                upload.error_text.unwrap_or_default(),
            )),
            ..pending()
        }),
        reg_store::IMPORTED => {
            let Some(registry) = upload
                .registry_id
                .as_deref()
                .map(|id| reg_store::find(conn, id))
                .transpose()?
                .flatten()
            else {
                return Ok(pending());
            };
            let count = reg_store::item_count(conn, &registry.id)?;
            let pages = u32::try_from((count + REPORT_PAGE - 1) / REPORT_PAGE)
                .unwrap_or(u32::MAX)
                .max(1);
            let items = reg_store::items_page(
                conn,
                &registry.id,
                i64::from(q.page) * REPORT_PAGE,
                REPORT_PAGE,
            )?;
            let mut report = if q.page == 0 {
                super::report::csv_head(&registry)
            } else {
                String::new()
            };
            report.push_str(&super::report::csv_rows(&items));
            Ok(RegistryState {
                state: UploadState::Imported,
                error: None,
                registry: Some(RegistrySummary {
                    id: registry.id.clone(),
                    date: registry.registry_date,
                    file_name: registry.file_name.clone(),
                    lines: registry.lines_total,
                    total: primitives::Money::from_kopecks(registry.amount_total_kopecks),
                    status: registry.status.clone(),
                    outcomes: registry.outcome_counts(),
                    already_imported: upload.already_imported,
                }),
                report,
                pages,
            })
        }
        _ => Ok(pending()),
    }
}
