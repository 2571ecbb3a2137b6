//! The operator's REST API of the gateway: participants and their rights (every
//! change audited: who, when, before, after), and the message log searched by
//! any of its keys. `operator_admin` only.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, FixedOffset};
use platform::{Caller, Page, Problem, Role, ServiceContext};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::participant::{Draft, Participant};

mod connections;
mod deliveries;
use crate::soap::contracts;
use crate::store::{self, AuditRow, LogFilter, LogRow, ParticipantRow};

pub fn scope(ctx: &ServiceContext) -> actix_web::Scope {
    deliveries::routes(connections::routes(web::scope("/api/gateway")))
        .app_data(web::Data::new(ctx.clone()))
        .route("/operations", web::get().to(operations))
        .route("/participants", web::get().to(list))
        .route("/participants/{code}", web::get().to(get))
        .route("/participants/{code}", web::put().to(put))
        .route("/participants/{code}/rights", web::get().to(rights))
        .route(
            "/participants/{code}/rights/{operation}",
            web::put().to(grant),
        )
        .route(
            "/participants/{code}/rights/{operation}",
            web::delete().to(revoke),
        )
        .route("/audit", web::get().to(audit))
        .route("/log", web::get().to(search))
        .route("/log/{seq}", web::get().to(record))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(operations, list, get, put, rights, grant, revoke, audit, search, record,
        connections::start, connections::get, connections::step, connections::overdue, connections::act,
        deliveries::list, deliveries::replay),
    components(schemas(ParticipantBody, ContactBody, ParticipantView, AuditEntry, LogEntry, LogRecord,
        connections::StartBody, connections::StepBody, connections::StepView, connections::ConnectionView, connections::OverdueView,
        deliveries::DeliveryView)),
    tags((name = "gateway", description = "The XML gateway's participants (external information systems, banks, \
        caterers, queue terminals), their rights per SOAP operation (deny by default), the audit of changes, and \
        the message log. Operator only."))
)]
pub struct GatewayApi;

fn operator(caller: &Caller) -> Result<(), Problem> {
    caller.require(&[Role::OperatorAdmin])
}

/// The operations a participant can be granted (`<endpoint>.<Operation>`).
#[utoipa::path(get, path = "/api/gateway/operations", tag = "gateway",
    security(("bearer" = [])), responses((status = 200, body = [String])))]
async fn operations(caller: Caller) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    Ok(HttpResponse::Ok().json(contracts::all_rights()))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    pub name: String,
    pub phone: String,
    pub email: String,
}

/// A participant as the operator registers it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParticipantBody {
    pub name: String,
    /// ИНН of the organisation (check digits verified).
    pub inn: String,
    /// ОГРН of the organisation (check digit verified).
    pub ogrn: String,
    /// agency, bank, caterer or terminal.
    pub kind: String,
    /// test or production.
    pub contour: String,
    /// The «Технический специалист».
    pub contacts: ContactBody,
    /// The address of the participant's own service (for outbound calls).
    #[serde(default)]
    pub address: String,
    /// PEM certificates of the participant's signing keys.
    #[serde(default)]
    pub certificates: Vec<String>,
    /// A bank participant: the bank code payments knows.
    #[serde(default)]
    pub bank: Option<String>,
    /// A caterer participant: its organizer id.
    #[serde(default)]
    pub organizer: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParticipantView {
    pub code: String,
    #[serde(flatten)]
    pub body: ParticipantBody,
    /// Operations granted.
    pub rights: Vec<String>,
    pub updated_at: String,
}

fn row_of(p: &Participant, now: chrono::NaiveDateTime) -> ParticipantRow {
    ParticipantRow {
        code: p.code.clone(),
        name: p.name.clone(),
        inn: p.inn.as_str().to_string(),
        ogrn: p.ogrn.as_str().to_string(),
        kind: p.kind.as_str().into(),
        contour: p.contour.as_str().into(),
        contacts: serde_json::to_string(&p.contact).unwrap_or_default(),
        address: p.address.clone(),
        certificates: serde_json::to_string(&p.certificates).unwrap_or_default(),
        bank: p.bank.clone(),
        organizer: p.organizer.clone(),
        active: p.active,
        updated_at: now,
    }
}

fn view_of(row: ParticipantRow, rights: Vec<String>) -> ParticipantView {
    let contact: ContactBody = serde_json::from_str(&row.contacts).unwrap_or(ContactBody {
        name: String::new(),
        phone: String::new(),
        email: String::new(),
    });
    ParticipantView {
        code: row.code,
        body: ParticipantBody {
            name: row.name,
            inn: row.inn,
            ogrn: row.ogrn,
            kind: row.kind,
            contour: row.contour,
            contacts: contact,
            address: row.address,
            certificates: serde_json::from_str(&row.certificates).unwrap_or_default(),
            bank: row.bank,
            organizer: row.organizer,
            active: row.active,
        },
        rights,
        updated_at: calendar::tyumen_iso(row.updated_at),
    }
}

/// Every participant with its rights.
#[utoipa::path(get, path = "/api/gateway/participants", tag = "gateway",
    security(("bearer" = [])), responses((status = 200, body = [ParticipantView])))]
async fn list(ctx: web::Data<ServiceContext>, caller: Caller) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let views = ctx
        .db
        .read(|conn| -> Result<_, storage::StorageError> {
            let rows = store::all_participants(conn)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let rights = store::rights_of(conn, &r.code)?;
                out.push(view_of(r, rights));
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(views))
}

/// One participant.
#[utoipa::path(get, path = "/api/gateway/participants/{code}", tag = "gateway",
    params(("code" = String, Path, description = "The participant's code")),
    security(("bearer" = [])), responses((status = 200, body = ParticipantView), (status = 404, body = Problem)))]
async fn get(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    Ok(HttpResponse::Ok().json(registered(&ctx, path.into_inner()).await?))
}

fn missing(code: &str) -> Problem {
    Problem::not_found(format!("participant {code} does not exist"))
}

/// A registered participant with its rights, or 404.
async fn registered(ctx: &ServiceContext, code: String) -> Result<ParticipantView, Problem> {
    let c = code.clone();
    let found = ctx
        .db
        .read(move |conn| -> Result<_, storage::StorageError> {
            let Some(r) = store::participant(conn, &c)? else {
                return Ok(None);
            };
            let rights = store::rights_of(conn, &c)?;
            Ok(Some(view_of(r, rights)))
        })
        .await?;
    found.ok_or_else(|| missing(&code))
}

fn audit_row(
    caller: &Caller,
    entity: &str,
    id: &str,
    action: &str,
    before: Option<String>,
    after: Option<String>,
    at: chrono::NaiveDateTime,
) -> AuditRow {
    AuditRow {
        id: uuid::Uuid::now_v7().to_string(),
        at,
        actor: caller.subject.clone(),
        entity: entity.into(),
        entity_id: id.into(),
        action: action.into(),
        before_value: before,
        after_value: after,
    }
}

fn json_of(row: &ParticipantRow) -> String {
    serde_json::to_string(&view_of(row.clone(), Vec::new()).body).unwrap_or_default()
}

/// Registers a participant or changes it (the whole record).
#[utoipa::path(put, path = "/api/gateway/participants/{code}", tag = "gateway", request_body = ParticipantBody,
    params(("code" = String, Path, description = "SMEV-style code: 3–32 Latin capitals, digits, _ or -")),
    security(("bearer" = [])), responses((status = 200, body = ParticipantView), (status = 201, body = ParticipantView), (status = 400, body = Problem)))]
async fn put(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<ParticipantBody>,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let b = body.into_inner();
    let draft = Draft {
        code: path.into_inner(),
        name: b.name,
        inn: b.inn,
        ogrn: b.ogrn,
        kind: b.kind,
        contour: b.contour,
        contact_name: b.contacts.name,
        contact_phone: b.contacts.phone,
        contact_email: b.contacts.email,
        address: b.address,
        certificates: b.certificates,
        bank: b.bank,
        organizer: b.organizer,
        active: b.active,
    };
    let participant = draft
        .validate()
        .map_err(|e| Problem::invalid(e.field, e.message))?;
    if participant.contour == settings::Contour::Production {
        if let Some(state) = connections::state_for(&ctx, &participant.code).await? {
            if !state.allows_production() {
                return Err(Problem::conflict(
                    "connection-not-finished",
                    format!(
                        "participant {}'s connection is at {}: the production contour comes after the act of connection",
                        participant.code,
                        state.as_str()
                    ),
                ));
            }
        }
    }
    let now = ctx.clock.now().naive_utc();
    let row = row_of(&participant, now);
    let (view, created) = ctx
        .db
        .write(move |conn| -> Result<_, storage::StorageError> {
            let before = store::save_participant(conn, &row)?;
            let created = before.is_none();
            let action = if created { "create" } else { "update" };
            store::audit(
                conn,
                &audit_row(
                    &caller,
                    "participant",
                    &row.code,
                    action,
                    before.as_ref().map(json_of),
                    Some(json_of(&row)),
                    now,
                ),
            )?;
            let rights = store::rights_of(conn, &row.code)?;
            Ok((view_of(row, rights), created))
        })
        .await?;
    Ok(if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
    .json(view))
}

/// The operations a participant may call.
#[utoipa::path(get, path = "/api/gateway/participants/{code}/rights", tag = "gateway",
    params(("code" = String, Path, description = "The participant's code")),
    security(("bearer" = [])), responses((status = 200, body = [String]), (status = 404, body = Problem)))]
async fn rights(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    Ok(HttpResponse::Ok().json(registered(&ctx, path.into_inner()).await?.rights))
}

async fn change_right(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
    granting: bool,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let (code, operation) = path.into_inner();
    if !contracts::all_rights().contains(&operation) {
        return Err(Problem::invalid(
            "operation",
            format!(
                "no operation {operation}; the gateway serves {}",
                contracts::all_rights().join(", ")
            ),
        ));
    }
    if granting {
        if let Some(state) = connections::state_for(&ctx, &code).await? {
            if !state.allows_rights() {
                return Err(Problem::conflict(
                    "connection-not-finished",
                    format!(
                        "participant {code}'s connection is at {}: rights are granted from testing on",
                        state.as_str()
                    ),
                ));
            }
        }
    }
    let now = ctx.clock.now().naive_utc();
    let c = code.clone();
    let changed = ctx
        .db
        .write(move |conn| -> Result<_, storage::StorageError> {
            if store::participant(conn, &c)?.is_none() {
                return Ok(None);
            }
            let changed = if granting {
                store::grant(conn, &c, &operation, &caller.subject, now)?
            } else {
                store::revoke(conn, &c, &operation)?
            };
            if changed {
                let (before, after) = if granting {
                    (None, Some(operation.clone()))
                } else {
                    (Some(operation.clone()), None)
                };
                store::audit(
                    conn,
                    &audit_row(
                        &caller,
                        "right",
                        &c,
                        if granting { "grant" } else { "revoke" },
                        before,
                        after,
                        now,
                    ),
                )?;
            }
            Ok(Some(store::rights_of(conn, &c)?))
        })
        .await?;
    changed
        .map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| missing(&code))
}

/// Grants an operation (idempotent); answers the participant's rights.
#[utoipa::path(put, path = "/api/gateway/participants/{code}/rights/{operation}", tag = "gateway",
    params(("code" = String, Path, description = "The participant's code"), ("operation" = String, Path, description = "e.g. banks.Pay")),
    security(("bearer" = [])), responses((status = 200, body = [String]), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn grant(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    change_right(ctx, caller, path, true).await
}

/// Revokes an operation (idempotent); answers the participant's rights.
#[utoipa::path(delete, path = "/api/gateway/participants/{code}/rights/{operation}", tag = "gateway",
    params(("code" = String, Path, description = "The participant's code"), ("operation" = String, Path, description = "e.g. banks.Pay")),
    security(("bearer" = [])), responses((status = 200, body = [String]), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn revoke(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    change_right(ctx, caller, path, false).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only changes of this participant.
    pub participant: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub at: String,
    pub actor: String,
    /// participant or right.
    pub entity: String,
    pub participant: String,
    /// create, update, grant, revoke.
    pub action: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Who changed which participant or right, when, from what to what; newest first.
#[utoipa::path(get, path = "/api/gateway/audit", tag = "gateway", params(AuditQuery),
    security(("bearer" = [])), responses((status = 200, body = [AuditEntry]), (status = 400, body = Problem)))]
async fn audit(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let q = q.into_inner();
    let page = Page::parse(q.page, q.per_page, 50, 500)?;
    let rows = ctx
        .db
        .read(move |conn| {
            store::audit_of(conn, q.participant.as_deref(), page.offset(), page.per_page)
        })
        .await?;
    let out: Vec<AuditEntry> = rows
        .into_iter()
        .map(|r| AuditEntry {
            at: calendar::tyumen_iso(r.at),
            actor: r.actor,
            entity: r.entity,
            participant: r.entity_id,
            action: r.action,
            before: r.before_value,
            after: r.after_value,
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// The sender's message id (smev:Header/MessageId).
    pub message_id: Option<String>,
    pub request_id_ref: Option<String>,
    pub origin_request_id_ref: Option<String>,
    pub case_number: Option<String>,
    /// The participant's code.
    pub participant: Option<String>,
    /// The operation, e.g. Pay.
    pub operation: Option<String>,
    /// The answer's status: RESULT, REJECT, INVALID, FAILURE, PING, ACCEPT.
    pub status: Option<String>,
    /// From this moment (inclusive), ISO 8601 with offset.
    pub from: Option<DateTime<FixedOffset>>,
    /// Before this moment, ISO 8601 with offset.
    pub to: Option<DateTime<FixedOffset>>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// An exchange, without its bodies.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    pub seq: i64,
    pub at: String,
    /// in: a participant called the platform; out: the platform called one.
    pub direction: String,
    pub participant: String,
    pub service: String,
    pub operation: String,
    pub message_id: String,
    pub request_id_ref: Option<String>,
    pub origin_request_id_ref: Option<String>,
    pub case_number: Option<String>,
    pub status: String,
    pub outcome: String,
    pub duration_ms: i64,
    pub hash: String,
}

/// An exchange with its request and response, as they crossed the door.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogRecord {
    #[serde(flatten)]
    pub entry: LogEntry,
    pub request: String,
    pub response: String,
}

fn entry(r: &LogRow) -> LogEntry {
    let e = r.exchange.clone();
    LogEntry {
        seq: r.seq,
        at: calendar::tyumen_iso(r.at),
        direction: e.direction,
        participant: e.participant,
        service: e.service,
        operation: e.operation,
        message_id: e.message_id,
        request_id_ref: e.request_id_ref,
        origin_request_id_ref: e.origin_request_id_ref,
        case_number: e.case_number,
        status: e.status,
        outcome: e.outcome,
        duration_ms: e.duration_ms,
        hash: r.hash.clone(),
    }
}

/// Searches the message log by any of its keys (all given must match); newest first.
#[utoipa::path(get, path = "/api/gateway/log", tag = "gateway", params(LogQuery),
    security(("bearer" = [])), responses((status = 200, body = [LogEntry]), (status = 400, body = Problem)))]
async fn search(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    q: web::Query<LogQuery>,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let q = q.into_inner();
    let page = Page::parse(q.page, q.per_page, 50, 500)?;
    if let Some(s) = &q.status {
        if crate::domain::envelope::Status::parse(s).is_none() {
            return Err(Problem::invalid("status", "one of the SMEV statuses: REQUEST, RESULT, REJECT, INVALID, ACCEPT, PING, PROCESS, NOTIFY, FAILURE, CANCEL, STATE, PACKET"));
        }
    }
    let filter = LogFilter {
        message_id: q.message_id,
        request_id_ref: q.request_id_ref,
        origin_request_id_ref: q.origin_request_id_ref,
        case_number: q.case_number,
        participant: q.participant,
        operation: q.operation,
        status: q.status,
        from: q.from.map(|t| t.naive_utc()),
        to: q.to.map(|t| t.naive_utc()),
    };
    let rows = ctx
        .db
        .read(move |conn| store::search_log(conn, &filter, page.offset(), page.per_page))
        .await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(entry).collect::<Vec<_>>()))
}

/// One exchange with its bodies.
#[utoipa::path(get, path = "/api/gateway/log/{seq}", tag = "gateway",
    params(("seq" = i64, Path, description = "The record's place in the chain")),
    security(("bearer" = [])), responses((status = 200, body = LogRecord), (status = 404, body = Problem)))]
async fn record(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let seq = path.into_inner();
    let row = ctx
        .db
        .read(move |conn| store::log_record(conn, seq))
        .await?;
    match row {
        Some(r) => Ok(HttpResponse::Ok().json(LogRecord {
            entry: entry(&r),
            request: r.exchange.request_body,
            response: r.exchange.response_body,
        })),
        None => Err(Problem::not_found(format!(
            "log record {seq} does not exist"
        ))),
    }
}
