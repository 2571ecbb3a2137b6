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

/// Where payments takes the students' accounts the meals service opens.
pub const ACCOUNTS_QUEUE: QueueDef = QueueDef {
    queue: "payments.meal-accounts",
    bindings: &[<AccountOpened as Contract>::TOPIC],
    consumer: "payments",
};

/// Where the meals service takes its balances and debit results from payments,
/// and the attendance marks from the Electronic school.
pub const QUEUES: &[QueueDef] = &[
    QueueDef {
        queue: "meals.balances",
        bindings: &[<crate::payments::BalanceChanged as Contract>::TOPIC],
        consumer: "meals",
    },
    QueueDef {
        queue: "meals.debit-results",
        bindings: &[<crate::payments::DebitResult as Contract>::TOPIC],
        consumer: "meals",
    },
    QueueDef {
        queue: "meals.attendance",
        bindings: &[<crate::school::AttendanceMarked as Contract>::TOPIC],
        consumer: "meals",
    },
];

/// A student's personal account (лицевой счёт) in the meal module, for payments to
/// open (or to move to another organizer). Sent again whenever the school's
/// organizer link changes; opening an account that exists changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountOpened {
    pub account: String,
    pub student_name: String,
    pub school: String,
    /// The class's id (a class teacher's scope everywhere); absent from events
    /// of senders before it was added.
    #[serde(default)]
    pub class_id: String,
    pub class_name: String,
    pub municipality: String,
    pub organizer: String,
}

impl Contract for AccountOpened {
    const TOPIC: &'static str = "meals.account.opened.v1";
    const KIND: &'static str = "meals.AccountOpened.v1";
}

/// Where the gateway takes the class requests to push to caterers' systems.
pub const CLASS_REQUESTS_QUEUE: QueueDef = QueueDef {
    queue: "gateway.class-requests",
    bindings: &[<ClassRequestReady as Contract>::TOPIC],
    consumer: "gateway",
};

/// A class request for the organizer's accounting system: formed by the
/// teacher, or frozen when the school day closed. `request` is the request as
/// the REST and SOAP doors show it (`RequestView`). The message id is
/// `class-request:<id>:<reason>`, so a close that runs again sends the same one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRequestReady {
    pub organizer: String,
    pub school: String,
    pub date: chrono::NaiveDate,
    /// `formed` or `closed`.
    pub reason: String,
    pub request: serde_json::Value,
}

impl Contract for ClassRequestReady {
    const TOPIC: &'static str = "meals.class-request.ready.v1";
    const KIND: &'static str = "meals.ClassRequestReady.v1";
}
