//! The check/pay/cancel protocol banks use with service providers (cash desks,
//! terminals, internet banking). Every answer carries a result code; temporary
//! codes tell the bank to retry later, final ones not to.

use chrono::NaiveDate;
use primitives::Money;

use super::ledger::AccountKind;

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

/// Why a bank's request is answered with a code other than OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ResultCode,
    pub message: String,
}

impl Refusal {
    fn new(code: ResultCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// Whether a bank may check or pay into an account of `kind` (`None`: no such
/// account): a personal account that is open. A system account answers as if
/// it did not exist, so a bank cannot probe the ledger's own accounts.
pub fn accepts_payments(kind: Option<AccountKind>, active: bool) -> Result<(), Refusal> {
    match kind {
        Some(AccountKind::Personal) if active => Ok(()),
        Some(AccountKind::Personal) => Err(Refusal::new(
            ResultCode::AccountInactive,
            "the account is closed",
        )),
        _ => Err(Refusal::new(
            ResultCode::AccountNotFound,
            "no such personal account",
        )),
    }
}

/// Whether a payment accepted on `banking_day` (and `cancelled` or not) may be
/// cancelled `today`: once, and on its own banking day only.
pub fn may_cancel(
    cancelled: bool,
    banking_day: NaiveDate,
    today: NaiveDate,
) -> Result<(), Refusal> {
    if cancelled {
        return Err(Refusal::new(
            ResultCode::CancelImpossible,
            "the payment is cancelled already",
        ));
    }
    if banking_day != today {
        return Err(Refusal::new(
            ResultCode::CancelImpossible,
            format!("a payment can be cancelled on its banking day ({banking_day}) only"),
        ));
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
    fn only_an_open_personal_account_takes_payments() {
        assert_eq!(accepts_payments(Some(AccountKind::Personal), true), Ok(()));
        assert_eq!(
            accepts_payments(Some(AccountKind::Personal), false)
                .unwrap_err()
                .code,
            ResultCode::AccountInactive
        );
        for kind in [
            None,
            Some(AccountKind::BankClearing),
            Some(AccountKind::Budget),
        ] {
            assert_eq!(
                accepts_payments(kind, true).unwrap_err().code,
                ResultCode::AccountNotFound
            );
        }
    }

    #[test]
    fn a_payment_is_cancelled_once_and_on_its_banking_day_only() {
        let day = NaiveDate::from_ymd_opt(2026, 9, 14).unwrap();
        assert_eq!(may_cancel(false, day, day), Ok(()));
        let next = day.succ_opt().unwrap();
        let late = may_cancel(false, day, next).unwrap_err();
        assert_eq!(late.code, ResultCode::CancelImpossible);
        assert!(late.message.contains("2026-09-14"), "{}", late.message);
        assert_eq!(
            may_cancel(true, day, day).unwrap_err().code,
            ResultCode::CancelImpossible
        );
    }

    #[test]
    fn only_temporary_errors_are_retried() {
        assert!(ResultCode::TemporaryError.is_temporary());
        assert!(!ResultCode::Duplicate.is_temporary());
        assert_eq!(ResultCode::OtherError.code(), 99);
    }
}
