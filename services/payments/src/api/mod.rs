//! REST handlers of the payments service: parse, authorize, call the domain and
//! the store, map errors to problem+json.

pub mod acquiring;
pub mod banking;
pub mod charges;
pub mod registries;
pub mod reports;
mod schemas;

use actix_web::{web, HttpRequest, HttpResponse};
use platform::{Caller, Problem, Role, ServiceContext};
use primitives::Money;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::access;
use crate::domain::ledger::{AccountKind, Movement, MovementKind, SUSPENSE};
use crate::store::group_commit::LedgerWriter;
use crate::store::{self, NewAccount, StoreError};

/// Transactions the adjustments' group commit runs at once (2 measured best on
/// 2 cores: one commits while the other collects; see docs/PERFORMANCE.md).
pub const LEDGER_COMMITTERS: usize = 2;
/// Movements one of those transactions posts at most.
pub const LEDGER_BATCH: usize = 256;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError(match e {
            StoreError::UnknownAccount(a) => {
                Problem::not_found(format!("account {a} does not exist"))
            }
            StoreError::AccountExists(a) => {
                Problem::conflict("account-exists", format!("account {a} exists already"))
            }
            StoreError::UnknownMovement(m) => {
                Problem::not_found(format!("movement {m} does not exist"))
            }
            StoreError::AlreadyReversed(m) => Problem::conflict(
                "already-reversed",
                format!("movement {m} has been reversed already"),
            ),
            // The operator's matter (a key missing from the ring), never the caller's.
            StoreError::Secret(s) => Problem::internal(s),
            StoreError::Ledger(e) => Problem::internal(e),
            StoreError::Bus(e) => Problem::internal(e),
            StoreError::Storage(s) => Problem::from(s),
        })
    }
}

/// A problem as the error of this module's handlers.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError(p)
    }
}

impl From<storage::StorageError> for ApiError {
    fn from(e: storage::StorageError) -> Self {
        ApiError(Problem::from(e))
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError(Problem::from(e))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.0.status_code()
    }
    fn error_response(&self) -> HttpResponse {
        self.0.error_response()
    }
}

pub fn routes(ctx: &ServiceContext, cfg: &mut web::ServiceConfig) {
    // actix hands a request to the first scope whose prefix matches, so the more
    // specific scopes (`/api/payments/banks`, …) are registered before the general
    // `/api/payments` one, whose routes are added last.
    cfg.service(banking::scope(ctx));
    cfg.service(registries::scope(ctx));
    cfg.service(reports::scope(ctx));
    cfg.service(charges::scope(ctx));
    cfg.service(acquiring::services(ctx));
    // Resources, not a scope: a scope on `/api/payments` would swallow every
    // longer path. The context is attached per resource, since every service of
    // the process has a `ServiceContext` of its own.
    let data = web::Data::new(ctx.clone());
    let resource = |path: &str| web::resource(path).app_data(data.clone());
    // Adjustments share transactions under load (group commit): one writer per
    // process, so every HTTP worker's requests batch together.
    let ledger = web::Data::from(
        ctx.shared
            .get_or_init(|| LedgerWriter::new(ctx.db.clone(), LEDGER_COMMITTERS, LEDGER_BATCH)),
    );
    cfg.service(resource("/api/payments/accounts").route(web::post().to(open_account)))
        .service(resource("/api/payments/accounts/{account}").route(web::get().to(get_account)))
        .service(
            resource("/api/payments/accounts/{account}/movements")
                .route(web::get().to(account_movements)),
        )
        .service(
            resource("/api/payments/accounts/{account}/adjustments")
                .app_data(ledger)
                .route(web::post().to(adjust)),
        )
        .service(
            resource("/api/payments/movements/{movement}/reversal").route(web::post().to(reverse)),
        );
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(open_account, get_account, account_movements, adjust, reverse),
    components(schemas(OpenAccount, AccountView, MovementLine, MovementPage, Adjustment, Reversal, MovementResult, AccountKind, MovementKind)),
    tags((name = "payments", description = "Personal accounts (лицевые счета) and the double-entry ledger"))
)]
pub struct PaymentsApi;

/// Open a personal account (лицевой счёт) for a student under an organizer's contract.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAccount {
    /// The student's personal account id in the meal module.
    pub account: String,
    /// What the money is for; `meals` for school meals.
    #[serde(default = "meals")]
    pub purpose: String,
    pub student_name: String,
    pub school: String,
    /// The class's id in the meal module: a class teacher sees the accounts of
    /// the class ids in their token. Optional; the meal module sends it with
    /// every account it opens.
    #[serde(default)]
    pub class_id: String,
    pub class_name: String,
    pub municipality: String,
    /// The meal organizer whose contract the account belongs to.
    pub organizer: String,
}

fn meals() -> String {
    "meals".into()
}

/// An account and its current balance.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    pub account: String,
    pub kind: AccountKind,
    pub purpose: String,
    pub student_name: String,
    pub school: String,
    pub class_id: String,
    pub class_name: String,
    pub municipality: String,
    pub organizer: String,
    pub active: bool,
    /// Rubles with kopecks, e.g. "1250.50"; negative when in credit.
    #[schema(value_type = String, example = "1250.50")]
    pub balance: Money,
}

fn valid_account_id(field: &str, id: &str) -> Result<(), Problem> {
    Problem::require_plain_id(field, id)
}

fn required(field: &str, value: &str) -> Result<(), Problem> {
    Problem::require_text(field, value)
}

/// Open a personal account (the operator; the meal module opens its students' accounts over the bus).
#[utoipa::path(post, path = "/api/payments/accounts", tag = "payments", request_body = OpenAccount,
    security(("bearer" = [])),
    responses((status = 201, body = AccountView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn open_account(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    body: web::Json<OpenAccount>,
) -> Result<HttpResponse, ApiError> {
    if !access::may_open_account(&caller) {
        return Err(Problem::forbidden(
            "only the operator opens accounts here; the meal module opens a student's \
             account when the school registers the student",
        )
        .into());
    }
    let body = body.into_inner();
    valid_account_id("account", &body.account)?;
    if body.account == SUSPENSE {
        return Err(Problem::invalid("account", "this id is reserved").into());
    }
    for (field, value) in [
        ("student_name", &body.student_name),
        ("school", &body.school),
        ("class_name", &body.class_name),
        ("municipality", &body.municipality),
        ("organizer", &body.organizer),
        ("purpose", &body.purpose),
    ] {
        required(field, value)?;
    }
    if !body.class_id.is_empty() {
        valid_account_id("class_id", &body.class_id)?;
    }

    let row = NewAccount {
        id: body.account.clone(),
        kind: AccountKind::Personal.as_str().into(),
        purpose: body.purpose,
        student_name: body.student_name,
        school: body.school,
        class_name: body.class_name,
        municipality: body.municipality,
        organizer: body.organizer,
        active: true,
        created_at: ctx.clock.now().naive_utc(),
        class_id: body.class_id,
    };
    let view = ctx
        .db
        .write(move |conn| {
            store::open_account(conn, &row)?;
            view_of(conn, &row.id)
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

fn view_of(conn: &mut storage::DbConnection, id: &str) -> Result<AccountView, StoreError> {
    let a =
        store::find_account(conn, id)?.ok_or_else(|| StoreError::UnknownAccount(id.to_string()))?;
    let balance = store::balance(conn, id)?;
    Ok(AccountView {
        kind: a.kind().unwrap_or(AccountKind::Personal),
        account: a.id,
        purpose: a.purpose,
        student_name: a.student_name,
        school: a.school,
        class_id: a.class_id,
        class_name: a.class_name,
        municipality: a.municipality,
        organizer: a.organizer,
        active: a.active,
        balance,
    })
}

/// Loads `id` and checks the caller may see it. An account the caller may not
/// see answers 404 like a missing one, so ids cannot be probed.
async fn visible_account(
    ctx: &ServiceContext,
    caller: &Caller,
    id: String,
) -> Result<store::AccountRow, ApiError> {
    let row = ctx
        .db
        .read(move |conn| store::find_account(conn, &id))
        .await?;
    match row {
        Some(row) if access::may_view_account(caller, &row.scope()) => Ok(row),
        Some(row) => Err(Problem::not_found(format!("account {} does not exist", row.id)).into()),
        None => Err(Problem::not_found("no such account").into()),
    }
}

/// An account with its balance.
#[utoipa::path(get, path = "/api/payments/accounts/{account}", tag = "payments",
    params(("account" = String, Path, description = "Personal account id")),
    security(("bearer" = [])),
    responses((status = 200, body = AccountView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_account(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = visible_account(&ctx, &caller, path.into_inner()).await?;
    let view = ctx.db.read(move |conn| view_of(conn, &row.id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1-based page number.
    #[param(minimum = 1, default = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub per_page: Option<i64>,
}

/// One movement as seen from an account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MovementLine {
    pub movement: String,
    pub kind: String,
    pub reason: String,
    pub author: String,
    pub reverses: Option<String>,
    /// Tyumen local time of the movement.
    pub at: String,
    /// Change of this account's balance.
    #[schema(value_type = String, example = "-145.00")]
    pub amount: Money,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MovementPage {
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub items: Vec<MovementLine>,
}

pub(crate) use platform::export::download;

/// A table as a download: XLSX when `format` is `xlsx`, else CSV.
pub(crate) fn file_response(
    format: &str,
    name: &str,
    headings: &[&str],
    rows: &[Vec<crate::export::Cell>],
) -> Result<HttpResponse, ApiError> {
    Ok(platform::export::file_response(
        format, name, headings, rows,
    )?)
}

/// A stored UTC timestamp as Tyumen local time with its offset, for answers.
pub use calendar::tyumen_iso as tyumen;

/// An account's movements, newest first.
#[utoipa::path(get, path = "/api/payments/accounts/{account}/movements", tag = "payments",
    params(("account" = String, Path, description = "Personal account id"), PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = MovementPage), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn account_movements(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = platform::Page::parse(query.page, query.per_page, 50, 500)?;
    let (page, per_page, offset) = (paging.page, paging.per_page, paging.offset());
    let row = visible_account(&ctx, &caller, path.into_inner()).await?;
    let (lines, total) = ctx
        .db
        .read(move |conn| store::history(conn, &row.id, offset, per_page))
        .await?;
    let items = lines
        .into_iter()
        .map(|l| MovementLine {
            movement: l.movement_id,
            kind: l.kind,
            reason: l.reason,
            author: l.author,
            reverses: l.reverses,
            at: tyumen(l.created_at),
            amount: Money::from_kopecks(l.amount_kopecks),
        })
        .collect();
    Ok(HttpResponse::Ok().json(MovementPage {
        page,
        per_page,
        total,
        items,
    }))
}

/// A manual correction of a balance, against the suspense account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    /// Signed amount added to the account, e.g. "150.00" or "-20.50".
    #[schema(value_type = String, example = "150.00")]
    pub amount: Money,
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MovementResult {
    pub movement: String,
    /// True when the Idempotency-Key had been used: this is the first result.
    pub duplicate: bool,
    #[schema(value_type = String)]
    pub balance: Money,
}

fn idempotency_key(req: &HttpRequest) -> Result<String, Problem> {
    let key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if key.is_empty() || key.len() > 128 {
        return Err(Problem::invalid(
            "Idempotency-Key",
            "header required: 1–128 characters, unique per intended operation",
        ));
    }
    Ok(key.to_string())
}

/// Correct an account's balance (operator only; needs `Idempotency-Key`).
#[utoipa::path(post, path = "/api/payments/accounts/{account}/adjustments", tag = "payments", request_body = Adjustment,
    params(("account" = String, Path), ("Idempotency-Key" = String, Header, description = "Makes a repeated request take effect once")),
    security(("bearer" = [])),
    responses((status = 201, body = MovementResult), (status = 200, body = MovementResult, description = "Repeated request"), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn adjust(
    ctx: web::Data<ServiceContext>,
    ledger: web::Data<LedgerWriter>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Adjustment>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::OperatorAdmin])?;
    let key = format!("adjustment:{}", idempotency_key(&req)?);
    let account = path.into_inner();
    let body = body.into_inner();
    let movement = if body.amount.is_negative() {
        Movement::transfer(
            MovementKind::Adjustment,
            &account,
            SUSPENSE,
            -body.amount,
            &body.reason,
            &caller.subject,
        )
    } else {
        Movement::transfer(
            MovementKind::Adjustment,
            SUSPENSE,
            &account,
            body.amount,
            &body.reason,
            &caller.subject,
        )
    }
    .map_err(|e| {
        Problem::invalid(
            if body.reason.trim().is_empty() {
                "reason"
            } else {
                "amount"
            },
            e.to_string(),
        )
    })?;
    let at = ctx.clock.now().naive_utc();
    let posted = ledger.post(movement, key, at).await?;
    let balance = match posted.balances_after.iter().find(|(a, _)| *a == account) {
        Some((_, balance)) => *balance,
        // A repeated request: the balance as it is now.
        None => {
            ctx.db
                .read(move |conn| store::balance(conn, &account))
                .await?
        }
    };
    ctx.bus.wake_relay();
    let status = if posted.duplicate {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::CREATED
    };
    Ok(HttpResponse::build(status).json(MovementResult {
        movement: posted.movement_id,
        duplicate: posted.duplicate,
        balance,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reversal {
    pub reason: String,
}

/// Reverse a movement (operator only). A movement is reversed at most once.
#[utoipa::path(post, path = "/api/payments/movements/{movement}/reversal", tag = "payments", request_body = Reversal,
    params(("movement" = String, Path)),
    security(("bearer" = [])),
    responses((status = 201, body = MovementResult), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn reverse(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Reversal>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::OperatorAdmin])?;
    let original = path.into_inner();
    let reason = body.into_inner().reason;
    if reason.trim().is_empty() {
        return Err(Problem::invalid("reason", "must not be empty").into());
    }
    let author = caller.subject.clone();
    let at = ctx.clock.now().naive_utc();
    let posted = ctx
        .db
        .write(move |conn| {
            let postings = store::postings_of(conn, &original)?;
            if postings.is_empty() {
                return Err(StoreError::UnknownMovement(original));
            }
            if store::is_reversed(conn, &original)? {
                return Err(StoreError::AlreadyReversed(original));
            }
            let movement = Movement::reversal_of(&postings, &reason, &author)?;
            store::post(
                conn,
                &movement,
                &format!("reversal:{original}"),
                Some(&original),
                at,
            )
        })
        .await?;
    ctx.bus.wake_relay();
    Ok(HttpResponse::Created().json(MovementResult {
        movement: posted.movement_id,
        duplicate: false,
        balance: Money::ZERO,
    }))
}
