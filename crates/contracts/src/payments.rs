//! Messages the payments service consumes and publishes.

use primitives::Money;
use serde::{Deserialize, Serialize};

use crate::{Contract, QueueDef};

/// Queues the payments service consumes.
pub const QUEUES: &[QueueDef] = &[BANK_REQUESTS, REGISTRY_QUERIES];

/// Where payments answers how a registry delivered through the gateway fared
/// (request/reply).
pub const REGISTRY_QUERIES: QueueDef = QueueDef {
    queue: "payments.registry-queries",
    bindings: &[<RegistryQuery as Contract>::TOPIC],
    consumer: "payments",
};

/// How did the registry delivered as `upload` (a `gateway::RegistryDelivered`)
/// fare? `page` (from 0) picks the part of the reconciliation report the
/// answer carries. Answered with a [`RegistryState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryQuery {
    /// The bank asking: an upload of another bank is not found.
    pub bank: String,
    pub upload: String,
    pub page: u32,
}

impl Contract for RegistryQuery {
    const TOPIC: &'static str = "payments.registry.query.v1";
    const KIND: &'static str = "payments.RegistryQuery.v1";
}

/// Where a delivered registry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Not seen yet, or being fetched and imported.
    Pending,
    /// Imported (or found imported before): the summary and the report.
    Imported,
    /// Refused: nothing of it was imported; `error` says why.
    Refused,
}

/// The answer to a [`RegistryQuery`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryState {
    pub state: UploadState,
    /// Why it was refused: a code (`REGISTRY_FORMAT`, `REGISTRY_INVALID`,
    /// `REGISTRY_EXISTS`, `DOCUMENT_DAMAGED`) and the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistrySummary>,
    /// The asked page of the reconciliation report (CSV, UTF-8; page 0 starts
    /// with the byte-order mark and the summary).
    #[serde(default)]
    pub report: String,
    /// How many pages the report has.
    #[serde(default)]
    pub pages: u32,
}

/// An imported registry, as its bank sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrySummary {
    pub id: String,
    pub date: chrono::NaiveDate,
    pub file_name: String,
    pub lines: i64,
    pub total: Money,
    pub status: String,
    /// Lines per outcome (matched, credited, amount_differs, ...).
    pub outcomes: std::collections::BTreeMap<String, i64>,
    /// The same file had been imported before this upload.
    pub already_imported: bool,
}

/// Where payments answers banks' check/pay/cancel that came through the
/// gateway's SOAP door (request/reply).
pub const BANK_REQUESTS: QueueDef = QueueDef {
    queue: "payments.bank-requests",
    bindings: &[<BankRequest as Contract>::TOPIC],
    consumer: "payments",
};

/// A bank's check, pay or cancel, as the gateway received it from the bank
/// participant that maps to `bank`. Answered with a [`BankAnswer`]: the same
/// implementation answers the REST door, so both give the same result codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BankRequest {
    /// The bank code payments knows (the bank participant's mapping).
    pub bank: String,
    pub operation: BankOperation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BankOperation {
    Check {
        account: String,
    },
    Pay {
        account: String,
        amount: Money,
        txn_id: String,
        txn_at: chrono::DateTime<chrono::FixedOffset>,
    },
    Cancel {
        txn_id: String,
    },
}

impl Contract for BankRequest {
    const TOPIC: &'static str = "payments.bank.request.v1";
    const KIND: &'static str = "payments.BankRequest.v1";
}

/// Result codes of the banks' check/pay/cancel protocol, documented for bank
/// integrators; the same on the REST and the SOAP door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BankResult {
    /// 0 — done.
    Ok,
    /// 1 — temporary failure on our side: retry the same request later.
    TemporaryError,
    /// 2 — final: the account number is not in the expected format.
    AccountFormatWrong,
    /// 3 — final: no such personal account.
    AccountNotFound,
    /// 4 — final: the account is closed.
    AccountInactive,
    /// 5 — final: below the minimum payment.
    AmountTooSmall,
    /// 6 — final: above the maximum payment.
    AmountTooLarge,
    /// 7 — final: this transaction id was accepted before; the answer carries the
    /// first acceptance, so a retry is safe.
    Duplicate,
    /// 8 — final: the payment cannot be cancelled (another banking day, or
    /// cancelled already).
    CancelImpossible,
    /// 9 — final: no payment with this transaction id from this bank.
    PaymentNotFound,
    /// 99 — final: any other error, with a message.
    OtherError,
}

impl BankResult {
    pub const ALL: [BankResult; 11] = [
        BankResult::Ok,
        BankResult::TemporaryError,
        BankResult::AccountFormatWrong,
        BankResult::AccountNotFound,
        BankResult::AccountInactive,
        BankResult::AmountTooSmall,
        BankResult::AmountTooLarge,
        BankResult::Duplicate,
        BankResult::CancelImpossible,
        BankResult::PaymentNotFound,
        BankResult::OtherError,
    ];

    pub fn code(self) -> u16 {
        match self {
            BankResult::Ok => 0,
            BankResult::TemporaryError => 1,
            BankResult::AccountFormatWrong => 2,
            BankResult::AccountNotFound => 3,
            BankResult::AccountInactive => 4,
            BankResult::AmountTooSmall => 5,
            BankResult::AmountTooLarge => 6,
            BankResult::Duplicate => 7,
            BankResult::CancelImpossible => 8,
            BankResult::PaymentNotFound => 9,
            BankResult::OtherError => 99,
        }
    }

    /// The name on the wire (`ACCOUNT_NOT_FOUND`).
    pub fn name(self) -> &'static str {
        match self {
            BankResult::Ok => "OK",
            BankResult::TemporaryError => "TEMPORARY_ERROR",
            BankResult::AccountFormatWrong => "ACCOUNT_FORMAT_WRONG",
            BankResult::AccountNotFound => "ACCOUNT_NOT_FOUND",
            BankResult::AccountInactive => "ACCOUNT_INACTIVE",
            BankResult::AmountTooSmall => "AMOUNT_TOO_SMALL",
            BankResult::AmountTooLarge => "AMOUNT_TOO_LARGE",
            BankResult::Duplicate => "DUPLICATE",
            BankResult::CancelImpossible => "CANCEL_IMPOSSIBLE",
            BankResult::PaymentNotFound => "PAYMENT_NOT_FOUND",
            BankResult::OtherError => "OTHER_ERROR",
        }
    }

    /// Whether the bank should retry later.
    pub fn is_temporary(self) -> bool {
        self == BankResult::TemporaryError
    }
}

/// Every answer of the banks' protocol, on either door.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BankAnswer {
    pub result: Option<BankResult>,
    /// The numeric result code.
    pub code: u16,
    /// True when the bank should retry later.
    pub temporary: bool,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Masked, e.g. "Ива*** П.".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub balance: Option<Money>,
    /// Our id of the accepted payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// When we accepted it (Tyumen time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
}

impl BankAnswer {
    /// An answer with `result` and nothing else.
    pub fn of(result: BankResult, message: impl Into<String>) -> BankAnswer {
        BankAnswer {
            result: Some(result),
            code: result.code(),
            temporary: result.is_temporary(),
            message: message.into(),
            ..Default::default()
        }
    }
}

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The SOAP door writes `name()`, the REST door serde's name: one wire name.
    #[test]
    fn a_result_has_one_name_on_either_door() {
        for r in BankResult::ALL {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.name())
            );
        }
    }
}
