//! REST handlers of internet acquiring (интернет-эквайринг: card top-ups on the
//! bank's payment page). The flow is in `crate::acquiring`; storage in
//! `store::acquiring`.
//!
//! Who may do what:
//! * the operator (`operator_admin`) or the organizer itself (`meal_organizer`
//!   with the organizer in its `organizers` claim) sets and reads the
//!   organizer's bank settings; secrets are never returned;
//! * a parent (`parent` with the account in its `children` claim) tops up;
//! * the parent who made a top-up, the account's organizer and the operator see
//!   it; the organizer and the operator refund it;
//! * the bank calls the callback without a token: its checksum is the proof.
//!
//! A top-up or account the caller may not see answers 404, like a missing one.

use actix_web::dev::HttpServiceFactory;
use actix_web::{web, HttpRequest, HttpResponse};
use platform::{Caller, Principal, Problem, Role, ServiceContext};
use primitives::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{idempotency_key, tyumen, valid_account_id, ApiError};
use crate::acquiring::{
    self as flow, AcquirerError, AcquiringError, OrderStatus, RefundRequest, TopUpRequest,
};
use crate::domain::ledger::AccountKind;
use crate::store::acquiring::{self as db, OrderRow, OrganizerAcquiring, RefundRow};
use crate::store::{self, StoreError};

/// Where the bank sends callbacks (set in the bank's merchant settings).
pub const CALLBACK_PATH: &str = "/api/payments/acquiring/callback";

impl From<AcquiringError> for ApiError {
    fn from(e: AcquiringError) -> Self {
        ApiError(match e {
            AcquiringError::Bank(AcquirerError::Unavailable(detail)) => Problem::unavailable(
                format!("the acquiring bank does not answer, try again later ({detail})"),
            ),
            AcquiringError::Bank(e @ AcquirerError::Rejected { .. }) => {
                Problem::new(502, "acquirer-rejected", "The acquiring bank refused")
                    .detail(e.to_string())
            }
            AcquiringError::Bank(e @ AcquirerError::Protocol(_)) => Problem::new(
                502,
                "acquirer-protocol",
                "The acquiring bank's answer is not understood",
            )
            .detail(e.to_string()),
            AcquiringError::Store(e) => return ApiError::from(e),
            e @ AcquiringError::NotConfigured(_) => Problem::unprocessable(
                "acquiring-not-configured",
                "Card top-ups are not available",
                e.to_string(),
            ),
            e @ AcquiringError::UnknownOrder(_) => Problem::not_found(e.to_string()),
            e @ AcquiringError::OverLimit(_) => Problem::unprocessable(
                "top-up-limit",
                "The top-up exceeds the limit",
                e.to_string(),
            )
            .field("amount", e.to_string()),
            e @ AcquiringError::KeyReused => Problem::unprocessable(
                "idempotency-key-reused",
                "The Idempotency-Key was used for another request",
                e.to_string(),
            ),
            e @ AcquiringError::InProgress => Problem::conflict("in-progress", e.to_string()),
            e @ AcquiringError::AmountMismatch { .. } => {
                Problem::conflict("amount-mismatch", e.to_string())
            }
            e @ AcquiringError::NotRefundable { .. } => Problem::unprocessable(
                "not-refundable",
                "The top-up cannot be refunded",
                e.to_string(),
            ),
            e @ AcquiringError::RefundOverBalance { .. } => Problem::unprocessable(
                "refund-exceeds-balance",
                "The refund exceeds what the account holds",
                e.to_string(),
            )
            .field("amount", e.to_string()),
            e @ AcquiringError::RefundTooLarge(_) => Problem::unprocessable(
                "refund-exceeds-paid",
                "The refund exceeds what is left to refund",
                e.to_string(),
            )
            .field("amount", e.to_string()),
            e @ AcquiringError::RefundUnconfirmed(_) => Problem::unavailable(e.to_string()),
            AcquiringError::Ledger(cause) => Problem::internal(cause),
        })
    }
}

/// The routes. Resources, not a scope: they share `/api/payments` with the
/// other routes of the service.
pub fn services(ctx: &ServiceContext) -> impl HttpServiceFactory {
    let data = web::Data::new(ctx.clone());
    let resource = |path: &str| web::resource(path).app_data(data.clone());
    (
        resource("/api/payments/organizers/{organizer}/acquiring")
            .route(web::put().to(put_settings))
            .route(web::get().to(get_settings)),
        resource("/api/payments/accounts/{account}/top-ups").route(web::post().to(create_top_up)),
        resource("/api/payments/top-ups/{order}").route(web::get().to(get_top_up)),
        resource("/api/payments/top-ups/{order}/refunds").route(web::post().to(create_refund)),
        resource(CALLBACK_PATH).route(web::get().to(callback)),
    )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(put_settings, get_settings, create_top_up, get_top_up, create_refund, callback),
    components(schemas(AcquiringSettings, AcquiringSettingsView, TopUpBody, TopUpView, RefundBody, RefundView, CallbackAnswer, OrderStatus)),
    tags((name = "acquiring", description = "Internet acquiring (интернет-эквайринг): parents' card top-ups through the organizer's bank"))
)]
pub struct AcquiringApi;

/// An organizer's acquiring bank (the REST API of Russian acquiring gateways).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquiringSettings {
    /// The gateway's REST root, e.g. `https://bank.example/payment/rest`.
    pub base_url: String,
    pub merchant_login: String,
    /// Required the first time; omitted, the stored one is kept.
    pub merchant_password: Option<String>,
    /// The key of callback checksums; required the first time, omitted, the
    /// stored one is kept.
    pub callback_secret: Option<String>,
    /// At most this much per top-up; 2000.00 if never set.
    #[schema(value_type = Option<String>, example = "2000.00")]
    pub top_up_limit: Option<Money>,
}

/// An organizer's acquiring settings without the secrets.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AcquiringSettingsView {
    pub organizer: String,
    pub base_url: String,
    pub merchant_login: String,
    #[schema(value_type = String, example = "2000.00")]
    pub top_up_limit: Money,
    /// The path to give the bank as the callback URL.
    pub callback_path: String,
    pub updated_by: String,
    /// Tyumen local time.
    pub updated_at: String,
}

fn settings_view(c: OrganizerAcquiring) -> AcquiringSettingsView {
    AcquiringSettingsView {
        organizer: c.organizer,
        base_url: c.base_url,
        merchant_login: c.merchant_login,
        top_up_limit: Money::from_kopecks(c.top_up_limit_kopecks),
        callback_path: CALLBACK_PATH.into(),
        updated_by: c.updated_by,
        updated_at: tyumen(c.updated_at),
    }
}

fn may_configure(caller: &Principal, organizer: &str) -> bool {
    caller.has_role(Role::OperatorAdmin)
        || (caller.has_role(Role::MealOrganizer) && caller.may_act_for_organizer(organizer))
}

fn valid_url(field: &str, url: &str) -> Result<(), Problem> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && url.len() <= 512 && !url.chars().any(char::is_whitespace) => {
            Ok(())
        }
        _ => Err(Problem::invalid(
            field,
            "an http:// or https:// URL of at most 512 characters",
        )),
    }
}

/// Set an organizer's acquiring bank (the operator or the organizer itself).
#[utoipa::path(put, path = "/api/payments/organizers/{organizer}/acquiring", tag = "acquiring",
    request_body = AcquiringSettings,
    params(("organizer" = String, Path, description = "Meal organizer id")),
    security(("bearer" = [])),
    responses((status = 200, body = AcquiringSettingsView), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_settings(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<AcquiringSettings>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::OperatorAdmin, Role::MealOrganizer])?;
    let organizer = path.into_inner();
    valid_account_id("organizer", &organizer)?;
    if !may_configure(&caller, &organizer) {
        return Err(Problem::forbidden(format!("you do not act for organizer {organizer}")).into());
    }
    let body = body.into_inner();
    valid_url("base_url", body.base_url.trim())?;
    if body.merchant_login.trim().is_empty() {
        return Err(Problem::invalid("merchant_login", "must not be empty").into());
    }
    if body.merchant_password.as_deref().is_some_and(str::is_empty) {
        return Err(Problem::invalid("merchant_password", "must not be empty").into());
    }
    if body
        .callback_secret
        .as_deref()
        .is_some_and(|s| s.chars().count() < 8)
    {
        return Err(Problem::invalid("callback_secret", "at least 8 characters").into());
    }
    if body.top_up_limit.is_some_and(|l| !l.is_positive()) {
        return Err(Problem::invalid("top_up_limit", "must be more than zero").into());
    }
    let author = caller.subject.clone();
    let at = ctx.clock.now().naive_utc();
    let keys = ctx.secrets.clone();
    let saved = ctx
        .db
        .write(move |conn| {
            let old = db::find_config(conn, &organizer, &keys)?;
            let keep = |new: Option<String>, old: Option<String>, field: &str| {
                new.or(old)
                    .ok_or_else(|| Problem::invalid(field, "required the first time"))
            };
            let config = OrganizerAcquiring {
                merchant_password: keep(
                    body.merchant_password,
                    old.as_ref().map(|o| o.merchant_password.clone()),
                    "merchant_password",
                )?,
                callback_secret: keep(
                    body.callback_secret,
                    old.as_ref().map(|o| o.callback_secret.clone()),
                    "callback_secret",
                )?,
                top_up_limit_kopecks: body
                    .top_up_limit
                    .map(|l| l.kopecks())
                    .or(old.as_ref().map(|o| o.top_up_limit_kopecks))
                    .unwrap_or(flow::DEFAULT_TOP_UP_LIMIT_KOPECKS),
                organizer: organizer.clone(),
                base_url: body.base_url.trim().to_string(),
                merchant_login: body.merchant_login.trim().to_string(),
                updated_by: author,
                updated_at: at,
            };
            db::save_config(conn, &config, &keys)?;
            // The clearing account exists before the first credit, so
            // concurrent first credits never race to open it.
            store::ensure_system_account(
                conn,
                &flow::clearing_account(&organizer),
                AccountKind::BankClearing,
                at,
            )?;
            Ok::<_, ApiError>(config)
        })
        .await?;
    tracing::info!(organizer = %saved.organizer, base_url = %saved.base_url, by = %saved.updated_by, "acquiring settings saved");
    Ok(HttpResponse::Ok().json(settings_view(saved)))
}

/// An organizer's acquiring bank, without the secrets.
#[utoipa::path(get, path = "/api/payments/organizers/{organizer}/acquiring", tag = "acquiring",
    params(("organizer" = String, Path, description = "Meal organizer id")),
    security(("bearer" = [])),
    responses((status = 200, body = AcquiringSettingsView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_settings(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::OperatorAdmin, Role::MealOrganizer])?;
    let organizer = path.into_inner();
    if !may_configure(&caller, &organizer) {
        return Err(Problem::forbidden(format!("you do not act for organizer {organizer}")).into());
    }
    let keys = ctx.secrets.clone();
    let config = ctx
        .db
        .read(move |conn| db::find_config(conn, &organizer, &keys))
        .await?
        .ok_or_else(|| Problem::not_found("no acquiring bank is set for this organizer"))?;
    Ok(HttpResponse::Ok().json(settings_view(config)))
}

/// A top-up request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpBody {
    #[schema(value_type = String, example = "500.00")]
    pub amount: Money,
    /// Where the bank's payment page sends the parent afterwards.
    pub return_url: String,
}

/// A top-up and where it stands.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopUpView {
    pub order_id: String,
    pub account: String,
    #[schema(value_type = String, example = "500.00")]
    pub amount: Money,
    pub status: OrderStatus,
    /// Refunded so far.
    #[schema(value_type = String, example = "0.00")]
    pub refunded: Money,
    /// What may still be refunded (paid minus refunds made or under way).
    #[schema(value_type = String, example = "500.00")]
    pub refundable: Money,
    /// The bank's payment page for the parent.
    pub payment_url: Option<String>,
    pub bank_order_id: Option<String>,
    /// Tyumen local time.
    pub created_at: String,
}

fn top_up_view(o: &OrderRow) -> TopUpView {
    let status = OrderStatus::parse(&o.status).unwrap_or(OrderStatus::Registering);
    let refundable = if matches!(status, OrderStatus::Deposited) {
        o.amount_kopecks - o.refund_reserved_kopecks
    } else {
        0
    };
    TopUpView {
        order_id: o.id.clone(),
        account: o.account_id.clone(),
        amount: Money::from_kopecks(o.amount_kopecks),
        status,
        refunded: Money::from_kopecks(o.refunded_kopecks),
        refundable: Money::from_kopecks(refundable),
        payment_url: o.payment_url.clone(),
        bank_order_id: o.bank_order_id.clone(),
        created_at: tyumen(o.created_at),
    }
}

/// Top up a student's personal account by card (a parent of the student;
/// needs `Idempotency-Key`). Answers the bank's payment page.
#[utoipa::path(post, path = "/api/payments/accounts/{account}/top-ups", tag = "acquiring",
    request_body = TopUpBody,
    params(("account" = String, Path, description = "Personal account id"),
        ("Idempotency-Key" = String, Header, description = "Makes a repeated request take effect once")),
    security(("bearer" = [])),
    responses((status = 201, body = TopUpView), (status = 200, body = TopUpView, description = "Repeated request"),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "Over the organizer's limit, or no bank set"),
        (status = 502, body = Problem), (status = 503, body = Problem)))]
async fn create_top_up(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<TopUpBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Parent])?;
    let key = idempotency_key(&req)?;
    let body = body.into_inner();
    if !body.amount.is_positive() {
        return Err(Problem::invalid("amount", "must be more than zero").into());
    }
    valid_url("return_url", &body.return_url)?;
    let account = path.into_inner();
    let lookup = account.clone();
    let row = ctx
        .db
        .read(move |conn| store::find_account(conn, &lookup))
        .await?
        .filter(|a| {
            caller.has_role(Role::Parent)
                && caller.may_see_child(&a.id)
                && a.kind() == Some(AccountKind::Personal)
        })
        .ok_or_else(|| Problem::not_found(format!("account {account} does not exist")))?;
    if !row.active {
        return Err(Problem::unprocessable(
            "account-closed",
            "The account is closed",
            format!("account {} does not take top-ups", row.id),
        )
        .into());
    }
    let top_up = flow::create_top_up(
        &ctx,
        TopUpRequest {
            account: row.id,
            organizer: row.organizer,
            parent: caller.subject.clone(),
            amount: body.amount,
            return_url: body.return_url,
            key: format!("top-up:{}:{key}", caller.subject),
        },
    )
    .await?;
    let view = top_up_view(&top_up.order);
    Ok(if top_up.fresh {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

fn may_view_top_up(caller: &Principal, order: &OrderRow) -> bool {
    caller.has_role(Role::OperatorAdmin)
        || (caller.has_role(Role::Parent)
            && order.parent == caller.subject
            && caller.may_see_child(&order.account_id))
        || (caller.has_role(Role::MealOrganizer) && caller.may_act_for_organizer(&order.organizer))
}

fn may_refund(caller: &Principal, order: &OrderRow) -> bool {
    caller.has_role(Role::OperatorAdmin)
        || (caller.has_role(Role::MealOrganizer) && caller.may_act_for_organizer(&order.organizer))
}

async fn visible_top_up(
    ctx: &ServiceContext,
    caller: &Caller,
    id: String,
) -> Result<OrderRow, ApiError> {
    let lookup = id.clone();
    ctx.db
        .read(move |conn| db::find_order(conn, &lookup))
        .await?
        .filter(|o| may_view_top_up(caller, o))
        .ok_or_else(|| Problem::not_found(format!("top-up {id} does not exist")).into())
}

/// A top-up: status, amount, refunds (the parent who made it, the account's
/// organizer, the operator).
#[utoipa::path(get, path = "/api/payments/top-ups/{order}", tag = "acquiring",
    params(("order" = String, Path, description = "Top-up order id")),
    security(("bearer" = [])),
    responses((status = 200, body = TopUpView), (status = 404, body = Problem)))]
async fn get_top_up(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let order = visible_top_up(&ctx, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(top_up_view(&order)))
}

/// A refund request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    #[schema(value_type = String, example = "150.00")]
    pub amount: Money,
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    pub refund_id: String,
    #[schema(value_type = String, example = "150.00")]
    pub amount: Money,
    pub reason: String,
    /// The ledger movement from the personal account back to clearing.
    pub movement: Option<String>,
    pub top_up: TopUpView,
}

fn refund_view(r: &RefundRow, o: &OrderRow) -> RefundView {
    RefundView {
        refund_id: r.id.clone(),
        amount: Money::from_kopecks(r.amount_kopecks),
        reason: r.reason.clone(),
        movement: r.movement_id.clone(),
        top_up: top_up_view(o),
    }
}

/// Refund part or all of a paid top-up to the payer's card (the account's
/// organizer or the operator; needs `Idempotency-Key`).
#[utoipa::path(post, path = "/api/payments/top-ups/{order}/refunds", tag = "acquiring",
    request_body = RefundBody,
    params(("order" = String, Path, description = "Top-up order id"),
        ("Idempotency-Key" = String, Header, description = "Makes a repeated request take effect once")),
    security(("bearer" = [])),
    responses((status = 201, body = RefundView), (status = 200, body = RefundView, description = "Repeated request"),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem, description = "More than is left to refund"),
        (status = 502, body = Problem), (status = 503, body = Problem)))]
async fn create_refund(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<RefundBody>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let body = body.into_inner();
    if !body.amount.is_positive() {
        return Err(Problem::invalid("amount", "must be more than zero").into());
    }
    let reason = body.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Problem::invalid("reason", "1–500 characters").into());
    }
    let order = visible_top_up(&ctx, &caller, path.into_inner()).await?;
    if !may_refund(&caller, &order) {
        return Err(Problem::forbidden("only the organizer or the operator refunds").into());
    }
    let done = flow::refund(
        &ctx,
        RefundRequest {
            key: format!("refund:{}:{key}", order.id),
            order_id: order.id,
            amount: body.amount,
            reason,
            author: caller.subject.clone(),
        },
    )
    .await?;
    let view = refund_view(&done.refund, &done.order);
    Ok(if done.fresh {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// What the callback did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallbackAnswer {
    pub order_id: String,
    pub status: OrderStatus,
    pub credited: bool,
}

/// The bank's notification about an order (no token: the checksum over the
/// parameters proves the bank sent it). The status is confirmed with the bank
/// before anything changes.
#[utoipa::path(get, path = "/api/payments/acquiring/callback", tag = "acquiring",
    params(("mdOrder" = String, Query, description = "The bank's order id"),
        ("orderNumber" = String, Query, description = "Our order id"),
        ("operation" = String, Query, description = "approved, deposited, reversed, refunded, declinedByTimeout"),
        ("status" = String, Query, description = "1 succeeded, 0 failed"),
        ("checksum" = String, Query, description = "HMAC-SHA256 of the other parameters sorted by name as `name;value;`, hex")),
    responses((status = 200, body = CallbackAnswer), (status = 400, body = Problem, description = "Missing parameter or wrong checksum"),
        (status = 404, body = Problem), (status = 503, body = Problem)))]
async fn callback(
    ctx: web::Data<ServiceContext>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let params = query.into_inner();
    for (i, (name, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(n, _)| n == name) {
            return Err(Problem::invalid(name, "given more than once").into());
        }
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Problem::invalid(name, "required"))
    };
    let md_order = get("mdOrder")?;
    let order_number = get("orderNumber")?;
    let operation = get("operation")?;
    get("status")?;
    get("checksum")?;
    let lookup = order_number.clone();
    let keys = ctx.secrets.clone();
    let found = ctx
        .db
        .read(move |conn| {
            let Some(order) = db::find_order(conn, &lookup)? else {
                return Ok::<_, StoreError>(None);
            };
            let config = db::find_config(conn, &order.organizer, &keys)?;
            Ok(config.map(|c| (order, c)))
        })
        .await?;
    let Some((order, config)) = found else {
        tracing::warn!(order = %order_number, md_order = %md_order, %operation, "acquiring callback about an unknown order");
        return Err(Problem::not_found(format!("top-up {order_number} does not exist")).into());
    };
    if !flow::verify_checksum(&params, &config.callback_secret)
        || order.bank_order_id.as_deref() != Some(md_order.as_str())
    {
        tracing::warn!(order = %order.id, md_order = %md_order, %operation, organizer = %order.organizer, "acquiring callback with a wrong checksum ignored");
        return Err(Problem::invalid("checksum", "does not match the parameters").into());
    }
    tracing::info!(order = %order.id, %operation, "acquiring callback; confirming with the bank");
    let applied = flow::confirm(&ctx, &order.id).await?;
    Ok(HttpResponse::Ok().json(CallbackAnswer {
        order_id: applied.order_id,
        status: applied.status,
        credited: applied.credited,
    }))
}
