//! REST handlers of ИС УНиП (charges, payments, quittance) under
//! `/api/payments/unip`. The rules are in `domain::charges`; storage in
//! `store::charges`.
//!
//! Who may do what:
//! * an information system (role `information_system`, its `participant` claim
//!   is the supplier) issues, reads, lists and cancels its own charges and sees
//!   its own charges' lines of the quittance report;
//! * a bank (role `bank`, its `banks` claim) and an information system report
//!   payments;
//! * the operator (`operator_admin`) does everything except reporting payments,
//!   and configures suppliers' УИН prefixes.
//!
//! A charge the caller may not see answers 404, like a missing one.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use platform::{Caller, Problem, Role, ServiceContext};
use primitives::Money;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{idempotency_key, tyumen, ApiError};
use crate::domain::charges::{
    self as rules, CancelEffect, ChargeFields, ChargeQuittance, ChargeStatus, Invalid, PayeeFields,
    PayerFields, PaymentFields, QuittanceOutcome, SupplierPrefix,
};
use crate::store::charges::{self as store, ChargeRow, ChargeStoreError, PaymentRow};

// The request bodies: the wire's shape (and its schema) is the API's; the
// domain validates the fields they carry.

/// A payer (плательщик) as the wire carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayerInput {
    /// Full name of a person or name of an organisation.
    pub name: String,
    /// ИНН (taxpayer number), 10 or 12 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inn: Option<String>,
    /// СНИЛС (individual insurance account number), e.g. "112-233-445 95".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snils: Option<String>,
}

/// The recipient of the money (получатель), as the wire carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayeeInput {
    pub name: String,
    /// ИНН of the organisation, 10 digits.
    pub inn: String,
    /// КПП (tax registration reason code), 9 characters.
    pub kpp: String,
    /// Account, 20 digits.
    pub account: String,
    /// БИК of the bank or the treasury, 9 digits.
    pub bik: String,
}

/// A new charge as the wire carries it (strings, so every field can be named in
/// an error). The УИН is not given: it is issued.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeInput {
    /// Participant code of the supplier; only the operator gives it (an
    /// information system's own code comes from its token).
    #[serde(default)]
    pub supplier: Option<String>,
    pub payer: PayerInput,
    /// Назначение платежа (what the payment is for), up to 210 characters.
    pub purpose: String,
    /// Rubles with kopecks, e.g. "1250.50"; more than 0.
    #[schema(example = "1250.50")]
    pub amount: String,
    /// Pay by this date, YYYY-MM-DD; not before today.
    #[schema(example = "2026-10-01")]
    pub due_date: String,
    /// КБК (budget classification code), 20 digits.
    pub kbk: String,
    /// ОКТМО (municipal territory code), 8 or 11 digits.
    pub oktmo: String,
    pub payee: PayeeInput,
}

/// A payment into УНиП as the wire carries it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    /// УИП (the payment's unique id), 1–36 Latin letters, digits or '-'. One
    /// issuer's 32-character form: `1` + БИК + branch (6) + date ДДММГГГГ +
    /// number (8).
    pub payment_id: String,
    /// УИН of the charge paid.
    pub uin: String,
    /// Rubles with kopecks, more than 0.
    #[schema(example = "1250.50")]
    pub amount: String,
    /// Date the payer paid, YYYY-MM-DD; not in the future.
    #[schema(example = "2026-09-01")]
    pub payment_date: String,
    pub payer: PayerInput,
    /// The bank's code when the caller's token lists several banks.
    #[serde(default)]
    pub bank: Option<String>,
}

impl From<PayerInput> for PayerFields {
    fn from(p: PayerInput) -> Self {
        PayerFields {
            name: p.name,
            inn: p.inn,
            snils: p.snils,
        }
    }
}

impl From<PayeeInput> for PayeeFields {
    fn from(p: PayeeInput) -> Self {
        PayeeFields {
            name: p.name,
            inn: p.inn,
            kpp: p.kpp,
            account: p.account,
            bik: p.bik,
        }
    }
}

impl From<ChargeInput> for ChargeFields {
    fn from(c: ChargeInput) -> Self {
        ChargeFields {
            supplier: c.supplier,
            payer: c.payer.into(),
            purpose: c.purpose,
            amount: c.amount,
            due_date: c.due_date,
            kbk: c.kbk,
            oktmo: c.oktmo,
            payee: c.payee.into(),
        }
    }
}

impl From<PaymentInput> for PaymentFields {
    fn from(p: PaymentInput) -> Self {
        PaymentFields {
            payment_id: p.payment_id,
            uin: p.uin,
            amount: p.amount,
            payment_date: p.payment_date,
            payer: p.payer.into(),
            bank: p.bank,
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError(Problem::invalid(&e.field, e.message))
    }
}

impl From<ChargeStoreError> for ApiError {
    fn from(e: ChargeStoreError) -> Self {
        ApiError(match e {
            ChargeStoreError::UnknownCharge(uin) => {
                Problem::not_found(format!("charge {uin} does not exist"))
            }
            ChargeStoreError::KeyReused { uin } => Problem::conflict(
                "idempotency-key-reused",
                format!(
                    "this Idempotency-Key created charge {uin} with different data; \
                     use a new key for a new charge"
                ),
            ),
            ChargeStoreError::CannotCancel(refusal) => {
                Problem::conflict("charge-has-payments", refusal.to_string())
            }
            ChargeStoreError::PaymentPresent {
                payment_id,
                outcome,
            } => Problem::conflict(
                "already-present",
                format!(
                    "payment {payment_id} is already present (quittance outcome {outcome}); \
                     nothing was changed"
                ),
            ),
            ChargeStoreError::PrefixTaken { prefix, owner } => Problem::conflict(
                "prefix-taken",
                format!("prefix {prefix} belongs to supplier {owner}"),
            ),
            ChargeStoreError::UnknownPayment(id) => {
                Problem::not_found(format!("payment {id} does not exist"))
            }
            e @ ChargeStoreError::NotUnmatched { .. } => {
                Problem::conflict("payment-matched", e.to_string())
            }
            ChargeStoreError::Storage(s) => Problem::from(s),
            other @ (ChargeStoreError::Issue(_) | ChargeStoreError::Corrupt(_)) => {
                Problem::internal(other)
            }
        })
    }
}

/// The routes, under `/api/payments/unip`.
pub fn scope(ctx: &ServiceContext) -> actix_web::Scope {
    web::scope("/api/payments/unip")
        .app_data(web::Data::new(ctx.clone()))
        .route("/charges", web::post().to(create_charge))
        .route("/charges", web::get().to(list_charges))
        .route("/charges/{uin}", web::get().to(get_charge))
        .route("/charges/{uin}/cancel", web::post().to(cancel_charge))
        .route("/payments", web::post().to(receive_payment))
        .route(
            "/payments/{payment_id}/match",
            web::post().to(match_payment),
        )
        .route("/quittance-report", web::get().to(quittance_report))
        .route(
            "/suppliers/{participant}",
            web::put().to(configure_supplier),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_charge, list_charges, get_charge, cancel_charge, receive_payment, match_payment, quittance_report, configure_supplier),
    components(schemas(ChargeInput, PayerInput, PayeeInput, PaymentInput, ChargeView, ChargePayment, ChargePage, MatchBody, ManualMatchView,
        PayerView, CancelRequest, PaymentResult, ReportLine, QuittanceReport, OutcomeTotal, SupplierConfig, SupplierView,
        ChargeStatus, ChargeQuittance, QuittanceOutcome)),
    tags((name = "unip", description = "ИС УНиП: charges (начисления), payments and quittance (квитирование); state-service fees, separate from the personal-account ledger"))
)]
pub struct ChargesApi;

/// A payer as stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PayerView {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snils: Option<String>,
}

/// A charge (начисление) with its quittance state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChargeView {
    /// УИН: 8-character supplier prefix, 11-digit sequence, check digit.
    pub uin: String,
    /// Participant code of the supplier (the information system that issued it).
    pub supplier: String,
    pub status: ChargeStatus,
    pub quittance: ChargeQuittance,
    #[schema(value_type = String, example = "1250.50")]
    pub amount: Money,
    /// Sum of the payments matched.
    #[schema(value_type = String, example = "0.00")]
    pub paid: Money,
    /// amount − paid; negative when overpaid.
    #[schema(value_type = String, example = "1250.50")]
    pub balance: Money,
    /// paid − amount when overpaid, else 0.
    #[schema(value_type = String, example = "0.00")]
    pub overpayment: Money,
    pub purpose: String,
    pub due_date: NaiveDate,
    pub kbk: String,
    pub oktmo: String,
    pub payer: PayerView,
    pub payee: PayeeInput,
    /// Tyumen local time.
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// Payments referring to this charge, oldest first (only on a single charge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payments: Option<Vec<ChargePayment>>,
}

/// A payment as seen from its charge.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChargePayment {
    pub payment_id: String,
    #[schema(value_type = String, example = "500.00")]
    pub amount: Money,
    pub payment_date: NaiveDate,
    pub outcome: QuittanceOutcome,
    /// The charge's remaining amount right after this payment.
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Money>,
    #[schema(value_type = String, example = "0.00")]
    pub overpayment: Money,
    /// `bank:<code>` or `is:<participant>`.
    pub source: String,
    pub received_at: String,
}

fn payer_view(name: &str, inn: &Option<String>, snils: &Option<String>) -> PayerView {
    PayerView {
        name: name.to_string(),
        inn: inn.clone(),
        snils: snils.clone(),
    }
}

fn charge_view(row: &ChargeRow, payments: Option<&[PaymentRow]>) -> Result<ChargeView, ApiError> {
    let state = row.state()?;
    let payments = payments
        .map(|ps| ps.iter().map(charge_payment).collect::<Result<Vec<_>, _>>())
        .transpose()?;
    Ok(ChargeView {
        uin: row.uin.clone(),
        supplier: row.supplier.clone(),
        status: state.status,
        quittance: rules::charge_quittance(state.status),
        amount: state.amount,
        paid: state.paid,
        balance: state.balance(),
        overpayment: (-state.balance()).max(Money::ZERO),
        purpose: row.purpose.clone(),
        due_date: row.due_date,
        kbk: row.kbk.clone(),
        oktmo: row.oktmo.clone(),
        payer: payer_view(
            &row.parties.payer_name,
            &row.parties.payer_inn,
            &row.parties.payer_snils,
        ),
        payee: PayeeInput {
            name: row.parties.payee_name.clone(),
            inn: row.parties.payee_inn.clone(),
            kpp: row.parties.payee_kpp.clone(),
            account: row.parties.payee_account.clone(),
            bik: row.parties.payee_bik.clone(),
        },
        created_at: tyumen(row.created_at),
        cancelled_at: row.cancelled_at.map(tyumen),
        cancel_reason: row.cancel_reason.clone(),
        payments,
    })
}

fn charge_payment(p: &PaymentRow) -> Result<ChargePayment, ChargeStoreError> {
    Ok(ChargePayment {
        payment_id: p.payment_id.clone(),
        amount: Money::from_kopecks(p.amount_kopecks),
        payment_date: p.payment_date,
        outcome: p.outcome()?,
        remaining: p.remaining_kopecks.map(Money::from_kopecks),
        overpayment: Money::from_kopecks(p.overpayment_kopecks),
        source: p.source.clone(),
        received_at: tyumen(p.received_at),
    })
}

fn valid_participant(field: &str, code: &str) -> Result<(), Problem> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Problem::invalid(
            field,
            "1–64 characters: Latin letters, digits, '-', '_', '.'",
        ))
    }
}

/// The supplier a new charge belongs to: an information system's own
/// participant code, or the one the operator names.
fn supplier_for(caller: &Caller, requested: Option<&str>) -> Result<String, Problem> {
    let requested = requested.map(str::trim).filter(|s| !s.is_empty());
    if caller.has_role(Role::OperatorAdmin) {
        if let Some(s) = requested {
            valid_participant("supplier", s)?;
            return Ok(s.to_string());
        }
    }
    match (caller.participant.as_deref(), requested) {
        (Some(own), None) if caller.has_role(Role::InformationSystem) => Ok(own.to_string()),
        (Some(own), Some(s)) if caller.has_role(Role::InformationSystem) && s == own => {
            Ok(own.to_string())
        }
        (_, Some(s)) if caller.has_role(Role::InformationSystem) => Err(Problem::forbidden(
            format!("an information system issues charges only as itself, not as {s}"),
        )),
        _ if caller.has_role(Role::OperatorAdmin) => Err(Problem::invalid(
            "supplier",
            "required when the operator issues a charge",
        )),
        _ => Err(Problem::forbidden("the token carries no participant claim")),
    }
}

/// Issue a charge (начисление): the system assigns its УИН. Needs an
/// `Idempotency-Key`: a repeat with the same key returns the same charge (200).
#[utoipa::path(post, path = "/api/payments/unip/charges", tag = "unip", request_body = ChargeInput,
    params(("Idempotency-Key" = String, Header, description = "Makes a repeated request return the first charge")),
    security(("bearer" = [])),
    responses((status = 201, body = ChargeView), (status = 200, body = ChargeView, description = "Repeated request"),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem, description = "The key was used for different data")))]
async fn create_charge(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    req: HttpRequest,
    body: web::Json<ChargeInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::InformationSystem, Role::OperatorAdmin])?;
    let key = idempotency_key(&req)?;
    let input: ChargeFields = body.into_inner().into();
    let supplier = supplier_for(&caller, input.supplier.as_deref())?;
    let charge = rules::validate_charge(&input, ctx.clock.today())?;
    let by = caller.subject.clone();
    let now = ctx.clock.now().naive_utc();
    let attempt = |ctx: web::Data<ServiceContext>| {
        let (supplier, key, charge, by) =
            (supplier.clone(), key.clone(), charge.clone(), by.clone());
        async move {
            ctx.db
                .write(move |conn| {
                    let created = store::create_charge(conn, &supplier, &key, &charge, &by, now)?;
                    // A repeat may come after payments arrived.
                    let payments = store::payments_of(conn, &created.charge.uin)?;
                    Ok::<_, ChargeStoreError>((created, payments))
                })
                .await
        }
    };
    // A concurrent request with the same key (or the supplier's first prefix)
    // may win the unique constraint; the retry then finds its row.
    let (created, payments) = match attempt(ctx.clone()).await {
        Err(e) if e.is_unique_violation() => attempt(ctx.clone()).await,
        other => other,
    }?;
    let view = charge_view(&created.charge, Some(&payments))?;
    Ok(if created.repeated {
        HttpResponse::Ok().json(view)
    } else {
        HttpResponse::Created().json(view)
    })
}

/// Loads the charge `uin` if the caller may see it: its supplier or the
/// operator. Anyone else gets 404, so УИНs cannot be probed.
async fn visible_charge(
    ctx: &ServiceContext,
    caller: &Caller,
    uin: &str,
) -> Result<ChargeRow, ApiError> {
    caller.require(&[Role::InformationSystem, Role::OperatorAdmin])?;
    let uin = primitives::Uin::parse(uin)
        .map_err(|e| Problem::invalid("uin", e.to_string()))?
        .to_string();
    let row = {
        let uin = uin.clone();
        ctx.db
            .read(move |conn| store::find_charge(conn, &uin))
            .await?
    };
    match row {
        Some(row) if caller.is_participant(&row.supplier) => Ok(row),
        _ => Err(Problem::not_found(format!("charge {uin} does not exist")).into()),
    }
}

/// A charge with its payments and quittance status.
#[utoipa::path(get, path = "/api/payments/unip/charges/{uin}", tag = "unip",
    params(("uin" = String, Path, description = "УИН of the charge")),
    security(("bearer" = [])),
    responses((status = 200, body = ChargeView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_charge(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = visible_charge(&ctx, &caller, &path.into_inner()).await?;
    let uin = row.uin.clone();
    let payments = ctx
        .db
        .read(move |conn| store::payments_of(conn, &uin))
        .await?;
    Ok(HttpResponse::Ok().json(charge_view(&row, Some(&payments))?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChargeQuery {
    /// Only charges in this status.
    pub status: Option<String>,
    /// Operator only: only this supplier's charges.
    pub supplier: Option<String>,
    #[param(minimum = 1, default = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub per_page: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChargePage {
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub items: Vec<ChargeView>,
}

/// The caller's charges, newest first (the operator sees all).
#[utoipa::path(get, path = "/api/payments/unip/charges", tag = "unip", params(ChargeQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ChargePage), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn list_charges(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    query: web::Query<ChargeQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::InformationSystem, Role::OperatorAdmin])?;
    let q = query.into_inner();
    let paging = platform::Page::parse(q.page, q.per_page, 50, 500)?;
    let (page, per_page, offset) = (paging.page, paging.per_page, paging.offset());
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(ChargeStatus::parse(s).ok_or_else(|| {
            Problem::invalid(
                "status",
                "one of active, partly_paid, paid, overpaid, cancelled",
            )
        })?),
    };
    let supplier = own_scope(&caller, q.supplier.as_deref())?;
    let (rows, total) = ctx
        .db
        .read(move |conn| store::list_charges(conn, supplier.as_deref(), status, offset, per_page))
        .await?;
    let items = rows
        .iter()
        .map(|r| charge_view(r, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(ChargePage {
        page,
        per_page,
        total,
        items,
    }))
}

/// Whose charges the caller sees: `None` for all (the operator, unless it
/// filters by `supplier`), else the information system's own participant code.
fn own_scope(caller: &Caller, supplier: Option<&str>) -> Result<Option<String>, Problem> {
    let supplier = supplier.map(str::trim).filter(|s| !s.is_empty());
    if caller.has_role(Role::OperatorAdmin) {
        return Ok(supplier.map(str::to_string));
    }
    let own = caller
        .participant
        .clone()
        .ok_or_else(|| Problem::forbidden("the token carries no participant claim"))?;
    match supplier {
        Some(s) if s != own => Err(Problem::forbidden(format!(
            "an information system sees only its own charges, not {s}'s"
        ))),
        _ => Ok(Some(own)),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: String,
}

/// Cancel a charge (its supplier or the operator). Refused with 409 while any
/// payment is matched to it; cancelling a cancelled charge changes nothing.
#[utoipa::path(post, path = "/api/payments/unip/charges/{uin}/cancel", tag = "unip", request_body = CancelRequest,
    params(("uin" = String, Path, description = "УИН of the charge")),
    security(("bearer" = [])),
    responses((status = 200, body = ChargeView), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "Payments are matched to the charge")))]
async fn cancel_charge(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<CancelRequest>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.into_inner().reason.trim().to_string();
    let row = visible_charge(&ctx, &caller, &path.into_inner()).await?;
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Problem::invalid("reason", "1–500 characters").into());
    }
    let by = caller.subject.clone();
    let now = ctx.clock.now().naive_utc();
    let uin = row.uin.clone();
    let (cancelled, payments) = ctx
        .db
        .write(move |conn| {
            let c = store::cancel_charge(conn, &uin, &reason, &by, now)?;
            let p = store::payments_of(conn, &uin)?;
            Ok::<_, ChargeStoreError>((c, p))
        })
        .await?;
    if cancelled.effect == CancelEffect::AlreadyCancelled {
        tracing::info!(uin = %cancelled.charge.uin, "charge was cancelled already");
    }
    Ok(HttpResponse::Ok().json(charge_view(&cancelled.charge, Some(&payments))?))
}

/// A payment received and its quittance.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentResult {
    pub payment_id: String,
    pub uin: String,
    #[schema(value_type = String, example = "500.00")]
    pub amount: Money,
    pub payment_date: NaiveDate,
    pub outcome: QuittanceOutcome,
    /// What the charge still asks after this payment (matched payments only).
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Money>,
    #[schema(value_type = String, example = "0.00")]
    pub overpayment: Money,
    /// The charge's status after the payment, when the УИН names a charge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charge_status: Option<ChargeStatus>,
    pub source: String,
    pub received_at: String,
}

/// Who reports the payment: a bank (its code from the token, or `bank` in the
/// body when the token lists several) or an information system.
fn payment_source(caller: &Caller, bank: Option<&str>) -> Result<String, Problem> {
    let bank = bank.map(str::trim).filter(|s| !s.is_empty());
    if caller.has_role(Role::Bank) {
        let code = match bank {
            Some(b) if caller.banks.contains(b) => b.to_string(),
            Some(b) => {
                return Err(Problem::forbidden(format!(
                    "the token does not act for bank {b}"
                )))
            }
            None if caller.banks.len() == 1 => {
                caller.banks.iter().next().cloned().unwrap_or_default()
            }
            None if caller.banks.is_empty() => {
                return Err(Problem::forbidden("the token carries no bank claim"))
            }
            None => {
                return Err(Problem::invalid(
                    "bank",
                    "required: the token acts for several banks",
                ))
            }
        };
        return Ok(format!("bank:{code}"));
    }
    match caller.participant.as_deref() {
        Some(p) if caller.has_role(Role::InformationSystem) => Ok(format!("is:{p}")),
        _ => Err(Problem::forbidden("the token carries no participant claim")),
    }
}

/// Report a payment (платёж) into УНиП; it is matched to its charge by УИН at
/// once. A payment id (УИП) is accepted once: a repeat is 409 `already-present`
/// and changes nothing.
#[utoipa::path(post, path = "/api/payments/unip/payments", tag = "unip", request_body = PaymentInput,
    security(("bearer" = [])),
    responses((status = 201, body = PaymentResult), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem, description = "An information system named a УИН that is not one of its own charges"),
        (status = 409, body = Problem, description = "The payment id is already present")))]
async fn receive_payment(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    body: web::Json<PaymentInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Bank, Role::InformationSystem])?;
    let input: PaymentFields = body.into_inner().into();
    let payment = rules::validate_payment(&input, ctx.clock.today())?;
    let source = payment_source(&caller, input.bank.as_deref())?;
    let by = caller.subject.clone();
    let now = ctx.clock.now().naive_utc();
    let pid = payment.payment_id.clone();
    // A bank accepts payments for any supplier's charge. An information system
    // reports payments taken at its own counter into its own charges only: to
    // any other (or a УИН that names none) it neither pays nor learns what the
    // charge still owes.
    let own_charges_only = caller
        .participant
        .clone()
        .filter(|_| source.starts_with("is:"));
    let received = ctx
        .db
        .write(move |conn| {
            store::receive_payment(
                conn,
                &payment,
                &source,
                own_charges_only.as_deref(),
                &by,
                now,
            )
        })
        .await;
    let received = match received {
        // A concurrent import of the same id won the primary key.
        Err(e) if e.is_unique_violation() => {
            let existing = ctx
                .db
                .read(move |conn| store::find_payment(conn, &pid))
                .await?;
            return Err(ChargeStoreError::PaymentPresent {
                payment_id: input.payment_id.trim().to_string(),
                outcome: existing.map(|p| p.outcome).unwrap_or_default(),
            }
            .into());
        }
        other => other?,
    };
    Ok(HttpResponse::Created().json(payment_result(&received)?))
}

/// A stored payment as answered, with its charge's status after it.
fn payment_result(received: &store::Received) -> Result<PaymentResult, ChargeStoreError> {
    let p = &received.payment;
    let charge_status = received
        .charge
        .as_ref()
        .map(ChargeRow::status)
        .transpose()?;
    Ok(PaymentResult {
        payment_id: p.payment_id.clone(),
        uin: p.uin.clone(),
        amount: Money::from_kopecks(p.amount_kopecks),
        payment_date: p.payment_date,
        outcome: p.outcome()?,
        remaining: p.remaining_kopecks.map(Money::from_kopecks),
        overpayment: Money::from_kopecks(p.overpayment_kopecks),
        charge_status,
        source: p.source.clone(),
        received_at: tyumen(p.received_at),
    })
}

/// The operator's match of an `unknown_uin` payment to a charge.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchBody {
    /// The charge the payment was meant for.
    pub uin: String,
    /// Why (e.g. the payer's letter with the receipt): kept in the audit record.
    pub reason: String,
}

/// A payment matched by hand, with the audit record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ManualMatchView {
    pub payment: PaymentResult,
    /// The УИН the payment itself quoted (unchanged).
    pub claimed_uin: String,
    pub charge_uin: String,
    pub outcome_before: QuittanceOutcome,
    pub reason: String,
    pub matched_by: String,
    /// Tyumen local time.
    pub matched_at: String,
}

/// Match an `unknown_uin` payment (a typo in the УИН) to the charge it was
/// meant for, with a reason; the operator only. The quittance follows as if
/// the payment had named the charge; the audit record keeps who, when, why and
/// the УИН the payment quoted.
#[utoipa::path(post, path = "/api/payments/unip/payments/{payment_id}/match", tag = "unip", request_body = MatchBody,
    params(("payment_id" = String, Path, description = "The payment id (УИП)")),
    security(("bearer" = [])),
    responses((status = 200, body = ManualMatchView), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem, description = "No such payment or charge"),
        (status = 409, body = Problem, description = "The payment is matched already (by its УИН or by hand); nothing changed")))]
async fn match_payment(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<MatchBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::OperatorAdmin])?;
    let payment_id = path.into_inner();
    let body = body.into_inner();
    let uin = primitives::Uin::parse(body.uin.trim())
        .map_err(|e| Problem::invalid("uin", e.to_string()))?
        .to_string();
    Problem::require_text("reason", &body.reason)?;
    let reason = body.reason.trim().to_string();
    let (by, now) = (caller.subject.clone(), ctx.clock.now().naive_utc());
    let (received, record) = ctx
        .db
        .write(move |conn| store::match_by_hand(conn, &payment_id, &uin, &reason, &by, now))
        .await?;
    tracing::info!(payment = %record.payment_id, charge = %record.charge_uin, by = %record.matched_by, "payment matched to a charge by hand");
    Ok(HttpResponse::Ok().json(ManualMatchView {
        payment: payment_result(&received)?,
        claimed_uin: record.claimed_uin,
        charge_uin: record.charge_uin,
        outcome_before: QuittanceOutcome::UnknownUin,
        reason: record.reason,
        matched_by: record.matched_by,
        matched_at: tyumen(record.matched_at),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// First payment date, YYYY-MM-DD.
    pub from: String,
    /// Last payment date (inclusive), YYYY-MM-DD; at most 366 days after `from`.
    pub to: String,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// One payment in the quittance report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportLine {
    pub payment_id: String,
    /// The УИН the payment gives.
    pub uin: String,
    pub payment_date: NaiveDate,
    #[schema(value_type = String, example = "500.00")]
    pub amount: Money,
    pub outcome: QuittanceOutcome,
    #[schema(value_type = String, example = "0.00")]
    pub overpayment: Money,
    /// The charge's supplier; absent for `unknown_uin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
    pub payer: String,
    pub source: String,
}

/// The quittance report for a period of payment dates.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuittanceReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub lines: Vec<ReportLine>,
    /// One entry per outcome, every outcome listed.
    pub totals: Vec<OutcomeTotal>,
    pub count: i64,
    #[schema(value_type = String, example = "1250.50")]
    pub amount: Money,
}

/// Count and sum of the payments with one outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OutcomeTotal {
    pub outcome: QuittanceOutcome,
    pub count: i64,
    /// Sum of the payments' amounts.
    #[schema(value_type = String, example = "1250.50")]
    pub amount: Money,
    /// Sum of the overpayments among them.
    #[schema(value_type = String, example = "0.00")]
    pub overpayment: Money,
}

impl From<rules::OutcomeTotal> for OutcomeTotal {
    fn from(t: rules::OutcomeTotal) -> Self {
        OutcomeTotal {
            outcome: t.outcome,
            count: t.count,
            amount: t.amount,
            overpayment: t.overpayment,
        }
    }
}

/// Every payment dated in the period with its quittance outcome, and totals per
/// outcome. The operator sees all (including `unknown_uin`); an information
/// system sees its own charges' payments. `format=csv` answers `text/csv`:
/// `;`-separated lines under a header, then an empty line and the totals.
#[utoipa::path(get, path = "/api/payments/unip/quittance-report", tag = "unip", params(ReportQuery),
    security(("bearer" = [])),
    responses((status = 200, body = QuittanceReport, description = "JSON, or text/csv with format=csv"),
        (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn quittance_report(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::OperatorAdmin, Role::InformationSystem])?;
    let q = query.into_inner();
    let from = rules::date("from", &q.from)?;
    let to = rules::date("to", &q.to)?;
    if to < from {
        return Err(Problem::invalid("to", "must not be before from").into());
    }
    if (to - from).num_days() > 366 {
        return Err(Problem::invalid("to", "the period is at most 366 days").into());
    }
    let csv = match q.format.as_deref() {
        None | Some("") | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(Problem::invalid("format", "json or csv").into()),
    };
    let supplier = own_scope(&caller, None)?;
    let rows = ctx
        .db
        .read(move |conn| store::payments_between(conn, from, to, supplier.as_deref()))
        .await?;
    let lines = rows
        .iter()
        .map(|p| {
            Ok(ReportLine {
                payment_id: p.payment_id.clone(),
                uin: p.uin.clone(),
                payment_date: p.payment_date,
                amount: Money::from_kopecks(p.amount_kopecks),
                outcome: p.outcome()?,
                overpayment: Money::from_kopecks(p.overpayment_kopecks),
                supplier: p.supplier.clone(),
                payer: p.payer_name.clone(),
                source: p.source.clone(),
            })
        })
        .collect::<Result<Vec<_>, ChargeStoreError>>()?;
    let totals = rules::totals(
        &lines
            .iter()
            .map(|l| (l.outcome, l.amount, l.overpayment))
            .collect::<Vec<_>>(),
    );
    let report = QuittanceReport {
        from,
        to,
        count: lines.len() as i64,
        amount: lines.iter().map(|l| l.amount).sum(),
        lines,
        totals: totals.into_iter().map(OutcomeTotal::from).collect(),
    };
    if csv {
        Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"quittance-{from}-{to}.csv\""),
            ))
            .body(report_csv(&report)))
    } else {
        Ok(HttpResponse::Ok().json(report))
    }
}

/// One CSV field: quoted (with doubled quotes) only when it holds `;`, a
/// quote or a line break, which only free text (payer names) can.
fn csv_field(s: &str) -> String {
    if s.contains([';', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The report as `;`-separated text: a header, one line per payment, an empty
/// line, then a totals header and one line per outcome and `total`. Money is
/// written as "1250.50".
fn report_csv(r: &QuittanceReport) -> String {
    let mut out = String::from(
        "payment_id;uin;payment_date;amount;outcome;overpayment;supplier;payer;source\n",
    );
    for l in &r.lines {
        let fields = [
            csv_field(&l.payment_id),
            csv_field(&l.uin),
            l.payment_date.to_string(),
            l.amount.to_string(),
            l.outcome.as_str().to_string(),
            l.overpayment.to_string(),
            csv_field(l.supplier.as_deref().unwrap_or("")),
            csv_field(&l.payer),
            csv_field(&l.source),
        ];
        out.push_str(&fields.join(";"));
        out.push('\n');
    }
    out.push_str("\noutcome;count;amount;overpayment\n");
    for t in &r.totals {
        out.push_str(&format!(
            "{};{};{};{}\n",
            t.outcome.as_str(),
            t.count,
            t.amount,
            t.overpayment
        ));
    }
    let overpayment: Money = r.totals.iter().map(|t| t.overpayment).sum();
    out.push_str(&format!("total;{};{};{}\n", r.count, r.amount, overpayment));
    out
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupplierConfig {
    /// 8 characters: digits and Latin capital letters.
    #[schema(example = "TYUM0001")]
    pub prefix: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SupplierView {
    pub participant: String,
    pub prefix: String,
    /// False when the prefix was derived from the participant code.
    pub configured: bool,
}

/// Set a supplier's УИН prefix (operator only). Charges issued before keep
/// their УИН.
#[utoipa::path(put, path = "/api/payments/unip/suppliers/{participant}", tag = "unip", request_body = SupplierConfig,
    params(("participant" = String, Path, description = "Participant code of the information system")),
    security(("bearer" = [])),
    responses((status = 200, body = SupplierView), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "Another supplier has this prefix")))]
async fn configure_supplier(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<SupplierConfig>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::OperatorAdmin])?;
    let participant = path.into_inner();
    valid_participant("participant", &participant)?;
    let prefix = SupplierPrefix::parse(&body.into_inner().prefix)
        .map_err(|e| Problem::invalid("prefix", e))?;
    let by = caller.subject.clone();
    let now = ctx.clock.now().naive_utc();
    let row = ctx
        .db
        .write(move |conn| store::configure_supplier(conn, &participant, &prefix, &by, now))
        .await?;
    Ok(HttpResponse::Ok().json(SupplierView {
        participant: row.participant,
        prefix: row.prefix,
        configured: row.configured,
    }))
}

/// What an agency ИС asks of УНиП through the XML gateway (`unip.*`): the
/// same rules and store as the REST handlers above, in the responder's
/// transaction. The supplier is the calling participant; the gateway's
/// (Sender, MessageId) is the idempotency key of an import.
pub fn gateway_call(
    conn: &mut storage::DbConnection,
    call: &contracts::gateway::ServiceCall,
    clock: &dyn calendar::Clock,
) -> Result<serde_json::Value, Problem> {
    let supplier = call.caller.code.as_str();
    let by = format!("gateway:{supplier}");
    let now = clock.now().naive_utc();
    let problem = |e: ApiError| e.0;
    match call.operation.as_str() {
        "unip.ImportCharge" => {
            let input: ChargeInput = platform::calls::body(call)?;
            let fields: ChargeFields = input.into();
            let charge =
                rules::validate_charge(&fields, clock.today()).map_err(|e| problem(e.into()))?;
            let created = store::create_charge(conn, supplier, &call.key, &charge, &by, now)
                .map_err(|e| problem(e.into()))?;
            let payments =
                store::payments_of(conn, &created.charge.uin).map_err(|e| problem(e.into()))?;
            to_json(&charge_view(&created.charge, Some(&payments)).map_err(problem)?)
        }
        "unip.CancelCharge" => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Cancel {
                uin: String,
                reason: String,
            }
            let c: Cancel = platform::calls::body(call)?;
            let row = own_charge(conn, supplier, &c.uin)?;
            let reason = c.reason.trim();
            if reason.is_empty() || reason.chars().count() > 500 {
                return Err(Problem::invalid("reason", "1–500 characters"));
            }
            let cancelled = store::cancel_charge(conn, &row.uin, reason, &by, now)
                .map_err(|e| problem(e.into()))?;
            let payments = store::payments_of(conn, &row.uin).map_err(|e| problem(e.into()))?;
            to_json(&charge_view(&cancelled.charge, Some(&payments)).map_err(problem)?)
        }
        "unip.ExportPayments" => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Export {
                from: Option<String>,
                to: Option<String>,
                #[serde(default)]
                uins: Vec<String>,
            }
            let q: Export = platform::calls::body(call)?;
            let uins: Vec<String> = if !q.uins.is_empty() {
                if q.uins.len() > EXPORT_MAX {
                    return Err(Problem::invalid(
                        "uins",
                        format!("at most {EXPORT_MAX} УИН at once"),
                    ));
                }
                q.uins
                    .iter()
                    .enumerate()
                    .map(|(i, u)| {
                        primitives::Uin::parse(u)
                            .map(|u| u.to_string())
                            .map_err(|e| Problem::invalid(&format!("uins[{i}]"), e.to_string()))
                    })
                    .collect::<Result<_, _>>()?
            } else {
                let (Some(from), Some(to)) = (q.from.as_deref(), q.to.as_deref()) else {
                    return Err(Problem::invalid(
                        "from",
                        "give a period (from and to) or a list of УИН",
                    ));
                };
                let from = rules::date("from", from).map_err(|e| problem(e.into()))?;
                let to = rules::date("to", to).map_err(|e| problem(e.into()))?;
                if to < from || (to - from).num_days() > 366 {
                    return Err(Problem::invalid(
                        "to",
                        "not before from, at most 366 days after it",
                    ));
                }
                let mut uins: Vec<String> = Vec::new();
                for p in store::payments_between(conn, from, to, Some(supplier))
                    .map_err(|e| problem(e.into()))?
                {
                    let uin = p.charge_uin.unwrap_or(p.uin);
                    if !uins.contains(&uin) {
                        uins.push(uin);
                    }
                }
                if uins.len() > EXPORT_MAX {
                    return Err(Problem::invalid(
                        "to",
                        format!("the period's payments name {} charges, more than {EXPORT_MAX}: ask for a shorter period", uins.len()),
                    ));
                }
                uins
            };
            let mut charges = Vec::new();
            for uin in uins {
                // Charges of other suppliers (and none at all) are not there for the caller.
                let Some(row) = store::find_charge(conn, &uin).map_err(|e| problem(e.into()))?
                else {
                    continue;
                };
                if row.supplier != supplier {
                    continue;
                }
                let payments = store::payments_of(conn, &uin).map_err(|e| problem(e.into()))?;
                charges.push(charge_view(&row, Some(&payments)).map_err(problem)?);
            }
            Ok(serde_json::json!({ "charges": charges }))
        }
        _ => Err(platform::calls::unknown(call)),
    }
}

/// How many charges one export answers.
const EXPORT_MAX: usize = 500;

/// The caller's charge `uin`; another supplier's is as missing as none.
fn own_charge(
    conn: &mut storage::DbConnection,
    supplier: &str,
    uin: &str,
) -> Result<ChargeRow, Problem> {
    let uin = primitives::Uin::parse(uin)
        .map_err(|e| Problem::invalid("uin", e.to_string()))?
        .to_string();
    match store::find_charge(conn, &uin).map_err(|e| ApiError::from(e).0)? {
        Some(row) if row.supplier == supplier => Ok(row),
        _ => Err(Problem::not_found(format!("charge {uin} does not exist"))),
    }
}

fn to_json(v: &impl Serialize) -> Result<serde_json::Value, Problem> {
    serde_json::to_value(v).map_err(Problem::internal)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_header_lines_and_totals() {
        let line = ReportLine {
            payment_id: "P1".into(),
            uin: "12345678000000000011".into(),
            payment_date: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
            amount: Money::parse("1250.5").unwrap(),
            outcome: QuittanceOutcome::Matched,
            overpayment: Money::ZERO,
            supplier: Some("IS1".into()),
            payer: "ООО \"Ромашка\"; филиал".into(),
            source: "bank:b1".into(),
        };
        let report = QuittanceReport {
            from: line.payment_date,
            to: line.payment_date,
            count: 1,
            amount: line.amount,
            totals: rules::totals(&[(line.outcome, line.amount, line.overpayment)])
                .into_iter()
                .map(OutcomeTotal::from)
                .collect(),
            lines: vec![line],
        };
        let csv = report_csv(&report);
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(
            rows[0],
            "payment_id;uin;payment_date;amount;outcome;overpayment;supplier;payer;source"
        );
        assert_eq!(
            rows[1],
            "P1;12345678000000000011;2026-09-01;1250.50;matched;0.00;IS1;\"ООО \"\"Ромашка\"\"; филиал\";bank:b1"
        );
        assert_eq!(rows[2], "");
        assert_eq!(rows[3], "outcome;count;amount;overpayment");
        assert_eq!(rows[4], "matched;1;1250.50;0.00");
        assert_eq!(rows[9], "total;1;1250.50;0.00");
    }
}
