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
        active -> Bool,
        created_at -> Timestamp,
        class_id -> Text,
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
    /// A stored secret does not open (see `platform::secrets`).
    #[error(transparent)]
    Secret(#[from] platform::secrets::SecretError),
    /// A movement the ledger refuses (unbalanced, no reason): a bug of the caller.
    #[error("the ledger refused the movement: {0}")]
    Ledger(#[from] crate::domain::ledger::LedgerError),
    /// An event could not be put into the outbox.
    #[error("could not enqueue an event: {0}")]
    Bus(#[from] bus::BusError),
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
    pub active: bool,
    pub created_at: chrono::NaiveDateTime,
    /// The class's id in the meals service (a class teacher's scope); empty
    /// for system accounts.
    pub class_id: String,
}

impl AccountRow {
    pub fn kind(&self) -> Option<AccountKind> {
        AccountKind::parse(&self.kind)
    }

    /// Whose the account is, for the access rules.
    pub fn scope(&self) -> crate::domain::access::AccountScope<'_> {
        crate::domain::access::AccountScope {
            id: &self.id,
            organizer: &self.organizer,
            school: &self.school,
            class_id: &self.class_id,
            municipality: &self.municipality,
        }
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
    pub active: bool,
    pub created_at: chrono::NaiveDateTime,
    pub class_id: String,
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
    class_id: &str,
    class_name: &str,
    organizer: &str,
) -> Result<(), StoreError> {
    diesel::update(accounts::table.find(id))
        .set((
            accounts::student_name.eq(student_name),
            accounts::school.eq(school),
            accounts::class_id.eq(class_id),
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
/// Two transactions opening the same one at once both succeed: the second
/// waits for the first and then finds the row (no unique violation to retry).
pub fn ensure_system_account(
    conn: &mut DbConnection,
    id: &str,
    kind: AccountKind,
    at: chrono::NaiveDateTime,
) -> Result<(), StoreError> {
    if find_account(conn, id)?.is_some() {
        return Ok(());
    }
    let account = NewAccount {
        id: id.to_string(),
        kind: kind.as_str().to_string(),
        purpose: "system".into(),
        student_name: String::new(),
        school: String::new(),
        class_name: String::new(),
        municipality: String::new(),
        organizer: String::new(),
        active: true,
        created_at: at,
        class_id: String::new(),
    };
    storage::per_backend!(conn, |c| {
        diesel::insert_into(accounts::table)
            .values(&account)
            .on_conflict_do_nothing()
            .execute(c)?;
        diesel::insert_into(balances::table)
            .values((
                balances::account_id.eq(id),
                balances::balance_kopecks.eq(0_i64),
            ))
            .on_conflict_do_nothing()
            .execute(c)
    })?;
    Ok(())
}

pub fn find_account(conn: &mut DbConnection, id: &str) -> Result<Option<AccountRow>, StoreError> {
    Ok(accounts::table
        .find(id)
        .select(AccountRow::as_select())
        .first(conn)
        .optional()?)
}

/// The accounts among `ids` that exist, by id.
pub fn find_accounts(
    conn: &mut DbConnection,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, AccountRow>, StoreError> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IN_LIST) {
        let rows: Vec<AccountRow> = accounts::table
            .filter(accounts::id.eq_any(chunk))
            .select(AccountRow::as_select())
            .load(conn)?;
        found.extend(rows.into_iter().map(|a| (a.id.clone(), a)));
    }
    Ok(found)
}

/// The balances of those of `ids` that exist, by account.
pub fn balances_of(
    conn: &mut DbConnection,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, Money>, StoreError> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IN_LIST) {
        let rows: Vec<(String, i64)> = balances::table
            .filter(balances::account_id.eq_any(chunk))
            .select((balances::account_id, balances::balance_kopecks))
            .load(conn)?;
        found.extend(rows.into_iter().map(|(a, k)| (a, Money::from_kopecks(k))));
    }
    Ok(found)
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
    /// The balance of each account the movement touched, right after it (in
    /// posting order within its transaction); empty for a duplicate.
    pub balances_after: Vec<(String, Money)>,
}

/// One movement to post under its idempotency key.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub movement: &'a Movement,
    pub key: &'a str,
    /// The movement this one reverses.
    pub reverses: Option<&'a str>,
    /// The business time of the movement, from the service's clock.
    pub at: chrono::NaiveDateTime,
    /// The request the movement comes from, whose trace its events carry (a
    /// group commit posts other requests' movements); `None`: the current span.
    pub trace: Option<&'a tracing::Span>,
}

/// Bind parameters per IN list; both back ends take far more, this keeps
/// statements a size the planner handles quickly.
const IN_LIST: usize = 1000;

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
    let entry = Entry {
        movement,
        key,
        reverses,
        at,
        trace: None,
    };
    post_many(conn, &[entry])?
        .pop()
        .unwrap_or_else(|| Err(StoreError::UnknownMovement(key.to_string())))
}

/// Posts several movements in the caller's transaction with a fixed number of
/// statements, whatever their count: one look-up of the keys, one of the
/// accounts, one insert each of movements, postings and outbox rows, and the
/// balance increments (on PostgreSQL one locking select in account order and one
/// update). The answer has one result per entry, in order: a movement naming an
/// unknown account is refused alone (nothing of it is written); a key used
/// before, or earlier in `entries`, answers the first movement as a duplicate.
/// The outer error is a database failure: the caller's transaction must roll
/// back.
pub fn post_many(
    conn: &mut DbConnection,
    entries: &[Entry<'_>],
) -> Result<Vec<Result<Posted, StoreError>>, StoreError> {
    use std::collections::{BTreeMap, HashMap};

    let mut keys: Vec<&str> = entries.iter().map(|e| e.key).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut known_keys = movements_by_key(conn, &keys)?;
    let mut account_ids: Vec<&str> = entries
        .iter()
        .flat_map(|e| e.movement.postings.iter().map(|p| p.account.as_str()))
        .collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    let mut kinds: HashMap<String, String> = HashMap::new();
    for chunk in account_ids.chunks(IN_LIST) {
        let rows: Vec<(String, String)> = accounts::table
            .filter(accounts::id.eq_any(chunk))
            .select((accounts::id, accounts::kind))
            .load(conn)?;
        kinds.extend(rows);
    }

    let mut results: Vec<Result<Posted, StoreError>> = Vec::with_capacity(entries.len());
    // Entries posted now: their index in `results` and in `entries`.
    let mut fresh: Vec<usize> = Vec::new();
    let mut movement_rows = Vec::new();
    let mut posting_rows = Vec::new();
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    for entry in entries {
        if let Some(id) = known_keys.get(entry.key) {
            results.push(Ok(Posted {
                movement_id: id.clone(),
                duplicate: true,
                balances_after: Vec::new(),
            }));
            continue;
        }
        if let Some(missing) = entry
            .movement
            .postings
            .iter()
            .find(|p| !kinds.contains_key(&p.account))
        {
            results.push(Err(StoreError::UnknownAccount(missing.account.clone())));
            continue;
        }
        let movement_id = uuid::Uuid::now_v7().to_string();
        known_keys.insert(entry.key.to_string(), movement_id.clone());
        movement_rows.push((movement_id.clone(), entry));
        for p in &entry.movement.postings {
            posting_rows.push((movement_id.clone(), p.account.as_str(), p.amount.kopecks()));
            *totals.entry(p.account.as_str()).or_default() += p.amount.kopecks();
        }
        fresh.push(results.len());
        results.push(Ok(Posted {
            movement_id,
            duplicate: false,
            balances_after: Vec::new(),
        }));
    }
    if fresh.is_empty() {
        return Ok(results);
    }
    insert_movements(conn, &movement_rows)?;
    insert_postings(conn, &posting_rows)?;
    // A zero net is updated too: its balance is read back for the answers.
    let totals: Vec<(&str, i64)> = totals.into_iter().collect();
    let finals = add_to_balances(conn, &totals)?;

    // Walk the movements in order from the balances before the batch, so each
    // answer and event carries the balance right after its own movement.
    let mut running: HashMap<&str, i64> = totals
        .iter()
        .map(|(a, d)| (*a, finals.get(*a).copied().unwrap_or(0) - d))
        .collect();
    let mut events = Vec::new();
    for &i in &fresh {
        let entry = &entries[i];
        let mut touched: Vec<&str> = Vec::new();
        for p in &entry.movement.postings {
            let balance = running.entry(p.account.as_str()).or_insert(0);
            *balance += p.amount.kopecks();
            if !touched.contains(&p.account.as_str()) {
                touched.push(p.account.as_str());
            }
        }
        let Ok(posted) = &mut results[i] else {
            continue;
        };
        for account in touched {
            let balance = Money::from_kopecks(running.get(account).copied().unwrap_or(0));
            posted.balances_after.push((account.to_string(), balance));
            if kinds.get(account).and_then(|k| AccountKind::parse(k)) == Some(AccountKind::Personal)
            {
                let event = contracts::payments::BalanceChanged {
                    account: account.to_string(),
                    balance,
                    movement_id: posted.movement_id.clone(),
                };
                let envelope = || crate::events::balance_changed(&event);
                let envelope = match entry.trace {
                    Some(span) => span.in_scope(envelope),
                    None => envelope(),
                }?;
                events.push(envelope);
            }
        }
    }
    bus::store::enqueue_all(conn, &events)?;
    Ok(results)
}

/// Inserts movements (their ids and entries) as [`insert_postings`] does postings.
fn insert_movements(
    conn: &mut DbConnection,
    rows: &[(String, &Entry<'_>)],
) -> Result<(), StoreError> {
    use diesel::sql_types::{Array, Nullable, Text, Timestamp};
    match conn {
        DbConnection::Pg(c) => {
            let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
            let keys: Vec<&str> = rows.iter().map(|r| r.1.key).collect();
            let kinds: Vec<&str> = rows.iter().map(|r| r.1.movement.kind.as_str()).collect();
            let reasons: Vec<&str> = rows.iter().map(|r| r.1.movement.reason.as_str()).collect();
            let authors: Vec<&str> = rows.iter().map(|r| r.1.movement.author.as_str()).collect();
            let reverses: Vec<Option<&str>> = rows.iter().map(|r| r.1.reverses).collect();
            let at: Vec<chrono::NaiveDateTime> = rows.iter().map(|r| r.1.at).collect();
            diesel::sql_query(
                "INSERT INTO movements (id, idempotency_key, kind, reason, author, reverses, \
                 created_at) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], \
                 $4::text[], $5::text[], $6::text[], $7::timestamp[])",
            )
            .bind::<Array<Text>, _>(&ids)
            .bind::<Array<Text>, _>(&keys)
            .bind::<Array<Text>, _>(&kinds)
            .bind::<Array<Text>, _>(&reasons)
            .bind::<Array<Text>, _>(&authors)
            .bind::<Array<Nullable<Text>>, _>(&reverses)
            .bind::<Array<Timestamp>, _>(&at)
            .execute(c)?;
        }
        DbConnection::Sqlite(c) => {
            let values: Vec<_> = rows
                .iter()
                .map(|(id, entry)| {
                    (
                        movements::id.eq(id.as_str()),
                        movements::idempotency_key.eq(entry.key),
                        movements::kind.eq(entry.movement.kind.as_str()),
                        movements::reason.eq(entry.movement.reason.as_str()),
                        movements::author.eq(entry.movement.author.as_str()),
                        movements::reverses.eq(entry.reverses),
                        movements::created_at.eq(entry.at),
                    )
                })
                .collect();
            for chunk in values.chunks(500) {
                diesel::insert_into(movements::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// Inserts postings: on PostgreSQL as one statement over arrays (a multi-row
/// `VALUES` of thousands of parameters costs more to plan than to run); on
/// SQLite, where a statement costs no round trip, in multi-row inserts.
fn insert_postings(
    conn: &mut DbConnection,
    rows: &[(String, &str, i64)],
) -> Result<(), StoreError> {
    use diesel::sql_types::{Array, BigInt, Text};
    match conn {
        DbConnection::Pg(c) => {
            let movement_ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
            let account_ids: Vec<&str> = rows.iter().map(|r| r.1).collect();
            let amounts: Vec<i64> = rows.iter().map(|r| r.2).collect();
            diesel::sql_query(
                "INSERT INTO postings (movement_id, account_id, amount_kopecks) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])",
            )
            .bind::<Array<Text>, _>(&movement_ids)
            .bind::<Array<Text>, _>(&account_ids)
            .bind::<Array<BigInt>, _>(&amounts)
            .execute(c)?;
        }
        DbConnection::Sqlite(c) => {
            let values: Vec<_> = rows
                .iter()
                .map(|(movement, account, amount)| {
                    (
                        postings::movement_id.eq(movement.as_str()),
                        postings::account_id.eq(*account),
                        postings::amount_kopecks.eq(*amount),
                    )
                })
                .collect();
            for chunk in values.chunks(1000) {
                diesel::insert_into(postings::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// Adds each delta to its account's balance and answers the new balances.
/// Increments in the database, not read-modify-write: concurrent movements on
/// one account serialise on its row lock and lose nothing. The rows are locked
/// in account order (`deltas` is sorted by account), so two transactions that
/// touch the same accounts cannot deadlock.
fn add_to_balances(
    conn: &mut DbConnection,
    deltas: &[(&str, i64)],
) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    use diesel::sql_types::{Array, BigInt, Text};

    #[derive(QueryableByName)]
    struct NewBalance {
        #[diesel(sql_type = Text)]
        account_id: String,
        #[diesel(sql_type = BigInt)]
        balance_kopecks: i64,
    }

    let mut finals = std::collections::HashMap::with_capacity(deltas.len());
    match conn {
        DbConnection::Pg(c) => {
            let ids: Vec<&str> = deltas.iter().map(|(a, _)| *a).collect();
            let amounts: Vec<i64> = deltas.iter().map(|(_, d)| *d).collect();
            // One statement locks in order; the update then finds its rows locked.
            lock_balances_pg(c, &ids)?;
            let rows: Vec<NewBalance> = diesel::sql_query(
                "UPDATE balances AS b SET balance_kopecks = b.balance_kopecks + d.delta \
                 FROM unnest($1::text[], $2::bigint[]) AS d(account_id, delta) \
                 WHERE b.account_id = d.account_id \
                 RETURNING b.account_id, b.balance_kopecks",
            )
            .bind::<Array<Text>, _>(&ids)
            .bind::<Array<BigInt>, _>(&amounts)
            .load(c)?;
            finals.extend(rows.into_iter().map(|r| (r.account_id, r.balance_kopecks)));
        }
        // SQLite has one writer at a time and no round trips: a statement per
        // account costs nothing worth saving.
        DbConnection::Sqlite(c) => {
            for (account, delta) in deltas {
                let row: NewBalance = diesel::sql_query(
                    "UPDATE balances SET balance_kopecks = balance_kopecks + ? \
                     WHERE account_id = ? RETURNING account_id, balance_kopecks",
                )
                .bind::<BigInt, _>(*delta)
                .bind::<Text, _>(*account)
                .get_result(c)?;
                finals.insert(row.account_id, row.balance_kopecks);
            }
        }
    }
    if let Some((missing, _)) = deltas.iter().find(|(a, _)| !finals.contains_key(*a)) {
        return Err(StoreError::UnknownAccount((*missing).to_string()));
    }
    Ok(finals)
}

/// Locks the balance rows of `accounts` until the transaction ends, all in one
/// statement in account order (the order every posting takes them in), so a
/// transaction that takes its rows here first cannot be one side of a deadlock
/// over them. SQLite has one writer at a time: nothing to lock.
pub fn lock_balances(conn: &mut DbConnection, accounts: &[&str]) -> Result<(), StoreError> {
    match conn {
        DbConnection::Pg(c) => {
            let mut ids = accounts.to_vec();
            ids.sort_unstable();
            ids.dedup();
            lock_balances_pg(c, &ids)
        }
        DbConnection::Sqlite(_) => Ok(()),
    }
}

fn lock_balances_pg(c: &mut diesel::PgConnection, ids: &[&str]) -> Result<(), StoreError> {
    diesel::sql_query(
        "SELECT account_id FROM balances WHERE account_id = ANY($1) \
         ORDER BY account_id FOR UPDATE",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(ids)
    .execute(c)?;
    Ok(())
}

/// Which of `keys` have a movement posted under them.
pub fn keys_present(
    conn: &mut DbConnection,
    keys: &[String],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    Ok(movements_by_key(conn, &keys)?.into_keys().collect())
}

/// The movements posted under `keys`: key → movement id.
/// The movement id posted under each of `keys` that has one.
pub fn movements_by_key(
    conn: &mut DbConnection,
    keys: &[&str],
) -> Result<std::collections::HashMap<String, String>, StoreError> {
    #[derive(QueryableByName)]
    struct KeyRow {
        #[diesel(sql_type = diesel::sql_types::Text)]
        idempotency_key: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let mut found = std::collections::HashMap::new();
    for chunk in keys.chunks(IN_LIST) {
        let rows: Vec<KeyRow> = match &mut *conn {
            // Not a cached prepared statement: its generic plan, made while
            // `movements` was small, kept scanning the whole table as it grew.
            // An unnamed statement is planned for the table it finds.
            DbConnection::Pg(c) => diesel::sql_query(
                "SELECT idempotency_key, id FROM movements WHERE idempotency_key = ANY($1)",
            )
            .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(chunk)
            .load(c)?,
            DbConnection::Sqlite(c) => movements::table
                .filter(movements::idempotency_key.eq_any(chunk))
                .select((movements::idempotency_key, movements::id))
                .load::<(String, String)>(c)?
                .into_iter()
                .map(|(idempotency_key, id)| KeyRow {
                    idempotency_key,
                    id,
                })
                .collect(),
        };
        found.extend(rows.into_iter().map(|r| (r.idempotency_key, r.id)));
    }
    Ok(found)
}

/// The movement posted under `key`, if any.
pub fn movement_by_key(conn: &mut DbConnection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(movements_by_key(conn, &[key])?.remove(key))
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
pub mod group_commit;
pub mod registry;
pub mod reports;
