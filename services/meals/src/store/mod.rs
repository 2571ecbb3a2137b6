//! Diesel schema of the meals service and the queries several handlers share.

pub mod catalog;
pub mod closing;
pub mod dictionaries;
pub mod parents;
pub mod registration;
pub mod reports;
pub mod requests;
pub mod school_setup;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use primitives::Money;
use storage::{DbConnection, MigrationSet, StorageError};

use crate::domain::close::WriteOffStatus;
use crate::domain::{self, MealPrice, RateKind};

diesel::table! {
    menu_types (municipality, code) {
        municipality -> Text,
        code -> Text,
        name -> Text,
    }
}

diesel::table! {
    age_categories (municipality, code) {
        municipality -> Text,
        code -> Text,
        name -> Text,
        min_age -> Integer,
        max_age -> Integer,
    }
}

diesel::table! {
    pchvr_categories (municipality, code) {
        municipality -> Text,
        code -> Text,
        name -> Text,
        funder -> Text,
        kind -> Text,
    }
}

diesel::table! {
    pchvr_rates (municipality, category, meal_kind) {
        municipality -> Text,
        category -> Text,
        meal_kind -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    schools (id) {
        id -> Text,
        municipality -> Text,
        name -> Text,
        credit_limit_kopecks -> BigInt,
        organizer -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    buildings (id) {
        id -> Text,
        school_id -> Text,
        name -> Text,
        address -> Text,
        organizer -> Nullable<Text>,
    }
}

diesel::table! {
    classes (id) {
        id -> Text,
        school_id -> Text,
        building_id -> Nullable<Text>,
        name -> Text,
        shift -> Integer,
    }
}

diesel::table! {
    students (account) {
        account -> Text,
        school_id -> Text,
        class_id -> Text,
        full_name -> Text,
        birth_date -> Date,
        category -> Nullable<Text>,
        meal_kinds -> Text,
        menu_type -> Nullable<Text>,
        home_schooled -> Bool,
        active -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    meal_times (school_id, code) {
        school_id -> Text,
        code -> Text,
        kind -> Text,
        shift -> Integer,
        starts_at -> Text,
    }
}

diesel::table! {
    dishes (id) {
        id -> Text,
        organizer -> Text,
        name -> Text,
        yield_grams -> Integer,
        price_kopecks -> BigInt,
        allergens -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    complexes (id) {
        id -> Text,
        organizer -> Text,
        code -> Text,
        version -> Integer,
        name -> Text,
        menu_type -> Text,
        age_category -> Text,
        meal_kind -> Text,
        price_kopecks -> BigInt,
        dishes -> Text,
        current -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    extras (id) {
        id -> Text,
        organizer -> Text,
        name -> Text,
        kind -> Text,
        price_kopecks -> BigInt,
        active -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    day_menus (school_id, date, meal_kind, complex_code) {
        school_id -> Text,
        date -> Date,
        meal_kind -> Text,
        complex_code -> Text,
        is_default -> Bool,
    }
}

diesel::table! {
    menu_notices (school_id, date, meal_kind) {
        school_id -> Text,
        date -> Date,
        meal_kind -> Text,
        organizer -> Text,
        offered -> Integer,
        noticed_at -> Timestamp,
    }
}

diesel::table! {
    orders (account, date, meal_kind) {
        account -> Text,
        date -> Date,
        meal_kind -> Text,
        complex_id -> Nullable<Text>,
        extras -> Text,
        confirmed -> Bool,
        updated_by -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    attendance (account, date) {
        account -> Text,
        date -> Date,
        present -> Bool,
        source -> Text,
        marked_at -> Timestamp,
    }
}

diesel::table! {
    meal_requests (id) {
        id -> Text,
        school_id -> Text,
        class_id -> Text,
        date -> Date,
        meal_time -> Text,
        meal_kind -> Text,
        closed -> Bool,
        formed_by -> Text,
        formed_at -> Timestamp,
        confirmed_by -> Nullable<Text>,
        confirmed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    request_lines (request_id, account) {
        request_id -> Text,
        account -> Text,
        complex_id -> Nullable<Text>,
        source -> Text,
        price_kopecks -> BigInt,
        reimbursed_kopecks -> BigInt,
        extras_kopecks -> BigInt,
        to_pay_kopecks -> BigInt,
        balance_kopecks -> BigInt,
        included -> Bool,
        reason -> Nullable<Text>,
        ate -> Nullable<Bool>,
        category -> Nullable<Text>,
        funder -> Nullable<Text>,
    }
}

diesel::table! {
    day_closes (school_id, date) {
        school_id -> Text,
        date -> Date,
        closed_at -> Timestamp,
        late -> Bool,
        debits -> Integer,
        to_pay_kopecks -> BigInt,
        reimbursed_kopecks -> BigInt,
    }
}

diesel::table! {
    write_offs (key) {
        key -> Text,
        account -> Text,
        school_id -> Text,
        class_id -> Text,
        date -> Date,
        meal_time -> Text,
        amount_kopecks -> BigInt,
        reimbursed_kopecks -> BigInt,
        category -> Nullable<Text>,
        funder -> Nullable<Text>,
        organizer -> Text,
        status -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    balances (account) {
        account -> Text,
        balance_kopecks -> BigInt,
        movement_id -> Text,
        updated_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    schools,
    buildings,
    classes,
    students,
    meal_times,
    complexes,
    day_menus,
    orders,
    attendance,
    meal_requests,
    request_lines,
    write_offs,
    balances,
    pchvr_categories,
    pchvr_rates,
);

const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/sqlite");

/// What the meals store fails with: the database, or an event that could not
/// be put into the outbox with the change it reports.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not enqueue an event: {0}")]
    Bus(#[from] bus::BusError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        StoreError::Storage(e.into())
    }
}

impl From<StoreError> for platform::Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Storage(e) => e.into(),
            StoreError::Bus(e) => platform::Problem::internal(e),
        }
    }
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    name: "meals",
    postgres: || PG,
    sqlite: || SQLITE,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = schools)]
pub struct School {
    pub id: String,
    pub municipality: String,
    pub name: String,
    pub credit_limit_kopecks: i64,
    pub organizer: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = classes)]
pub struct Class {
    pub id: String,
    pub school_id: String,
    pub building_id: Option<String>,
    pub name: String,
    pub shift: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = students)]
pub struct Student {
    pub account: String,
    pub school_id: String,
    pub class_id: String,
    pub full_name: String,
    pub birth_date: NaiveDate,
    pub category: Option<String>,
    pub meal_kinds: String,
    pub menu_type: Option<String>,
    pub home_schooled: bool,
    pub active: bool,
    pub created_at: NaiveDateTime,
}

impl Student {
    pub fn eats(&self, kind: &str) -> bool {
        self.meal_kinds.split(',').any(|k| k.trim() == kind)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = meal_times)]
pub struct MealTime {
    pub school_id: String,
    pub code: String,
    pub kind: String,
    pub shift: i32,
    pub starts_at: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = complexes)]
pub struct Complex {
    pub id: String,
    pub organizer: String,
    pub code: String,
    pub version: i32,
    pub name: String,
    pub menu_type: String,
    pub age_category: String,
    pub meal_kind: String,
    pub price_kopecks: i64,
    pub dishes: String,
    pub current: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = extras)]
pub struct Extra {
    pub id: String,
    pub organizer: String,
    pub name: String,
    pub kind: String,
    pub price_kopecks: i64,
    pub active: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = orders)]
pub struct Order {
    pub account: String,
    pub date: NaiveDate,
    pub meal_kind: String,
    pub complex_id: Option<String>,
    pub extras: String,
    pub confirmed: bool,
    pub updated_by: String,
    pub updated_at: NaiveDateTime,
}

/// A parent's order for a day and meal kind, replacing the one there was
/// (unconfirmed again). Insert first, then update if the row exists: when two
/// PUTs race on PostgreSQL, the second insert waits for the first's commit and
/// then changes nothing, and the second updates; update-then-insert let both
/// insert and one fail on the key.
pub fn save_order(conn: &mut DbConnection, row: &Order) -> Result<(), StorageError> {
    let inserted = storage::per_backend!(conn, |c| diesel::insert_into(orders::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    if inserted == 0 {
        diesel::update(orders::table.find((&row.account, row.date, &row.meal_kind)))
            .set((
                orders::complex_id.eq(&row.complex_id),
                orders::extras.eq(&row.extras),
                orders::confirmed.eq(row.confirmed),
                orders::updated_by.eq(&row.updated_by),
                orders::updated_at.eq(row.updated_at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = meal_requests)]
pub struct MealRequest {
    pub id: String,
    pub school_id: String,
    pub class_id: String,
    pub date: NaiveDate,
    pub meal_time: String,
    pub meal_kind: String,
    pub closed: bool,
    pub formed_by: String,
    pub formed_at: NaiveDateTime,
    pub confirmed_by: Option<String>,
    pub confirmed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = request_lines)]
pub struct RequestLine {
    pub request_id: String,
    pub account: String,
    pub complex_id: Option<String>,
    pub source: String,
    pub price_kopecks: i64,
    pub reimbursed_kopecks: i64,
    pub extras_kopecks: i64,
    pub to_pay_kopecks: i64,
    pub balance_kopecks: i64,
    pub included: bool,
    pub reason: Option<String>,
    pub ate: Option<bool>,
    pub category: Option<String>,
    pub funder: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = write_offs)]
pub struct WriteOff {
    pub key: String,
    pub account: String,
    pub school_id: String,
    pub class_id: String,
    pub date: NaiveDate,
    pub meal_time: String,
    pub amount_kopecks: i64,
    pub reimbursed_kopecks: i64,
    pub category: Option<String>,
    pub funder: Option<String>,
    pub organizer: String,
    pub status: String,
    pub reason: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = day_closes)]
pub struct DayClose {
    pub school_id: String,
    pub date: NaiveDate,
    pub closed_at: NaiveDateTime,
    pub late: bool,
    pub debits: i32,
    pub to_pay_kopecks: i64,
    pub reimbursed_kopecks: i64,
}

pub fn school(conn: &mut DbConnection, id: &str) -> Result<Option<School>, StorageError> {
    Ok(schools::table
        .find(id)
        .select(School::as_select())
        .first(conn)
        .optional()?)
}

pub fn class(conn: &mut DbConnection, id: &str) -> Result<Option<Class>, StorageError> {
    Ok(classes::table
        .find(id)
        .select(Class::as_select())
        .first(conn)
        .optional()?)
}

pub fn student(conn: &mut DbConnection, account: &str) -> Result<Option<Student>, StorageError> {
    Ok(students::table
        .find(account)
        .select(Student::as_select())
        .first(conn)
        .optional()?)
}

pub fn balance(conn: &mut DbConnection, account: &str) -> Result<Money, StorageError> {
    let k: Option<i64> = balances::table
        .find(account)
        .select(balances::balance_kopecks)
        .first(conn)
        .optional()?;
    Ok(Money::from_kopecks(k.unwrap_or(0)))
}

/// The organizer serving a class: its building's, else its school's.
pub fn organizer_of(
    conn: &mut DbConnection,
    school: &School,
    class: &Class,
) -> Result<Option<String>, StorageError> {
    if let Some(building) = &class.building_id {
        let own: Option<Option<String>> = buildings::table
            .find(building)
            .select(buildings::organizer)
            .first(conn)
            .optional()?;
        if let Some(Some(org)) = own {
            return Ok(Some(org));
        }
    }
    Ok(school.organizer.clone())
}

/// Every organizer linked to a school (its own and its buildings').
pub fn organizers_of_school(
    conn: &mut DbConnection,
    school: &School,
) -> Result<Vec<String>, StorageError> {
    let mut all: Vec<String> = buildings::table
        .filter(buildings::school_id.eq(&school.id))
        .select(buildings::organizer)
        .load::<Option<String>>(conn)?
        .into_iter()
        .flatten()
        .collect();
    all.extend(school.organizer.clone());
    all.sort();
    all.dedup();
    Ok(all)
}

/// The reimbursement rule of a student's ПЧВР category for a meal kind.
#[derive(Debug, Clone)]
pub struct Rate {
    pub category: String,
    pub funder: String,
    pub kind: RateKind,
    pub value: i64,
}

pub fn rate(
    conn: &mut DbConnection,
    municipality: &str,
    category: &str,
    meal_kind: &str,
) -> Result<Option<Rate>, StorageError> {
    let cat: Option<(String, String)> = pchvr_categories::table
        .find((municipality, category))
        .select((pchvr_categories::funder, pchvr_categories::kind))
        .first(conn)
        .optional()?;
    let Some((funder, kind)) = cat else {
        return Ok(None);
    };
    let value: i64 = pchvr_rates::table
        .find((municipality, category, meal_kind))
        .select(pchvr_rates::value)
        .first(conn)
        .optional()?
        .unwrap_or(0);
    Ok(Some(Rate {
        category: category.to_string(),
        funder,
        kind: RateKind::parse(&kind).unwrap_or(RateKind::Percent),
        value,
    }))
}

/// An additional item chosen with a complex.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraChoice {
    pub item: String,
    #[serde(default = "one")]
    pub quantity: i32,
}

fn one() -> i32 {
    1
}

pub fn extras_of(json: &str) -> Vec<ExtraChoice> {
    serde_json::from_str(json).unwrap_or_default()
}

/// The sum of `choices` at the items' full prices.
pub fn extras_total(
    conn: &mut DbConnection,
    choices: &[ExtraChoice],
) -> Result<Money, StorageError> {
    let mut total = 0i64;
    for c in choices {
        let price: Option<i64> = extras::table
            .find(&c.item)
            .select(extras::price_kopecks)
            .first(conn)
            .optional()?;
        total += price.unwrap_or(0) * i64::from(c.quantity);
    }
    Ok(Money::from_kopecks(total))
}

/// The price of complex `complex` (and extras) for `student`: full price, the
/// ПЧВР reimbursement of the student's category, what the parent pays.
pub fn price_for(
    conn: &mut DbConnection,
    school: &School,
    student: &Student,
    complex: Option<&Complex>,
    meal_kind: &str,
    extras: Money,
) -> Result<(MealPrice, Option<Rate>), StorageError> {
    let price = Money::from_kopecks(complex.map_or(0, |c| c.price_kopecks));
    let rate = match &student.category {
        Some(cat) => rate(conn, &school.municipality, cat, meal_kind)?,
        None => None,
    };
    let reimbursed = rate.as_ref().map_or(Money::ZERO, |r| {
        domain::reimbursement(price, r.kind, r.value)
    });
    Ok((MealPrice::new(price, reimbursed, extras), rate))
}

pub fn complex(conn: &mut DbConnection, id: &str) -> Result<Option<Complex>, StorageError> {
    Ok(complexes::table
        .find(id)
        .select(Complex::as_select())
        .first(conn)
        .optional()?)
}

/// The current version of complex `code` of `organizer`.
pub fn current_complex(
    conn: &mut DbConnection,
    organizer: &str,
    code: &str,
) -> Result<Option<Complex>, StorageError> {
    Ok(complexes::table
        .filter(complexes::organizer.eq(organizer))
        .filter(complexes::code.eq(code))
        .filter(complexes::current.eq(true))
        .select(Complex::as_select())
        .first(conn)
        .optional()?)
}

/// The age category code of a student on `day` (by the municipality's ranges).
pub fn age_category(
    conn: &mut DbConnection,
    municipality: &str,
    birth: NaiveDate,
    day: NaiveDate,
) -> Result<Option<String>, StorageError> {
    let age = domain::age_on(birth, day);
    Ok(age_categories::table
        .filter(age_categories::municipality.eq(municipality))
        .filter(age_categories::min_age.le(age))
        .filter(age_categories::max_age.ge(age))
        .select(age_categories::code)
        .first(conn)
        .optional()?)
}

/// The complexes offered to `student` on `day` for `meal_kind`: the school's day
/// menu, narrowed to the student's menu type and age category; the flag marks
/// the «комплекс дня».
pub fn offered(
    conn: &mut DbConnection,
    school: &School,
    organizer: &str,
    student: &Student,
    day: NaiveDate,
    meal_kind: &str,
) -> Result<Vec<(Complex, bool)>, StorageError> {
    let menu: Vec<(String, bool)> = day_menus::table
        .filter(day_menus::school_id.eq(&school.id))
        .filter(day_menus::date.eq(day))
        .filter(day_menus::meal_kind.eq(meal_kind))
        .order(day_menus::complex_code)
        .select((day_menus::complex_code, day_menus::is_default))
        .load(conn)?;
    let age = age_category(conn, &school.municipality, student.birth_date, day)?;
    let mut out = Vec::new();
    for (code, is_default) in menu {
        let Some(c) = current_complex(conn, organizer, &code)? else {
            continue;
        };
        if student
            .menu_type
            .as_deref()
            .is_some_and(|t| t != c.menu_type)
        {
            continue;
        }
        if age.as_deref().is_some_and(|a| a != c.age_category) {
            continue;
        }
        out.push((c, is_default));
    }
    Ok(out)
}

/// Updates a row, inserting it when there was none.
pub fn upsert<F, G>(conn: &mut DbConnection, update: F, insert: G) -> Result<(), StorageError>
where
    F: FnOnce(&mut DbConnection) -> QueryResult<usize>,
    G: FnOnce(&mut DbConnection) -> QueryResult<usize>,
{
    if update(conn)? == 0 {
        insert(conn)?;
    }
    Ok(())
}

/// The student as payments should know it (sent on every change that matters).
pub fn account_opened(
    conn: &mut DbConnection,
    school: &School,
    account: &str,
) -> Result<Option<bus::Envelope>, StoreError> {
    let Some(st) = student(conn, account)? else {
        return Ok(None);
    };
    let Some(class) = class(conn, &st.class_id)? else {
        return Ok(None);
    };
    let Some(organizer) = organizer_of(conn, school, &class)? else {
        return Ok(None);
    };
    let event = contracts::meals::AccountOpened {
        account: st.account,
        student_name: st.full_name,
        school: school.id.clone(),
        class_id: class.id,
        class_name: class.name,
        municipality: school.municipality.clone(),
        organizer,
    };
    Ok(Some(crate::events::account_opened(&event)?))
}

/// A school's classes.
pub fn classes_of_school(c: &mut DbConnection, school: &str) -> Result<Vec<Class>, StorageError> {
    Ok(classes::table
        .filter(classes::school_id.eq(school))
        .select(Class::as_select())
        .load(c)?)
}

/// Records that a day's menu offers fewer than two complexes (once per school,
/// day and meal kind), so the organizer sees it in its notices. Called where
/// the menu is set and where a parent's order meets it; reading the menu
/// records nothing.
pub fn record_menu_notice(
    c: &mut DbConnection,
    school: &str,
    day: NaiveDate,
    kind: &str,
    org: &str,
    offered: usize,
    at: chrono::NaiveDateTime,
) -> Result<(), StorageError> {
    let inserted = storage::per_backend!(c, |cc| diesel::insert_into(menu_notices::table)
        .values((
            menu_notices::school_id.eq(school),
            menu_notices::date.eq(day),
            menu_notices::meal_kind.eq(kind),
            menu_notices::organizer.eq(org),
            menu_notices::offered.eq(i32::try_from(offered).unwrap_or(i32::MAX)),
            menu_notices::noticed_at.eq(at),
        ))
        .on_conflict_do_nothing()
        .execute(cc))?;
    if inserted > 0 {
        tracing::warn!(school, %day, kind, organizer = org, offered, "a day's menu offers fewer than two complexes");
    }
    Ok(())
}

/// What is still to be written off for `account`: included request lines of days
/// not yet closed, and debits sent but not yet answered.
pub fn pending(
    conn: &mut DbConnection,
    account: &str,
    except_request: Option<&str>,
) -> Result<Money, StorageError> {
    let lines: Vec<(String, i64)> = request_lines::table
        .inner_join(meal_requests::table.on(meal_requests::id.eq(request_lines::request_id)))
        .filter(request_lines::account.eq(account))
        .filter(request_lines::included.eq(true))
        .filter(meal_requests::closed.eq(false))
        .select((request_lines::request_id, request_lines::to_pay_kopecks))
        .load(conn)?;
    let open: i64 = lines
        .into_iter()
        .filter(|(id, _)| Some(id.as_str()) != except_request)
        .map(|(_, k)| k)
        .sum();
    let sent: Vec<i64> = write_offs::table
        .filter(write_offs::account.eq(account))
        .filter(write_offs::status.eq(WriteOffStatus::Sent.as_str()))
        .select(write_offs::amount_kopecks)
        .load(conn)?;
    Ok(Money::from_kopecks(open + sent.iter().sum::<i64>()))
}

/// Records a balance payments reported, unless a later one is already known
/// (movement ids are time-ordered UUIDv7s).
pub fn record_balance(
    conn: &mut DbConnection,
    account: &str,
    balance: Money,
    movement_id: &str,
    at: NaiveDateTime,
) -> Result<(), StorageError> {
    // Newer wins in the statement itself, and the first event of an account
    // inserts with ON CONFLICT DO NOTHING: two consumers that both find no row
    // cannot both insert, and an older movement's event arriving late changes
    // nothing.
    let updated = diesel::update(
        balances::table
            .find(account)
            .filter(balances::movement_id.lt(movement_id)),
    )
    .set((
        balances::balance_kopecks.eq(balance.kopecks()),
        balances::movement_id.eq(movement_id),
        balances::updated_at.eq(at),
    ))
    .execute(conn)?;
    if updated == 0 {
        storage::per_backend!(conn, |c| diesel::insert_into(balances::table)
            .values((
                balances::account.eq(account),
                balances::balance_kopecks.eq(balance.kopecks()),
                balances::movement_id.eq(movement_id),
                balances::updated_at.eq(at),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    Ok(())
}
