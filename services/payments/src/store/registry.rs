//! Registries and their reconciliation items.

use diesel::prelude::*;
use storage::DbConnection;

use super::banking::bank_payments;
use super::StoreError;
use crate::domain::registry::Outcome;

diesel::table! {
    registries (id) {
        id -> Text,
        bank -> Text,
        registry_date -> Date,
        format -> Text,
        file_name -> Text,
        lines_total -> BigInt,
        amount_total_kopecks -> BigInt,
        status -> Text,
        processed_lines -> BigInt,
        counts -> Text,
        uploaded_by -> Text,
        uploaded_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    registry_items (id) {
        id -> BigInt,
        registry_id -> Text,
        line_no -> BigInt,
        txn_id -> Text,
        account -> Text,
        outcome -> Text,
        amount_kopecks -> BigInt,
        posted_kopecks -> Nullable<BigInt>,
        paid_at -> Nullable<Timestamp>,
        note -> Text,
    }
}

use super::accounts;

diesel::allow_tables_to_appear_in_same_query!(registry_items, accounts);

pub const PROCESSING: &str = "processing";
pub const DONE: &str = "done";

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = registries)]
pub struct RegistryRow {
    pub id: String,
    pub bank: String,
    pub registry_date: chrono::NaiveDate,
    pub format: String,
    pub file_name: String,
    pub lines_total: i64,
    pub amount_total_kopecks: i64,
    pub status: String,
    pub processed_lines: i64,
    /// Lines per outcome, a JSON object.
    pub counts: String,
    pub uploaded_by: String,
    pub uploaded_at: chrono::NaiveDateTime,
    pub finished_at: Option<chrono::NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = registry_items)]
pub struct ItemRow {
    #[diesel(skip_insertion)]
    pub id: i64,
    pub registry_id: String,
    pub line_no: i64,
    pub txn_id: String,
    pub account: String,
    pub outcome: String,
    pub amount_kopecks: i64,
    pub posted_kopecks: Option<i64>,
    pub paid_at: Option<chrono::NaiveDateTime>,
    pub note: String,
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<RegistryRow>, StoreError> {
    Ok(registries::table
        .find(id)
        .select(RegistryRow::as_select())
        .first(conn)
        .optional()?)
}

/// Another finished registry of the same bank and day (a different file).
pub fn other_for_day(
    conn: &mut DbConnection,
    bank: &str,
    day: chrono::NaiveDate,
    id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(registries::table
        .filter(registries::bank.eq(bank))
        .filter(registries::registry_date.eq(day))
        .filter(registries::id.ne(id))
        .select(registries::id)
        .first(conn)
        .optional()?)
}

/// Inserts the registry's row; `false` if a row with its id is there already
/// (another request inserted it since this one looked).
pub fn insert(conn: &mut DbConnection, row: &RegistryRow) -> Result<bool, StoreError> {
    let n = storage::per_backend!(conn, |c| diesel::insert_into(registries::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

impl RegistryRow {
    /// Lines per outcome.
    pub fn outcome_counts(&self) -> std::collections::BTreeMap<String, i64> {
        serde_json::from_str(&self.counts).unwrap_or_default()
    }
}

/// Takes the registry being imported for the caller's transaction, as the
/// transaction's first statement: `false` if it is not at resume point `from`
/// any more or no longer being imported (another run of the same import got
/// there first). On PostgreSQL the row stays locked until the transaction
/// ends, so a second run waits here, before it writes anything, and then finds
/// the point moved; the [`advance`] that ends the transaction needs no check.
pub fn claim(conn: &mut DbConnection, id: &str, from: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        registries::table
            .find(id)
            .filter(registries::processed_lines.eq(from))
            .filter(registries::status.eq(PROCESSING)),
    )
    .set(registries::processed_lines.eq(from))
    .execute(conn)?;
    Ok(n == 1)
}

/// Adds a chunk's counts and moves the resume point (after [`claim`]).
pub fn advance(
    conn: &mut DbConnection,
    id: &str,
    processed: i64,
    counts: &[(Outcome, i64)],
) -> Result<(), StoreError> {
    let current: String = registries::table
        .find(id)
        .select(registries::counts)
        .first(conn)?;
    let mut all: std::collections::BTreeMap<String, i64> =
        serde_json::from_str(&current).unwrap_or_default();
    for (outcome, n) in counts {
        *all.entry(outcome.as_str().to_string()).or_default() += n;
    }
    diesel::update(registries::table.find(id))
        .set((
            registries::processed_lines.eq(processed),
            registries::counts.eq(serde_json::to_string(&all).unwrap_or_else(|_| "{}".into())),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn finish(
    conn: &mut DbConnection,
    id: &str,
    at: chrono::NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::update(registries::table.find(id))
        .set((
            registries::status.eq(DONE),
            registries::finished_at.eq(Some(at)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn insert_items(conn: &mut DbConnection, items: &[ItemRow]) -> Result<(), StoreError> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};
    if items.is_empty() {
        return Ok(());
    }
    match conn {
        // One statement over arrays: a multi-row VALUES of thousands of
        // parameters costs PostgreSQL more to plan than to run.
        DbConnection::Pg(c) => {
            let text = |f: fn(&ItemRow) -> &str| -> Vec<&str> { items.iter().map(f).collect() };
            let line_no: Vec<i64> = items.iter().map(|i| i.line_no).collect();
            let amount: Vec<i64> = items.iter().map(|i| i.amount_kopecks).collect();
            let posted: Vec<Option<i64>> = items.iter().map(|i| i.posted_kopecks).collect();
            let paid_at: Vec<Option<chrono::NaiveDateTime>> =
                items.iter().map(|i| i.paid_at).collect();
            diesel::sql_query(
                "INSERT INTO registry_items (registry_id, line_no, txn_id, account, outcome, \
                 amount_kopecks, posted_kopecks, paid_at, note) \
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], \
                 $5::text[], $6::bigint[], $7::bigint[], $8::timestamp[], $9::text[])",
            )
            .bind::<Array<Text>, _>(text(|i| &i.registry_id))
            .bind::<Array<BigInt>, _>(&line_no)
            .bind::<Array<Text>, _>(text(|i| &i.txn_id))
            .bind::<Array<Text>, _>(text(|i| &i.account))
            .bind::<Array<Text>, _>(text(|i| &i.outcome))
            .bind::<Array<BigInt>, _>(&amount)
            .bind::<Array<Nullable<BigInt>>, _>(&posted)
            .bind::<Array<Nullable<Timestamp>>, _>(&paid_at)
            .bind::<Array<Text>, _>(text(|i| &i.note))
            .execute(c)?;
        }
        DbConnection::Sqlite(c) => {
            for chunk in items.chunks(500) {
                diesel::insert_into(registry_items::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// An online payment as a registry line sees it.
#[derive(Debug, Clone)]
pub struct OnlinePayment {
    pub kopecks: i64,
    /// The registry that confirmed it: one of another day, or (for a payment
    /// credited from a registry) the registry that credited it.
    pub confirmed_by: Option<String>,
    pub banking_day: chrono::NaiveDate,
}

/// Accepted online payments of `bank` among `txn_ids`.
pub fn posted(
    conn: &mut DbConnection,
    bank: &str,
    txn_ids: &[&str],
) -> Result<std::collections::HashMap<String, OnlinePayment>, StoreError> {
    let rows: Vec<(String, i64, Option<String>, chrono::NaiveDate)> = bank_payments::table
        .filter(bank_payments::bank.eq(bank))
        .filter(bank_payments::txn_id.eq_any(txn_ids))
        .filter(bank_payments::status.eq(super::banking::ACCEPTED))
        .select((
            bank_payments::txn_id,
            bank_payments::amount_kopecks,
            bank_payments::registry_id,
            bank_payments::banking_day,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(t, kopecks, confirmed_by, banking_day)| {
            (
                t,
                OnlinePayment {
                    kopecks,
                    confirmed_by,
                    banking_day,
                },
            )
        })
        .collect())
}

/// Marks online payments of another day than the registry's as confirmed by it
/// (the payments of its own day are confirmed by being in it: nothing is written).
pub fn confirm(
    conn: &mut DbConnection,
    bank: &str,
    registry: &str,
    txn_ids: &[&str],
) -> Result<(), StoreError> {
    if txn_ids.is_empty() {
        return Ok(());
    }
    for chunk in txn_ids.chunks(500) {
        diesel::update(
            bank_payments::table
                .filter(bank_payments::bank.eq(bank))
                .filter(bank_payments::txn_id.eq_any(chunk)),
        )
        .set(bank_payments::registry_id.eq(Some(registry)))
        .execute(conn)?;
    }
    Ok(())
}

/// The accepted online payments of `bank` on `day`.
fn of_day<'a>(
    bank: &'a str,
    day: chrono::NaiveDate,
) -> bank_payments::BoxedQuery<'a, storage::MultiBackend> {
    bank_payments::table
        .filter(bank_payments::bank.eq(bank))
        .filter(bank_payments::banking_day.eq(day))
        .filter(bank_payments::status.eq(super::banking::ACCEPTED))
        .into_boxed()
}

/// The payments of [`of_day`] that no registry of another day confirmed: what
/// a registry of that day must mention. The totals and the pages below read
/// the same set, so the import's shortcut (totals agree, only the index's
/// unnamed ones can be missing) and its page-by-page search cannot disagree.
fn unconfirmed_of_day<'a>(
    bank: &'a str,
    day: chrono::NaiveDate,
) -> bank_payments::BoxedQuery<'a, storage::MultiBackend> {
    of_day(bank, day).filter(bank_payments::registry_id.is_null())
}

/// How many payments [`unconfirmed_of_day`] holds, and their sum in kopecks.
pub fn unconfirmed_of_day_totals(
    conn: &mut DbConnection,
    bank: &str,
    day: chrono::NaiveDate,
) -> Result<(i64, i64), StoreError> {
    use diesel::sql_types::BigInt;
    // SUM of a BIGINT is NUMERIC on PostgreSQL and an integer on SQLite: cast.
    let (n, total): (i64, i64) = unconfirmed_of_day(bank, day)
        .select(diesel::dsl::sql::<(BigInt, BigInt)>(
            "COUNT(*), CAST(COALESCE(SUM(amount_kopecks), 0) AS BIGINT)",
        ))
        .first(conn)?;
    Ok((n, total))
}

/// The payments of [`unconfirmed_of_day`] in transaction id order with an id
/// after `after` and up to `up_to` (either end open where `None`), at most
/// `limit` of them (all where `None`): (txn id, account, kopecks, paid at).
pub fn unconfirmed_of_day_page(
    conn: &mut DbConnection,
    bank: &str,
    day: chrono::NaiveDate,
    (after, up_to): (Option<&str>, Option<&str>),
    limit: Option<i64>,
) -> Result<Vec<(String, String, i64, chrono::NaiveDateTime)>, StoreError> {
    let mut query = unconfirmed_of_day(bank, day);
    if let Some(after) = after {
        query = query.filter(bank_payments::txn_id.gt(after));
    }
    if let Some(up_to) = up_to {
        query = query.filter(bank_payments::txn_id.le(up_to));
    }
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    Ok(query
        .order(bank_payments::txn_id)
        .select((
            bank_payments::txn_id,
            bank_payments::account,
            bank_payments::amount_kopecks,
            bank_payments::txn_at,
        ))
        .load(conn)?)
}

/// A page of [`of_day`], confirmed or not, in transaction id order after
/// `after`: (txn id, kopecks, the registry that confirmed it).
pub fn of_day_page(
    conn: &mut DbConnection,
    bank: &str,
    day: chrono::NaiveDate,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, i64, Option<String>)>, StoreError> {
    Ok(of_day(bank, day)
        .filter(bank_payments::txn_id.gt(after))
        .order(bank_payments::txn_id)
        .limit(limit)
        .select((
            bank_payments::txn_id,
            bank_payments::amount_kopecks,
            bank_payments::registry_id,
        ))
        .load(conn)?)
}

/// Personal, active accounts among `ids`.
pub fn existing_accounts(
    conn: &mut DbConnection,
    ids: &[&str],
) -> Result<std::collections::HashSet<String>, StoreError> {
    use super::accounts;
    Ok(accounts::table
        .filter(accounts::id.eq_any(ids))
        .filter(accounts::kind.eq("personal"))
        .filter(accounts::active.eq(true))
        .select(accounts::id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// A registry's items, optionally only those of accounts under `organizers`.
pub fn items(
    conn: &mut DbConnection,
    registry: &str,
    organizers: Option<&[String]>,
) -> Result<Vec<ItemRow>, StoreError> {
    use super::accounts;
    let mut query = registry_items::table
        .filter(registry_items::registry_id.eq(registry))
        .order((registry_items::line_no, registry_items::id))
        .select(ItemRow::as_select())
        .into_boxed();
    if let Some(orgs) = organizers {
        let their_accounts = accounts::table
            .filter(accounts::organizer.eq_any(orgs.to_vec()))
            .select(accounts::id);
        query = query.filter(registry_items::account.eq_any(their_accounts));
    }
    Ok(query.load(conn)?)
}

diesel::table! {
    registry_uploads (upload) {
        upload -> Text,
        bank -> Text,
        sender -> Text,
        format -> Text,
        registry_date -> Nullable<Date>,
        file_name -> Text,
        size -> BigInt,
        sha256 -> Text,
        chunks -> Integer,
        status -> Text,
        registry_id -> Nullable<Text>,
        already_imported -> Bool,
        error_code -> Nullable<Text>,
        error_text -> Nullable<Text>,
        received_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

/// `registry_uploads.status`.
pub const RECEIVED: &str = "received";
pub const IMPORTED: &str = "imported";
pub const REFUSED: &str = "refused";

/// A registry delivered through the gateway, and how it fared.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = registry_uploads)]
pub struct UploadRow {
    pub upload: String,
    pub bank: String,
    pub sender: String,
    pub format: String,
    pub registry_date: Option<chrono::NaiveDate>,
    pub file_name: String,
    pub size: i64,
    pub sha256: String,
    pub chunks: i32,
    pub status: String,
    pub registry_id: Option<String>,
    pub already_imported: bool,
    pub error_code: Option<String>,
    pub error_text: Option<String>,
    pub received_at: chrono::NaiveDateTime,
    pub finished_at: Option<chrono::NaiveDateTime>,
}

/// Records a delivered registry; a delivery seen before changes nothing.
pub fn record_upload(conn: &mut DbConnection, row: &UploadRow) -> Result<bool, StoreError> {
    let n = storage::per_backend!(conn, |c| diesel::insert_into(registry_uploads::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

pub fn find_upload(conn: &mut DbConnection, upload: &str) -> Result<Option<UploadRow>, StoreError> {
    Ok(registry_uploads::table
        .find(upload)
        .select(UploadRow::as_select())
        .first(conn)
        .optional()?)
}

/// The deliveries still to import, oldest first.
pub fn received_uploads(conn: &mut DbConnection, limit: i64) -> Result<Vec<UploadRow>, StoreError> {
    Ok(registry_uploads::table
        .filter(registry_uploads::status.eq(RECEIVED))
        .order((registry_uploads::received_at, registry_uploads::upload))
        .limit(limit)
        .select(UploadRow::as_select())
        .load(conn)?)
}

/// How a delivery ended: imported as `registry_id`, or refused with an error.
pub struct UploadEnd<'a> {
    pub status: &'a str,
    pub registry_id: Option<&'a str>,
    pub already_imported: bool,
    pub error: Option<(&'a str, &'a str)>,
    pub at: chrono::NaiveDateTime,
}

/// Ends a delivery that is still `received` (a second end changes nothing).
pub fn end_upload(
    conn: &mut DbConnection,
    upload: &str,
    end: &UploadEnd<'_>,
) -> Result<(), StoreError> {
    diesel::update(
        registry_uploads::table
            .find(upload)
            .filter(registry_uploads::status.eq(RECEIVED)),
    )
    .set((
        registry_uploads::status.eq(end.status),
        registry_uploads::registry_id.eq(end.registry_id),
        registry_uploads::already_imported.eq(end.already_imported),
        registry_uploads::error_code.eq(end.error.map(|e| e.0)),
        registry_uploads::error_text.eq(end.error.map(|e| e.1)),
        registry_uploads::finished_at.eq(Some(end.at)),
    ))
    .execute(conn)?;
    Ok(())
}

/// `limit` items of a registry's report from `offset`, in report order.
pub fn items_page(
    conn: &mut DbConnection,
    registry: &str,
    offset: i64,
    limit: i64,
) -> Result<Vec<ItemRow>, StoreError> {
    Ok(registry_items::table
        .filter(registry_items::registry_id.eq(registry))
        .order((registry_items::line_no, registry_items::id))
        .offset(offset)
        .limit(limit)
        .select(ItemRow::as_select())
        .load(conn)?)
}

/// How many items a registry's report has.
pub fn item_count(conn: &mut DbConnection, registry: &str) -> Result<i64, StoreError> {
    Ok(registry_items::table
        .filter(registry_items::registry_id.eq(registry))
        .count()
        .get_result(conn)?)
}
