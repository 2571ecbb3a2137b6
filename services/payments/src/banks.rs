//! The banks' check/pay/cancel protocol, one implementation for two doors: the
//! REST handlers (`api::banking`) and the gateway's SOAP door, which asks over
//! the bus ([`BankResponder`]). Each function runs in the caller's transaction
//! and answers with a result code; only storage failures are errors.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use contracts::payments::{BankAnswer, BankOperation, BankRequest};
use primitives::Money;
use storage::DbConnection;

use crate::api::tyumen;
use crate::domain::banking::{self, ResultCode};
use crate::domain::ledger::{self, AccountKind, Movement, MovementKind};
use crate::store::banking::{self as bank_store, BankPaymentRow};
use crate::store::{self, system, StoreError};

const NO_ACCOUNT: &str = "no such personal account";

fn format_wrong() -> BankAnswer {
    BankAnswer::of(
        ResultCode::AccountFormatWrong,
        "the account number is not in the expected format",
    )
}

/// The account a bank may check or pay into, or the answer refusing it
/// (judged by [`banking::accepts_payments`]).
fn payable_account(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Result<store::AccountRow, BankAnswer>, StoreError> {
    let row = store::find_account(conn, id)?;
    let verdict = banking::accepts_payments(
        row.as_ref().and_then(store::AccountRow::kind),
        row.as_ref().is_some_and(|r| r.active),
    );
    Ok(match (verdict, row) {
        (Ok(()), Some(row)) => Ok(row),
        (Err(r), _) => Err(BankAnswer::of(r.code, r.message)),
        // accepts_payments refuses a missing account; kept total for the compiler.
        (Ok(()), None) => Err(BankAnswer::of(ResultCode::AccountNotFound, NO_ACCOUNT)),
    })
}

/// Does the account exist, and whose is it.
pub fn check(conn: &mut DbConnection, account: &str) -> Result<BankAnswer, StoreError> {
    if !ledger::is_account_id(account) {
        return Ok(format_wrong());
    }
    let row = match payable_account(conn, account)? {
        Ok(row) => row,
        Err(refused) => return Ok(refused),
    };
    Ok(BankAnswer {
        account: Some(row.id.clone()),
        student: Some(banking::masked_name(&row.student_name)),
        school: Some(row.school.clone()),
        balance: Some(store::balance(conn, &row.id)?),
        ..BankAnswer::of(ResultCode::Ok, "the account accepts payments")
    })
}

/// The answer to a repeated transaction: the first acceptance.
pub fn duplicate(first: &BankPaymentRow) -> BankAnswer {
    BankAnswer {
        account: Some(first.account.clone()),
        payment_id: Some(first.id.clone()),
        accepted_at: Some(tyumen(first.accepted_at)),
        ..BankAnswer::of(
            ResultCode::Duplicate,
            format!("transaction {} was accepted before", first.txn_id),
        )
    }
}

/// A payment as the bank posts it.
pub struct PayOrder<'a> {
    pub account: &'a str,
    pub amount: Money,
    pub txn_id: &'a str,
    pub txn_at: DateTime<FixedOffset>,
}

/// Whether a transaction id can be taken at all (1–64 characters).
pub fn txn_id_is_valid(txn_id: &str) -> bool {
    !txn_id.trim().is_empty() && txn_id.len() <= 64
}

/// Credits a payment, once per (bank, transaction id).
pub fn pay(
    conn: &mut DbConnection,
    bank: &str,
    order: &PayOrder<'_>,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<BankAnswer, StoreError> {
    if !txn_id_is_valid(order.txn_id) {
        return Ok(BankAnswer::of(
            ResultCode::OtherError,
            "the transaction id must be 1–64 characters",
        ));
    }
    if !ledger::is_account_id(order.account) {
        return Ok(format_wrong());
    }
    if let Err(code) = banking::check_amount(order.amount) {
        let message = format!(
            "a payment must be between {} and {}",
            banking::min_payment(),
            banking::max_payment()
        );
        return Ok(BankAnswer::of(code, message));
    }
    if let Some(first) = bank_store::find(conn, bank, order.txn_id)? {
        return Ok(duplicate(&first));
    }
    let account = match payable_account(conn, order.account)? {
        Ok(account) => account,
        Err(refused) => return Ok(refused),
    };
    let clearing = system::clearing(bank);
    store::ensure_system_account(conn, &clearing, AccountKind::BankClearing, now.naive_utc())?;
    let movement = Movement::transfer(
        MovementKind::BankPayment,
        &clearing,
        &account.id,
        order.amount,
        &format!("payment {} through bank {bank}", order.txn_id),
        &format!("bank:{bank}"),
    )?;
    let posted = store::post(
        conn,
        &movement,
        &format!("bank:{bank}:{}", order.txn_id),
        None,
        now.naive_utc(),
    )?;
    let row = BankPaymentRow {
        id: uuid::Uuid::now_v7().to_string(),
        bank: bank.to_string(),
        txn_id: order.txn_id.to_string(),
        account: account.id.clone(),
        amount_kopecks: order.amount.kopecks(),
        txn_at: order.txn_at.naive_utc(),
        accepted_at: now.naive_utc(),
        banking_day: today,
        movement_id: posted.movement_id,
        status: bank_store::ACCEPTED.into(),
        cancelled_at: None,
        registry_id: None,
    };
    bank_store::insert(conn, &row)?;
    Ok(BankAnswer {
        account: Some(row.account.clone()),
        payment_id: Some(row.id.clone()),
        accepted_at: Some(tyumen(row.accepted_at)),
        balance: Some(store::balance(conn, &row.account)?),
        ..BankAnswer::of(ResultCode::Ok, "payment accepted")
    })
}

/// Cancels a payment on its banking day.
pub fn cancel(
    conn: &mut DbConnection,
    bank: &str,
    txn: &str,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<BankAnswer, StoreError> {
    let Some(payment) = bank_store::find(conn, bank, txn)? else {
        return Ok(BankAnswer::of(
            ResultCode::PaymentNotFound,
            format!("no payment {txn} from this bank"),
        ));
    };
    if let Err(r) = banking::may_cancel(
        payment.status != bank_store::ACCEPTED,
        payment.banking_day,
        today,
    ) {
        return Ok(BankAnswer::of(r.code, r.message));
    }
    let postings = store::postings_of(conn, &payment.movement_id)?;
    let movement = Movement::reversal_of(
        &postings,
        &format!("cancelled by bank {bank}"),
        &format!("bank:{bank}"),
    )?;
    store::post(
        conn,
        &movement,
        &format!("bank-cancel:{bank}:{txn}"),
        Some(&payment.movement_id),
        now.naive_utc(),
    )?;
    bank_store::mark_cancelled(conn, &payment.id, now.naive_utc())?;
    Ok(BankAnswer {
        account: Some(payment.account.clone()),
        payment_id: Some(payment.id.clone()),
        balance: Some(store::balance(conn, &payment.account)?),
        ..BankAnswer::of(ResultCode::Ok, "payment cancelled")
    })
}

/// Answers [`BankRequest`]s from the gateway with the same functions the REST
/// door calls.
pub struct BankResponder {
    pub clock: Arc<dyn calendar::Clock>,
}

impl bus::Responder for BankResponder {
    fn respond(
        &self,
        conn: &mut DbConnection,
        request: &bus::Envelope,
    ) -> Result<String, bus::HandlerError> {
        let req: BankRequest = request.decode()?;
        let (now, today) = (self.clock.now(), self.clock.today());
        let answer = match &req.operation {
            BankOperation::Check { account } => check(conn, account),
            BankOperation::Pay {
                account,
                amount,
                txn_id,
                txn_at,
            } => {
                let order = PayOrder {
                    account,
                    amount: *amount,
                    txn_id,
                    txn_at: *txn_at,
                };
                pay(conn, &req.bank, &order, now, today)
            }
            BankOperation::Cancel { txn_id } => cancel(conn, &req.bank, txn_id, now, today),
        };
        // A race with the same transaction through the other door, or a storage
        // failure: the gateway answers FAILURE and the bank asks again, which
        // then finds the first acceptance.
        let answer = answer.map_err(|e| bus::HandlerError::Transient(e.to_string()))?;
        serde_json::to_string(&answer).map_err(|e| bus::HandlerError::Permanent(e.to_string()))
    }
}
