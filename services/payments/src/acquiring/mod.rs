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

mod checksum;
mod poller;
pub mod rbs;
mod refund;
pub mod simulator;
mod top_up;

pub use crate::domain::acquiring::OrderStatus;
pub use checksum::{checksum, checksum_text, verify_checksum};
pub use poller::{poll_once, spawn_poller, PollReport};
pub use refund::{refund, RefundRequest, Refunded, REFUND_RETRY_AFTER_SECS};
pub use top_up::{confirm, create_top_up, Applied, TopUp, TopUpRequest};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use platform::ServiceContext;
use primitives::Money;

use crate::store::acquiring::{OrderRow, OrganizerAcquiring};
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
