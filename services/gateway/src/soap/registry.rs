//! Banks' registries through the SOAP door. `UploadRegistry` carries the file
//! as its AppDocument: the gateway keeps it (chunked, in its own database),
//! puts a [`RegistryDelivered`] naming it in its outbox in the same
//! transaction, and answers ACCEPT. Payments fetches the file chunk by chunk
//! ([`DocumentResponder`]) and imports it. `RegistryState` (Status STATE,
//! RequestIdRef = the upload's MessageId) asks payments how it fared:
//! PROCESS, RESULT with the reconciliation report as the AppDocument, or
//! REJECT naming why the registry was refused.

use base64::Engine;
use contracts::gateway::{DocumentChunk, DocumentChunkRequest, RegistryDelivered, CHUNK_BYTES};
use contracts::payments::{RegistryQuery, RegistryState, UploadState};
use contracts::Contract;
use quick_xml::escape::partial_escape as escape;
use sha2::Digest;

use super::read::Inbound;
use super::write::{AppDocument, GatewayError};
use super::{Call, Outcome};
use crate::domain::chain::hex;
use crate::domain::envelope::{Message, Status};
use crate::store;

/// A document as it arrived: its bytes and their SHA-256 (lower-case hex).
pub struct Document {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl Document {
    /// Decodes the BinaryData's base64 (whitespace already dropped).
    pub fn decode(base64: &str) -> Result<Document, GatewayError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(base64.as_bytes())
            .map_err(|e| GatewayError {
                path: Some("/Envelope/Body/*/MessageData/AppDocument/BinaryData".into()),
                ..GatewayError::new("SCHEMA_VIOLATION", format!("BinaryData is not base64: {e}"))
            })?;
        let sha256 = hex(&sha2::Sha256::digest(&bytes));
        Ok(Document { bytes, sha256 })
    }

    /// What the log keeps in the document's place.
    pub fn note(&self) -> String {
        format!(
            "document of {} bytes, SHA-256 {}: kept by the gateway, not logged",
            self.bytes.len(),
            self.sha256
        )
    }
}

fn el(out: &mut String, name: &str, value: &str) {
    super::write::el(out, "tns", name, value);
}

fn accepted(doc: &store::DocumentRow) -> String {
    let mut out = String::from("<tns:Accepted>");
    el(&mut out, "Upload", &doc.id);
    el(&mut out, "Size", &doc.size.to_string());
    el(&mut out, "Sha256", &doc.sha256);
    out.push_str("</tns:Accepted>");
    out
}

fn invalid_field(op: &str, field: &str, text: String) -> GatewayError {
    GatewayError {
        path: Some(format!("/Envelope/Body/{op}/MessageData/{field}")),
        ..GatewayError::new("SCHEMA_VIOLATION", text)
    }
}

/// `UploadRegistry`: keep the document, send it on by reference, ACCEPT.
pub(super) async fn upload(
    x: &Call<'_>,
    inbound: &Inbound,
    m: &Message,
    id: &str,
    participant: &store::ParticipantRow,
    bank: &str,
) -> Outcome {
    let op = "UploadRegistry";
    let Some(document) = x.document.as_ref() else {
        let e = invalid_field(
            op,
            "AppDocument",
            "UploadRegistry needs the registry file as its AppDocument's BinaryData".into(),
        );
        return x.invalid(Some((m, id)), e, 500);
    };
    let format = inbound
        .app("UploadRegistry/Format")
        .unwrap_or_default()
        .to_string();
    let date = match inbound.app("UploadRegistry/Date") {
        Some(d) => match chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                let e = invalid_field(
                    op,
                    "AppData/UploadRegistry/Date",
                    format!("Date: {d:?} is not YYYY-MM-DD"),
                );
                return x.invalid(Some((m, id)), e, 500);
            }
        },
        None => None,
    };
    if format == "csv" && date.is_none() {
        let e = invalid_field(
            op,
            "AppData/UploadRegistry/Date",
            "Date: a CSV registry needs the registry's day".into(),
        );
        return x.invalid(Some((m, id)), e, 500);
    }
    let request_code = inbound
        .field("MessageData/AppDocument/RequestCode")
        .unwrap_or_default()
        .to_string();
    let file_name = inbound
        .app("UploadRegistry/FileName")
        .map(str::to_string)
        .unwrap_or_else(|| request_code.clone());
    let encoder = base64::engine::general_purpose::STANDARD;
    let chunks: Vec<String> = document
        .bytes
        .chunks(CHUNK_BYTES)
        .map(|c| encoder.encode(c))
        .collect();
    let row = store::DocumentRow {
        id: uuid::Uuid::now_v7().to_string(),
        participant: participant.code.clone(),
        message_id: id.to_string(),
        kind: "registry".into(),
        request_code,
        size: i64::try_from(document.bytes.len()).unwrap_or(i64::MAX),
        sha256: document.sha256.clone(),
        chunks: i32::try_from(chunks.len()).unwrap_or(i32::MAX),
        received_at: x.ctx.clock.now().naive_utc(),
    };
    let delivered = RegistryDelivered {
        upload: row.id.clone(),
        bank: bank.to_string(),
        sender: participant.code.clone(),
        format,
        date,
        file_name,
        size: document.bytes.len() as u64,
        sha256: document.sha256.clone(),
        chunks: chunks.len() as u32,
    };
    let envelope = match bus::Envelope::json(
        RegistryDelivered::TOPIC,
        RegistryDelivered::KIND,
        &delivered,
    ) {
        Ok(e) => e.with_id(format!("registry-delivered:{}", row.id)),
        Err(e) => return super::failure(x, op, m, id, e),
    };
    let (sender, message_id) = (participant.code.clone(), id.to_string());
    let stored = x
        .ctx
        .db
        .write(
            move |conn| -> Result<store::DocumentRow, storage::StorageError> {
                // Asked again after an answer that was never logged: the same upload.
                if let Some(before) = store::document_of_message(conn, &sender, &message_id)? {
                    return Ok(before);
                }
                store::insert_document(conn, &row, &chunks)?;
                bus::store::enqueue(conn, &envelope)?;
                Ok(row)
            },
        )
        .await;
    match stored {
        Ok(doc) => {
            x.ctx.bus.wake_relay();
            let outcome = format!("accepted as upload {} ({} bytes)", doc.id, doc.size);
            x.answer(op, m, id, Status::Accept, Some(accepted(&doc)), outcome)
        }
        Err(e) => x.refuse(
            op,
            m,
            id,
            Status::Failure,
            GatewayError::new(
                "SERVICE_UNAVAILABLE",
                format!(
                    "the registry could not be stored ({e}); nothing was accepted: send it again"
                ),
            ),
        ),
    }
}

/// `RegistryState`: how the upload named by RequestIdRef fared.
pub(super) async fn state(
    x: &Call<'_>,
    m: &Message,
    id: &str,
    participant: &store::ParticipantRow,
    bank: &str,
) -> Outcome {
    let op = "RegistryState";
    let unknown = |text: String| {
        x.refuse(
            op,
            m,
            id,
            Status::Reject,
            GatewayError::new("UNKNOWN_REQUEST", text),
        )
    };
    let Some(upload_ref) = m.request_id_ref.clone() else {
        return unknown("a STATE names the upload's MessageId in smev:RequestIdRef".into());
    };
    let (sender, r) = (participant.code.clone(), upload_ref.clone());
    let document = match x
        .ctx
        .db
        .read(move |conn| store::document_of_message(conn, &sender, &r))
        .await
    {
        Ok(Some(d)) => d,
        Ok(None) => {
            return unknown(format!(
                "no registry was uploaded by {} with MessageId {upload_ref}",
                participant.code
            ))
        }
        Err(e) => {
            return x.refuse(
                op,
                m,
                id,
                Status::Failure,
                GatewayError::new(
                    "SERVICE_UNAVAILABLE",
                    format!("the gateway's database does not answer: {e}; ask again"),
                ),
            )
        }
    };
    let first = match ask(x, bank, &document.id, 0).await {
        Ok(s) => s,
        Err(e) => return super::failure(x, op, m, id, e),
    };
    match first.state {
        UploadState::Pending => {
            let mut app = String::from("<tns:Processing>");
            el(&mut app, "Upload", &document.id);
            app.push_str("</tns:Processing>");
            x.answer(
                op,
                m,
                id,
                Status::Process,
                Some(app),
                "being imported".into(),
            )
        }
        UploadState::Refused => {
            let (code, text) = first.error.unwrap_or_default();
            x.refuse(op, m, id, Status::Reject, GatewayError::new(&code, text))
        }
        UploadState::Imported => {
            let Some(registry) = first.registry.clone() else {
                return super::failure(
                    x,
                    op,
                    m,
                    id,
                    bus::BusError::Remote("an imported registry without its summary".into()),
                );
            };
            let mut report = first.report;
            for page in 1..first.pages {
                match ask(x, bank, &document.id, page).await {
                    Ok(s) => report.push_str(&s.report),
                    Err(e) => return super::failure(x, op, m, id, e),
                }
            }
            let mut app = String::from("<tns:RegistryOutcome>");
            el(&mut app, "Registry", &registry.id);
            el(&mut app, "Date", &registry.date.to_string());
            el(&mut app, "FileName", &registry.file_name);
            el(&mut app, "Lines", &registry.lines.to_string());
            el(&mut app, "Total", &registry.total.to_string());
            el(
                &mut app,
                "AlreadyImported",
                if registry.already_imported {
                    "true"
                } else {
                    "false"
                },
            );
            for (name, count) in &registry.outcomes {
                app.push_str(&format!(
                    "<tns:Outcome name=\"{}\"><tns:Count>{count}</tns:Count></tns:Outcome>",
                    escape(name)
                ));
            }
            app.push_str("</tns:RegistryOutcome>");
            let code = format!("reconciliation-{bank}-{}.csv", registry.date);
            let report = Document {
                sha256: hex(&sha2::Sha256::digest(report.as_bytes())),
                bytes: report.into_bytes(),
            };
            let base64 = base64::engine::general_purpose::STANDARD.encode(&report.bytes);
            let outcome = format!(
                "imported as registry {}: {} lines",
                registry.id, registry.lines
            );
            let note = format!("<!-- {} -->", report.note());
            x.answer_with_document(
                op,
                m,
                id,
                Some(app),
                &AppDocument {
                    request_code: &code,
                    binary_data: &base64,
                },
                &note,
                outcome,
            )
        }
    }
}

async fn ask(
    x: &Call<'_>,
    bank: &str,
    upload: &str,
    page: u32,
) -> Result<RegistryState, bus::BusError> {
    let query = RegistryQuery {
        bank: bank.to_string(),
        upload: upload.to_string(),
        page,
    };
    let env = bus::Envelope::json(RegistryQuery::TOPIC, RegistryQuery::KIND, &query)?;
    let timeout = std::time::Duration::from_millis(x.ctx.settings.gateway.service_timeout_ms);
    let reply = x.ctx.bus.bus.request(env, timeout).await?;
    reply
        .decode::<RegistryState>()
        .map_err(|e| bus::BusError::Remote(e.to_string()))
}

/// Answers for the documents the gateway keeps: one chunk per request.
pub struct DocumentResponder;

impl bus::Responder for DocumentResponder {
    fn respond(
        &self,
        conn: &mut storage::DbConnection,
        request: &bus::Envelope,
    ) -> Result<String, bus::HandlerError> {
        let q: DocumentChunkRequest = request.decode()?;
        let idx = i32::try_from(q.index).map_err(|_| {
            bus::HandlerError::Permanent(format!("chunk {} does not exist", q.index))
        })?;
        let data = store::document_chunk(conn, &q.document, idx)?.ok_or_else(|| {
            bus::HandlerError::Permanent(format!(
                "document {} has no chunk {} (removed after the retention period?)",
                q.document, q.index
            ))
        })?;
        serde_json::to_string(&DocumentChunk { data })
            .map_err(|e| bus::HandlerError::Permanent(e.to_string()))
    }
}
