//! The check/pay/cancel protocol for banks, over REST (SOAP comes with the
//! gateway). Protocol outcomes answer 200 with a result code; only authentication
//! and malformed requests answer with problem+json. A bank sees only its own
//! transactions.

use actix_web::{web, HttpResponse};
use platform::{Caller, Problem, Role, ServiceContext};
use primitives::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{tyumen, ApiError};
use crate::domain::banking::{self, ResultCode};
use crate::domain::ledger::{AccountKind, Movement, MovementKind};
use crate::store::banking::{self as bank_store, BankPaymentRow};
use crate::store::{self, system, StoreError};

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

/// Every answer of the protocol.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct BankAnswer {
    pub result: Option<ResultCode>,
    /// The numeric result code.
    pub code: u16,
    /// True when the bank should retry later.
    pub temporary: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Masked, e.g. "Ива*** П.".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub student: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub school: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub balance: Option<Money>,
    /// Our id of the accepted payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// When we accepted it (Tyumen time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
}

fn answer(result: ResultCode, message: impl Into<String>) -> BankAnswer {
    BankAnswer {
        result: Some(result),
        code: result.code(),
        temporary: result.is_temporary(),
        message: message.into(),
        ..Default::default()
    }
}

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
    if !crate::domain::ledger::is_account_id(&account) {
        return Ok(HttpResponse::Ok().json(answer(
            ResultCode::AccountFormatWrong,
            "the account number is not in the expected format",
        )));
    }
    let found = ctx
        .db
        .read(move |conn| {
            let Some(row) = store::find_account(conn, &account)? else {
                return Ok::<_, StoreError>(None);
            };
            let balance = store::balance(conn, &row.id)?;
            Ok(Some((row, balance)))
        })
        .await?;
    let result = match found {
        Some((row, _)) if row.kind() != Some(AccountKind::Personal) => {
            answer(ResultCode::AccountNotFound, "no such personal account")
        }
        None => answer(ResultCode::AccountNotFound, "no such personal account"),
        Some((row, _)) if row.active != 1 => {
            answer(ResultCode::AccountInactive, "the account is closed")
        }
        Some((row, balance)) => BankAnswer {
            account: Some(row.id.clone()),
            student: Some(banking::masked_name(&row.student_name)),
            school: Some(row.school.clone()),
            balance: Some(balance),
            ..answer(ResultCode::Ok, "the account accepts payments")
        },
    };
    Ok(HttpResponse::Ok().json(result))
}

fn duplicate(first: &BankPaymentRow) -> BankAnswer {
    BankAnswer {
        account: Some(first.account.clone()),
        payment_id: Some(first.id.clone()),
        accepted_at: Some(tyumen(first.accepted_at)),
        ..answer(
            ResultCode::Duplicate,
            format!("transaction {} was accepted before", first.txn_id),
        )
    }
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
    if req.txn_id.trim().is_empty() || req.txn_id.len() > 64 {
        return Err(Problem::invalid("txn_id", "1–64 characters").into());
    }
    if !crate::domain::ledger::is_account_id(&req.account) {
        return Ok(HttpResponse::Ok().json(answer(
            ResultCode::AccountFormatWrong,
            "the account number is not in the expected format",
        )));
    }
    if let Err(code) = banking::check_amount(req.amount) {
        let message = format!(
            "a payment must be between {} and {}",
            banking::min_payment(),
            banking::max_payment()
        );
        return Ok(HttpResponse::Ok().json(answer(code, message)));
    }
    let now = ctx.clock.now();
    let today = ctx.clock.today();
    let (bank2, txn) = (bank.clone(), req.txn_id.clone());
    let outcome = ctx
        .db
        .write(move |conn| -> Result<BankAnswer, StoreError> {
            if let Some(first) = bank_store::find(conn, &bank, &req.txn_id)? {
                return Ok(duplicate(&first));
            }
            let Some(account) = store::find_account(conn, &req.account)? else {
                return Ok(answer(
                    ResultCode::AccountNotFound,
                    "no such personal account",
                ));
            };
            if account.kind() != Some(AccountKind::Personal) {
                return Ok(answer(
                    ResultCode::AccountNotFound,
                    "no such personal account",
                ));
            }
            if account.active != 1 {
                return Ok(answer(ResultCode::AccountInactive, "the account is closed"));
            }
            let clearing = system::clearing(&bank);
            store::ensure_system_account(conn, &clearing, AccountKind::BankClearing)?;
            let movement = Movement::transfer(
                MovementKind::BankPayment,
                &clearing,
                &account.id,
                req.amount,
                &format!("payment {} through bank {bank}", req.txn_id),
                &format!("bank:{bank}"),
            )
            .map_err(|e| StoreError::Storage(storage::StorageError::Config(e.to_string())))?;
            let posted = store::post(
                conn,
                &movement,
                &format!("bank:{bank}:{}", req.txn_id),
                None,
                now.naive_utc(),
            )?;
            let row = BankPaymentRow {
                id: uuid::Uuid::now_v7().to_string(),
                bank: bank.clone(),
                txn_id: req.txn_id.clone(),
                account: account.id.clone(),
                amount_kopecks: req.amount.kopecks(),
                txn_at: req.txn_at.naive_utc(),
                accepted_at: now.naive_utc(),
                banking_day: today,
                movement_id: posted.movement_id,
                status: bank_store::ACCEPTED.into(),
                cancelled_at: None,
                registry_id: None,
            };
            bank_store::insert(conn, &row)?;
            Ok(BankAnswer {
                account: Some(row.account.clone()),
                payment_id: Some(row.id.clone()),
                accepted_at: Some(tyumen(row.accepted_at)),
                balance: Some(store::balance(conn, &row.account)?),
                ..answer(ResultCode::Ok, "payment accepted")
            })
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
                Some(first) => duplicate(&first),
                None => answer(ResultCode::TemporaryError, "please retry"),
            }
        }
        Err(StoreError::Storage(storage::StorageError::Pool(_))) => {
            answer(ResultCode::TemporaryError, "please retry")
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
        .write(move |conn| -> Result<BankAnswer, StoreError> {
            let Some(payment) = bank_store::find(conn, &bank, &txn)? else {
                return Ok(answer(
                    ResultCode::PaymentNotFound,
                    format!("no payment {txn} from this bank"),
                ));
            };
            if payment.status != bank_store::ACCEPTED {
                return Ok(answer(
                    ResultCode::CancelImpossible,
                    "the payment is cancelled already",
                ));
            }
            if payment.banking_day != today {
                return Ok(answer(
                    ResultCode::CancelImpossible,
                    format!(
                        "a payment can be cancelled on its banking day ({}) only",
                        payment.banking_day
                    ),
                ));
            }
            let postings = store::postings_of(conn, &payment.movement_id)?;
            let movement = Movement::reversal_of(
                &postings,
                &format!("cancelled by bank {bank}"),
                &format!("bank:{bank}"),
            )
            .map_err(|e| StoreError::Storage(storage::StorageError::Config(e.to_string())))?;
            store::post(
                conn,
                &movement,
                &format!("bank-cancel:{bank}:{txn}"),
                Some(&payment.movement_id),
                now.naive_utc(),
            )?;
            bank_store::mark_cancelled(conn, &payment.id, now.naive_utc())?;
            Ok(BankAnswer {
                account: Some(payment.account.clone()),
                payment_id: Some(payment.id.clone()),
                balance: Some(store::balance(conn, &payment.account)?),
                ..answer(ResultCode::Ok, "payment cancelled")
            })
        })
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
