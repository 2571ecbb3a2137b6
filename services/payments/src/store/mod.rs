//! Diesel schema and queries of the payments service.

use diesel::prelude::*;
use primitives::Money;
use storage::{DbConnection, MigrationSet, StorageError};

use crate::domain::ledger::{AccountKind, Movement, Posting};

diesel::table! {
    accounts (id) {
        id -> Text,
        kind -> Text,
        purpose -> Text,
        student_name -> Text,
        school -> Text,
        class_name -> Text,
        municipality -> Text,
        organizer -> Text,
        active -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    movements (id) {
        id -> Text,
        idempotency_key -> Text,
        kind -> Text,
        reason -> Text,
        author -> Text,
        reverses -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    postings (id) {
        id -> BigInt,
        movement_id -> Text,
        account_id -> Text,
        amount_kopecks -> BigInt,
    }
}

diesel::table! {
    balances (account_id) {
        account_id -> Text,
        balance_kopecks -> BigInt,
    }
}

diesel::joinable!(postings -> movements (movement_id));
diesel::allow_tables_to_appear_in_same_query!(accounts, movements, postings, balances);

const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/sqlite");

pub static MIGRATIONS: MigrationSet = MigrationSet {
    name: "payments",
    postgres: || PG,
    sqlite: || SQLITE,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("account {0} does not exist")]
    UnknownAccount(String),
    #[error("account {0} exists already")]
    AccountExists(String),
    #[error("movement {0} does not exist")]
    UnknownMovement(String),
    #[error("movement {0} has been reversed already")]
    AlreadyReversed(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        StoreError::Storage(StorageError::from(e))
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = accounts)]
pub struct AccountRow {
    pub id: String,
    pub kind: String,
    pub purpose: String,
    pub student_name: String,
    pub school: String,
    pub class_name: String,
    pub municipality: String,
    pub organizer: String,
    pub active: i32,
    pub created_at: chrono::NaiveDateTime,
}

impl AccountRow {
    pub fn kind(&self) -> Option<AccountKind> {
        AccountKind::parse(&self.kind)
    }
}

/// A new account to open.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = accounts)]
pub struct NewAccount {
    pub id: String,
    pub kind: String,
    pub purpose: String,
    pub student_name: String,
    pub school: String,
    pub class_name: String,
    pub municipality: String,
    pub organizer: String,
    pub active: i32,
    pub created_at: chrono::NaiveDateTime,
}

pub fn open_account(conn: &mut DbConnection, account: &NewAccount) -> Result<(), StoreError> {
    if find_account(conn, &account.id)?.is_some() {
        return Err(StoreError::AccountExists(account.id.clone()));
    }
    diesel::insert_into(accounts::table)
        .values(account)
        .execute(conn)?;
    diesel::insert_into(balances::table)
        .values((
            balances::account_id.eq(&account.id),
            balances::balance_kopecks.eq(0_i64),
        ))
        .execute(conn)?;
    Ok(())
}

/// Moves a personal account to the school, class and organizer its student has
/// now (the meals service owns those facts).
pub fn update_account_owner(
    conn: &mut DbConnection,
    id: &str,
    student_name: &str,
    school: &str,
    class_name: &str,
    organizer: &str,
) -> Result<(), StoreError> {
    diesel::update(accounts::table.find(id))
        .set((
            accounts::student_name.eq(student_name),
            accounts::school.eq(school),
            accounts::class_name.eq(class_name),
            accounts::organizer.eq(organizer),
        ))
        .execute(conn)?;
    Ok(())
}

/// The ledger account ids of the system counterparties, one per owner.
pub mod system {
    /// What parents paid towards an organizer's meals.
    pub fn settlement(organizer: &str) -> String {
        format!("settlement:{organizer}")
    }
    /// Money received through a bank and not yet settled.
    pub fn clearing(bank: &str) -> String {
        format!("clearing:{bank}")
    }
    /// The budget's share (ПЧВР reimbursement) in a municipality.
    pub fn budget(municipality: &str) -> String {
        format!("budget:{municipality}")
    }
}

/// Opens a system account (settlement, clearing, budget) if it does not exist.
pub fn ensure_system_account(
    conn: &mut DbConnection,
    id: &str,
    kind: AccountKind,
) -> Result<(), StoreError> {
    if find_account(conn, id)?.is_some() {
        return Ok(());
    }
    open_account(
        conn,
        &NewAccount {
            id: id.to_string(),
            kind: kind.as_str().to_string(),
            purpose: "system".into(),
            student_name: String::new(),
            school: String::new(),
            class_name: String::new(),
            municipality: String::new(),
            organizer: String::new(),
            active: 1,
            created_at: storage::now_naive(),
        },
    )
}

pub fn find_account(conn: &mut DbConnection, id: &str) -> Result<Option<AccountRow>, StoreError> {
    Ok(accounts::table
        .find(id)
        .select(AccountRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn balance(conn: &mut DbConnection, account: &str) -> Result<Money, StoreError> {
    let kopecks: Option<i64> = balances::table
        .find(account)
        .select(balances::balance_kopecks)
        .first(conn)
        .optional()?;
    kopecks
        .map(Money::from_kopecks)
        .ok_or_else(|| StoreError::UnknownAccount(account.to_string()))
}

/// What posting a movement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub movement_id: String,
    /// The key had been used: nothing was posted now, this is the first result.
    pub duplicate: bool,
}

/// Posts a balanced movement once per `key`: postings, balances, and (for
/// personal accounts) a `BalanceChanged` event in the outbox, all in the caller's
/// transaction.
/// `at` is the business time of the movement, from the service's clock.
pub fn post(
    conn: &mut DbConnection,
    movement: &Movement,
    key: &str,
    reverses: Option<&str>,
    at: chrono::NaiveDateTime,
) -> Result<Posted, StoreError> {
    let existing: Option<String> = movements::table
        .filter(movements::idempotency_key.eq(key))
        .select(movements::id)
        .first(conn)
        .optional()?;
    if let Some(movement_id) = existing {
        return Ok(Posted {
            movement_id,
            duplicate: true,
        });
    }
    for p in &movement.postings {
        if find_account(conn, &p.account)?.is_none() {
            return Err(StoreError::UnknownAccount(p.account.clone()));
        }
    }
    let movement_id = uuid::Uuid::now_v7().to_string();
    diesel::insert_into(movements::table)
        .values((
            movements::id.eq(&movement_id),
            movements::idempotency_key.eq(key),
            movements::kind.eq(movement.kind.as_str()),
            movements::reason.eq(&movement.reason),
            movements::author.eq(&movement.author),
            movements::reverses.eq(reverses),
            movements::created_at.eq(at),
        ))
        .execute(conn)?;
    let mut per_account: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for p in &movement.postings {
        diesel::insert_into(postings::table)
            .values((
                postings::movement_id.eq(&movement_id),
                postings::account_id.eq(&p.account),
                postings::amount_kopecks.eq(p.amount.kopecks()),
            ))
            .execute(conn)?;
        *per_account.entry(p.account.as_str()).or_default() += p.amount.kopecks();
    }
    // Increments in the database, not read-modify-write: concurrent movements on
    // one account serialise on its row lock and lose nothing. The rows are locked
    // in account order, so two opposite transfers cannot deadlock.
    for (account, delta) in per_account {
        diesel::update(balances::table.find(account))
            .set(balances::balance_kopecks.eq(balances::balance_kopecks + delta))
            .execute(conn)?;
    }
    for p in &movement.postings {
        let account = find_account(conn, &p.account)?;
        if account.and_then(|a| a.kind()) == Some(AccountKind::Personal) {
            let event = contracts::payments::BalanceChanged {
                account: p.account.clone(),
                balance: balance(conn, &p.account)?,
                movement_id: movement_id.clone(),
            };
            let envelope = bus::Envelope::json(
                <contracts::payments::BalanceChanged as contracts::Contract>::TOPIC,
                <contracts::payments::BalanceChanged as contracts::Contract>::KIND,
                &event,
            )
            .map_err(|e| StoreError::Storage(StorageError::Config(e.to_string())))?;
            bus::store::enqueue(conn, &envelope)?;
        }
    }
    Ok(Posted {
        movement_id,
        duplicate: false,
    })
}

/// Locks `account`'s balance row for a debit of `amount` and says whether the
/// balance may go that low: `balance − amount ≥ −credit_limit`. The row stays
/// locked until the transaction ends, so concurrent debits of one account are
/// judged one after the other, each on the balance the previous one left.
pub fn lock_for_debit(
    conn: &mut DbConnection,
    account: &str,
    amount: Money,
    credit_limit: Money,
) -> Result<bool, StoreError> {
    let floor = -(credit_limit.kopecks());
    let n = diesel::update(
        balances::table
            .filter(balances::account_id.eq(account))
            .filter((balances::balance_kopecks - amount.kopecks()).ge(floor)),
    )
    .set(balances::balance_kopecks.eq(balances::balance_kopecks))
    .execute(conn)?;
    Ok(n == 1)
}

/// The movement posted under `key`, if any.
pub fn movement_by_key(conn: &mut DbConnection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(movements::table
        .filter(movements::idempotency_key.eq(key))
        .select(movements::id)
        .first(conn)
        .optional()?)
}

pub fn postings_of(conn: &mut DbConnection, movement_id: &str) -> Result<Vec<Posting>, StoreError> {
    let rows: Vec<(String, i64)> = postings::table
        .filter(postings::movement_id.eq(movement_id))
        .order(postings::id)
        .select((postings::account_id, postings::amount_kopecks))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(account, k)| Posting {
            account,
            amount: Money::from_kopecks(k),
        })
        .collect())
}

pub fn is_reversed(conn: &mut DbConnection, movement_id: &str) -> Result<bool, StoreError> {
    let n: i64 = movements::table
        .filter(movements::reverses.eq(movement_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// One line of an account's history.
#[derive(Debug, Clone, Queryable)]
pub struct HistoryLine {
    pub movement_id: String,
    pub kind: String,
    pub reason: String,
    pub author: String,
    pub reverses: Option<String>,
    pub created_at: chrono::NaiveDateTime,
    pub amount_kopecks: i64,
}

/// An account's postings, newest first, `per_page` from `offset`.
pub fn history(
    conn: &mut DbConnection,
    account: &str,
    offset: i64,
    per_page: i64,
) -> Result<(Vec<HistoryLine>, i64), StoreError> {
    let total: i64 = postings::table
        .filter(postings::account_id.eq(account))
        .count()
        .get_result(conn)?;
    let lines = postings::table
        .inner_join(movements::table)
        .filter(postings::account_id.eq(account))
        .order(postings::id.desc())
        .offset(offset)
        .limit(per_page)
        .select((
            movements::id,
            movements::kind,
            movements::reason,
            movements::author,
            movements::reverses,
            movements::created_at,
            postings::amount_kopecks,
        ))
        .load(conn)?;
    Ok((lines, total))
}

/// Ledger invariants: every movement sums to zero, and every balance equals the
/// sum of its account's postings. Returns the violations found.
pub fn check_invariants(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let sums: Vec<(String, i64)> = postings::table
        .select((postings::movement_id, postings::amount_kopecks))
        .load(conn)?;
    let mut per_movement: std::collections::BTreeMap<String, i64> = Default::default();
    let mut per_account_from_postings: std::collections::BTreeMap<String, i64> = Default::default();
    let accounts_of: Vec<(String, i64)> = postings::table
        .select((postings::account_id, postings::amount_kopecks))
        .load(conn)?;
    for (m, k) in sums {
        *per_movement.entry(m).or_default() += k;
    }
    for (a, k) in accounts_of {
        *per_account_from_postings.entry(a).or_default() += k;
    }
    for (m, s) in per_movement {
        if s != 0 {
            problems.push(format!("movement {m} sums to {s} kopecks"));
        }
    }
    let stored: Vec<(String, i64)> = balances::table
        .select((balances::account_id, balances::balance_kopecks))
        .load(conn)?;
    for (a, b) in stored {
        let derived = per_account_from_postings.get(&a).copied().unwrap_or(0);
        if derived != b {
            problems.push(format!(
                "account {a}: balance {b} but postings sum to {derived}"
            ));
        }
    }
    Ok(problems)
}

pub mod acquiring;
pub mod banking;
pub mod charges;
pub mod registry;
pub mod reports;
