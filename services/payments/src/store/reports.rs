//! Read-only aggregates for the reports. Raw SQL where diesel's DSL would need
//! `NUMERIC` sums, which the multi-backend connection does not carry; `$n`
//! placeholders in order of first use bind positionally on both back ends.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use storage::DbConnection;

use super::{accounts, balances, StoreError};

diesel::joinable!(balances -> accounts (account_id));

/// Which personal accounts a report covers; empty lists mean "no restriction".
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub organizers: Vec<String>,
    pub schools: Vec<String>,
    pub municipalities: Vec<String>,
    pub school: Option<String>,
    pub class_name: Option<String>,
}

#[derive(Debug, Clone, Queryable)]
pub struct BalanceLine {
    pub account: String,
    pub student_name: String,
    pub school: String,
    pub class_name: String,
    pub organizer: String,
    pub municipality: String,
    pub balance_kopecks: i64,
}

/// Personal accounts with balances, by school, class and name.
pub fn balances(
    conn: &mut DbConnection,
    filter: &Filter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<BalanceLine>, i64), StoreError> {
    let build = || {
        let mut q = accounts::table
            .inner_join(balances::table)
            .filter(accounts::kind.eq("personal"))
            .into_boxed();
        if !filter.organizers.is_empty() {
            q = q.filter(accounts::organizer.eq_any(filter.organizers.clone()));
        }
        if !filter.schools.is_empty() {
            q = q.filter(accounts::school.eq_any(filter.schools.clone()));
        }
        if !filter.municipalities.is_empty() {
            q = q.filter(accounts::municipality.eq_any(filter.municipalities.clone()));
        }
        if let Some(s) = &filter.school {
            q = q.filter(accounts::school.eq(s.clone()));
        }
        if let Some(c) = &filter.class_name {
            q = q.filter(accounts::class_name.eq(c.clone()));
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let lines = build()
        .order((
            accounts::school,
            accounts::class_name,
            accounts::student_name,
            accounts::id,
        ))
        .offset(offset)
        .limit(limit)
        .select((
            accounts::id,
            accounts::student_name,
            accounts::school,
            accounts::class_name,
            accounts::organizer,
            accounts::municipality,
            balances::balance_kopecks,
        ))
        .load(conn)?;
    Ok((lines, total))
}

#[derive(Debug, Clone, QueryableByName)]
pub struct TurnoverLine {
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = BigInt)]
    pub incoming: i64,
    #[diesel(sql_type = BigInt)]
    pub outgoing: i64,
    #[diesel(sql_type = BigInt)]
    pub postings: i64,
}

/// Money into and out of one organizer's personal accounts in `[from, to)`, by
/// kind of movement; optionally one school (and class).
pub fn turnover(
    conn: &mut DbConnection,
    organizer: &str,
    school: Option<&str>,
    class_name: Option<&str>,
    from: chrono::NaiveDateTime,
    to: chrono::NaiveDateTime,
) -> Result<Vec<TurnoverLine>, StoreError> {
    let sql = "SELECT m.kind AS kind, \
            CAST(COALESCE(SUM(CASE WHEN p.amount_kopecks > 0 THEN p.amount_kopecks ELSE 0 END), 0) AS BIGINT) AS incoming, \
            CAST(COALESCE(SUM(CASE WHEN p.amount_kopecks < 0 THEN -p.amount_kopecks ELSE 0 END), 0) AS BIGINT) AS outgoing, \
            COUNT(*) AS postings \
        FROM postings p JOIN movements m ON m.id = p.movement_id JOIN accounts a ON a.id = p.account_id \
        WHERE a.kind = 'personal' AND a.organizer = $1 AND m.created_at >= $2 AND m.created_at < $3 \
          AND ($4 = '' OR a.school = $4) AND ($5 = '' OR a.class_name = $5) \
        GROUP BY m.kind ORDER BY m.kind";
    Ok(diesel::sql_query(sql)
        .bind::<Text, _>(organizer)
        .bind::<Timestamp, _>(from)
        .bind::<Timestamp, _>(to)
        .bind::<Text, _>(school.unwrap_or(""))
        .bind::<Text, _>(class_name.unwrap_or(""))
        .load(conn)?)
}

#[derive(Debug, Clone, QueryableByName)]
pub struct MunicipalityLine {
    #[diesel(sql_type = Text)]
    pub municipality: String,
    #[diesel(sql_type = BigInt)]
    pub accounts: i64,
    #[diesel(sql_type = BigInt)]
    pub balance: i64,
    #[diesel(sql_type = BigInt)]
    pub in_debt: i64,
    #[diesel(sql_type = BigInt)]
    pub debt: i64,
}

/// Totals of personal accounts per municipality.
pub fn municipalities(conn: &mut DbConnection) -> Result<Vec<MunicipalityLine>, StoreError> {
    let sql = "SELECT a.municipality AS municipality, COUNT(*) AS accounts, \
            CAST(COALESCE(SUM(b.balance_kopecks), 0) AS BIGINT) AS balance, \
            CAST(COALESCE(SUM(CASE WHEN b.balance_kopecks < 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS in_debt, \
            CAST(COALESCE(SUM(CASE WHEN b.balance_kopecks < 0 THEN b.balance_kopecks ELSE 0 END), 0) AS BIGINT) AS debt \
        FROM accounts a JOIN balances b ON b.account_id = a.id \
        WHERE a.kind = 'personal' GROUP BY a.municipality ORDER BY a.municipality";
    Ok(diesel::sql_query(sql).load(conn)?)
}
