//! The double-entry ledger. Every movement of money is a set of postings that
//! sums to zero; an account's balance is the sum of its postings. Nothing is ever
//! edited: a mistake is corrected by a reversal that names its reason and author.

use primitives::Money;
use serde::{Deserialize, Serialize};

/// What an account is for in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// Лицевой счёт: a student's personal account for one purpose (school meals).
    Personal,
    /// The meal organizer's settlement account: what parents paid for meals.
    OrganizerSettlement,
    /// Budget reimbursement (ПЧВР): the part of meals the budget pays.
    Budget,
    /// Money received through a bank and not yet settled.
    BankClearing,
    /// Money that could not be matched to an account yet.
    Suspense,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Personal => "personal",
            AccountKind::OrganizerSettlement => "organizer_settlement",
            AccountKind::Budget => "budget",
            AccountKind::BankClearing => "bank_clearing",
            AccountKind::Suspense => "suspense",
        }
    }

    pub fn parse(s: &str) -> Option<AccountKind> {
        [
            AccountKind::Personal,
            AccountKind::OrganizerSettlement,
            AccountKind::Budget,
            AccountKind::BankClearing,
            AccountKind::Suspense,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The kind of a movement, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// A manual correction by the operator.
    Adjustment,
    /// The reversal of an earlier movement.
    Reversal,
    /// A day's meal written off after the day closed.
    MealDebit,
    /// A bank's online payment (cash desk, terminal, internet bank).
    BankPayment,
    /// A parent's card top-up through the organizer's acquiring bank.
    TopUp,
    /// A refund of a card top-up to the payer's card.
    Refund,
}

impl MovementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Adjustment => "adjustment",
            MovementKind::Reversal => "reversal",
            MovementKind::MealDebit => "meal_debit",
            MovementKind::BankPayment => "bank_payment",
            MovementKind::TopUp => "top_up",
            MovementKind::Refund => "refund",
        }
    }
}

/// One line of a movement: `amount` added to `account` (negative takes away).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub account: String,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("a movement needs at least two postings")]
    TooFewPostings,
    #[error("postings must sum to zero, they sum to {0}")]
    Unbalanced(Money),
    #[error("a posting of zero to account {0} moves nothing")]
    ZeroPosting(String),
    #[error("the amount must be positive, got {0}")]
    NotPositive(Money),
    #[error("a reason is required")]
    NoReason,
}

/// A movement checked to be balanced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub kind: MovementKind,
    pub postings: Vec<Posting>,
    pub reason: String,
    pub author: String,
}

impl Movement {
    pub fn new(
        kind: MovementKind,
        postings: Vec<Posting>,
        reason: &str,
        author: &str,
    ) -> Result<Movement, LedgerError> {
        if reason.trim().is_empty() {
            return Err(LedgerError::NoReason);
        }
        if postings.len() < 2 {
            return Err(LedgerError::TooFewPostings);
        }
        if let Some(p) = postings.iter().find(|p| p.amount.is_zero()) {
            return Err(LedgerError::ZeroPosting(p.account.clone()));
        }
        let sum: Money = postings.iter().map(|p| p.amount).sum();
        if !sum.is_zero() {
            return Err(LedgerError::Unbalanced(sum));
        }
        Ok(Movement {
            kind,
            postings,
            reason: reason.trim().to_string(),
            author: author.to_string(),
        })
    }

    /// `amount` from `from` to `to`.
    pub fn transfer(
        kind: MovementKind,
        from: &str,
        to: &str,
        amount: Money,
        reason: &str,
        author: &str,
    ) -> Result<Movement, LedgerError> {
        if !amount.is_positive() {
            return Err(LedgerError::NotPositive(amount));
        }
        Movement::new(
            kind,
            vec![
                Posting {
                    account: from.to_string(),
                    amount: -amount,
                },
                Posting {
                    account: to.to_string(),
                    amount,
                },
            ],
            reason,
            author,
        )
    }

    /// The movement that undoes `original`'s postings.
    pub fn reversal_of(
        original: &[Posting],
        reason: &str,
        author: &str,
    ) -> Result<Movement, LedgerError> {
        let postings = original
            .iter()
            .map(|p| Posting {
                account: p.account.clone(),
                amount: -p.amount,
            })
            .collect();
        Movement::new(MovementKind::Reversal, postings, reason, author)
    }
}

/// Whether `id` has the form of a ledger or personal account id (and of the
/// other ids used beside it): 1–64 Latin letters, digits, `-`, `_`, `.`.
pub fn is_account_id(id: &str) -> bool {
    primitives::is_plain_id(id)
}

/// The suspense account of the ledger.
pub const SUSPENSE: &str = "suspense";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn movements_must_balance() {
        let err = Movement::new(
            MovementKind::Adjustment,
            vec![
                Posting {
                    account: "a".into(),
                    amount: m("10.00"),
                },
                Posting {
                    account: "b".into(),
                    amount: m("-9.99"),
                },
            ],
            "fix",
            "op",
        )
        .unwrap_err();
        assert_eq!(err, LedgerError::Unbalanced(m("0.01")));
    }

    #[test]
    fn transfer_and_reversal_cancel_out() {
        let t = Movement::transfer(MovementKind::Adjustment, "a", "b", m("125.50"), "fix", "op")
            .unwrap();
        let r = Movement::reversal_of(&t.postings, "entered twice", "op").unwrap();
        let mut net = std::collections::BTreeMap::new();
        for p in t.postings.iter().chain(&r.postings) {
            *net.entry(p.account.clone()).or_insert(Money::ZERO) += p.amount;
        }
        assert!(net.values().all(|v| v.is_zero()));
        assert_eq!(r.kind, MovementKind::Reversal);
    }

    #[test]
    fn rejects_empty_reason_zero_and_negative_amounts() {
        assert_eq!(
            Movement::transfer(MovementKind::Adjustment, "a", "b", m("1.00"), "  ", "op")
                .unwrap_err(),
            LedgerError::NoReason
        );
        assert_eq!(
            Movement::transfer(MovementKind::Adjustment, "a", "b", m("-1.00"), "x", "op")
                .unwrap_err(),
            LedgerError::NotPositive(m("-1.00"))
        );
        assert!(matches!(
            Movement::new(
                MovementKind::Adjustment,
                vec![Posting {
                    account: "a".into(),
                    amount: m("0")
                }],
                "x",
                "op"
            ),
            Err(LedgerError::TooFewPostings)
        ));
    }
}
