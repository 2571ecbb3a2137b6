//! Payment registries (реестры платежей): each bank's daily list of the payments
//! it took for the region's personal accounts, in two forms.
//!
//! **CSV** (Windows-1251, `;` separators, no header): one line per payment
//! `txn_id;account;amount;paid_at;payer` with `amount` in rubles (`1250.50` or
//! `1250,50`) and `paid_at` as `DD.MM.YYYY HH:MM:SS` (Tyumen time); the last line
//! is the totals line `ИТОГО;<count>;<amount>`.
//!
//! **XML**, described by `wsdl/payment-registry.xsd`:
//! `<PaymentRegistry bank=".." date="YYYY-MM-DD"><Payment txnId=".." account=".."
//! amount="1250.50" paidAt="2026-09-14T10:00:00+05:00" payer=".."/>…<Totals
//! count=".." amount=".."/></PaymentRegistry>`.
//!
//! Reconciliation compares each line with the bank's online payments already
//! posted; the outcomes are [`Outcome`].

use primitives::Money;
use serde::{Deserialize, Serialize};

/// One payment line of a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line (or `<Payment>` element) number, for error messages.
    pub number: u64,
    pub txn_id: String,
    pub account: String,
    pub amount: Money,
    pub paid_at: chrono::NaiveDateTime,
    pub payer: String,
}

/// The registry's own totals line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub count: u64,
    pub amount: Money,
}

/// Why a registry file is refused as a whole (nothing is changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("line {line}: {reason}")]
    Line { line: u64, reason: String },
    #[error("the registry has no totals line")]
    NoTotals,
    #[error("line {line}: payment lines after the totals line")]
    AfterTotals { line: u64 },
    #[error("the totals line says {stated_count} payments for {stated_amount}, the lines hold {count} for {amount}")]
    TotalsMismatch {
        stated_count: u64,
        stated_amount: Money,
        count: u64,
        amount: Money,
    },
    #[error("the file is not readable: {0}")]
    Unreadable(String),
}

/// What reconciliation decided for a line (or for a posted payment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The online payment was posted with the same amount: confirmed.
    Matched,
    /// Not posted online (a cash-desk payment arriving days later): credited now.
    Credited,
    /// Posted online with another amount: nothing moved, for a person to settle.
    AmountDiffers,
    /// No such personal account: the money waits on the suspense account.
    UnknownAccount,
    /// The same transaction id appears again in this registry: ignored.
    DuplicateLine,
    /// Posted online on the registry's day but absent from the registry.
    MissingFromRegistry,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Matched => "matched",
            Outcome::Credited => "credited",
            Outcome::AmountDiffers => "amount_differs",
            Outcome::UnknownAccount => "unknown_account",
            Outcome::DuplicateLine => "duplicate_line",
            Outcome::MissingFromRegistry => "missing_from_registry",
        }
    }

    pub const ALL: [Outcome; 6] = [
        Outcome::Matched,
        Outcome::Credited,
        Outcome::AmountDiffers,
        Outcome::UnknownAccount,
        Outcome::DuplicateLine,
        Outcome::MissingFromRegistry,
    ];

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// What is known of a line's transaction before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// Not posted online by this bank.
    No,
    /// Posted online with this amount (by this bank, under this transaction id).
    Online(Money),
    /// Already seen earlier in this same registry.
    InThisRegistry,
}

/// The outcome of one line.
pub fn classify(line_amount: Money, posted: Posted, account_exists: bool) -> Outcome {
    match posted {
        Posted::InThisRegistry => Outcome::DuplicateLine,
        Posted::Online(amount) if amount == line_amount => Outcome::Matched,
        Posted::Online(_) => Outcome::AmountDiffers,
        Posted::No if account_exists => Outcome::Credited,
        Posted::No => Outcome::UnknownAccount,
    }
}

/// Running count and sum of payment lines, checked against the totals line.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    pub count: u64,
    pub amount: Money,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            count: 0,
            amount: Money::ZERO,
        }
    }
}

impl Tally {
    pub fn add(&mut self, line: &Line) {
        self.count += 1;
        self.amount += line.amount;
    }

    pub fn check(&self, totals: Option<Totals>) -> Result<Totals, FormatError> {
        let totals = totals.ok_or(FormatError::NoTotals)?;
        if totals.count != self.count || totals.amount != self.amount {
            return Err(FormatError::TotalsMismatch {
                stated_count: totals.count,
                stated_amount: totals.amount,
                count: self.count,
                amount: self.amount,
            });
        }
        Ok(totals)
    }
}

fn bad(line: u64, reason: impl Into<String>) -> FormatError {
    FormatError::Line {
        line,
        reason: reason.into(),
    }
}

/// Parses one field set of a CSV payment line.
pub fn csv_line(number: u64, fields: &[&str]) -> Result<Line, FormatError> {
    if fields.len() < 4 {
        return Err(bad(
            number,
            format!(
                "expected txn_id;account;amount;paid_at;payer, got {} fields",
                fields.len()
            ),
        ));
    }
    let txn_id = fields[0].trim();
    if txn_id.is_empty() || txn_id.len() > 64 {
        return Err(bad(number, "the transaction id must have 1–64 characters"));
    }
    let account = fields[1].trim();
    if account.is_empty() || account.len() > 64 {
        return Err(bad(number, "the account must have 1–64 characters"));
    }
    let amount = Money::parse(fields[2].trim())
        .map_err(|e| bad(number, format!("amount `{}`: {e}", fields[2].trim())))?;
    if !amount.is_positive() {
        return Err(bad(
            number,
            format!("amount `{}` must be positive", fields[2].trim()),
        ));
    }
    let paid_at = canonical_time(fields[3].trim())
        .map_or_else(
            || chrono::NaiveDateTime::parse_from_str(fields[3].trim(), "%d.%m.%Y %H:%M:%S"),
            Ok,
        )
        .map_err(|_| {
            bad(
                number,
                format!("paid_at `{}` is not DD.MM.YYYY HH:MM:SS", fields[3].trim()),
            )
        })?;
    Ok(Line {
        number,
        txn_id: txn_id.to_string(),
        account: account.to_string(),
        amount,
        paid_at: calendar::local_to_utc(paid_at).naive_utc(),
        payer: fields
            .get(4)
            .map(|p| p.trim().to_string())
            .unwrap_or_default(),
    })
}

/// `DD.MM.YYYY HH:MM:SS` with every digit written, read without a format
/// string (the form nearly every line has; `None` for anything else, which the
/// caller gives to chrono's parser, and for an impossible date or time).
fn canonical_time(s: &str) -> Option<chrono::NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() != 19 {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0_u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let separators = [(2, b'.'), (5, b'.'), (10, b' '), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, c)| b[at] != c) {
        return None;
    }
    let year = i32::try_from(number(6, 10)?).ok()?;
    chrono::NaiveDate::from_ymd_opt(year, number(3, 5)?, number(0, 2)?)?.and_hms_opt(
        number(11, 13)?,
        number(14, 16)?,
        number(17, 19)?,
    )
}

/// Whether a CSV record is the totals line.
pub fn is_totals(fields: &[&str]) -> bool {
    fields.first().is_some_and(|f| {
        let f = f.trim();
        f.eq_ignore_ascii_case("ИТОГО") || f == "Итого" || f.eq_ignore_ascii_case("TOTAL")
    })
}

/// Parses the CSV totals line `ИТОГО;<count>;<amount>`.
pub fn csv_totals(number: u64, fields: &[&str]) -> Result<Totals, FormatError> {
    let count = fields
        .get(1)
        .and_then(|c| c.trim().parse::<u64>().ok())
        .ok_or_else(|| bad(number, "the totals line must be ИТОГО;<count>;<amount>"))?;
    let amount = fields
        .get(2)
        .ok_or_else(|| bad(number, "the totals line has no amount"))
        .and_then(|a| {
            Money::parse(a.trim()).map_err(|e| bad(number, format!("totals amount: {e}")))
        })?;
    Ok(Totals { count, amount })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn outcomes() {
        assert_eq!(
            classify(m("10.00"), Posted::Online(m("10.00")), true),
            Outcome::Matched
        );
        assert_eq!(
            classify(m("10.00"), Posted::Online(m("9.00")), true),
            Outcome::AmountDiffers
        );
        assert_eq!(classify(m("10.00"), Posted::No, true), Outcome::Credited);
        assert_eq!(
            classify(m("10.00"), Posted::No, false),
            Outcome::UnknownAccount
        );
        assert_eq!(
            classify(m("10.00"), Posted::InThisRegistry, true),
            Outcome::DuplicateLine
        );
    }

    #[test]
    fn csv_lines_and_errors_name_the_line() {
        let l = csv_line(
            3,
            &["T1", "ls-1", "1250,50", "14.09.2026 10:00:00", "Иванова"],
        )
        .unwrap();
        assert_eq!(l.amount, m("1250.50"));
        assert_eq!(
            l.paid_at.to_string(),
            "2026-09-14 05:00:00",
            "Tyumen time stored as UTC"
        );
        let err = csv_line(7, &["T1", "ls-1", "12x", "14.09.2026 10:00:00"]).unwrap_err();
        assert!(err.to_string().starts_with("line 7: amount `12x`"), "{err}");
        assert!(csv_line(8, &["T1", "ls-1", "-5.00", "14.09.2026 10:00:00"]).is_err());
        assert!(is_totals(&["ИТОГО", "2", "10.00"]));
        assert_eq!(
            csv_totals(9, &["ИТОГО", "2", "10,00"]).unwrap(),
            Totals {
                count: 2,
                amount: m("10.00")
            }
        );
    }

    #[test]
    fn line_times_are_read_strictly() {
        let at = |s: &str| csv_line(1, &["T1", "a", "5.00", s]).map(|l| l.paid_at.to_string());
        assert_eq!(at("31.12.2026 23:59:59").unwrap(), "2026-12-31 18:59:59");
        // What chrono's parser accepts beyond the canonical form still reads.
        assert_eq!(at("1.09.2026 9:05:00").unwrap(), "2026-09-01 04:05:00");
        for wrong in [
            "31.02.2026 10:00:00",
            "14.09.2026 24:00:00",
            "14-09-2026 10:00:00",
            "14.09.2026T10:00:00",
            "1a.09.2026 10:00:00",
            "14.09.2026 10:00",
        ] {
            assert!(at(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn totals_must_agree() {
        let mut t = Tally::default();
        t.add(&csv_line(1, &["T1", "a", "5.00", "14.09.2026 10:00:00"]).unwrap());
        assert!(t
            .check(Some(Totals {
                count: 1,
                amount: m("5.00")
            }))
            .is_ok());
        let err = t
            .check(Some(Totals {
                count: 1,
                amount: m("6.00"),
            }))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("says 1 payments for 6.00, the lines hold 1 for 5.00"),
            "{err}"
        );
        assert_eq!(t.check(None), Err(FormatError::NoTotals));
    }
}
