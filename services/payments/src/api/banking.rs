//! The check/pay/cancel protocol for banks, over REST (the gateway's SOAP door
//! answers with the same `crate::banks`). Protocol outcomes answer 200 with a result code; only authentication
//! and malformed requests answer with problem+json. A bank sees only its own
//! transactions.

use actix_web::{web, HttpResponse};
use platform::{Caller, Problem, Role, ServiceContext};
use primitives::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{tyumen, ApiError};
use crate::banks;
use crate::domain::banking::ResultCode;
use crate::store::banking as bank_store;
use crate::store::StoreError;

pub fn scope(ctx: &ServiceContext) -> actix_web::Scope {
    web::scope("/api/payments/banks")
        .app_data(web::Data::new(ctx.clone()))
        .route("/check", web::post().to(check))
        .route("/pay", web::post().to(pay))
        .route("/cancel", web::post().to(cancel))
        .route("/transactions", web::get().to(transactions))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(check, pay, cancel, transactions),
    components(schemas(CheckRequest, PayRequest, CancelRequest, BankAnswer, ResultCode, BankTransaction)),
    tags((name = "banks", description = "Banks' online payments: check, pay, cancel. \
        Result codes: 0 OK; 1 TEMPORARY_ERROR (retry later); 2 ACCOUNT_FORMAT_WRONG; 3 ACCOUNT_NOT_FOUND; \
        4 ACCOUNT_INACTIVE; 5 AMOUNT_TOO_SMALL (< 1.00); 6 AMOUNT_TOO_LARGE (> 30000.00); 7 DUPLICATE (answered with the \
        first acceptance); 8 CANCEL_IMPOSSIBLE (another banking day, or cancelled already); 9 PAYMENT_NOT_FOUND; 99 OTHER_ERROR. \
        Only 1 is temporary; HTTP 503 is temporary too."))
)]
pub struct BankingApi;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The personal account (лицевой счёт) the payer typed.
    pub account: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    pub account: String,
    #[schema(value_type = String, example = "500.00")]
    pub amount: Money,
    /// The bank's own transaction id: a repeat with the same id takes effect once.
    pub txn_id: String,
    /// The bank's date and time of the payment (ISO 8601, with offset).
    pub txn_at: chrono::DateTime<chrono::FixedOffset>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub txn_id: String,
}

/// Every answer of the protocol (the contract the SOAP door answers too).
pub use contracts::payments::BankAnswer;

/// The one bank the caller acts for.
pub(crate) fn bank_of(caller: &Caller) -> Result<String, Problem> {
    caller.require(&[Role::Bank])?;
    match caller.banks.iter().collect::<Vec<_>>().as_slice() {
        [only] => Ok((*only).clone()),
        _ => Err(Problem::forbidden(
            "the token must name exactly one bank in `banks`",
        )),
    }
}

/// Does the account exist, and whose is it.
#[utoipa::path(post, path = "/api/payments/banks/check", tag = "banks", request_body = CheckRequest,
    security(("bearer" = [])), responses((status = 200, body = BankAnswer), (status = 403, body = Problem)))]
async fn check(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    body: web::Json<CheckRequest>,
) -> Result<HttpResponse, ApiError> {
    bank_of(&caller)?;
    let account = body.into_inner().account;
    let answer = ctx
        .db
        .read(move |conn| banks::check(conn, &account))
        .await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// Credit a payment, once per (bank, transaction id).
#[utoipa::path(post, path = "/api/payments/banks/pay", tag = "banks", request_body = PayRequest,
    security(("bearer" = [])), responses((status = 200, body = BankAnswer), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn pay(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    body: web::Json<PayRequest>,
) -> Result<HttpResponse, ApiError> {
    let bank = bank_of(&caller)?;
    let req = body.into_inner();
    if !banks::txn_id_is_valid(&req.txn_id) {
        return Err(Problem::invalid("txn_id", "1–64 characters").into());
    }
    let now = ctx.clock.now();
    let today = ctx.clock.today();
    let (bank2, txn) = (bank.clone(), req.txn_id.clone());
    let outcome = ctx
        .db
        .write(move |conn| {
            let order = banks::PayOrder {
                account: &req.account,
                amount: req.amount,
                txn_id: &req.txn_id,
                txn_at: req.txn_at,
            };
            banks::pay(conn, &bank, &order, now, today)
        })
        .await;
    let result = match outcome {
        Ok(a) => a,
        // Two deliveries of one transaction at once: the loser of the race on the
        // unique key answers as a duplicate of the winner.
        Err(StoreError::Storage(e)) if e.is_unique_violation() => {
            let first = ctx
                .db
                .read(move |conn| bank_store::find(conn, &bank2, &txn))
                .await?;
            match first {
                Some(first) => banks::duplicate(&first),
                None => BankAnswer::of(ResultCode::TemporaryError, "please retry"),
            }
        }
        Err(StoreError::Storage(storage::StorageError::Pool(_))) => {
            BankAnswer::of(ResultCode::TemporaryError, "please retry")
        }
        Err(e) => return Err(e.into()),
    };
    ctx.bus.wake_relay();
    Ok(HttpResponse::Ok().json(result))
}

/// Cancel a payment the same banking day.
#[utoipa::path(post, path = "/api/payments/banks/cancel", tag = "banks", request_body = CancelRequest,
    security(("bearer" = [])), responses((status = 200, body = BankAnswer), (status = 403, body = Problem)))]
async fn cancel(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    body: web::Json<CancelRequest>,
) -> Result<HttpResponse, ApiError> {
    let bank = bank_of(&caller)?;
    let txn = body.into_inner().txn_id;
    let now = ctx.clock.now();
    let today = ctx.clock.today();
    let result = ctx
        .db
        .write(move |conn| banks::cancel(conn, &bank, &txn, now, today))
        .await?;
    ctx.bus.wake_relay();
    Ok(HttpResponse::Ok().json(result))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DayQuery {
    /// Banking day, YYYY-MM-DD (Tyumen); today when omitted.
    pub date: Option<chrono::NaiveDate>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BankTransaction {
    pub payment_id: String,
    pub txn_id: String,
    pub account: String,
    #[schema(value_type = String)]
    pub amount: Money,
    pub accepted_at: String,
    pub status: String,
}

/// The calling bank's own transactions of one banking day.
#[utoipa::path(get, path = "/api/payments/banks/transactions", tag = "banks", params(DayQuery),
    security(("bearer" = [])), responses((status = 200, body = [BankTransaction]), (status = 403, body = Problem)))]
async fn transactions(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    query: web::Query<DayQuery>,
) -> Result<HttpResponse, ApiError> {
    let bank = bank_of(&caller)?;
    let day = query.date.unwrap_or_else(|| ctx.clock.today());
    let rows = ctx
        .db
        .read(move |conn| bank_store::of_day(conn, &bank, day))
        .await?;
    let list: Vec<BankTransaction> = rows
        .into_iter()
        .map(|r| BankTransaction {
            payment_id: r.id,
            txn_id: r.txn_id,
            account: r.account,
            amount: Money::from_kopecks(r.amount_kopecks),
            accepted_at: tyumen(r.accepted_at),
            status: r.status,
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}
