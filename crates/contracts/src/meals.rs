//! Messages the meals service publishes for payments.

use primitives::Money;
use serde::{Deserialize, Serialize};

use crate::{Contract, QueueDef};

/// Where payments takes the meals' debits from.
pub const DEBITS_QUEUE: QueueDef = QueueDef {
    queue: "payments.meal-debits",
    bindings: &[<DebitRequested as Contract>::TOPIC],
    consumer: "payments",
};

/// One student's meal of one day and meal time, to be written off their personal
/// account (лицевой счёт) after the day closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebitRequested {
    /// Idempotency key: one debit per student per day per meal time,
    /// `<account>:<YYYY-MM-DD>:<meal time>`.
    pub key: String,
    pub account: String,
    /// What the parent pays: complex price − ПЧВР reimbursement + extras at full price.
    pub amount: Money,
    /// The part the budget reimburses (ПЧВР), recorded as budget spending.
    pub reimbursed: Money,
    /// How far below zero the balance may go (the school's credit per student; 0 = none).
    pub credit_limit: Money,
    pub organizer: String,
    pub municipality: String,
    /// The meal day, `YYYY-MM-DD`.
    pub date: String,
    /// breakfast, lunch, snack…
    pub meal_time: String,
}

impl Contract for DebitRequested {
    const TOPIC: &'static str = "meals.debit.requested.v1";
    const KIND: &'static str = "meals.DebitRequested.v1";
}
