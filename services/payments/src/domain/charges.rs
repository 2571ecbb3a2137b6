//! УНиП charges and their quittance: pure rules, no I/O.
//!
//! ИС УНиП (информационная система учёта начислений и платежей, the region's
//! system of record for charges and payments, the regional analogue of ГИС ГМП)
//! keeps начисления (charges: what an agency's information system says a payer
//! owes for a state or municipal service) and платежи (payments banks report
//! against them), and performs квитирование (quittance: matching each payment to
//! its charge by УИН, the charge's unique identifier).
//!
//! These are state-service fees, not meal money: nothing here touches the
//! personal-account ledger.
//!
//! # УИН layout (20 characters)
//!
//! | positions | content                                                        |
//! |-----------|----------------------------------------------------------------|
//! | 1–8       | supplier prefix: fixed per supplier (see [`SupplierPrefix`])   |
//! | 9–19      | sequence number, 11 digits, zero-padded, one counter for all   |
//! | 20        | check digit over 1–19 ([`primitives::Uin::with_check_digit`]) |
//!
//! The sequence is shared by all suppliers, so a УИН is unique even if two
//! suppliers end up with the same prefix; the database also holds the УИН as a
//! primary key. The sequence starts at 1, so a УИН is never all zeros.
//!
//! # Quittance outcomes (one per payment, stored with it)
//!
//! | outcome            | when                                    | effect on the charge                 |
//! |--------------------|-----------------------------------------|--------------------------------------|
//! | `matched`          | payment = remaining amount              | status `paid`, balance 0             |
//! | `partial`          | payment < remaining amount              | status `partly_paid`, remaining shown |
//! | `overpaid`         | payment > remaining amount              | status `overpaid`, excess recorded   |
//! | `unknown_uin`      | no charge has this УИН                  | none; payment kept unmatched         |
//! | `cancelled_charge` | the charge is cancelled                 | none; payment kept unmatched         |
//!
//! A payment for an already paid (or overpaid) charge is `overpaid` with the
//! whole payment as the excess. An `unknown_uin` payment is not matched later
//! when a charge with that УИН appears: УИНs are issued here, so a payment
//! quoting one that was not issued yet is a payer's or bank's typo, and
//! crediting it to whichever charge happens to get that number would pay the
//! wrong person's debt. Such payments stay in the quittance report for the
//! operator to resolve: the operator matches one to the charge it was meant for
//! by hand, with a reason (`store::charges::match_by_hand`, audited).
//!
//! `balance` = amount − sum of matched payments (as ГИС ГМП defines it; there
//! are no refunds here): positive while something is owed, negative when
//! overpaid.

use chrono::NaiveDate;
use primitives::{AccountNumber, Bik, IdError, Inn, Kpp, Money, Snils, Uin};
use serde::{Deserialize, Serialize};

/// Largest amount of one charge or payment: 1 000 000 000.00 rubles. Keeps sums
/// of many payments far from the 64-bit kopeck limit.
pub const MAX_AMOUNT_KOPECKS: i64 = 100_000_000_000;

/// Digits of the sequence part of a УИН (positions 9–19).
pub const SEQUENCE_DIGITS: usize = 11;

/// Largest sequence number that fits into [`SEQUENCE_DIGITS`].
pub const MAX_SEQUENCE: i64 = 99_999_999_999;

/// Status of a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    /// Nothing paid yet.
    Active,
    /// Paid in part; `balance` is what is still owed.
    PartlyPaid,
    /// Paid exactly.
    Paid,
    /// Paid more than owed; `balance` is negative.
    Overpaid,
    /// Withdrawn by the supplier or the operator; payments are not matched to it.
    Cancelled,
}

impl ChargeStatus {
    pub const ALL: [ChargeStatus; 5] = [
        ChargeStatus::Active,
        ChargeStatus::PartlyPaid,
        ChargeStatus::Paid,
        ChargeStatus::Overpaid,
        ChargeStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChargeStatus::Active => "active",
            ChargeStatus::PartlyPaid => "partly_paid",
            ChargeStatus::Paid => "paid",
            ChargeStatus::Overpaid => "overpaid",
            ChargeStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<ChargeStatus> {
        ChargeStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The status of a charge that is not cancelled, from what it asks and what was
/// paid against it.
pub fn status_for(amount: Money, paid: Money) -> ChargeStatus {
    if paid.is_zero() {
        ChargeStatus::Active
    } else if paid < amount {
        ChargeStatus::PartlyPaid
    } else if paid == amount {
        ChargeStatus::Paid
    } else {
        ChargeStatus::Overpaid
    }
}

/// The charge's quittance status as ГИС ГМП names it (сквитировано or not),
/// derived from the charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeQuittance {
    /// No payment matched yet (не сквитировано).
    NotMatched,
    /// Payments matched cover part of the amount (частично сквитировано).
    PartlyMatched,
    /// Payments matched cover the amount exactly (сквитировано).
    Matched,
    /// Payments matched exceed the amount (сквитировано с переплатой).
    Overpaid,
    /// The charge was cancelled before any payment.
    Cancelled,
}

pub fn charge_quittance(status: ChargeStatus) -> ChargeQuittance {
    match status {
        ChargeStatus::Active => ChargeQuittance::NotMatched,
        ChargeStatus::PartlyPaid => ChargeQuittance::PartlyMatched,
        ChargeStatus::Paid => ChargeQuittance::Matched,
        ChargeStatus::Overpaid => ChargeQuittance::Overpaid,
        ChargeStatus::Cancelled => ChargeQuittance::Cancelled,
    }
}

/// The outcome of quittance for one payment (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuittanceOutcome {
    Matched,
    Partial,
    Overpaid,
    UnknownUin,
    CancelledCharge,
}

impl QuittanceOutcome {
    pub const ALL: [QuittanceOutcome; 5] = [
        QuittanceOutcome::Matched,
        QuittanceOutcome::Partial,
        QuittanceOutcome::Overpaid,
        QuittanceOutcome::UnknownUin,
        QuittanceOutcome::CancelledCharge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QuittanceOutcome::Matched => "matched",
            QuittanceOutcome::Partial => "partial",
            QuittanceOutcome::Overpaid => "overpaid",
            QuittanceOutcome::UnknownUin => "unknown_uin",
            QuittanceOutcome::CancelledCharge => "cancelled_charge",
        }
    }

    pub fn parse(s: &str) -> Option<QuittanceOutcome> {
        QuittanceOutcome::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the payment counts towards its charge.
    pub fn is_matched(self) -> bool {
        matches!(
            self,
            QuittanceOutcome::Matched | QuittanceOutcome::Partial | QuittanceOutcome::Overpaid
        )
    }
}

/// What quittance needs to know about a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeState {
    pub amount: Money,
    /// Sum of the payments matched so far.
    pub paid: Money,
    pub status: ChargeStatus,
}

impl ChargeState {
    /// amount − paid; negative when overpaid.
    pub fn balance(&self) -> Money {
        self.amount - self.paid
    }
}

/// The result of matching one payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quittance {
    pub outcome: QuittanceOutcome,
    /// The charge after the payment; `None` when there is no charge.
    pub charge_after: Option<ChargeState>,
    /// What the charge still asks after this payment (never negative); `None`
    /// when the payment was not matched.
    pub remaining: Option<Money>,
    /// The part of this payment above what the charge still asked.
    pub overpayment: Money,
}

/// Matches a payment of `payment` (> 0) to `charge` (the charge with the УИН
/// the payment names, if any).
pub fn quittance(charge: Option<&ChargeState>, payment: Money) -> Quittance {
    let unmatched = |outcome, charge_after| Quittance {
        outcome,
        charge_after,
        remaining: None,
        overpayment: Money::ZERO,
    };
    let Some(charge) = charge else {
        return unmatched(QuittanceOutcome::UnknownUin, None);
    };
    if charge.status == ChargeStatus::Cancelled {
        return unmatched(QuittanceOutcome::CancelledCharge, Some(*charge));
    }
    // Already overpaid charges ask nothing: clamp at zero.
    let remaining_before = charge.balance().max(Money::ZERO);
    let paid = charge.paid + payment;
    let after = ChargeState {
        amount: charge.amount,
        paid,
        status: status_for(charge.amount, paid),
    };
    let (outcome, overpayment) = if payment == remaining_before {
        (QuittanceOutcome::Matched, Money::ZERO)
    } else if payment < remaining_before {
        (QuittanceOutcome::Partial, Money::ZERO)
    } else {
        (QuittanceOutcome::Overpaid, payment - remaining_before)
    };
    Quittance {
        outcome,
        charge_after: Some(after),
        remaining: Some(after.balance().max(Money::ZERO)),
        overpayment,
    }
}

/// What cancelling a charge does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelEffect {
    /// The charge becomes cancelled.
    Cancel,
    /// It was cancelled already: nothing changes (a repeated request is safe).
    AlreadyCancelled,
}

/// Why a charge cannot be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CancelRefusal {
    /// Money was matched to it: cancelling would leave the payer's money with
    /// no charge; the supplier must refund or settle first.
    #[error("the charge has payments matched to it ({paid} paid); it cannot be cancelled")]
    HasPayments { paid: Money },
}

/// Whether a charge may be cancelled: only while no payment is matched to it.
pub fn check_cancel(charge: &ChargeState) -> Result<CancelEffect, CancelRefusal> {
    if charge.status == ChargeStatus::Cancelled {
        Ok(CancelEffect::AlreadyCancelled)
    } else if !charge.paid.is_zero() {
        Err(CancelRefusal::HasPayments { paid: charge.paid })
    } else {
        Ok(CancelEffect::Cancel)
    }
}

/// The fixed first 8 characters of a supplier's УИНs: digits and Latin capital
/// letters.
///
/// In ГИС ГМП this part identifies the administrator of revenue; ИС УНиП
/// assigns it per supplier. The operator may configure it; otherwise one is
/// [derived](SupplierPrefix::derive) from the supplier's participant code on
/// its first charge and kept from then on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SupplierPrefix(String);

/// Length of [`SupplierPrefix`].
pub const PREFIX_LEN: usize = 8;

impl SupplierPrefix {
    pub fn parse(s: &str) -> Result<SupplierPrefix, String> {
        let s = s.trim();
        if s.chars().count() != PREFIX_LEN {
            return Err(format!("must be exactly {PREFIX_LEN} characters"));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        {
            return Err("only digits and Latin capital letters A–Z are allowed".into());
        }
        Ok(SupplierPrefix(s.to_string()))
    }

    /// 8 digits from a stable hash (FNV-1a, 64-bit) of the participant code,
    /// plus `attempt`, so a collision with another supplier's prefix is
    /// resolved by trying the next attempt. Digits only, so the УИН also suits
    /// systems that expect a numeric one.
    pub fn derive(participant: &str, attempt: u64) -> SupplierPrefix {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let hash = participant
            .bytes()
            .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
        let n = (hash % 100_000_000 + attempt) % 100_000_000;
        SupplierPrefix(format!("{n:08}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a УИН could not be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    #[error("the УИН sequence is exhausted or invalid: {0}")]
    Sequence(i64),
    #[error("the УИН is invalid: {0}")]
    Uin(#[from] IdError),
}

/// The УИН of the `sequence`-th charge (1-based) under `prefix` (see the
/// layout in the module docs).
pub fn issue_uin(prefix: &SupplierPrefix, sequence: i64) -> Result<Uin, IssueError> {
    if !(1..=MAX_SEQUENCE).contains(&sequence) {
        return Err(IssueError::Sequence(sequence));
    }
    let body = format!(
        "{}{sequence:0width$}",
        prefix.as_str(),
        width = SEQUENCE_DIGITS
    );
    Ok(Uin::with_check_digit(&body)?)
}

/// An input field that failed validation: `field` is its JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// A payer (плательщик) as given, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerFields {
    /// Full name of a person or name of an organisation.
    pub name: String,
    /// ИНН (taxpayer number), 10 or 12 digits.
    pub inn: Option<String>,
    /// СНИЛС (individual insurance account number), e.g. "112-233-445 95".
    pub snils: Option<String>,
}

/// The recipient of the money (получатель) as given, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayeeFields {
    pub name: String,
    /// ИНН of the organisation, 10 digits.
    pub inn: String,
    /// КПП (tax registration reason code), 9 characters.
    pub kpp: String,
    /// Account, 20 digits.
    pub account: String,
    /// БИК of the bank or the treasury, 9 digits.
    pub bik: String,
}

/// A new charge as given (strings, so every field can be named in an error;
/// the API's `ChargeInput` carries it). The УИН is not given: it is issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeFields {
    /// Participant code of the supplier; only the operator gives it (an
    /// information system's own code comes from its token).
    pub supplier: Option<String>,
    pub payer: PayerFields,
    /// Назначение платежа (what the payment is for), up to 210 characters.
    pub purpose: String,
    /// Rubles with kopecks, e.g. "1250.50"; more than 0.
    pub amount: String,
    /// Pay by this date, YYYY-MM-DD; not before today.
    pub due_date: String,
    /// КБК (budget classification code), 20 digits.
    pub kbk: String,
    /// ОКТМО (municipal territory code), 8 or 11 digits.
    pub oktmo: String,
    pub payee: PayeeFields,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payer {
    pub name: String,
    pub inn: Option<Inn>,
    pub snils: Option<Snils>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payee {
    pub name: String,
    pub inn: Inn,
    pub kpp: Kpp,
    pub account: AccountNumber,
    pub bik: Bik,
}

/// A charge that passed [`validate_charge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCharge {
    pub payer: Payer,
    pub purpose: String,
    pub amount: Money,
    pub due_date: NaiveDate,
    pub kbk: String,
    pub oktmo: String,
    pub payee: Payee,
}

const NAME_MAX: usize = 255;
const PURPOSE_MAX: usize = 210;

fn text(field: &str, value: &str, max: usize) -> Result<String, Invalid> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(invalid(field, format!("at most {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(v.to_string())
}

fn id<T>(field: &str, r: Result<T, IdError>) -> Result<T, Invalid> {
    r.map_err(|e| invalid(field, e.to_string()))
}

fn digits(field: &str, value: &str, lengths: &[usize], what: &str) -> Result<String, Invalid> {
    let v = value.trim();
    if !v.bytes().all(|b| b.is_ascii_digit()) || !lengths.contains(&v.len()) {
        return Err(invalid(field, format!("must be {what}")));
    }
    Ok(v.to_string())
}

/// Parses a positive amount of at most [`MAX_AMOUNT_KOPECKS`].
pub fn positive_amount(field: &str, value: &str) -> Result<Money, Invalid> {
    let m = Money::parse(value).map_err(|e| invalid(field, e.to_string()))?;
    if !m.is_positive() {
        return Err(invalid(field, "must be more than 0"));
    }
    if m.kopecks() > MAX_AMOUNT_KOPECKS {
        return Err(invalid(
            field,
            format!(
                "must not exceed {}",
                Money::from_kopecks(MAX_AMOUNT_KOPECKS)
            ),
        ));
    }
    Ok(m)
}

/// Parses a YYYY-MM-DD date.
pub fn date(field: &str, value: &str) -> Result<NaiveDate, Invalid> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map_err(|_| invalid(field, "must be a date YYYY-MM-DD"))
}

/// `require_id`: a charge's payer must be identified by exactly one of ИНН or
/// СНИЛС; a payment's payer may carry at most one.
fn payer(field: &str, p: &PayerFields, require_id: bool) -> Result<Payer, Invalid> {
    let name = text(&format!("{field}.name"), &p.name, NAME_MAX)?;
    let blank = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").is_empty();
    let (has_inn, has_snils) = (!blank(&p.inn), !blank(&p.snils));
    if has_inn && has_snils {
        return Err(invalid(
            &format!("{field}.snils"),
            "give either ИНН or СНИЛС, not both",
        ));
    }
    if require_id && !has_inn && !has_snils {
        return Err(invalid(
            &format!("{field}.inn"),
            "the payer must be identified by ИНН or СНИЛС",
        ));
    }
    let inn = match (&p.inn, has_inn) {
        (Some(v), true) => Some(id(&format!("{field}.inn"), Inn::parse(v))?),
        _ => None,
    };
    let snils = match (&p.snils, has_snils) {
        (Some(v), true) => Some(id(&format!("{field}.snils"), Snils::parse(v))?),
        _ => None,
    };
    Ok(Payer { name, inn, snils })
}

/// Whether `account` is a treasury account: a казначейский счёт (treasury
/// account, `03…`) or the единый казначейский счёт (single treasury account,
/// `40102…`).
///
/// Their control key is computed with a prefix that public sources do not pin
/// down for every treasury БИК (REFERENCE.md marks it unverified), so a key
/// check could reject real payee details. For them only the format (20 digits)
/// is checked; every other account is checked against the БИК with the key of
/// an account at a credit institution.
pub fn is_treasury_account(account: &str) -> bool {
    let a = account.trim();
    a.starts_with("03") || a.starts_with("40102")
}

fn payee(p: &PayeeFields) -> Result<Payee, Invalid> {
    let name = text("payee.name", &p.name, NAME_MAX)?;
    let inn = id("payee.inn", Inn::parse(&p.inn))?;
    if !inn.is_legal_entity() {
        return Err(invalid(
            "payee.inn",
            "the payee is an organisation: its ИНН has 10 digits",
        ));
    }
    let kpp = id("payee.kpp", Kpp::parse(&p.kpp))?;
    let bik = id("payee.bik", Bik::parse(&p.bik))?;
    let account = if is_treasury_account(&p.account) {
        id("payee.account", AccountNumber::parse(&p.account))?
    } else {
        id(
            "payee.account",
            AccountNumber::parse_with_bik(&p.account, &bik),
        )?
    };
    Ok(Payee {
        name,
        inn,
        kpp,
        account,
        bik,
    })
}

/// Validates a new charge; `today` is the Tyumen date.
pub fn validate_charge(input: &ChargeFields, today: NaiveDate) -> Result<ValidCharge, Invalid> {
    let payer = payer("payer", &input.payer, true)?;
    let purpose = text("purpose", &input.purpose, PURPOSE_MAX)?;
    let amount = positive_amount("amount", &input.amount)?;
    let due_date = date("due_date", &input.due_date)?;
    if due_date < today {
        return Err(invalid("due_date", "must not be before today"));
    }
    let kbk = digits("kbk", &input.kbk, &[20], "20 digits")?;
    let oktmo = digits("oktmo", &input.oktmo, &[8, 11], "8 or 11 digits")?;
    let payee = payee(&input.payee)?;
    Ok(ValidCharge {
        payer,
        purpose,
        amount,
        due_date,
        kbk,
        oktmo,
        payee,
    })
}

/// A payment into УНиП as given (the API's `PaymentInput` carries it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFields {
    /// УИП (the payment's unique id), 1–36 Latin letters, digits or '-'. One
    /// issuer's 32-character form: `1` + БИК + branch (6) + date ДДММГГГГ +
    /// number (8).
    pub payment_id: String,
    /// УИН of the charge paid.
    pub uin: String,
    /// Rubles with kopecks, more than 0.
    pub amount: String,
    /// Date the payer paid, YYYY-MM-DD; not in the future.
    pub payment_date: String,
    pub payer: PayerFields,
    /// The bank's code when the caller's token lists several banks.
    pub bank: Option<String>,
}

/// A payment that passed [`validate_payment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPayment {
    pub payment_id: String,
    /// The УИН as the payment gives it (validated, so it may name no charge).
    pub uin: Uin,
    pub amount: Money,
    pub payment_date: NaiveDate,
    pub payer: Payer,
}

/// Maximum length of a УИП.
pub const PAYMENT_ID_MAX: usize = 36;

/// Validates a payment; `today` is the Tyumen date.
pub fn validate_payment(input: &PaymentFields, today: NaiveDate) -> Result<ValidPayment, Invalid> {
    let pid = input.payment_id.trim();
    if pid.is_empty()
        || pid.len() > PAYMENT_ID_MAX
        || !pid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(invalid(
            "payment_id",
            "must be 1–36 characters: Latin letters, digits, '-'",
        ));
    }
    let uin = id("uin", Uin::parse(&input.uin))?;
    let amount = positive_amount("amount", &input.amount)?;
    let payment_date = date("payment_date", &input.payment_date)?;
    if payment_date > today {
        return Err(invalid("payment_date", "must not be in the future"));
    }
    let payer = payer("payer", &input.payer, false)?;
    Ok(ValidPayment {
        payment_id: pid.to_string(),
        uin,
        amount,
        payment_date,
        payer,
    })
}

/// Count and sum of the payments with one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeTotal {
    pub outcome: QuittanceOutcome,
    pub count: i64,
    /// Sum of the payments' amounts.
    pub amount: Money,
    /// Sum of the overpayments among them.
    pub overpayment: Money,
}

/// Totals per outcome, every outcome present in [`QuittanceOutcome::ALL`]
/// order, from `(outcome, amount, overpayment)` of each payment.
pub fn totals(lines: &[(QuittanceOutcome, Money, Money)]) -> Vec<OutcomeTotal> {
    QuittanceOutcome::ALL
        .into_iter()
        .map(|outcome| {
            let mine = lines.iter().filter(|l| l.0 == outcome);
            OutcomeTotal {
                outcome,
                count: mine.clone().count() as i64,
                amount: mine.clone().map(|l| l.1).sum(),
                overpayment: mine.map(|l| l.2).sum(),
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn state(amount: &str, paid: &str) -> ChargeState {
        ChargeState {
            amount: m(amount),
            paid: m(paid),
            status: status_for(m(amount), m(paid)),
        }
    }

    /// A valid 20-digit account at the bank `bik`: solves for the key digit.
    fn account_at(bik: &str, body: &str) -> String {
        let bik = Bik::parse(bik).unwrap();
        (0..10)
            .map(|k| format!("{}{k}{}", &body[..8], &body[8..]))
            .find(|a| AccountNumber::parse_with_bik(a, &bik).is_ok())
            .unwrap()
    }

    fn charge_input() -> ChargeFields {
        ChargeFields {
            supplier: None,
            payer: PayerFields {
                name: "Иванов Иван Иванович".into(),
                inn: None,
                snils: Some("112-233-445 95".into()),
            },
            purpose: "Государственная пошлина".into(),
            amount: "1250.50".into(),
            due_date: "2026-10-01".into(),
            kbk: "18210807010011000110".into(),
            oktmo: "71701000".into(),
            payee: PayeeFields {
                name: "УФК по Тюменской области".into(),
                inn: "7707083893".into(),
                kpp: "720301001".into(),
                account: "03100643000000016700".into(),
                bik: "017102101".into(),
            },
        }
    }

    #[test]
    fn status_follows_paid_amount() {
        assert_eq!(status_for(m("100"), m("0")), ChargeStatus::Active);
        assert_eq!(status_for(m("100"), m("0.01")), ChargeStatus::PartlyPaid);
        assert_eq!(status_for(m("100"), m("100")), ChargeStatus::Paid);
        assert_eq!(status_for(m("100"), m("100.01")), ChargeStatus::Overpaid);
        for s in ChargeStatus::ALL {
            assert_eq!(ChargeStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ChargeStatus::parse("open"), None);
    }

    #[test]
    fn exact_payment_is_matched() {
        let q = quittance(Some(&state("100", "0")), m("100"));
        assert_eq!(q.outcome, QuittanceOutcome::Matched);
        assert_eq!(q.charge_after.unwrap().status, ChargeStatus::Paid);
        assert_eq!(q.remaining, Some(Money::ZERO));
        assert_eq!(q.overpayment, Money::ZERO);
    }

    #[test]
    fn partial_then_rest() {
        let q = quittance(Some(&state("100", "0")), m("30.50"));
        assert_eq!(q.outcome, QuittanceOutcome::Partial);
        let after = q.charge_after.unwrap();
        assert_eq!(after.status, ChargeStatus::PartlyPaid);
        assert_eq!(after.balance(), m("69.50"));
        assert_eq!(q.remaining, Some(m("69.50")));
        let q = quittance(Some(&after), m("69.50"));
        assert_eq!(q.outcome, QuittanceOutcome::Matched);
        assert_eq!(q.charge_after.unwrap().status, ChargeStatus::Paid);
    }

    #[test]
    fn overpayment_records_the_excess_and_balance_goes_negative() {
        let q = quittance(Some(&state("100", "40")), m("75"));
        assert_eq!(q.outcome, QuittanceOutcome::Overpaid);
        assert_eq!(q.overpayment, m("15"));
        let after = q.charge_after.unwrap();
        assert_eq!(after.status, ChargeStatus::Overpaid);
        assert_eq!(after.balance(), m("-15"));
        assert_eq!(q.remaining, Some(Money::ZERO));
        // Paying an overpaid or paid charge again: all of it is excess.
        let q = quittance(Some(&after), m("10"));
        assert_eq!(q.outcome, QuittanceOutcome::Overpaid);
        assert_eq!(q.overpayment, m("10"));
        let q = quittance(Some(&state("100", "100")), m("1"));
        assert_eq!(
            (q.outcome, q.overpayment),
            (QuittanceOutcome::Overpaid, m("1"))
        );
    }

    #[test]
    fn unknown_and_cancelled_charges_are_not_matched() {
        let q = quittance(None, m("10"));
        assert_eq!(q.outcome, QuittanceOutcome::UnknownUin);
        assert!(q.charge_after.is_none() && q.remaining.is_none());
        let cancelled = ChargeState {
            amount: m("100"),
            paid: Money::ZERO,
            status: ChargeStatus::Cancelled,
        };
        let q = quittance(Some(&cancelled), m("100"));
        assert_eq!(q.outcome, QuittanceOutcome::CancelledCharge);
        assert_eq!(q.charge_after, Some(cancelled));
        assert!(!q.outcome.is_matched());
        for o in QuittanceOutcome::ALL {
            assert_eq!(QuittanceOutcome::parse(o.as_str()), Some(o));
        }
    }

    #[test]
    fn cancel_only_without_payments() {
        assert_eq!(check_cancel(&state("100", "0")), Ok(CancelEffect::Cancel));
        assert_eq!(
            check_cancel(&state("100", "0.01")),
            Err(CancelRefusal::HasPayments { paid: m("0.01") })
        );
        let cancelled = ChargeState {
            status: ChargeStatus::Cancelled,
            ..state("100", "0")
        };
        assert_eq!(check_cancel(&cancelled), Ok(CancelEffect::AlreadyCancelled));
        assert_eq!(
            charge_quittance(ChargeStatus::Paid),
            ChargeQuittance::Matched
        );
    }

    #[test]
    fn uin_layout_and_check_digit() {
        let prefix = SupplierPrefix::parse("TYUM0001").unwrap();
        let uin = issue_uin(&prefix, 42).unwrap();
        let s = uin.as_str();
        assert_eq!(s.len(), 20);
        assert_eq!(&s[..8], "TYUM0001");
        assert_eq!(&s[8..19], "00000000042");
        assert!(Uin::parse(s).is_ok());
        assert_ne!(issue_uin(&prefix, 43).unwrap(), uin);
        assert!(issue_uin(&prefix, 0).is_err());
        assert!(issue_uin(&prefix, MAX_SEQUENCE).is_ok());
        assert!(issue_uin(&prefix, MAX_SEQUENCE + 1).is_err());
    }

    #[test]
    fn derived_prefixes_are_stable_digits() {
        let a = SupplierPrefix::derive("TYUM00123", 0);
        assert_eq!(a, SupplierPrefix::derive("TYUM00123", 0));
        assert_ne!(a, SupplierPrefix::derive("TYUM00124", 0));
        assert_ne!(a, SupplierPrefix::derive("TYUM00123", 1));
        assert_eq!(a.as_str().len(), 8);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_digit()));
        assert!(SupplierPrefix::parse(a.as_str()).is_ok());
        assert!(SupplierPrefix::parse("short").is_err());
        assert!(SupplierPrefix::parse("abcdefgh").is_err());
    }

    #[test]
    fn a_valid_charge_passes() {
        let c = validate_charge(&charge_input(), day("2026-09-01")).unwrap();
        assert_eq!(c.amount, m("1250.50"));
        assert_eq!(c.payer.snils.unwrap().as_str(), "11223344595");
        // A bank account outside the treasury is checked against the БИК.
        let mut input = charge_input();
        input.payee.bik = "044525225".into();
        input.payee.account = account_at("044525225", "4070281003800000001");
        assert!(validate_charge(&input, day("2026-09-01")).is_ok());
    }

    #[test]
    fn bad_fields_are_named() {
        let today = day("2026-09-01");
        let field = |f: fn(&mut ChargeFields)| {
            let mut input = charge_input();
            f(&mut input);
            validate_charge(&input, today).unwrap_err().field
        };
        assert_eq!(
            field(|c| c.payer.snils = Some("112-233-445 96".into())),
            "payer.snils"
        );
        assert_eq!(field(|c| c.payer.snils = None), "payer.inn");
        assert_eq!(
            field(|c| c.payer.inn = Some("7707083893".into())),
            "payer.snils"
        );
        assert_eq!(
            field(|c| {
                c.payer.snils = None;
                c.payer.inn = Some("7707083894".into());
            }),
            "payer.inn"
        );
        assert_eq!(field(|c| c.payer.name = " ".into()), "payer.name");
        assert_eq!(field(|c| c.purpose = String::new()), "purpose");
        assert_eq!(field(|c| c.amount = "-5.00".into()), "amount");
        assert_eq!(field(|c| c.amount = "0".into()), "amount");
        assert_eq!(field(|c| c.amount = "1.005".into()), "amount");
        assert_eq!(field(|c| c.amount = "1000000000.01".into()), "amount");
        assert_eq!(field(|c| c.due_date = "2026-08-31".into()), "due_date");
        assert_eq!(field(|c| c.due_date = "01.10.2026".into()), "due_date");
        assert_eq!(field(|c| c.kbk = "1821080701001100011".into()), "kbk");
        assert_eq!(field(|c| c.kbk = "1821080701001100011X".into()), "kbk");
        assert_eq!(field(|c| c.oktmo = "7170100".into()), "oktmo");
        assert_eq!(field(|c| c.payee.inn = "500100732259".into()), "payee.inn");
        assert_eq!(field(|c| c.payee.kpp = "72030100".into()), "payee.kpp");
        assert_eq!(field(|c| c.payee.bik = "01710210".into()), "payee.bik");
        assert_eq!(
            field(|c| c.payee.account = "0310064300000001670".into()),
            "payee.account"
        );
        // A bank account whose key does not match the БИК.
        let mut input = charge_input();
        input.payee.bik = "044525225".into();
        let good = account_at("044525225", "4070281003800000001");
        let key = good.as_bytes()[8] - b'0';
        input.payee.account = format!("{}{}{}", &good[..8], (key + 1) % 10, &good[9..]);
        assert_eq!(
            validate_charge(&input, today).unwrap_err().field,
            "payee.account"
        );
        assert!(validate_charge(&charge_input(), today).is_ok());
        // 11-digit ОКТМО and a 12-digit payer ИНН are fine.
        let mut input = charge_input();
        input.oktmo = "71701000001".into();
        input.payer.snils = None;
        input.payer.inn = Some("500100732259".into());
        assert!(validate_charge(&input, today).is_ok());
    }

    #[test]
    fn treasury_accounts_are_format_checked_only() {
        assert!(is_treasury_account("03100643000000016700"));
        assert!(is_treasury_account("40102810945370000060"));
        assert!(!is_treasury_account("40702810938000000001"));
    }

    fn payment_input() -> PaymentFields {
        let uin = issue_uin(&SupplierPrefix::parse("12345678").unwrap(), 1).unwrap();
        PaymentFields {
            payment_id: "10445252250000012609202600000001".into(),
            uin: uin.to_string(),
            amount: "100.00".into(),
            payment_date: "2026-09-01".into(),
            payer: PayerFields {
                name: "Иванов И. И.".into(),
                inn: None,
                snils: None,
            },
            bank: None,
        }
    }

    #[test]
    fn payments_are_validated() {
        let today = day("2026-09-01");
        assert!(validate_payment(&payment_input(), today).is_ok());
        let field = |f: fn(&mut PaymentFields)| {
            let mut input = payment_input();
            f(&mut input);
            validate_payment(&input, today).unwrap_err().field
        };
        assert_eq!(
            field(|p| {
                let mut s = p.uin.clone();
                let last = s.pop().unwrap();
                s.push(if last == '0' { '1' } else { '0' });
                p.uin = s;
            }),
            "uin"
        );
        assert_eq!(field(|p| p.payment_id = String::new()), "payment_id");
        assert_eq!(field(|p| p.payment_id = "x".repeat(37)), "payment_id");
        assert_eq!(field(|p| p.payment_id = "a b".into()), "payment_id");
        assert_eq!(field(|p| p.amount = "-1".into()), "amount");
        assert_eq!(
            field(|p| p.payment_date = "2026-09-02".into()),
            "payment_date"
        );
        assert_eq!(field(|p| p.payer.inn = Some("123".into())), "payer.inn");
    }

    #[test]
    fn totals_cover_every_outcome() {
        let t = totals(&[
            (QuittanceOutcome::Matched, m("100"), Money::ZERO),
            (QuittanceOutcome::Overpaid, m("50"), m("20")),
            (QuittanceOutcome::Matched, m("1.50"), Money::ZERO),
        ]);
        assert_eq!(t.len(), 5);
        assert_eq!(t[0].outcome, QuittanceOutcome::Matched);
        assert_eq!((t[0].count, t[0].amount), (2, m("101.50")));
        assert_eq!((t[2].count, t[2].overpayment), (1, m("20")));
        assert_eq!((t[3].count, t[3].amount), (0, Money::ZERO));
    }
}
