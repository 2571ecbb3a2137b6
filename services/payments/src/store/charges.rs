//! Storage of УНиП charges, payments and quittance (see `domain::charges`).
//!
//! Every function runs in the caller's connection; the writers expect to be
//! inside one transaction (`Db::write`). A charge row is locked (updated in
//! place) before it is read for a change, so concurrent payments and a
//! cancellation on one charge serialise on the row.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use primitives::{Inn, Money, Snils};
use storage::{DbConnection, StorageError};

use crate::domain::charges::{
    self, CancelEffect, CancelRefusal, ChargeState, ChargeStatus, IssueError, QuittanceOutcome,
    SupplierPrefix, ValidCharge, ValidPayment,
};

diesel::table! {
    unip_suppliers (participant) {
        participant -> Text,
        prefix -> Text,
        configured -> Bool,
        updated_by -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    unip_uin_sequence (id) {
        id -> Integer,
        last_value -> BigInt,
    }
}

diesel::table! {
    unip_charges (uin) {
        uin -> Text,
        supplier -> Text,
        idempotency_key -> Text,
        status -> Text,
        amount_kopecks -> BigInt,
        paid_kopecks -> BigInt,
        purpose -> Text,
        due_date -> Date,
        kbk -> Text,
        oktmo -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        cancelled_by -> Nullable<Text>,
        cancelled_at -> Nullable<Timestamp>,
        cancel_reason -> Nullable<Text>,
    }
}

diesel::table! {
    unip_payments (payment_id) {
        payment_id -> Text,
        uin -> Text,
        charge_uin -> Nullable<Text>,
        supplier -> Nullable<Text>,
        amount_kopecks -> BigInt,
        payment_date -> Date,
        payer_name -> Text,
        payer_inn -> Nullable<Text>,
        payer_snils -> Nullable<Text>,
        source -> Text,
        outcome -> Text,
        remaining_kopecks -> Nullable<BigInt>,
        overpayment_kopecks -> BigInt,
        received_by -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    unip_charge_parties (uin) {
        uin -> Text,
        payer_name -> Text,
        payer_inn -> Nullable<Text>,
        payer_snils -> Nullable<Text>,
        payee_name -> Text,
        payee_inn -> Text,
        payee_kpp -> Text,
        payee_account -> Text,
        payee_bik -> Text,
    }
}

diesel::table! {
    unip_manual_matches (payment_id) {
        payment_id -> Text,
        charge_uin -> Text,
        claimed_uin -> Text,
        outcome_before -> Text,
        outcome_after -> Text,
        reason -> Text,
        matched_by -> Text,
        matched_at -> Timestamp,
    }
}

diesel::joinable!(unip_charge_parties -> unip_charges (uin));
diesel::allow_tables_to_appear_in_same_query!(unip_charges, unip_charge_parties, unip_payments);

/// How many derived prefixes are tried before giving up (collisions are rare:
/// 10^8 prefixes).
const PREFIX_ATTEMPTS: u64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum ChargeStoreError {
    #[error("charge {0} does not exist")]
    UnknownCharge(String),
    #[error("the Idempotency-Key was used for a different charge ({uin})")]
    KeyReused { uin: String },
    #[error(transparent)]
    CannotCancel(#[from] CancelRefusal),
    #[error("payment {payment_id} is already present (outcome {outcome})")]
    PaymentPresent { payment_id: String, outcome: String },
    #[error("prefix {prefix} belongs to supplier {owner}")]
    PrefixTaken { prefix: String, owner: String },
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error("payment {0} does not exist")]
    UnknownPayment(String),
    #[error("payment {payment_id} is {outcome}, not unknown_uin: only a payment whose УИН named no charge is matched by hand")]
    NotUnmatched { payment_id: String, outcome: String },
    #[error("stored charge data is inconsistent: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<diesel::result::Error> for ChargeStoreError {
    fn from(e: diesel::result::Error) -> Self {
        ChargeStoreError::Storage(StorageError::from(e))
    }
}

impl ChargeStoreError {
    /// A unique constraint fired: a concurrent request inserted the same key
    /// first, so a retry will see its row.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, ChargeStoreError::Storage(s) if s.is_unique_violation())
    }
}

/// The columns of `unip_charges`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = unip_charges)]
pub struct ChargeCore {
    pub uin: String,
    pub supplier: String,
    pub idempotency_key: String,
    pub status: String,
    pub amount_kopecks: i64,
    pub paid_kopecks: i64,
    pub purpose: String,
    pub due_date: NaiveDate,
    pub kbk: String,
    pub oktmo: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub cancelled_by: Option<String>,
    pub cancelled_at: Option<NaiveDateTime>,
    pub cancel_reason: Option<String>,
}

/// The columns of `unip_charge_parties`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = unip_charge_parties)]
pub struct ChargeParties {
    pub uin: String,
    pub payer_name: String,
    pub payer_inn: Option<String>,
    pub payer_snils: Option<String>,
    pub payee_name: String,
    pub payee_inn: String,
    pub payee_kpp: String,
    pub payee_account: String,
    pub payee_bik: String,
}

/// A charge with its payer and payee.
#[derive(Debug, Clone)]
pub struct ChargeRow {
    pub charge: ChargeCore,
    pub parties: ChargeParties,
}

impl std::ops::Deref for ChargeRow {
    type Target = ChargeCore;
    fn deref(&self) -> &ChargeCore {
        &self.charge
    }
}

impl ChargeRow {
    pub fn status(&self) -> Result<ChargeStatus, ChargeStoreError> {
        ChargeStatus::parse(&self.status).ok_or_else(|| {
            ChargeStoreError::Corrupt(format!("charge {} has status {}", self.uin, self.status))
        })
    }

    pub fn state(&self) -> Result<ChargeState, ChargeStoreError> {
        Ok(ChargeState {
            amount: Money::from_kopecks(self.amount_kopecks),
            paid: Money::from_kopecks(self.paid_kopecks),
            status: self.status()?,
        })
    }

    /// Whether this row holds the same charge as `c` (for a repeated
    /// Idempotency-Key).
    fn same_as(&self, c: &ValidCharge) -> bool {
        self.amount_kopecks == c.amount.kopecks()
            && self.purpose == c.purpose
            && self.due_date == c.due_date
            && self.kbk == c.kbk
            && self.oktmo == c.oktmo
            && self.parties.payer_name == c.payer.name
            && self.parties.payer_inn.as_deref() == c.payer.inn.as_ref().map(Inn::as_str)
            && self.parties.payer_snils.as_deref() == c.payer.snils.as_ref().map(Snils::as_str)
            && self.parties.payee_name == c.payee.name
            && self.parties.payee_inn == c.payee.inn.as_str()
            && self.parties.payee_kpp == c.payee.kpp.as_str()
            && self.parties.payee_account == c.payee.account.as_str()
            && self.parties.payee_bik == c.payee.bik.as_str()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = unip_payments)]
pub struct PaymentRow {
    pub payment_id: String,
    pub uin: String,
    pub charge_uin: Option<String>,
    pub supplier: Option<String>,
    pub amount_kopecks: i64,
    pub payment_date: NaiveDate,
    pub payer_name: String,
    pub payer_inn: Option<String>,
    pub payer_snils: Option<String>,
    pub source: String,
    pub outcome: String,
    pub remaining_kopecks: Option<i64>,
    pub overpayment_kopecks: i64,
    pub received_by: String,
    pub received_at: NaiveDateTime,
}

impl PaymentRow {
    pub fn outcome(&self) -> Result<QuittanceOutcome, ChargeStoreError> {
        QuittanceOutcome::parse(&self.outcome).ok_or_else(|| {
            ChargeStoreError::Corrupt(format!(
                "payment {} has outcome {}",
                self.payment_id, self.outcome
            ))
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = unip_suppliers)]
pub struct SupplierRow {
    pub participant: String,
    pub prefix: String,
    pub configured: bool,
    pub updated_by: String,
    pub updated_at: NaiveDateTime,
}

pub fn find_supplier(
    conn: &mut DbConnection,
    participant: &str,
) -> Result<Option<SupplierRow>, ChargeStoreError> {
    Ok(unip_suppliers::table
        .find(participant)
        .select(SupplierRow::as_select())
        .first(conn)
        .optional()?)
}

fn prefix_owner(conn: &mut DbConnection, prefix: &str) -> Result<Option<String>, ChargeStoreError> {
    Ok(unip_suppliers::table
        .filter(unip_suppliers::prefix.eq(prefix))
        .select(unip_suppliers::participant)
        .first(conn)
        .optional()?)
}

/// Sets `participant`'s prefix (operator configuration). Charges issued before
/// keep their УИН; the shared sequence keeps new ones unique either way.
pub fn configure_supplier(
    conn: &mut DbConnection,
    participant: &str,
    prefix: &SupplierPrefix,
    by: &str,
    now: NaiveDateTime,
) -> Result<SupplierRow, ChargeStoreError> {
    if let Some(owner) = prefix_owner(conn, prefix.as_str())? {
        if owner != participant {
            return Err(ChargeStoreError::PrefixTaken {
                prefix: prefix.as_str().to_string(),
                owner,
            });
        }
    }
    if find_supplier(conn, participant)?.is_some() {
        diesel::update(unip_suppliers::table.find(participant))
            .set((
                unip_suppliers::prefix.eq(prefix.as_str()),
                unip_suppliers::configured.eq(true),
                unip_suppliers::updated_by.eq(by),
                unip_suppliers::updated_at.eq(now),
            ))
            .execute(conn)?;
    } else {
        insert_supplier(conn, participant, prefix, true, by, now)?;
    }
    find_supplier(conn, participant)?
        .ok_or_else(|| ChargeStoreError::Corrupt(format!("supplier {participant} vanished")))
}

fn insert_supplier(
    conn: &mut DbConnection,
    participant: &str,
    prefix: &SupplierPrefix,
    configured: bool,
    by: &str,
    now: NaiveDateTime,
) -> Result<(), ChargeStoreError> {
    diesel::insert_into(unip_suppliers::table)
        .values((
            unip_suppliers::participant.eq(participant),
            unip_suppliers::prefix.eq(prefix.as_str()),
            unip_suppliers::configured.eq(configured),
            unip_suppliers::updated_by.eq(by),
            unip_suppliers::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The supplier's prefix, derived and stored on its first charge.
fn supplier_prefix(
    conn: &mut DbConnection,
    participant: &str,
    by: &str,
    now: NaiveDateTime,
) -> Result<SupplierPrefix, ChargeStoreError> {
    if let Some(row) = find_supplier(conn, participant)? {
        return SupplierPrefix::parse(&row.prefix)
            .map_err(|e| ChargeStoreError::Corrupt(format!("prefix of {participant}: {e}")));
    }
    for attempt in 0..PREFIX_ATTEMPTS {
        let prefix = SupplierPrefix::derive(participant, attempt);
        if prefix_owner(conn, prefix.as_str())?.is_none() {
            insert_supplier(conn, participant, &prefix, false, by, now)?;
            return Ok(prefix);
        }
    }
    Err(ChargeStoreError::Corrupt(format!(
        "no free prefix for {participant} after {PREFIX_ATTEMPTS} attempts"
    )))
}

/// The next number of the shared УИН sequence. The update comes first so the
/// row is locked until the transaction ends.
fn next_sequence(conn: &mut DbConnection) -> Result<i64, ChargeStoreError> {
    use unip_uin_sequence::dsl as s;
    diesel::update(s::unip_uin_sequence.find(1))
        .set(s::last_value.eq(s::last_value + 1_i64))
        .execute(conn)?;
    Ok(s::unip_uin_sequence
        .find(1)
        .select(s::last_value)
        .first(conn)?)
}

/// A charge created now, or the one an earlier request with the same key made.
#[derive(Debug, Clone)]
pub struct Created {
    pub charge: ChargeRow,
    /// The key had been used: this is the earlier charge.
    pub repeated: bool,
}

/// Issues a УИН and stores the charge, once per (supplier, key).
pub fn create_charge(
    conn: &mut DbConnection,
    supplier: &str,
    key: &str,
    charge: &ValidCharge,
    by: &str,
    now: NaiveDateTime,
) -> Result<Created, ChargeStoreError> {
    let existing = charges_with_parties()
        .filter(unip_charges::supplier.eq(supplier))
        .filter(unip_charges::idempotency_key.eq(key))
        .select((ChargeCore::as_select(), ChargeParties::as_select()))
        .first::<(ChargeCore, ChargeParties)>(conn)
        .optional()?
        .map(ChargeRow::from);
    if let Some(row) = existing {
        if !row.same_as(charge) {
            return Err(ChargeStoreError::KeyReused {
                uin: row.charge.uin,
            });
        }
        return Ok(Created {
            charge: row,
            repeated: true,
        });
    }
    let prefix = supplier_prefix(conn, supplier, by, now)?;
    let uin = charges::issue_uin(&prefix, next_sequence(conn)?)?;
    let core = ChargeCore {
        uin: uin.to_string(),
        supplier: supplier.to_string(),
        idempotency_key: key.to_string(),
        status: ChargeStatus::Active.as_str().to_string(),
        amount_kopecks: charge.amount.kopecks(),
        paid_kopecks: 0,
        purpose: charge.purpose.clone(),
        due_date: charge.due_date,
        kbk: charge.kbk.clone(),
        oktmo: charge.oktmo.clone(),
        created_by: by.to_string(),
        created_at: now,
        cancelled_by: None,
        cancelled_at: None,
        cancel_reason: None,
    };
    let parties = ChargeParties {
        uin: uin.to_string(),
        payer_name: charge.payer.name.clone(),
        payer_inn: charge.payer.inn.as_ref().map(|v| v.as_str().to_string()),
        payer_snils: charge.payer.snils.as_ref().map(|v| v.as_str().to_string()),
        payee_name: charge.payee.name.clone(),
        payee_inn: charge.payee.inn.as_str().to_string(),
        payee_kpp: charge.payee.kpp.as_str().to_string(),
        payee_account: charge.payee.account.as_str().to_string(),
        payee_bik: charge.payee.bik.as_str().to_string(),
    };
    diesel::insert_into(unip_charges::table)
        .values(&core)
        .execute(conn)?;
    diesel::insert_into(unip_charge_parties::table)
        .values(&parties)
        .execute(conn)?;
    let row = ChargeRow {
        charge: core,
        parties,
    };
    Ok(Created {
        charge: row,
        repeated: false,
    })
}

impl From<(ChargeCore, ChargeParties)> for ChargeRow {
    fn from((charge, parties): (ChargeCore, ChargeParties)) -> Self {
        ChargeRow { charge, parties }
    }
}

fn charges_with_parties() -> diesel::dsl::InnerJoin<unip_charges::table, unip_charge_parties::table>
{
    unip_charges::table.inner_join(unip_charge_parties::table)
}

pub fn find_charge(
    conn: &mut DbConnection,
    uin: &str,
) -> Result<Option<ChargeRow>, ChargeStoreError> {
    Ok(charges_with_parties()
        .filter(unip_charges::uin.eq(uin))
        .select((ChargeCore::as_select(), ChargeParties::as_select()))
        .first::<(ChargeCore, ChargeParties)>(conn)
        .optional()?
        .map(ChargeRow::from))
}

/// Locks the charge row for the rest of the transaction (a no-op update takes
/// the row lock in PostgreSQL; SQLite writers are serialised anyway) and reads
/// it.
fn lock_charge(conn: &mut DbConnection, uin: &str) -> Result<Option<ChargeRow>, ChargeStoreError> {
    diesel::update(unip_charges::table.find(uin))
        .set(unip_charges::paid_kopecks.eq(unip_charges::paid_kopecks))
        .execute(conn)?;
    find_charge(conn, uin)
}

/// Payments matched (or kept with reason `cancelled_charge`) to the charge,
/// in the order they arrived.
pub fn payments_of(
    conn: &mut DbConnection,
    uin: &str,
) -> Result<Vec<PaymentRow>, ChargeStoreError> {
    Ok(unip_payments::table
        .filter(unip_payments::charge_uin.eq(uin))
        .order((unip_payments::received_at, unip_payments::payment_id))
        .select(PaymentRow::as_select())
        .load(conn)?)
}

/// A page of charges, newest first; `supplier` `None` means all (operator).
pub fn list_charges(
    conn: &mut DbConnection,
    supplier: Option<&str>,
    status: Option<ChargeStatus>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ChargeRow>, i64), ChargeStoreError> {
    let filtered = || {
        let mut q = charges_with_parties().into_boxed();
        if let Some(s) = supplier {
            q = q.filter(unip_charges::supplier.eq(s.to_string()));
        }
        if let Some(st) = status {
            q = q.filter(unip_charges::status.eq(st.as_str()));
        }
        q
    };
    let total: i64 = filtered().count().get_result(conn)?;
    let rows = filtered()
        .order((unip_charges::created_at.desc(), unip_charges::uin.desc()))
        .offset(offset)
        .limit(limit)
        .select((ChargeCore::as_select(), ChargeParties::as_select()))
        .load::<(ChargeCore, ChargeParties)>(conn)?
        .into_iter()
        .map(ChargeRow::from)
        .collect();
    Ok((rows, total))
}

/// What cancelling did.
#[derive(Debug, Clone)]
pub struct Cancelled {
    pub charge: ChargeRow,
    pub effect: CancelEffect,
}

/// Cancels the charge unless a payment is matched to it.
pub fn cancel_charge(
    conn: &mut DbConnection,
    uin: &str,
    reason: &str,
    by: &str,
    now: NaiveDateTime,
) -> Result<Cancelled, ChargeStoreError> {
    let row = lock_charge(conn, uin)?.ok_or_else(|| ChargeStoreError::UnknownCharge(uin.into()))?;
    let effect = charges::check_cancel(&row.state()?)?;
    if effect == CancelEffect::Cancel {
        diesel::update(unip_charges::table.find(uin))
            .set((
                unip_charges::status.eq(ChargeStatus::Cancelled.as_str()),
                unip_charges::cancelled_by.eq(by),
                unip_charges::cancelled_at.eq(now),
                unip_charges::cancel_reason.eq(reason),
            ))
            .execute(conn)?;
    }
    let charge =
        find_charge(conn, uin)?.ok_or_else(|| ChargeStoreError::UnknownCharge(uin.into()))?;
    Ok(Cancelled { charge, effect })
}

/// A payment received and its quittance.
#[derive(Debug, Clone)]
pub struct Received {
    pub payment: PaymentRow,
    /// The charge after the payment, if the УИН names one.
    pub charge: Option<ChargeRow>,
}

/// Stores a payment once per payment id and matches it to its charge by УИН
/// (see the outcome table in `domain::charges`). With `only_supplier` (an
/// information system reporting payments taken at its own counter) the УИН
/// must name one of that supplier's charges, else `UnknownCharge` and nothing
/// is stored: it neither pays into another's charge nor learns what it owes.
pub fn receive_payment(
    conn: &mut DbConnection,
    payment: &ValidPayment,
    source: &str,
    only_supplier: Option<&str>,
    by: &str,
    now: NaiveDateTime,
) -> Result<Received, ChargeStoreError> {
    if let Some(supplier) = only_supplier {
        let uin = payment.uin.as_str();
        if find_charge(conn, uin)?.is_none_or(|c| c.supplier != supplier) {
            return Err(ChargeStoreError::UnknownCharge(uin.to_string()));
        }
    }
    let present: Option<String> = unip_payments::table
        .find(&payment.payment_id)
        .select(unip_payments::outcome)
        .first(conn)
        .optional()?;
    if let Some(outcome) = present {
        return Err(ChargeStoreError::PaymentPresent {
            payment_id: payment.payment_id.clone(),
            outcome,
        });
    }
    let charge = lock_charge(conn, payment.uin.as_str())?;
    let state = charge.as_ref().map(ChargeRow::state).transpose()?;
    let q = charges::quittance(state.as_ref(), payment.amount);
    apply_quittance(conn, payment.uin.as_str(), &q)?;
    let row = PaymentRow {
        payment_id: payment.payment_id.clone(),
        uin: payment.uin.to_string(),
        charge_uin: charge.as_ref().map(|c| c.uin.clone()),
        supplier: charge.as_ref().map(|c| c.supplier.clone()),
        amount_kopecks: payment.amount.kopecks(),
        payment_date: payment.payment_date,
        payer_name: payment.payer.name.clone(),
        payer_inn: payment.payer.inn.as_ref().map(|v| v.as_str().to_string()),
        payer_snils: payment.payer.snils.as_ref().map(|v| v.as_str().to_string()),
        source: source.to_string(),
        outcome: q.outcome.as_str().to_string(),
        remaining_kopecks: q.remaining.map(|m| m.kopecks()),
        overpayment_kopecks: q.overpayment.kopecks(),
        received_by: by.to_string(),
        received_at: now,
    };
    // The primary key refuses a concurrent import of the same id that passed
    // the check above; the transaction, charge update included, rolls back.
    diesel::insert_into(unip_payments::table)
        .values(&row)
        .execute(conn)?;
    let charge = match charge {
        Some(c) => find_charge(conn, &c.uin)?,
        None => None,
    };
    Ok(Received {
        payment: row,
        charge,
    })
}

/// A matched payment's effect on its (locked) charge: the paid sum and status
/// after it.
fn apply_quittance(
    conn: &mut DbConnection,
    uin: &str,
    q: &charges::Quittance,
) -> Result<(), ChargeStoreError> {
    if let (true, Some(after)) = (q.outcome.is_matched(), &q.charge_after) {
        diesel::update(unip_charges::table.find(uin))
            .set((
                unip_charges::paid_kopecks.eq(after.paid.kopecks()),
                unip_charges::status.eq(after.status.as_str()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// An operator's match of a payment to a charge (the audit record).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = unip_manual_matches)]
pub struct ManualMatch {
    pub payment_id: String,
    pub charge_uin: String,
    pub claimed_uin: String,
    pub outcome_before: String,
    pub outcome_after: String,
    pub reason: String,
    pub matched_by: String,
    pub matched_at: NaiveDateTime,
}

/// Matches an `unknown_uin` payment (a payer's or bank's typo in the УИН) to
/// the charge `uin` by hand: the quittance is computed as if the payment had
/// named it, the charge's paid sum and status follow, and the match is
/// recorded with the operator's reason. The payment keeps the УИН it claimed.
/// Two operators at once: the second finds the payment matched (409).
pub fn match_by_hand(
    conn: &mut DbConnection,
    payment_id: &str,
    uin: &str,
    reason: &str,
    by: &str,
    now: NaiveDateTime,
) -> Result<(Received, ManualMatch), ChargeStoreError> {
    let payment = find_payment(conn, payment_id)?
        .ok_or_else(|| ChargeStoreError::UnknownPayment(payment_id.to_string()))?;
    let unknown = QuittanceOutcome::UnknownUin.as_str();
    if payment.outcome != unknown {
        return Err(ChargeStoreError::NotUnmatched {
            payment_id: payment_id.to_string(),
            outcome: payment.outcome,
        });
    }
    let charge =
        lock_charge(conn, uin)?.ok_or_else(|| ChargeStoreError::UnknownCharge(uin.to_string()))?;
    let q = charges::quittance(
        Some(&charge.state()?),
        Money::from_kopecks(payment.amount_kopecks),
    );
    // Claimed only while still unmatched: a concurrent match changes no row here.
    let claimed = diesel::update(
        unip_payments::table
            .find(payment_id)
            .filter(unip_payments::outcome.eq(unknown)),
    )
    .set((
        unip_payments::charge_uin.eq(&charge.uin),
        unip_payments::supplier.eq(&charge.supplier),
        unip_payments::outcome.eq(q.outcome.as_str()),
        unip_payments::remaining_kopecks.eq(q.remaining.map(|m| m.kopecks())),
        unip_payments::overpayment_kopecks.eq(q.overpayment.kopecks()),
    ))
    .execute(conn)?;
    if claimed == 0 {
        let now_is = find_payment(conn, payment_id)?
            .map(|p| p.outcome)
            .unwrap_or_default();
        return Err(ChargeStoreError::NotUnmatched {
            payment_id: payment_id.to_string(),
            outcome: now_is,
        });
    }
    apply_quittance(conn, &charge.uin, &q)?;
    let record = ManualMatch {
        payment_id: payment_id.to_string(),
        charge_uin: charge.uin.clone(),
        claimed_uin: payment.uin.clone(),
        outcome_before: unknown.to_string(),
        outcome_after: q.outcome.as_str().to_string(),
        reason: reason.to_string(),
        matched_by: by.to_string(),
        matched_at: now,
    };
    diesel::insert_into(unip_manual_matches::table)
        .values(&record)
        .execute(conn)?;
    let payment = find_payment(conn, payment_id)?
        .ok_or_else(|| ChargeStoreError::UnknownPayment(payment_id.to_string()))?;
    let charge = find_charge(conn, &charge.uin)?;
    Ok((Received { payment, charge }, record))
}

pub fn find_payment(
    conn: &mut DbConnection,
    payment_id: &str,
) -> Result<Option<PaymentRow>, ChargeStoreError> {
    Ok(unip_payments::table
        .find(payment_id)
        .select(PaymentRow::as_select())
        .first(conn)
        .optional()?)
}

/// Payments dated `from..=to`; `supplier` `Some` keeps only that supplier's
/// charges' payments (so never `unknown_uin` ones).
pub fn payments_between(
    conn: &mut DbConnection,
    from: NaiveDate,
    to: NaiveDate,
    supplier: Option<&str>,
) -> Result<Vec<PaymentRow>, ChargeStoreError> {
    let mut q = unip_payments::table
        .filter(unip_payments::payment_date.ge(from))
        .filter(unip_payments::payment_date.le(to))
        .into_boxed();
    if let Some(s) = supplier {
        q = q.filter(unip_payments::supplier.eq(s.to_string()));
    }
    Ok(q.order((
        unip_payments::payment_date,
        unip_payments::received_at,
        unip_payments::payment_id,
    ))
    .select(PaymentRow::as_select())
    .load(conn)?)
}
