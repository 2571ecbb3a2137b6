//! The check/pay/cancel protocol banks use with service providers (cash desks,
//! terminals, internet banking). Every answer carries a result code; temporary
//! codes tell the bank to retry later, final ones not to.

use primitives::Money;

/// Result codes of the protocol: part of the contract, since the gateway's SOAP
/// door answers them too.
pub use contracts::payments::BankResult as ResultCode;

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
