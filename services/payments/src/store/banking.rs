//! Banks' online payments.

use diesel::prelude::*;
use storage::DbConnection;

use super::StoreError;

diesel::table! {
    bank_payments (id) {
        id -> Text,
        bank -> Text,
        txn_id -> Text,
        account -> Text,
        amount_kopecks -> BigInt,
        txn_at -> Timestamp,
        accepted_at -> Timestamp,
        banking_day -> Date,
        movement_id -> Text,
        status -> Text,
        cancelled_at -> Nullable<Timestamp>,
        registry_id -> Nullable<Text>,
    }
}

pub const ACCEPTED: &str = "accepted";
pub const CANCELLED: &str = "cancelled";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = bank_payments)]
pub struct BankPaymentRow {
    pub id: String,
    pub bank: String,
    pub txn_id: String,
    pub account: String,
    pub amount_kopecks: i64,
    pub txn_at: chrono::NaiveDateTime,
    pub accepted_at: chrono::NaiveDateTime,
    pub banking_day: chrono::NaiveDate,
    pub movement_id: String,
    pub status: String,
    pub cancelled_at: Option<chrono::NaiveDateTime>,
    /// The registry that confirmed it, once one did.
    pub registry_id: Option<String>,
}

pub fn find(
    conn: &mut DbConnection,
    bank: &str,
    txn_id: &str,
) -> Result<Option<BankPaymentRow>, StoreError> {
    Ok(bank_payments::table
        .filter(bank_payments::bank.eq(bank))
        .filter(bank_payments::txn_id.eq(txn_id))
        .select(BankPaymentRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(conn: &mut DbConnection, row: &BankPaymentRow) -> Result<(), StoreError> {
    diesel::insert_into(bank_payments::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Inserts several payments, one statement per 500.
pub fn insert_all(conn: &mut DbConnection, rows: &[BankPaymentRow]) -> Result<(), StoreError> {
    use diesel::sql_types::{Array, BigInt, Date, Nullable, Text, Timestamp};
    if rows.is_empty() {
        return Ok(());
    }
    match conn {
        // One statement over arrays, as `registry::insert_items`.
        DbConnection::Pg(c) => {
            let text =
                |f: fn(&BankPaymentRow) -> &str| -> Vec<&str> { rows.iter().map(f).collect() };
            let amount: Vec<i64> = rows.iter().map(|r| r.amount_kopecks).collect();
            let txn_at: Vec<chrono::NaiveDateTime> = rows.iter().map(|r| r.txn_at).collect();
            let accepted_at: Vec<chrono::NaiveDateTime> =
                rows.iter().map(|r| r.accepted_at).collect();
            let day: Vec<chrono::NaiveDate> = rows.iter().map(|r| r.banking_day).collect();
            let cancelled_at: Vec<Option<chrono::NaiveDateTime>> =
                rows.iter().map(|r| r.cancelled_at).collect();
            let registry: Vec<Option<&str>> =
                rows.iter().map(|r| r.registry_id.as_deref()).collect();
            diesel::sql_query(
                "INSERT INTO bank_payments (id, bank, txn_id, account, amount_kopecks, txn_at, \
                 accepted_at, banking_day, movement_id, status, cancelled_at, registry_id) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
                 $5::bigint[], $6::timestamp[], $7::timestamp[], $8::date[], $9::text[], \
                 $10::text[], $11::timestamp[], $12::text[])",
            )
            .bind::<Array<Text>, _>(text(|r| &r.id))
            .bind::<Array<Text>, _>(text(|r| &r.bank))
            .bind::<Array<Text>, _>(text(|r| &r.txn_id))
            .bind::<Array<Text>, _>(text(|r| &r.account))
            .bind::<Array<BigInt>, _>(&amount)
            .bind::<Array<Timestamp>, _>(&txn_at)
            .bind::<Array<Timestamp>, _>(&accepted_at)
            .bind::<Array<Date>, _>(&day)
            .bind::<Array<Text>, _>(text(|r| &r.movement_id))
            .bind::<Array<Text>, _>(text(|r| &r.status))
            .bind::<Array<Nullable<Timestamp>>, _>(&cancelled_at)
            .bind::<Array<Nullable<Text>>, _>(&registry)
            .execute(c)?;
        }
        DbConnection::Sqlite(c) => {
            for chunk in rows.chunks(500) {
                diesel::insert_into(bank_payments::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// Marks an accepted payment cancelled; `false` if it was not accepted any more.
pub fn mark_cancelled(
    conn: &mut DbConnection,
    id: &str,
    at: chrono::NaiveDateTime,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        bank_payments::table
            .filter(bank_payments::id.eq(id))
            .filter(bank_payments::status.eq(ACCEPTED)),
    )
    .set((
        bank_payments::status.eq(CANCELLED),
        bank_payments::cancelled_at.eq(Some(at)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// One bank's payments of one banking day, in the order accepted.
pub fn of_day(
    conn: &mut DbConnection,
    bank: &str,
    day: chrono::NaiveDate,
) -> Result<Vec<BankPaymentRow>, StoreError> {
    Ok(bank_payments::table
        .filter(bank_payments::bank.eq(bank))
        .filter(bank_payments::banking_day.eq(day))
        .order(bank_payments::accepted_at)
        .select(BankPaymentRow::as_select())
        .load(conn)?)
}
