//! The check/pay/cancel protocol banks use with service providers (cash desks,
//! terminals, internet banking). Every answer carries a result code; temporary
//! codes tell the bank to retry later, final ones not to.

use primitives::Money;
use serde::{Deserialize, Serialize};

/// Result codes of the protocol, documented for bank integrators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultCode {
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

impl ResultCode {
    pub fn code(self) -> u16 {
        match self {
            ResultCode::Ok => 0,
            ResultCode::TemporaryError => 1,
            ResultCode::AccountFormatWrong => 2,
            ResultCode::AccountNotFound => 3,
            ResultCode::AccountInactive => 4,
            ResultCode::AmountTooSmall => 5,
            ResultCode::AmountTooLarge => 6,
            ResultCode::Duplicate => 7,
            ResultCode::CancelImpossible => 8,
            ResultCode::PaymentNotFound => 9,
            ResultCode::OtherError => 99,
        }
    }

    /// Whether the bank should retry later.
    pub fn is_temporary(self) -> bool {
        self == ResultCode::TemporaryError
    }
}

/// Smallest and largest single payment a bank may post.
pub fn min_payment() -> Money {
    Money::from_kopecks(100)
}

pub fn max_payment() -> Money {
    Money::from_kopecks(3_000_000)
}

/// Checks the amount of a `pay`.
pub fn check_amount(amount: Money) -> Result<(), ResultCode> {
    if amount < min_payment() {
        return Err(ResultCode::AmountTooSmall);
    }
    if amount > max_payment() {
        return Err(ResultCode::AmountTooLarge);
    }
    Ok(())
}

/// The student's name as a bank may show it to whoever types the account number:
/// three letters of the surname and the initial of the first name, so a wrong
/// number is noticed but a guessed one reveals little ("Иванов Пётр" → "Ива*** П.").
pub fn masked_name(full: &str) -> String {
    let mut words = full.split_whitespace();
    let surname: String = words.next().unwrap_or("").chars().take(3).collect();
    let initial = words
        .next()
        .and_then(|w| w.chars().next())
        .map(|c| format!(" {c}."))
        .unwrap_or_default();
    if surname.is_empty() {
        return String::new();
    }
    format!("{surname}***{initial}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_masked() {
        assert_eq!(masked_name("Иванов Пётр Сергеевич"), "Ива*** П.");
        assert_eq!(masked_name("Ли"), "Ли***");
        assert_eq!(masked_name(""), "");
    }

    #[test]
    fn amount_limits() {
        assert_eq!(
            check_amount(Money::parse("0.99").unwrap()),
            Err(ResultCode::AmountTooSmall)
        );
        assert_eq!(check_amount(Money::parse("1.00").unwrap()), Ok(()));
        assert_eq!(
            check_amount(Money::parse("30000.01").unwrap()),
            Err(ResultCode::AmountTooLarge)
        );
    }

    #[test]
    fn only_temporary_errors_are_retried() {
        assert!(ResultCode::TemporaryError.is_temporary());
        assert!(!ResultCode::Duplicate.is_temporary());
        assert_eq!(ResultCode::OtherError.code(), 99);
    }
}
