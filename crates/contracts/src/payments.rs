//! Messages the payments service consumes and publishes.

use primitives::Money;
use serde::{Deserialize, Serialize};

use crate::{Contract, QueueDef};

/// Queues the payments service consumes.
pub const QUEUES: &[QueueDef] = &[];

/// A personal account's balance changed (published after every movement).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceChanged {
    /// Лицевой счёт: the student's personal account id.
    pub account: String,
    /// Balance after the movement.
    pub balance: Money,
    pub movement_id: String,
}

impl Contract for BalanceChanged {
    const TOPIC: &'static str = "payments.balance.changed.v1";
    const KIND: &'static str = "payments.BalanceChanged.v1";
}

/// The outcome of a meal debit: written off, or refused (and why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebitResult {
    /// The `DebitRequested::key` this answers.
    pub key: String,
    pub account: String,
    pub accepted: bool,
    /// Why a debit was refused (the credit limit, an unknown account).
    pub reason: Option<String>,
    /// Balance after the debit (or unchanged, when refused).
    pub balance: Money,
    pub movement_id: Option<String>,
}

/// The end of every "over the credit limit" reason, in meals' request lines
/// and payments' refused debits alike, so a parent, a teacher and an
/// accountant read one wording: `would be -154.75, below the credit limit of -100.00`.
pub fn below_credit_limit(after: Money, credit: Money) -> String {
    format!(
        "would be {after}, below the credit limit of {}",
        Money::from_kopecks(-credit.kopecks())
    )
}

impl Contract for DebitResult {
    const TOPIC: &'static str = "payments.debit.result.v1";
    const KIND: &'static str = "payments.DebitResult.v1";
}
