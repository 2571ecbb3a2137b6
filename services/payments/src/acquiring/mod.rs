//! Internet acquiring (интернет-эквайринг: card payments on the bank's payment
//! page): a parent tops up a student's personal account in real time through the
//! acquiring bank the meal organizer chose.
//!
//! The bank is an adapter behind [`Acquirer`]; [`rbs::RbsAcquirer`] speaks the
//! REST API most Russian acquiring banks expose, [`simulator::SimulatedBank`]
//! plays such a bank over real HTTP for tests and demonstrations.
//!
//! Money moves only on the bank's word: a callback is a trigger, the status is
//! confirmed with a query before the account is credited, and a missing callback
//! is made up for by [`poll_once`]. Statuses carry a rank that only grows, and the
//! credit is keyed by the order, so duplicate, late or concurrent notifications
//! credit once.

pub mod rbs;
pub mod simulator;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hmac::{Hmac, Mac};
use platform::ServiceContext;
use primitives::Money;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::ledger::{AccountKind, Movement, MovementKind};
use crate::store::acquiring::{self as db, OrderRow, OrganizerAcquiring, RefundRow};
use crate::store::{self, StoreError};

/// An order still unfinished this long after registration is asked about
/// (the callback may have been lost).
pub const POLL_AFTER_SECS: i64 = 120;
/// The same order is asked about at most this often.
pub const POLL_REPEAT_SECS: i64 = 60;
/// Orders older than this are left alone: banks expire unpaid orders within
/// minutes, so one still open after two days needs a person, not a poller.
pub const POLL_GIVE_UP_HOURS: i64 = 48;
/// How often the background poller wakes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(60);
/// A registration is one bank call (seconds); an order still `registering`
/// this long after it was stored was left by a crash before the bank's answer.
pub const REGISTERING_STALE_SECS: i64 = 300;
const POLL_BATCH: i64 = 100;
/// The top-up limit of an organizer that did not set its own: 2000.00 rubles.
pub const DEFAULT_TOP_UP_LIMIT_KOPECKS: i64 = 200_000;

/// Where an order stands. The rank only grows: ranks of 10 and above are final
/// outcomes of the payment, `refunded` (20) follows `deposited` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Stored here, the bank has not answered the registration yet.
    Registering,
    /// Registered with the bank, not paid.
    Created,
    /// 3-D Secure (ACS) authentication in progress.
    Acs,
    /// Authorised and held on the card, not yet deposited.
    Approved,
    /// Paid: the account has been credited.
    Deposited,
    Declined,
    /// The hold was cancelled.
    Reversed,
    /// Everything paid has been refunded.
    Refunded,
}

impl OrderStatus {
    /// Statuses ranking at least this are final.
    pub const FINAL_RANK: i32 = 10;

    pub fn rank(self) -> i32 {
        match self {
            OrderStatus::Registering => 0,
            OrderStatus::Created => 1,
            OrderStatus::Acs => 2,
            OrderStatus::Approved => 3,
            OrderStatus::Deposited | OrderStatus::Declined | OrderStatus::Reversed => 10,
            OrderStatus::Refunded => 20,
        }
    }

    pub fn is_final(self) -> bool {
        self.rank() >= Self::FINAL_RANK
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Registering => "registering",
            OrderStatus::Created => "created",
            OrderStatus::Acs => "acs",
            OrderStatus::Approved => "approved",
            OrderStatus::Deposited => "deposited",
            OrderStatus::Declined => "declined",
            OrderStatus::Reversed => "reversed",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Registering,
            OrderStatus::Created,
            OrderStatus::Acs,
            OrderStatus::Approved,
            OrderStatus::Deposited,
            OrderStatus::Declined,
            OrderStatus::Reversed,
            OrderStatus::Refunded,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// The `orderStatus` code of the bank's status query.
    pub fn from_bank_code(code: i64) -> Option<OrderStatus> {
        Some(match code {
            0 => OrderStatus::Created,
            1 => OrderStatus::Approved,
            2 => OrderStatus::Deposited,
            3 => OrderStatus::Reversed,
            4 => OrderStatus::Refunded,
            5 => OrderStatus::Acs,
            6 => OrderStatus::Declined,
            _ => return None,
        })
    }

    pub fn bank_code(self) -> Option<i64> {
        Some(match self {
            OrderStatus::Created => 0,
            OrderStatus::Approved => 1,
            OrderStatus::Deposited => 2,
            OrderStatus::Reversed => 3,
            OrderStatus::Refunded => 4,
            OrderStatus::Acs => 5,
            OrderStatus::Declined => 6,
            OrderStatus::Registering => return None,
        })
    }
}

/// A refund whose outcome the bank left unknown is settled by a repeat of the
/// request no sooner than this after the last attempt (longer than a bank call
/// can take, so two attempts never overlap).
pub const REFUND_RETRY_AFTER_SECS: i64 = 60;
const REFUND_PENDING: &str = "pending";
const REFUND_DONE: &str = "done";

/// A future an [`Acquirer`] returns (boxed, so the trait can be used as `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An order to register with the bank.
#[derive(Debug, Clone)]
pub struct RegisterOrder {
    /// Our order number; the bank refuses a number it has seen.
    pub order_number: String,
    pub amount: Money,
    /// Where the bank's payment page sends the parent afterwards.
    pub return_url: String,
    pub description: String,
}

/// The bank's answer to a registration.
#[derive(Debug, Clone)]
pub struct Registered {
    pub bank_order_id: String,
    /// The payment page for the parent.
    pub payment_url: String,
}

/// What the bank says about an order.
#[derive(Debug, Clone)]
pub struct BankOrder {
    pub status: OrderStatus,
    pub amount: Money,
    /// Refunded so far, as the bank counts it.
    pub refunded: Money,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AcquirerError {
    /// The bank did not answer in time or reported a temporary failure; the
    /// outcome of the request is unknown.
    #[error("the acquiring bank is unavailable: {0}")]
    Unavailable(String),
    /// The bank answered with an error code: nothing was done.
    #[error("the acquiring bank refused ({code}): {message}")]
    Rejected { code: String, message: String },
    /// The bank's answer does not parse.
    #[error("the acquiring bank's answer is not understood: {0}")]
    Protocol(String),
}

/// An acquiring bank.
pub trait Acquirer: Send + Sync {
    fn register_order<'a>(
        &'a self,
        order: &'a RegisterOrder,
    ) -> BoxFuture<'a, Result<Registered, AcquirerError>>;

    fn order_status<'a>(
        &'a self,
        bank_order_id: &'a str,
    ) -> BoxFuture<'a, Result<BankOrder, AcquirerError>>;

    /// Refunds `amount` (part or all of what was paid) to the payer's card.
    fn refund<'a>(
        &'a self,
        bank_order_id: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<(), AcquirerError>>;
}

/// The adapter for an organizer's bank.
pub fn acquirer_for(config: &OrganizerAcquiring) -> Box<dyn Acquirer> {
    Box::new(rbs::RbsAcquirer::new(
        &config.base_url,
        &config.merchant_login,
        &config.merchant_password,
    ))
}

/// The ledger account of money received through the organizer's acquiring bank.
pub fn clearing_account(organizer: &str) -> String {
    store::system::clearing(&format!("acquiring:{organizer}"))
}

/// The idempotency key of the credit of an order: one credit per order.
pub fn credit_key(order_id: &str) -> String {
    format!("acquiring:{order_id}")
}

type HmacSha256 = Hmac<Sha256>;

/// The text a callback checksum is computed over: every parameter except
/// `checksum`, sorted by name, as `name;value;`.
pub fn checksum_text(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| k != "checksum").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{k};{v};"))
        .collect::<String>()
}

/// The callback checksum (HMAC-SHA256, upper-case hex) as the bank computes it.
pub fn checksum(params: &[(String, String)], secret: &str) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length; this branch is never taken.
        return String::new();
    };
    mac.update(checksum_text(params).as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Whether the `checksum` among `params` is right for `secret`. Hex case does
/// not matter; the comparison takes constant time.
pub fn verify_checksum(params: &[(String, String)], secret: &str) -> bool {
    let Some(given) = params
        .iter()
        .find(|(k, _)| k == "checksum")
        .and_then(|(_, v)| decode_hex(v))
    else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(checksum_text(params).as_bytes());
    mac.verify_slice(&given).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why an acquiring operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AcquiringError {
    #[error(transparent)]
    Bank(#[from] AcquirerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("organizer {0} has not chosen an acquiring bank")]
    NotConfigured(String),
    #[error("top-up {0} does not exist")]
    UnknownOrder(String),
    #[error("at most {0} rubles per top-up")]
    OverLimit(Money),
    #[error("this Idempotency-Key was used for another request")]
    KeyReused,
    #[error("the same request is being processed; repeat it in a moment")]
    InProgress,
    #[error("the bank reports {bank} rubles for top-up {order} of {ours} rubles")]
    AmountMismatch {
        order: String,
        bank: Money,
        ours: Money,
    },
    #[error("top-up {order} is {status}: only a paid top-up can be refunded")]
    NotRefundable { order: String, status: String },
    #[error("at most {0} rubles can be refunded")]
    RefundTooLarge(Money),
    #[error("the account holds {available} rubles that can be refunded: a refund never takes the balance below zero")]
    RefundOverBalance { available: Money },
    #[error("the bank did not confirm the refund ({0}); repeat the request with the same Idempotency-Key to finish it")]
    RefundUnconfirmed(String),
    #[error("{0}")]
    Ledger(String),
}

impl From<diesel::result::Error> for AcquiringError {
    fn from(e: diesel::result::Error) -> Self {
        AcquiringError::Store(StoreError::from(e))
    }
}

impl From<storage::StorageError> for AcquiringError {
    fn from(e: storage::StorageError) -> Self {
        AcquiringError::Store(StoreError::Storage(e))
    }
}

fn status_of(order: &OrderRow) -> OrderStatus {
    OrderStatus::parse(&order.status).unwrap_or(OrderStatus::Registering)
}

fn now(ctx: &ServiceContext) -> chrono::NaiveDateTime {
    ctx.clock.now().naive_utc()
}

/// What a top-up request asks for.
#[derive(Debug, Clone)]
pub struct TopUpRequest {
    pub account: String,
    pub organizer: String,
    pub parent: String,
    pub amount: Money,
    pub return_url: String,
    /// Scoped to the parent already.
    pub key: String,
}

/// A registered top-up; `fresh` is false when the key had been used.
#[derive(Debug, Clone)]
pub struct TopUp {
    pub order: OrderRow,
    pub fresh: bool,
}

/// Registers a top-up with the organizer's bank, once per key.
pub async fn create_top_up(
    ctx: &ServiceContext,
    request: TopUpRequest,
) -> Result<TopUp, AcquiringError> {
    let organizer = request.organizer.clone();
    let keys = ctx.secrets.clone();
    let config = ctx
        .db
        .read(move |conn| db::find_config(conn, &organizer, &keys))
        .await?
        .ok_or_else(|| AcquiringError::NotConfigured(request.organizer.clone()))?;
    let limit = Money::from_kopecks(config.top_up_limit_kopecks);
    if request.amount > limit {
        return Err(AcquiringError::OverLimit(limit));
    }
    let at = now(ctx);
    let row = OrderRow {
        id: uuid::Uuid::now_v7().simple().to_string(),
        idempotency_key: request.key.clone(),
        account_id: request.account.clone(),
        organizer: request.organizer.clone(),
        parent: request.parent.clone(),
        amount_kopecks: request.amount.kopecks(),
        bank_order_id: None,
        payment_url: None,
        status: OrderStatus::Registering.as_str().into(),
        status_rank: OrderStatus::Registering.rank(),
        refund_reserved_kopecks: 0,
        refunded_kopecks: 0,
        credit_movement: None,
        created_at: at,
        updated_at: at,
        polled_at: None,
    };
    let insert = row.clone();
    let inserted = ctx
        .db
        .write(move |conn| {
            if let Some(existing) = db::find_order_by_key(conn, &insert.idempotency_key)? {
                // Left `registering` by a crash: the parent never got its
                // payment page, so it is forgotten and this request registers
                // anew.
                let stale = insert.created_at - chrono::Duration::seconds(REGISTERING_STALE_SECS);
                let forgotten = existing.created_at <= stale
                    && db::delete_unregistered(conn, &existing.id, OrderStatus::Registering.as_str())?
                        == 1;
                if !forgotten {
                    return Ok::<_, AcquiringError>(Err(existing));
                }
                tracing::warn!(order = %existing.id, "a top-up left registering by a crash is registered anew");
            }
            db::insert_order(conn, &insert)?;
            Ok(Ok(()))
        })
        .await;
    let existing = match inserted {
        Ok(Ok(())) => None,
        Ok(Err(existing)) => Some(existing),
        // A concurrent request with the same key inserted first.
        Err(AcquiringError::Store(StoreError::Storage(e))) if e.is_unique_violation() => {
            let key = request.key.clone();
            ctx.db
                .read(move |conn| db::find_order_by_key(conn, &key))
                .await?
        }
        Err(e) => return Err(e),
    };
    if let Some(existing) = existing {
        if existing.account_id != request.account
            || existing.amount_kopecks != request.amount.kopecks()
        {
            return Err(AcquiringError::KeyReused);
        }
        if existing.payment_url.is_none() {
            return Err(AcquiringError::InProgress);
        }
        return Ok(TopUp {
            order: existing,
            fresh: false,
        });
    }

    let registration = RegisterOrder {
        order_number: row.id.clone(),
        amount: request.amount,
        return_url: request.return_url.clone(),
        description: format!("Пополнение лицевого счёта {}", request.account),
    };
    let answer = acquirer_for(&config).register_order(&registration).await;
    let id = row.id.clone();
    match answer {
        Ok(registered) => {
            let at = now(ctx);
            let order = ctx
                .db
                .write(move |conn| {
                    let created = OrderStatus::Created;
                    db::mark_registered(
                        conn,
                        &id,
                        OrderStatus::Registering.as_str(),
                        (created.as_str(), created.rank()),
                        &registered.bank_order_id,
                        &registered.payment_url,
                        at,
                    )?;
                    db::find_order(conn, &id)?.ok_or(AcquiringError::UnknownOrder(id))
                })
                .await?;
            tracing::info!(order = %order.id, bank_order = ?order.bank_order_id, account = %order.account_id, amount = %request.amount, "top-up registered with the bank");
            Ok(TopUp { order, fresh: true })
        }
        Err(e) => {
            // The payment page never reached the parent, so an order the bank
            // may have registered anyway can never be paid: forget ours and let
            // the parent repeat the request.
            ctx.db
                .write(move |conn| {
                    db::delete_unregistered(conn, &id, OrderStatus::Registering.as_str())
                })
                .await?;
            tracing::warn!(order = %row.id, error = %e, "the bank did not register the top-up");
            Err(e.into())
        }
    }
}

/// What confirming an order's status did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub order_id: String,
    /// The status after confirming.
    pub status: OrderStatus,
    /// This call moved the status.
    pub changed: bool,
    /// This call credited the account.
    pub credited: bool,
}

/// An order and its organizer's acquiring configuration.
async fn order_and_config(
    ctx: &ServiceContext,
    id: String,
) -> Result<(OrderRow, OrganizerAcquiring), AcquiringError> {
    let keys = ctx.secrets.clone();
    ctx.db
        .read(move |conn| {
            let order = db::find_order(conn, &id)?
                .ok_or_else(|| AcquiringError::UnknownOrder(id.clone()))?;
            let config = db::find_config(conn, &order.organizer, &keys)?
                .ok_or_else(|| AcquiringError::NotConfigured(order.organizer.clone()))?;
            Ok::<_, AcquiringError>((order, config))
        })
        .await
}

/// Asks the bank about the order and records what it says: a status of a
/// higher rank replaces the stored one, and the move to `deposited` credits the
/// account in the same transaction.
pub async fn confirm(ctx: &ServiceContext, order_id: &str) -> Result<Applied, AcquiringError> {
    let id = order_id.to_string();
    let (order, config) = order_and_config(ctx, id).await?;
    let Some(bank_order_id) = order.bank_order_id.clone() else {
        return Ok(Applied {
            order_id: order.id.clone(),
            status: status_of(&order),
            changed: false,
            credited: false,
        });
    };
    let bank = acquirer_for(&config).order_status(&bank_order_id).await?;
    apply(ctx, order, bank).await
}

async fn apply(
    ctx: &ServiceContext,
    order: OrderRow,
    bank: BankOrder,
) -> Result<Applied, AcquiringError> {
    let current = status_of(&order);
    let unchanged = |status| Applied {
        order_id: order.id.clone(),
        status,
        changed: false,
        credited: false,
    };
    if bank.status == OrderStatus::Refunded {
        // Only our refund path marks an order refunded, together with its
        // ledger movement; a refund made at the bank behind our back needs a
        // person to book it.
        if bank.refunded.kopecks() != order.refunded_kopecks {
            tracing::error!(order = %order.id, bank_refunded = %bank.refunded, our_refunded = %Money::from_kopecks(order.refunded_kopecks), "the bank reports a refund not booked here");
        }
        return Ok(unchanged(current));
    }
    if current == OrderStatus::Deposited && bank.status == OrderStatus::Reversed {
        return book_reversal(ctx, order).await;
    }
    if bank.status.rank() <= current.rank() {
        if bank.status != current && current.is_final() {
            tracing::warn!(order = %order.id, stored = current.as_str(), bank = bank.status.as_str(), "a final status is kept against a later report");
        }
        return Ok(unchanged(current));
    }
    if bank.status == OrderStatus::Deposited && bank.amount.kopecks() != order.amount_kopecks {
        tracing::error!(order = %order.id, bank_amount = %bank.amount, our_amount = %Money::from_kopecks(order.amount_kopecks), "the bank reports another amount; not credited");
        return Err(AcquiringError::AmountMismatch {
            order: order.id.clone(),
            bank: bank.amount,
            ours: Money::from_kopecks(order.amount_kopecks),
        });
    }
    let at = now(ctx);
    let new = bank.status;
    let row = order.clone();
    let (changed, credited, status) = ctx
        .db
        .write(move |conn| {
            let changed = db::advance_status(conn, &row.id, new.as_str(), new.rank(), at)? == 1;
            let mut credited = false;
            if changed && new == OrderStatus::Deposited {
                let clearing = clearing_account(&row.organizer);
                store::ensure_system_account(conn, &clearing, AccountKind::BankClearing, at)?;
                let movement = Movement::transfer(
                    MovementKind::TopUp,
                    &clearing,
                    &row.account_id,
                    Money::from_kopecks(row.amount_kopecks),
                    &format!("Пополнение через интернет-эквайринг, заказ {}", row.id),
                    &format!("acquiring:{}", row.organizer),
                )
                .map_err(|e| AcquiringError::Ledger(e.to_string()))?;
                let posted = store::post(conn, &movement, &credit_key(&row.id), None, at)?;
                db::set_credit_movement(conn, &row.id, &posted.movement_id)?;
                credited = !posted.duplicate;
            }
            let status = db::find_order(conn, &row.id)?
                .map(|o| status_of(&o))
                .unwrap_or(new);
            Ok::<_, AcquiringError>((changed, credited, status))
        })
        .await?;
    if credited {
        ctx.bus.wake_relay();
        tracing::info!(order = %order.id, account = %order.account_id, amount = %Money::from_kopecks(order.amount_kopecks), "top-up credited");
    } else if changed {
        tracing::info!(order = %order.id, status = new.as_str(), "top-up status changed");
    }
    Ok(Applied {
        order_id: order.id,
        status,
        changed,
        credited,
    })
}

/// The bank reversed a paid top-up (returned it to the card on its own): what
/// was credited and not refunded since leaves the personal account for the
/// clearing account, once, even if that takes the balance below zero (the
/// money is gone; the operator sees the warning).
async fn book_reversal(ctx: &ServiceContext, order: OrderRow) -> Result<Applied, AcquiringError> {
    let at = now(ctx);
    let row = order.clone();
    let (changed, balance) = ctx
        .db
        .write(move |conn| {
            let changed = db::reverse_deposited(
                conn,
                &row.id,
                OrderStatus::Deposited.as_str(),
                OrderStatus::Reversed.as_str(),
                at,
            )? == 1;
            let left = row.amount_kopecks - row.refunded_kopecks;
            if changed && left > 0 {
                let clearing = clearing_account(&row.organizer);
                store::ensure_system_account(conn, &clearing, AccountKind::BankClearing, at)?;
                let movement = Movement::transfer(
                    MovementKind::Refund,
                    &row.account_id,
                    &clearing,
                    Money::from_kopecks(left),
                    &format!("Отмена банком оплаченного пополнения, заказ {}", row.id),
                    &format!("acquiring:{}", row.organizer),
                )
                .map_err(|e| AcquiringError::Ledger(e.to_string()))?;
                store::post(
                    conn,
                    &movement,
                    &format!("acquiring-reversal:{}", row.id),
                    None,
                    at,
                )?;
            }
            Ok::<_, AcquiringError>((changed, store::balance(conn, &row.account_id)?))
        })
        .await?;
    if changed {
        ctx.bus.wake_relay();
        tracing::warn!(order = %order.id, account = %order.account_id, amount = %Money::from_kopecks(order.amount_kopecks - order.refunded_kopecks), %balance, "the bank reversed a paid top-up; booked");
    }
    Ok(Applied {
        order_id: order.id,
        status: OrderStatus::Reversed,
        changed,
        credited: false,
    })
}

/// What one round of polling did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub asked: usize,
    pub changed: usize,
    pub credited: usize,
    pub failed: usize,
    /// Orders left `registering` by a crash, forgotten.
    pub abandoned: usize,
    /// Refunds whose outcome the bank had left unknown, settled now.
    pub refunds_settled: usize,
}

/// Asks the bank about every order still unfinished [`POLL_AFTER_SECS`] after
/// registration (and not asked about in the last [`POLL_REPEAT_SECS`]), so a
/// lost callback delays a credit but never loses it.
pub async fn poll_once(ctx: &ServiceContext) -> Result<PollReport, AcquiringError> {
    let at = now(ctx);
    let created_before = at - chrono::Duration::seconds(POLL_AFTER_SECS);
    let polled_before = at - chrono::Duration::seconds(POLL_REPEAT_SECS);
    let created_after = at - chrono::Duration::hours(POLL_GIVE_UP_HOURS);
    let due = ctx
        .db
        .read(move |conn| {
            db::orders_to_poll(
                conn,
                OrderStatus::FINAL_RANK,
                created_after,
                created_before,
                polled_before,
                POLL_BATCH,
            )
        })
        .await?;
    let mut report = PollReport::default();
    let stale = at - chrono::Duration::seconds(REGISTERING_STALE_SECS);
    report.abandoned = ctx
        .db
        .write(move |conn| {
            db::delete_stale_registering(conn, OrderStatus::Registering.as_str(), stale)
        })
        .await?;
    if report.abandoned > 0 {
        tracing::warn!(
            orders = report.abandoned,
            "top-ups left registering by a crash forgotten"
        );
    }
    for order in due {
        let id = order.id.clone();
        ctx.db
            .write(move |conn| db::mark_polled(conn, &id, at))
            .await?;
        report.asked += 1;
        match confirm(ctx, &order.id).await {
            Ok(applied) => {
                report.changed += usize::from(applied.changed);
                report.credited += usize::from(applied.credited);
            }
            Err(e) => {
                report.failed += 1;
                tracing::warn!(order = %order.id, error = %e, "could not confirm a top-up with the bank");
            }
        }
    }
    // Refunds the bank left unknown: the same request again settles them (it
    // asks the bank first whether the money went back).
    let retry_before = at - chrono::Duration::seconds(REFUND_RETRY_AFTER_SECS);
    let pending = ctx
        .db
        .read(move |conn| db::pending_refunds(conn, REFUND_PENDING, retry_before, POLL_BATCH))
        .await?;
    for r in pending {
        let request = RefundRequest {
            order_id: r.order_id.clone(),
            amount: Money::from_kopecks(r.amount_kopecks),
            reason: r.reason.clone(),
            author: r.author.clone(),
            key: r.idempotency_key.clone(),
        };
        match refund(ctx, request).await {
            Ok(_) => report.refunds_settled += 1,
            Err(e) => {
                report.failed += 1;
                tracing::warn!(refund = %r.id, error = %e, "could not settle a pending refund");
            }
        }
    }
    if report.asked > 0 || report.abandoned > 0 || report.refunds_settled > 0 {
        tracing::info!(?report, "acquiring poll");
    }
    Ok(report)
}

/// The background poller: [`poll_once`] every [`POLL_INTERVAL`] until `cancel`.
pub fn spawn_poller(
    ctx: ServiceContext,
    cancel: platform::tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + POLL_INTERVAL, POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            // Stopping mid-round is safe: each order is recorded in its own
            // transaction and the next round picks up the rest.
            tokio::select! {
                _ = cancel.cancelled() => break,
                result = poll_once(&ctx) => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "acquiring poll failed");
                    }
                }
            }
        }
    })
}

/// A refund to make.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub order_id: String,
    pub amount: Money,
    pub reason: String,
    pub author: String,
    /// Scoped to the order already.
    pub key: String,
}

/// A refund the bank confirmed; `fresh` is false when an earlier request with
/// the key had finished it.
#[derive(Debug, Clone)]
pub struct Refunded {
    pub refund: RefundRow,
    pub order: OrderRow,
    pub fresh: bool,
}

/// Refunds part or all of a paid top-up: reserves the amount (never more than
/// paid minus earlier refunds), asks the bank, and on its confirmation moves
/// the money from the personal account back to clearing.
pub async fn refund(
    ctx: &ServiceContext,
    request: RefundRequest,
) -> Result<Refunded, AcquiringError> {
    let id = request.order_id.clone();
    let (order, config) = order_and_config(ctx, id).await?;
    let Some(bank_order_id) = order.bank_order_id.clone() else {
        return Err(AcquiringError::NotRefundable {
            order: order.id,
            status: OrderStatus::Registering.as_str().into(),
        });
    };
    let at = now(ctx);
    let row = RefundRow {
        id: uuid::Uuid::now_v7().to_string(),
        order_id: order.id.clone(),
        idempotency_key: request.key.clone(),
        amount_kopecks: request.amount.kopecks(),
        reason: request.reason.clone(),
        author: request.author.clone(),
        status: REFUND_PENDING.into(),
        movement_id: None,
        created_at: at,
        updated_at: at,
    };
    let reserve = row.clone();
    let reserved = ctx
        .db
        .write(move |conn| {
            if let Some(existing) = db::find_refund_by_key(conn, &reserve.idempotency_key)? {
                if existing.order_id != reserve.order_id
                    || existing.amount_kopecks != reserve.amount_kopecks
                {
                    return Err(AcquiringError::KeyReused);
                }
                if existing.status == REFUND_PENDING {
                    // Settle an unknown outcome only once the first attempt is
                    // surely over, and let one repeat at a time do it.
                    let settled_before = at - chrono::Duration::seconds(REFUND_RETRY_AFTER_SECS);
                    if existing.updated_at > settled_before
                        || db::claim_refund(
                            conn,
                            &existing.id,
                            REFUND_PENDING,
                            existing.updated_at,
                            at,
                        )? == 0
                    {
                        return Err(AcquiringError::InProgress);
                    }
                }
                return Ok((existing, false));
            }
            let paid = OrderStatus::Deposited.as_str();
            if db::reserve_refund(conn, &reserve.order_id, paid, reserve.amount_kopecks)? == 0 {
                let order = db::find_order(conn, &reserve.order_id)?
                    .ok_or_else(|| AcquiringError::UnknownOrder(reserve.order_id.clone()))?;
                let status = status_of(&order);
                return Err(
                    if matches!(status, OrderStatus::Deposited | OrderStatus::Refunded) {
                        AcquiringError::RefundTooLarge(Money::from_kopecks(
                            order.amount_kopecks - order.refund_reserved_kopecks,
                        ))
                    } else {
                        AcquiringError::NotRefundable {
                            order: order.id,
                            status: status.as_str().into(),
                        }
                    },
                );
            }
            // Within what the top-up has left to refund (above), and within what
            // the account holds: its balance less the refunds already on their
            // way, so a refund never takes the balance below zero (the credit
            // limit lends for meals, not cash back to a card).
            let order_row = db::find_order(conn, &reserve.order_id)?
                .ok_or_else(|| AcquiringError::UnknownOrder(reserve.order_id.clone()))?;
            store::lock_balances(conn, &[order_row.account_id.as_str()])?;
            let balance = store::balance(conn, &order_row.account_id)?;
            let promised =
                db::pending_refunds_of_account(conn, &order_row.account_id, REFUND_PENDING)?;
            let available = balance - Money::from_kopecks(promised);
            if available.kopecks() < reserve.amount_kopecks {
                return Err(AcquiringError::RefundOverBalance {
                    available: available.max(Money::ZERO),
                });
            }
            db::insert_refund(conn, &reserve)?;
            Ok((reserve, true))
        })
        .await;
    let (refund_row, fresh) = match reserved {
        Ok(r) => r,
        // A concurrent request with the same key reserved first: it reports.
        Err(AcquiringError::Store(StoreError::Storage(e))) if e.is_unique_violation() => {
            return Err(AcquiringError::InProgress)
        }
        Err(e) => return Err(e),
    };
    if refund_row.status == REFUND_DONE {
        return Ok(Refunded {
            refund: refund_row,
            order,
            fresh: false,
        });
    }
    let acquirer = acquirer_for(&config);
    let amount = Money::from_kopecks(refund_row.amount_kopecks);
    if !fresh {
        // A repeat of a refund whose outcome was unknown: if the bank has
        // refunded more than we booked, that was this refund.
        let bank = acquirer
            .order_status(&bank_order_id)
            .await
            .map_err(|e| AcquiringError::RefundUnconfirmed(e.to_string()))?;
        let booked = ctx
            .db
            .read({
                let id = order.id.clone();
                move |conn| db::find_order(conn, &id)
            })
            .await?
            .map(|o| o.refunded_kopecks)
            .unwrap_or(order.refunded_kopecks);
        if bank.refunded.kopecks() >= booked + refund_row.amount_kopecks {
            return finish_refund(ctx, refund_row, false).await;
        }
    }
    match acquirer.refund(&bank_order_id, amount).await {
        Ok(()) => finish_refund(ctx, refund_row, fresh).await,
        Err(AcquirerError::Rejected { code, message }) => {
            let refund_id = refund_row.id.clone();
            let order_id = refund_row.order_id.clone();
            let kopecks = refund_row.amount_kopecks;
            ctx.db
                .write(move |conn| {
                    if db::delete_pending_refund(conn, &refund_id, REFUND_PENDING)? == 1 {
                        db::release_refund(conn, &order_id, kopecks)?;
                    }
                    Ok::<_, AcquiringError>(())
                })
                .await?;
            tracing::warn!(order = %order.id, %code, %message, "the bank refused a refund");
            Err(AcquirerError::Rejected { code, message }.into())
        }
        Err(e) => {
            // The outcome is unknown: keep the reservation so nobody refunds
            // the same money twice; a repeat with the same key settles it.
            tracing::warn!(order = %order.id, refund = %refund_row.id, error = %e, "refund outcome unknown");
            Err(AcquiringError::RefundUnconfirmed(e.to_string()))
        }
    }
}

async fn finish_refund(
    ctx: &ServiceContext,
    refund: RefundRow,
    fresh: bool,
) -> Result<Refunded, AcquiringError> {
    let at = now(ctx);
    let (refund, order, posted) = ctx
        .db
        .write(move |conn| {
            let mut posted = false;
            if db::complete_refund(conn, &refund.id, REFUND_PENDING, REFUND_DONE, at)? == 1 {
                let order = db::find_order(conn, &refund.order_id)?
                    .ok_or_else(|| AcquiringError::UnknownOrder(refund.order_id.clone()))?;
                let clearing = clearing_account(&order.organizer);
                store::ensure_system_account(conn, &clearing, AccountKind::BankClearing, at)?;
                let movement = Movement::transfer(
                    MovementKind::Refund,
                    &order.account_id,
                    &clearing,
                    Money::from_kopecks(refund.amount_kopecks),
                    &format!(
                        "Возврат по интернет-эквайрингу, заказ {}: {}",
                        order.id, refund.reason
                    ),
                    &refund.author,
                )
                .map_err(|e| AcquiringError::Ledger(e.to_string()))?;
                let result = store::post(
                    conn,
                    &movement,
                    &format!("acquiring-refund:{}", refund.id),
                    None,
                    at,
                )?;
                db::set_refund_movement(conn, &refund.id, &result.movement_id)?;
                let refunded = OrderStatus::Refunded;
                db::add_refunded(
                    conn,
                    &order.id,
                    refund.amount_kopecks,
                    (refunded.as_str(), refunded.rank()),
                    at,
                )?;
                posted = true;
            }
            let order = db::find_order(conn, &refund.order_id)?
                .ok_or_else(|| AcquiringError::UnknownOrder(refund.order_id.clone()))?;
            let refund = db::find_refund_by_key(conn, &refund.idempotency_key)?.unwrap_or(refund);
            Ok::<_, AcquiringError>((refund, order, posted))
        })
        .await?;
    if posted {
        ctx.bus.wake_relay();
        tracing::info!(order = %order.id, refund = %refund.id, amount = %Money::from_kopecks(refund.amount_kopecks), "top-up refunded");
    }
    Ok(Refunded {
        refund,
        order,
        fresh: fresh || posted,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn checksum_text_sorts_by_name_and_drops_the_checksum() {
        let p = params(&[
            ("status", "1"),
            ("mdOrder", "abc"),
            ("checksum", "XYZ"),
            ("operation", "deposited"),
            ("orderNumber", "42"),
        ]);
        assert_eq!(
            checksum_text(&p),
            "mdOrder;abc;operation;deposited;orderNumber;42;status;1;"
        );
    }

    #[test]
    fn checksum_verifies_in_either_case_and_rejects_forgeries() {
        let mut p = params(&[
            ("mdOrder", "abc"),
            ("orderNumber", "42"),
            ("operation", "deposited"),
            ("status", "1"),
        ]);
        let sum = checksum(&p, "secret");
        assert_eq!(sum.len(), 64);
        p.push(("checksum".into(), sum.to_lowercase()));
        assert!(verify_checksum(&p, "secret"));
        assert!(!verify_checksum(&p, "other"));
        p[3].1 = "0".into();
        assert!(!verify_checksum(&p, "secret"));
        p.pop();
        p.push(("checksum".into(), "zz".into()));
        assert!(!verify_checksum(&p, "secret"));
    }

    #[test]
    fn ranks_only_grow_to_final_statuses() {
        for code in 0..=6 {
            let s = OrderStatus::from_bank_code(code).unwrap();
            assert_eq!(s.bank_code(), Some(code));
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert!(OrderStatus::Deposited.is_final());
        assert!(!OrderStatus::Approved.is_final());
        assert_eq!(OrderStatus::Declined.rank(), OrderStatus::Deposited.rank());
        assert!(OrderStatus::Refunded.rank() > OrderStatus::Deposited.rank());
    }
}
