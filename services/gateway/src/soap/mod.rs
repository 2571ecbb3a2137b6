//! The SOAP door: `GET /soap/<endpoint>?wsdl` (and `?xsd=<file>`) serve the
//! contracts; `POST /soap/<endpoint>` takes a request in the SMEV envelope:
//! read safely, validate against the XSD, judge the envelope (sender, recipient,
//! contour, status, right), answer a repeat with the first answer, route to the
//! service over the bus, log, answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use platform::ServiceContext;

pub mod banks;
pub mod c14n;
pub mod calls;
pub mod contracts;
pub mod dsig;
pub mod json;
pub mod read;
pub mod registry;
pub mod write;
pub mod xsd;

use crate::domain::envelope::{self, Header, Message, Org, SenderView, Status, Verdict};
use crate::domain::participant::parse_contour;
use crate::log::LogWriter;
use crate::store;
use contracts::Endpoint;
use write::GatewayError;

/// The gateway's state in a process: the log writer and the requests in flight
/// by (sender, message id), so a repeat sent while the first is still being
/// answered waits for it and gets its answer.
pub struct GatewayState {
    pub log: LogWriter,
    inflight: InFlight,
    /// Requests carrying a document (up to `max_document_mib` each, several
    /// times that in memory while read): at most two at once per process.
    documents: tokio::sync::Semaphore,
    /// The gateway's own key: answers and outbound calls are signed with it
    /// (actor recipient) when there is one.
    pub signer: Option<dsig::Signer>,
}

impl GatewayState {
    pub fn new(log: LogWriter, signer: Option<dsig::Signer>) -> GatewayState {
        GatewayState {
            log,
            inflight: InFlight::default(),
            documents: tokio::sync::Semaphore::new(2),
            signer,
        }
    }

    /// `xml` signed with the gateway's key, or as it is where there is none.
    pub fn sign(&self, xml: String) -> Result<String, String> {
        match &self.signer {
            Some(s) => s.sign(&xml, dsig::ACTOR_RECIPIENT),
            None => Ok(xml),
        }
    }
}

/// One turn at a time per key; a key no one holds or waits for is forgotten.
#[derive(Default)]
struct InFlight(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl InFlight {
    async fn one_at_a_time<T>(&self, key: &str, work: impl std::future::Future<Output = T>) -> T {
        let slot = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.to_string()).or_default().clone()
        };
        // Forgets the key however the work ends, a dropped request included.
        let _forget = Forget {
            map: &self.0,
            key,
            slot: Some(slot.clone()),
        };
        let _turn = slot.lock().await;
        work.await
    }
}

/// Removes a key no one holds or waits for any more, on drop.
struct Forget<'a> {
    map: &'a Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    key: &'a str,
    slot: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        drop(self.slot.take());
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // The map's own reference and the caller's `slot` are all that is left.
        if map.get(self.key).is_some_and(|s| Arc::strong_count(s) <= 2) {
            map.remove(self.key);
        }
    }
}

pub fn scope(ctx: &ServiceContext, state: Arc<GatewayState>) -> actix_web::Scope {
    web::scope("/soap")
        .app_data(web::Data::new(ctx.clone()))
        .app_data(web::Data::from(state))
        .route("/{endpoint}", web::get().to(documents))
        .route("/{endpoint}", web::post().to(serve))
}

/// The clock's time as the envelope writes it: Tyumen, with its offset.
pub fn smev_time(clock: &dyn calendar::Clock) -> String {
    clock
        .now()
        .with_timezone(&calendar::TYUMEN)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

async fn documents(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(endpoint) = contracts::endpoint(&path) else {
        return HttpResponse::NotFound().body(format!("no SOAP endpoint {path}"));
    };
    let query: HashMap<String, String> =
        web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default();
    let xsd = query.get("xsd").map(String::as_str);
    if xsd.is_none() && !query.contains_key("wsdl") {
        return HttpResponse::BadRequest().body(format!(
            "ask /soap/{path}?wsdl for the contract; POST SOAP requests here"
        ));
    }
    match contracts::document(endpoint, xsd, &base_url(&req)) {
        Some(text) => HttpResponse::Ok()
            .content_type("text/xml; charset=utf-8")
            .body(text),
        None => HttpResponse::NotFound().body("no such schema"),
    }
}

fn xml(status: u16, body: String) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
        .content_type("text/xml; charset=utf-8")
        .body(body)
}

/// What the gateway answered and how it logs it.
struct Outcome {
    http: u16,
    status: Status,
    outcome: String,
    body: String,
    /// The body as the log keeps it, when it differs (a document in it is
    /// named, not copied).
    logged: Option<String>,
}

/// One SOAP call being answered: what every answer of it needs.
struct Call<'a> {
    ctx: &'a ServiceContext,
    state: &'a GatewayState,
    endpoint: &'static Endpoint,
    started: Instant,
    /// The request as logged (a document in it named, not copied).
    request: String,
    /// The request's AppDocument, decoded.
    document: Option<registry::Document>,
    /// The client certificate (DER) the TLS connection showed.
    peer: Option<Vec<u8>>,
    /// The Sender's XML signature, checked on the request as received.
    signature: dsig::Checked,
}

impl Call<'_> {
    fn own(&self) -> Org {
        Org {
            code: self.ctx.settings.gateway.code.clone(),
            name: self.ctx.settings.gateway.name.clone(),
        }
    }

    fn now(&self) -> String {
        smev_time(self.ctx.clock.as_ref())
    }

    fn header(&self) -> Header {
        Header {
            node_id: self.ctx.settings.gateway.code.clone(),
            message_id: uuid::Uuid::now_v7().to_string(),
            time_stamp: self.now(),
            message_class: "RESPONSE".into(),
        }
    }

    fn invalid(
        &self,
        request: Option<(&Message, &str)>,
        error: GatewayError,
        http: u16,
    ) -> Outcome {
        let answer = request
            .map(|(m, id)| envelope::answer_to(m, id, &self.own(), Status::Invalid, &self.now()));
        Outcome {
            http,
            status: Status::Invalid,
            outcome: format!("{}: {}", error.code, error.text),
            body: write::fault(answer.as_ref(), &error),
            logged: None,
        }
    }

    fn answer(
        &self,
        operation: &str,
        m: &Message,
        id: &str,
        status: Status,
        app_data: Option<String>,
        outcome: String,
    ) -> Outcome {
        let answer = envelope::answer_to(m, id, &self.own(), status, &self.now());
        Outcome {
            http: 200,
            status,
            outcome,
            body: write::response(
                self.endpoint,
                operation,
                &self.header(),
                &answer,
                app_data.as_deref(),
            ),
            logged: None,
        }
    }

    /// RESULT with an AppDocument; the log keeps `note` in its BinaryData.
    #[allow(clippy::too_many_arguments)]
    fn answer_with_document(
        &self,
        operation: &str,
        m: &Message,
        id: &str,
        app_data: Option<String>,
        document: &write::AppDocument<'_>,
        note: &str,
        outcome: String,
    ) -> Outcome {
        let answer = envelope::answer_to(m, id, &self.own(), Status::Result, &self.now());
        let header = self.header();
        let body = |d: &write::AppDocument<'_>| {
            write::with_document(
                self.endpoint,
                operation,
                &header,
                &answer,
                app_data.as_deref(),
                Some(d),
            )
        };
        Outcome {
            http: 200,
            status: Status::Result,
            outcome,
            body: body(document),
            logged: Some(body(&write::AppDocument {
                request_code: document.request_code,
                binary_data: note,
            })),
        }
    }

    /// REJECT or FAILURE: the operation's response with `error` in AppData.
    fn refuse(
        &self,
        operation: &str,
        m: &Message,
        id: &str,
        status: Status,
        error: GatewayError,
    ) -> Outcome {
        let outcome = format!("{}: {}", error.code, error.text);
        self.answer(operation, m, id, status, Some(error.xml()), outcome)
    }

    /// Logs the exchange; the answer goes out only once it is logged.
    async fn finish(
        &self,
        inbound: Option<(&read::Inbound, &Message, &str)>,
        mut o: Outcome,
    ) -> HttpResponse {
        let (operation, participant, message_id, refs) = match inbound {
            Some((i, m, id)) => (
                i.operation.clone(),
                m.sender.code.clone(),
                id.to_string(),
                (
                    m.request_id_ref.clone(),
                    m.origin_request_id_ref.clone(),
                    m.case_number.clone(),
                ),
            ),
            None => (
                String::new(),
                String::new(),
                String::new(),
                (None, None, None),
            ),
        };
        if !matches!(self.signature, dsig::Checked::Unsigned) {
            o.outcome = format!("{}; {}", o.outcome, self.signature.note());
        }
        if self.state.signer.is_some() {
            let body = std::mem::take(&mut o.body);
            match self.state.sign(body) {
                Ok(signed) => o.body = signed,
                Err(e) => {
                    tracing::error!(error = %e, "an answer could not be signed");
                    let error = GatewayError::new(
                        "SERVICE_UNAVAILABLE",
                        format!("the answer could not be signed ({e}); ask again"),
                    );
                    o = Outcome {
                        http: 500,
                        status: Status::Failure,
                        outcome: format!("{}: {}", error.code, error.text),
                        body: write::fault(None, &error),
                        logged: None,
                    };
                }
            }
        }
        let record = store::Exchange {
            direction: "in".into(),
            participant,
            service: self.endpoint.name.to_string(),
            operation,
            message_id,
            request_id_ref: refs.0,
            origin_request_id_ref: refs.1,
            case_number: refs.2,
            status: o.status.as_str().to_string(),
            outcome: o.outcome,
            duration_ms: self.started.elapsed().as_millis() as i64,
            request_body: self.request.clone(),
            response_body: o.logged.unwrap_or_else(|| o.body.clone()),
        };
        // A signed request answered (not a FAILURE, an INVALID, a refusal of
        // its certificate or signature): its Body is not answered again under
        // another MessageId.
        let refused = [
            "CERTIFICATE",
            "SIGNATURE",
            "MESSAGE_ID_REUSED",
            "BODY_REPLAYED",
        ]
        .iter()
        .any(|code| record.outcome.starts_with(code));
        let signed_body = match &self.signature {
            dsig::Checked::Verified(s)
                if !refused && !matches!(o.status, Status::Failure | Status::Invalid) =>
            {
                Some(s.digests.computed.clone())
            }
            _ => None,
        };
        match self.state.log.write_answered(record, signed_body).await {
            Ok(_) => xml(o.http, o.body),
            Err(e) => {
                let error = GatewayError::new(
                    "LOG_UNAVAILABLE",
                    format!(
                        "the exchange could not be logged, so it was not answered: {e}; ask again"
                    ),
                );
                let body = match inbound {
                    Some((i, m, id)) => {
                        let answer =
                            envelope::answer_to(m, id, &self.own(), Status::Failure, &self.now());
                        write::response(
                            self.endpoint,
                            &i.operation,
                            &self.header(),
                            &answer,
                            Some(&error.xml()),
                        )
                    }
                    None => write::fault(None, &error),
                };
                xml(503, body)
            }
        }
    }
}

async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, GatewayError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            GatewayError::new("MALFORMED_XML", format!("the body could not be read: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(GatewayError::new(
                "TOO_LARGE",
                format!("the request exceeds {} MiB", limit / (1024 * 1024)),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn serve(
    ctx: web::Data<ServiceContext>,
    state: web::Data<GatewayState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let Some(endpoint) = contracts::endpoint(&path).filter(|e| !e.outbound) else {
        return HttpResponse::NotFound().body(format!(
            "no SOAP endpoint {path} to call here (a contract your own service implements is served at ?wsdl)"
        ));
    };
    let mut x = Call {
        ctx: &ctx,
        state: &state,
        endpoint,
        started: Instant::now(),
        request: String::new(),
        document: None,
        peer: req
            .conn_data::<platform::tls::PeerCertificate>()
            .map(|c| c.0.clone()),
        signature: dsig::Checked::Unsigned,
    };
    // A request that carries a document says so by its SOAPAction and may be
    // larger; its Body must then hold that operation.
    let action = req
        .headers()
        .get("SOAPAction")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| endpoint.action(a))
        .filter(|op| endpoint.documents.contains(op));
    let gw = &ctx.settings.gateway;
    let mib = if action.is_some() {
        gw.max_document_mib
    } else {
        gw.max_body_mib
    };
    let message_limit = (gw.max_body_mib as usize).saturating_mul(1024 * 1024);
    let limit = (mib as usize).saturating_mul(1024 * 1024);
    let _document_turn = match action {
        Some(_) => state.documents.acquire().await.ok(),
        None => None,
    };
    let bytes = match read_body(payload, limit).await {
        Ok(b) => b,
        Err(e) => {
            // Too large: answered at once, not logged whole (its first KiB is).
            let http = if e.code == "TOO_LARGE" { 413 } else { 400 };
            let o = x.invalid(None, e, http);
            return x.finish(None, o).await;
        }
    };
    let Ok(body) = String::from_utf8(bytes) else {
        let o = x.invalid(
            None,
            GatewayError::new("MALFORMED_XML", "the request must be UTF-8"),
            400,
        );
        return x.finish(None, o).await;
    };
    let size = body.len();
    x.request = body;
    let inbound = match read::read(&x.request) {
        Ok(i) => i,
        Err(error) => {
            let o = x.invalid(None, error, 500);
            return x.finish(None, o).await;
        }
    };
    if size > message_limit && action != Some(inbound.operation.as_str()) {
        let error = GatewayError::new(
            "TOO_LARGE",
            format!(
                "the request exceeds {} MiB; only {} may be larger, sent with its SOAPAction",
                gw.max_body_mib,
                action.unwrap_or("an operation carrying a document")
            ),
        );
        // Logged by its first KiB, not whole.
        x.request = x.request.chars().take(1024).collect();
        let o = x.invalid(None, error, 413);
        return x.finish(None, o).await;
    }
    // The signature is checked on the request as received, before the
    // document is elided; a large one off the server's thread.
    x.signature = if x.request.len() > 1024 * 1024 {
        let request = std::mem::take(&mut x.request);
        let checked = tokio::task::spawn_blocking(move || {
            let checked = dsig::check(&request);
            (request, checked)
        })
        .await;
        match checked {
            Ok((request, checked)) => {
                x.request = request;
                checked
            }
            Err(e) => {
                let error = GatewayError::new(
                    "SIGNATURE_INVALID",
                    format!("the signature check stopped: {e}"),
                );
                let o = x.invalid(None, error, 500);
                return x.finish(None, o).await;
            }
        }
    } else {
        dsig::check(&x.request)
    };
    // The document is decoded once and kept out of the log and the validator.
    if let Some(range) = inbound.document.clone() {
        let decoded = registry::Document::decode(&read::document_base64(&x.request, range.clone()));
        match decoded {
            Ok(doc) => {
                x.request = read::elide_document(&x.request, range, &doc.note());
                x.document = Some(doc);
            }
            Err(error) => {
                x.request = read::elide_document(&x.request, range, "not base64");
                let o = x.invalid(None, error, 500);
                return x.finish(None, o).await;
            }
        }
    }
    // Only the document may be large: what is left is a message like any other.
    if x.request.len() > message_limit {
        let error = GatewayError::new(
            "TOO_LARGE",
            format!(
                "beside its document, the request exceeds {} MiB",
                gw.max_body_mib
            ),
        );
        x.request = x.request.chars().take(1024).collect();
        let o = x.invalid(None, error, 413);
        return x.finish(None, o).await;
    }
    if inbound.namespace != endpoint.namespace
        || !endpoint.operations.contains(&inbound.operation.as_str())
    {
        let error = GatewayError {
            path: Some(format!("/Envelope/Body/{}", inbound.operation)),
            ..GatewayError::new(
                "SCHEMA_VIOLATION",
                format!(
                    "{{{}}}{} is not an operation of /soap/{}: expected one of {} in {}",
                    inbound.namespace,
                    inbound.operation,
                    endpoint.name,
                    endpoint.operations.join(", "),
                    endpoint.namespace
                ),
            )
        };
        let o = x.invalid(None, error, 500);
        return x.finish(None, o).await;
    }
    if let Err(violations) = xsd::validate(endpoint, &x.request) {
        let first = violations.into_iter().next();
        let error = match first {
            Some(v) => GatewayError {
                path: v
                    .line
                    .and_then(|l| read::path_at_line(&x.request, l, read::element_named(&v.text))),
                line: v.line,
                column: v.column,
                ..GatewayError::new("SCHEMA_VIOLATION", v.text)
            },
            None => GatewayError::new("SCHEMA_VIOLATION", "the request does not match the schema"),
        };
        let o = x.invalid(None, error, 500);
        return x.finish(None, o).await;
    }
    let message = inbound.message();
    let message_id = inbound
        .header
        .as_ref()
        .map(|h| h.message_id.clone())
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let key = format!("{}\u{0}{message_id}", message.sender.code);
    state
        .inflight
        .one_at_a_time(&key, answer(&x, &inbound, &message, &message_id))
        .await
}

async fn answer(x: &Call<'_>, inbound: &read::Inbound, m: &Message, id: &str) -> HttpResponse {
    let op = inbound.operation.clone();
    let right = contracts::right(x.endpoint, &op);
    let (sender, id2, right2) = (m.sender.code.clone(), id.to_string(), right.clone());
    let digest = match &x.signature {
        dsig::Checked::Verified(s) => Some(s.digests.computed.clone()),
        _ => None,
    };
    let known = x
        .ctx
        .db
        .read(move |conn| -> Result<_, storage::StorageError> {
            let first = store::first_answer(conn, &sender, &id2)?;
            let participant = store::participant(conn, &sender)?;
            let granted = store::is_granted(conn, &sender, &right2)?;
            let replayed = match &digest {
                Some(d) => store::signed_body_answered(conn, &sender, d, &id2)?,
                None => None,
            };
            Ok((first, participant, granted, replayed))
        })
        .await;
    let (first, participant, granted, replayed) = match known {
        Ok(k) => k,
        Err(e) => {
            let error = GatewayError::new(
                "SERVICE_UNAVAILABLE",
                format!("the gateway's database does not answer: {e}; ask again"),
            );
            let o = x.refuse(&op, m, id, Status::Failure, error);
            return x.finish(Some((inbound, m, id)), o).await;
        }
    };
    // Mutual TLS: the certificate shown must be the Sender's own (before a
    // repeat is answered: a first answer goes to its Sender only).
    if let Some(p) = &participant {
        let certificates: Vec<String> = serde_json::from_str(&p.certificates).unwrap_or_default();
        let shown = match &x.peer {
            None => envelope::ClientCertificate::None,
            Some(der) if platform::tls::is_one_of(der, &certificates) => {
                envelope::ClientCertificate::Sender
            }
            Some(_) => envelope::ClientCertificate::Other,
        };
        let required = x.ctx.settings.gateway.require_client_certificate;
        // The TLS certificate, then the XML signature.
        let judged = match envelope::judge_certificate(&p.code, shown, required) {
            Ok(()) => judge_signature(x, p, &certificates)
                .await
                .map_err(|r| GatewayError::new(r.code, r.text)),
            Err(r) => Err(GatewayError::new(r.code, r.text)),
        };
        // The MessageId is not signed: a signed Body answered under another
        // one is a replay, not a new message.
        let judged = judged.and_then(|()| match &replayed {
            Some(then) => Err(GatewayError::new(
                "BODY_REPLAYED",
                format!("this signed Body was answered as MessageId {then}: a new message is a new Body, signed anew"),
            )),
            None => Ok(()),
        });
        if let Err(error) = judged {
            // The database not answering is a FAILURE (ask again), not a verdict.
            let status = if error.code == "SERVICE_UNAVAILABLE" {
                Status::Failure
            } else {
                Status::Reject
            };
            let o = x.refuse(&op, m, id, status, error);
            return x.finish(Some((inbound, m, id)), o).await;
        }
    }
    // A STATE only reads: asked again, it is answered anew.
    let first = first.filter(|_| !x.endpoint.states.contains(&op.as_str()));
    // A signed repeat gets the first answer only if it signs the same Body:
    // the MessageId sits in the unsigned header, and another signed Body of
    // the Sender's with this MessageId put on it must not fetch the answer.
    if let (Some(first), dsig::Checked::Verified(signed)) = (&first, &x.signature) {
        if let Some(then) = dsig::body_digest_in(&first.exchange.outcome) {
            if then != signed.digests.computed {
                let error = GatewayError::new(
                    "MESSAGE_ID_REUSED",
                    format!("MessageId {id} was answered for another signed Body: a new message needs a new MessageId"),
                );
                let o = x.refuse(&op, m, id, Status::Reject, error);
                return x.finish(Some((inbound, m, id)), o).await;
            }
        }
    }
    if let Some(first) = first {
        let o = Outcome {
            http: if first.exchange.status == "INVALID" {
                500
            } else {
                200
            },
            status: Status::parse(&first.exchange.status).unwrap_or(Status::Result),
            outcome: format!("repeat of record {}: answered as then", first.seq),
            body: first.exchange.response_body,
            logged: None,
        };
        return x.finish(Some((inbound, m, id)), o).await;
    }
    let view = participant.as_ref().map(|p| SenderView {
        active: p.active,
        contour: parse_contour(&p.contour).unwrap_or(settings::Contour::Production),
    });
    let gw = &x.ctx.settings.gateway;
    let asks_with = x.endpoint.asks_with(&op);
    let verdict = envelope::judge_as(m, view.as_ref(), &gw.code, gw.contour, asks_with, || {
        granted
    });
    let o = match verdict {
        Err(r) => x.refuse(
            &op,
            m,
            id,
            Status::Reject,
            GatewayError::new(r.code, r.text),
        ),
        Ok(Verdict::Ping) => x.answer(&op, m, id, Status::Ping, None, "PING".into()),
        Ok(Verdict::Route) => match &participant {
            Some(p) => route(x, inbound, m, id, p).await,
            // `judge` routes known senders only.
            None => x.refuse(
                &op,
                m,
                id,
                Status::Reject,
                GatewayError::new("UNKNOWN_SENDER", "unknown sender"),
            ),
        },
    };
    x.finish(Some((inbound, m, id)), o).await
}

/// The Sender's XML signature judged: required or not, one that does not
/// hold is refused; one that holds must be made with a certificate
/// registered for the Sender now (one taken off its list is named so) and
/// within its dates.
async fn judge_signature(
    x: &Call<'_>,
    p: &store::ParticipantRow,
    certificates: &[String],
) -> Result<(), dsig::Refusal> {
    let mut registration = dsig::Registration::Registered;
    if let dsig::Checked::Verified(s) = &x.signature {
        if !platform::tls::is_one_of(&s.certificate, certificates) {
            let (code, der) = (p.code.clone(), s.certificate.clone());
            registration = x
                .ctx
                .db
                .read(move |conn| store::certificate_retired(conn, &code, &der))
                .await
                .map_err(|e| dsig::Refusal {
                    code: "SERVICE_UNAVAILABLE",
                    text: format!("the gateway's database does not answer: {e}; ask again"),
                })?
                .map(|at| dsig::Registration::Retired {
                    at: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                })
                .unwrap_or(dsig::Registration::Unknown);
        }
    }
    dsig::judge(
        &x.signature,
        &p.code,
        x.ctx.settings.gateway.require_signature,
        registration,
        chrono::Utc::now().timestamp(),
    )
}

async fn route(
    x: &Call<'_>,
    inbound: &read::Inbound,
    m: &Message,
    id: &str,
    participant: &store::ParticipantRow,
) -> Outcome {
    let op = inbound.operation.as_str();
    let reject = |code: &str, text: String| {
        x.refuse(op, m, id, Status::Reject, GatewayError::new(code, text))
    };
    if !x.endpoint.states.contains(&op) && !inbound.has_app_data() {
        let error = GatewayError {
            path: Some(format!("/Envelope/Body/{op}/MessageData")),
            ..GatewayError::new(
                "SCHEMA_VIOLATION",
                format!("a REQUEST to {op} needs its AppData"),
            )
        };
        return x.invalid(Some((m, id)), error, 500);
    }
    if calls::serves(x.endpoint.name) {
        return calls::call(x, m, id, op, participant).await;
    }
    let timeout = Duration::from_millis(x.ctx.settings.gateway.service_timeout_ms);
    match x.endpoint.name {
        "banks" => {
            let Some(bank) = participant.bank.as_deref() else {
                return reject(
                    "NOT_GRANTED",
                    format!("participant {} is not mapped to a bank", participant.code),
                );
            };
            match op {
                "UploadRegistry" => {
                    return registry::upload(x, inbound, m, id, participant, bank).await
                }
                "RegistryState" => return registry::state(x, m, id, participant, bank).await,
                _ => {}
            }
            let request = match banks::request(bank, op, inbound) {
                Ok(r) => r,
                Err(e) => return x.invalid(Some((m, id)), e, 500),
            };
            let reply = match banks::envelope(&request) {
                Ok(env) => x.ctx.bus.bus.request(env, timeout).await,
                Err(e) => Err(e),
            };
            match reply.and_then(|r| {
                r.decode::<::contracts::payments::BankAnswer>()
                    .map_err(|e| bus::BusError::Remote(e.to_string()))
            }) {
                Ok(a) => {
                    let outcome = format!("{} {}", a.code, a.message);
                    x.answer(
                        op,
                        m,
                        id,
                        Status::Result,
                        Some(banks::answer_xml(&a)),
                        outcome,
                    )
                }
                Err(e) => failure(x, op, m, id, e),
            }
        }
        other => reject("NOT_GRANTED", format!("no service behind endpoint {other}")),
    }
}

fn failure(x: &Call<'_>, op: &str, m: &Message, id: &str, e: bus::BusError) -> Outcome {
    let error = GatewayError::new(
        "SERVICE_UNAVAILABLE",
        format!("the service did not answer ({e}); nothing was applied that a repeat would apply twice: ask again"),
    );
    x.refuse(op, m, id, Status::Failure, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_message_at_a_time_and_nothing_left_behind() {
        let inflight = Arc::new(InFlight::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let run = |n: u32| {
            let (inflight, order) = (inflight.clone(), order.clone());
            tokio::spawn(async move {
                inflight
                    .one_at_a_time("BANK01\u{0}m-1", async {
                        order.lock().unwrap_or_else(|p| p.into_inner()).push(n);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        order.lock().unwrap_or_else(|p| p.into_inner()).push(n);
                    })
                    .await
            })
        };
        let (a, b) = (run(1), run(2));
        let _ = (a.await, b.await);
        let order = order.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert!(order == [1, 1, 2, 2] || order == [2, 2, 1, 1], "{order:?}");
        assert!(inflight
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty());
    }
}
