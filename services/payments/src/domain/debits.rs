//! Meal debits: after the day closed, the meals service asks payments to write off
//! each student's meal. The balance may go below zero by at most the school's
//! credit limit; past that the debit is refused with the reason.

use primitives::Money;

use super::ledger::{LedgerError, Movement, MovementKind, Posting};

/// Why a debit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "balance {balance} less {amount} for this meal {}",
        contracts::payments::below_credit_limit(*balance - *amount, *limit)
    )]
    OverCreditLimit {
        balance: Money,
        amount: Money,
        limit: Money,
    },
    #[error("personal account {0} does not exist")]
    UnknownAccount(String),
    #[error("personal account {0} is closed")]
    Inactive(String),
    #[error("the amount must not be negative, got {0}")]
    Negative(Money),
    #[error("the credit limit must not be negative, got {0}")]
    NegativeLimit(Money),
}

/// Whether `amount` may be written off a balance of `balance` with `limit` of credit.
pub fn check(balance: Money, amount: Money, limit: Money) -> Result<(), Refusal> {
    if amount.is_negative() {
        return Err(Refusal::Negative(amount));
    }
    if limit.is_negative() {
        return Err(Refusal::NegativeLimit(limit));
    }
    if balance - amount < -limit {
        return Err(Refusal::OverCreditLimit {
            balance,
            amount,
            limit,
        });
    }
    Ok(())
}

/// The movement of one meal debit: the parent's part from the personal account and
/// the budget's part (ПЧВР) from the municipality's budget account, both to the
/// organizer's settlement. `None` when both parts are zero.
pub fn movement(
    account: &str,
    settlement: &str,
    budget: &str,
    amount: Money,
    reimbursed: Money,
    reason: &str,
) -> Result<Option<Movement>, LedgerError> {
    let total = amount + reimbursed;
    if total.is_zero() {
        return Ok(None);
    }
    let mut postings = Vec::new();
    if !amount.is_zero() {
        postings.push(Posting {
            account: account.to_string(),
            amount: -amount,
        });
    }
    if !reimbursed.is_zero() {
        postings.push(Posting {
            account: budget.to_string(),
            amount: -reimbursed,
        });
    }
    postings.push(Posting {
        account: settlement.to_string(),
        amount: total,
    });
    Movement::new(MovementKind::MealDebit, postings, reason, "meals").map(Some)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn credit_limit_is_a_floor_not_a_step() {
        assert!(
            check(m("20.00"), m("70.00"), m("50.00")).is_ok(),
            "exactly −50.00 is allowed"
        );
        assert_eq!(
            check(m("20.00"), m("70.01"), m("50.00")),
            Err(Refusal::OverCreditLimit {
                balance: m("20.00"),
                amount: m("70.01"),
                limit: m("50.00")
            })
        );
        assert!(
            check(m("0.00"), m("0.01"), m("0.00")).is_err(),
            "no credit: nothing below zero"
        );
        assert!(check(m("5.00"), m("-1.00"), m("0")).is_err());
    }

    #[test]
    fn parent_and_budget_parts_go_to_the_organizer() {
        let mv = movement(
            "ls-1",
            "settlement:o",
            "budget:t",
            m("45.50"),
            m("80.00"),
            "lunch",
        )
        .unwrap()
        .unwrap();
        assert_eq!(mv.postings.len(), 3);
        assert_eq!(mv.postings[2].amount, m("125.50"));
        let free = movement(
            "ls-1",
            "settlement:o",
            "budget:t",
            m("0"),
            m("125.50"),
            "lunch",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            free.postings.len(),
            2,
            "a fully reimbursed meal does not touch the parent's account"
        );
        assert!(movement("ls-1", "s", "b", m("0"), m("0"), "x")
            .unwrap()
            .is_none());
    }
}
