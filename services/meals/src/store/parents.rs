//! Queries behind the parents' API (`api::orders`): their orders and what they
//! are offered.

use chrono::NaiveDate;
use diesel::prelude::*;
use storage::{DbConnection, StorageError};

use super::{extras, meal_times, orders, Class, Extra, Order, Student};
use crate::domain::MealKind;

/// The meal kinds a student eats on their class's shift at their school, in
/// the order of the day.
pub fn kinds_of(
    c: &mut DbConnection,
    st: &Student,
    class: &Class,
) -> Result<Vec<String>, StorageError> {
    let mut kinds: Vec<String> = meal_times::table
        .filter(meal_times::school_id.eq(&st.school_id))
        .filter(meal_times::shift.eq(class.shift))
        .select(meal_times::kind)
        .load(c)?;
    kinds.retain(|k| st.eats(k));
    kinds.sort_by_key(|k| MealKind::parse(k));
    kinds.dedup();
    Ok(kinds)
}

/// The organizer's additional menu as it stands (active items), by id.
pub fn active_extras(c: &mut DbConnection, organizer: &str) -> Result<Vec<Extra>, StorageError> {
    Ok(extras::table
        .filter(extras::organizer.eq(organizer))
        .filter(extras::active.eq(true))
        .order(extras::id)
        .select(Extra::as_select())
        .load(c)?)
}

/// One item of an additional menu, active or not.
pub fn extra(c: &mut DbConnection, id: &str) -> Result<Option<Extra>, StorageError> {
    Ok(extras::table
        .find(id)
        .select(Extra::as_select())
        .first(c)
        .optional()?)
}

/// A student's order for a day and meal kind.
pub fn order(
    c: &mut DbConnection,
    account: &str,
    day: NaiveDate,
    kind: &str,
) -> Result<Option<Order>, StorageError> {
    Ok(orders::table
        .find((account, day, kind))
        .select(Order::as_select())
        .first(c)
        .optional()?)
}

/// A student's orders after `after`, up to `upto` if given, by day and kind.
pub fn orders_after(
    c: &mut DbConnection,
    account: &str,
    after: NaiveDate,
    upto: Option<NaiveDate>,
) -> Result<Vec<Order>, StorageError> {
    let mut q = orders::table
        .filter(orders::account.eq(account))
        .filter(orders::date.gt(after))
        .into_boxed();
    if let Some(u) = upto {
        q = q.filter(orders::date.le(u));
    }
    Ok(q.order((orders::date, orders::meal_kind))
        .select(Order::as_select())
        .load(c)?)
}

/// Withdraws an order; whether there was one.
pub fn delete_order(
    c: &mut DbConnection,
    account: &str,
    day: NaiveDate,
    kind: &str,
) -> Result<bool, StorageError> {
    Ok(diesel::delete(orders::table.find((account, day, kind))).execute(c)? > 0)
}

/// Confirms every order of the student after `after`.
pub fn confirm_orders_after(
    c: &mut DbConnection,
    account: &str,
    after: NaiveDate,
) -> Result<(), StorageError> {
    diesel::update(
        orders::table
            .filter(orders::account.eq(account))
            .filter(orders::date.gt(after)),
    )
    .set(orders::confirmed.eq(true))
    .execute(c)?;
    Ok(())
}
