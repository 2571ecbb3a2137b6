//! Queries behind the meals reports (`api::reports`).

use chrono::NaiveDate;
use diesel::prelude::*;
use storage::{DbConnection, StorageError};

use super::{
    balances, buildings, classes, day_closes, day_menus, dishes, orders, schools, students,
    write_offs, DayClose, School, Student,
};
use crate::domain::close::WriteOffStatus;

/// A student's balance line: school, class name, account, full name, balance.
pub type BalanceRow = (String, String, String, String, Option<i64>);
/// A write-off in the money flow: school, day, status, parent's part, budget's part.
pub type FlowRow = (String, NaiveDate, String, i64, i64);
/// An order in the procurement view: account, day, meal kind, complex, confirmed.
pub type OrderRow = (String, NaiveDate, String, Option<String>, bool);
/// A day menu's complex: day, meal kind, code, «комплекс дня».
pub type MenuRow = (NaiveDate, String, String, bool);
/// The budget's part of a write-off: ПЧВР category, funder, kopecks.
pub type ReimbursementRow = (Option<String>, Option<String>, i64);
/// A building: school, id, name, own organizer.
pub type BuildingRow = (String, String, String, Option<String>);

/// Every school, by id.
pub fn all_schools(c: &mut DbConnection) -> Result<Vec<School>, StorageError> {
    Ok(schools::table
        .order(schools::id)
        .select(School::as_select())
        .load(c)?)
}

/// A municipality's schools, by id.
pub fn schools_of(c: &mut DbConnection, municipality: &str) -> Result<Vec<School>, StorageError> {
    Ok(schools::table
        .filter(schools::municipality.eq(municipality))
        .order(schools::id)
        .select(School::as_select())
        .load(c)?)
}

/// Students' balances in the schools (only the classes `only`, if given), by
/// school, class and name.
pub fn balances_in(
    c: &mut DbConnection,
    schools: &[String],
    only: Option<&[String]>,
) -> Result<Vec<BalanceRow>, StorageError> {
    let mut query = students::table
        .inner_join(classes::table.on(classes::id.eq(students::class_id)))
        .left_join(balances::table.on(balances::account.eq(students::account)))
        .filter(students::school_id.eq_any(schools))
        .into_boxed();
    if let Some(own) = only {
        query = query.filter(students::class_id.eq_any(own));
    }
    Ok(query
        .order((students::school_id, classes::name, students::full_name))
        .select((
            students::school_id,
            classes::name,
            students::account,
            students::full_name,
            balances::balance_kopecks.nullable(),
        ))
        .load(c)?)
}

/// The schools' write-offs of the period.
pub fn write_offs_in(
    c: &mut DbConnection,
    schools: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<FlowRow>, StorageError> {
    Ok(write_offs::table
        .filter(write_offs::school_id.eq_any(schools))
        .filter(write_offs::date.between(from, to))
        .select((
            write_offs::school_id,
            write_offs::date,
            write_offs::status,
            write_offs::amount_kopecks,
            write_offs::reimbursed_kopecks,
        ))
        .load(c)?)
}

/// The budget's part of the schools' write-offs of the period that payments
/// did not refuse: category, funder, kopecks.
pub fn reimbursements_in(
    c: &mut DbConnection,
    schools: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<ReimbursementRow>, StorageError> {
    Ok(write_offs::table
        .filter(write_offs::school_id.eq_any(schools))
        .filter(write_offs::date.between(from, to))
        .filter(write_offs::reimbursed_kopecks.gt(0))
        .filter(write_offs::status.ne(WriteOffStatus::Refused.as_str()))
        .select((
            write_offs::category,
            write_offs::funder,
            write_offs::reimbursed_kopecks,
        ))
        .load(c)?)
}

/// The schools' buildings: school, id, name, own organizer.
pub fn buildings_in(
    c: &mut DbConnection,
    schools: &[String],
) -> Result<Vec<BuildingRow>, StorageError> {
    Ok(buildings::table
        .filter(buildings::school_id.eq_any(schools))
        .order((buildings::school_id, buildings::id))
        .select((
            buildings::school_id,
            buildings::id,
            buildings::name,
            buildings::organizer,
        ))
        .load(c)?)
}

/// The active students of the classes.
pub fn active_students_in(
    c: &mut DbConnection,
    classes: &[String],
) -> Result<Vec<Student>, StorageError> {
    Ok(students::table
        .filter(students::class_id.eq_any(classes))
        .filter(students::active.eq(true))
        .select(Student::as_select())
        .load(c)?)
}

/// The students' orders of the period.
pub fn orders_in(
    c: &mut DbConnection,
    accounts: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<OrderRow>, StorageError> {
    Ok(orders::table
        .filter(orders::account.eq_any(accounts))
        .filter(orders::date.between(from, to))
        .select((
            orders::account,
            orders::date,
            orders::meal_kind,
            orders::complex_id,
            orders::confirmed,
        ))
        .load(c)?)
}

/// A school's day menus of the period, by day, kind and code.
pub fn menus_in(
    c: &mut DbConnection,
    school: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<MenuRow>, StorageError> {
    Ok(day_menus::table
        .filter(day_menus::school_id.eq(school))
        .filter(day_menus::date.between(from, to))
        .order((
            day_menus::date,
            day_menus::meal_kind,
            day_menus::complex_code,
        ))
        .select((
            day_menus::date,
            day_menus::meal_kind,
            day_menus::complex_code,
            day_menus::is_default,
        ))
        .load(c)?)
}

/// The names of the dishes.
pub fn dish_names(c: &mut DbConnection, ids: &[String]) -> Result<Vec<String>, StorageError> {
    Ok(dishes::table
        .filter(dishes::id.eq_any(ids))
        .select(dishes::name)
        .load(c)?)
}

/// A school's close of a day, if it closed.
pub fn day_close(
    c: &mut DbConnection,
    school: &str,
    day: NaiveDate,
) -> Result<Option<DayClose>, StorageError> {
    Ok(day_closes::table
        .find((school, day))
        .select(DayClose::as_select())
        .first(c)
        .optional()?)
}

/// A school's write-offs of a day: status, parent's part, budget's part.
pub fn write_offs_of_day(
    c: &mut DbConnection,
    school: &str,
    day: NaiveDate,
) -> Result<Vec<(String, i64, i64)>, StorageError> {
    Ok(write_offs::table
        .filter(write_offs::school_id.eq(school))
        .filter(write_offs::date.eq(day))
        .select((
            write_offs::status,
            write_offs::amount_kopecks,
            write_offs::reimbursed_kopecks,
        ))
        .load(c)?)
}
