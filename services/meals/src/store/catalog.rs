//! Queries behind organizers' catalogues and schools' day menus
//! (`api::catalog`).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use storage::{DbConnection, StorageError};

use super::{
    age_categories, complexes, day_menus, dishes, extras, menu_notices, menu_types, orders,
    Complex, Extra,
};

/// A dish as the catalogue lists it: id, name, yield, price, allergens.
pub type DishListed = (String, String, i32, i64, String);
/// A notice as listed: school, day, meal kind, complexes offered, when noticed.
pub type NoticeRow = (String, NaiveDate, String, i32, NaiveDateTime);

/// A dish as it is saved: name, yield, price, allergens.
pub struct DishRow<'a> {
    pub id: &'a str,
    pub organizer: &'a str,
    pub name: &'a str,
    pub yield_grams: i32,
    pub price_kopecks: i64,
    pub allergens: &'a str,
}

/// The organizer a dish belongs to.
pub fn dish_owner(c: &mut DbConnection, id: &str) -> Result<Option<String>, StorageError> {
    Ok(dishes::table
        .find(id)
        .select(dishes::organizer)
        .first(c)
        .optional()?)
}

pub fn update_dish(c: &mut DbConnection, d: &DishRow<'_>) -> Result<(), StorageError> {
    diesel::update(dishes::table.find(d.id))
        .set((
            dishes::name.eq(d.name),
            dishes::yield_grams.eq(d.yield_grams),
            dishes::price_kopecks.eq(d.price_kopecks),
            dishes::allergens.eq(d.allergens),
        ))
        .execute(c)?;
    Ok(())
}

pub fn insert_dish(
    c: &mut DbConnection,
    d: &DishRow<'_>,
    at: NaiveDateTime,
) -> Result<(), StorageError> {
    diesel::insert_into(dishes::table)
        .values((
            dishes::id.eq(d.id),
            dishes::organizer.eq(d.organizer),
            dishes::name.eq(d.name),
            dishes::yield_grams.eq(d.yield_grams),
            dishes::price_kopecks.eq(d.price_kopecks),
            dishes::allergens.eq(d.allergens),
            dishes::created_at.eq(at),
        ))
        .execute(c)?;
    Ok(())
}

/// Whether some municipality has the menu type.
pub fn menu_type_known(c: &mut DbConnection, code: &str) -> Result<bool, StorageError> {
    let n: i64 = menu_types::table
        .filter(menu_types::code.eq(code))
        .count()
        .get_result(c)?;
    Ok(n > 0)
}

/// Whether some municipality has the age category.
pub fn age_category_known(c: &mut DbConnection, code: &str) -> Result<bool, StorageError> {
    let n: i64 = age_categories::table
        .filter(age_categories::code.eq(code))
        .count()
        .get_result(c)?;
    Ok(n > 0)
}

/// Whether a complex version with this id exists (under any organizer).
pub fn complex_exists(c: &mut DbConnection, id: &str) -> Result<bool, StorageError> {
    let n: i64 = complexes::table.find(id).count().get_result(c)?;
    Ok(n > 0)
}

/// Whether any order chose the complex version.
pub fn complex_chosen(c: &mut DbConnection, id: &str) -> Result<bool, StorageError> {
    let n: i64 = orders::table
        .filter(orders::complex_id.eq(id))
        .count()
        .get_result(c)?;
    Ok(n > 0)
}

pub fn insert_complex(c: &mut DbConnection, row: &Complex) -> Result<(), StorageError> {
    diesel::insert_into(complexes::table)
        .values(row)
        .execute(c)?;
    Ok(())
}

/// Corrects a version nobody chose.
pub fn correct_complex(c: &mut DbConnection, row: &Complex) -> Result<(), StorageError> {
    diesel::update(complexes::table.find(&row.id))
        .set((
            complexes::name.eq(&row.name),
            complexes::menu_type.eq(&row.menu_type),
            complexes::age_category.eq(&row.age_category),
            complexes::meal_kind.eq(&row.meal_kind),
            complexes::price_kopecks.eq(row.price_kopecks),
            complexes::dishes.eq(&row.dishes),
        ))
        .execute(c)?;
    Ok(())
}

/// Retires a version: it stays for the orders that chose it.
pub fn retire_complex(c: &mut DbConnection, id: &str) -> Result<(), StorageError> {
    diesel::update(complexes::table.find(id))
        .set(complexes::current.eq(false))
        .execute(c)?;
    Ok(())
}

/// The organizer an additional-menu item belongs to.
pub fn extra_owner(c: &mut DbConnection, id: &str) -> Result<Option<String>, StorageError> {
    Ok(extras::table
        .find(id)
        .select(extras::organizer)
        .first(c)
        .optional()?)
}

pub fn update_extra(
    c: &mut DbConnection,
    id: &str,
    name: &str,
    kind: &str,
    price_kopecks: i64,
) -> Result<(), StorageError> {
    diesel::update(extras::table.find(id))
        .set((
            extras::name.eq(name),
            extras::kind.eq(kind),
            extras::price_kopecks.eq(price_kopecks),
        ))
        .execute(c)?;
    Ok(())
}

pub fn insert_extra(c: &mut DbConnection, row: &Extra) -> Result<(), StorageError> {
    diesel::insert_into(extras::table).values(row).execute(c)?;
    Ok(())
}

/// An organizer's dishes: id, name, yield, price, allergens.
pub fn dishes_of(c: &mut DbConnection, org: &str) -> Result<Vec<DishListed>, StorageError> {
    Ok(dishes::table
        .filter(dishes::organizer.eq(org))
        .order(dishes::id)
        .select((
            dishes::id,
            dishes::name,
            dishes::yield_grams,
            dishes::price_kopecks,
            dishes::allergens,
        ))
        .load(c)?)
}

/// An organizer's current complexes, by code.
pub fn current_complexes(c: &mut DbConnection, org: &str) -> Result<Vec<Complex>, StorageError> {
    Ok(complexes::table
        .filter(complexes::organizer.eq(org))
        .filter(complexes::current.eq(true))
        .order(complexes::code)
        .select(Complex::as_select())
        .load(c)?)
}

/// An organizer's whole additional menu, by id.
pub fn extras_of_organizer(c: &mut DbConnection, org: &str) -> Result<Vec<Extra>, StorageError> {
    Ok(extras::table
        .filter(extras::organizer.eq(org))
        .order(extras::id)
        .select(Extra::as_select())
        .load(c)?)
}

/// Sets a school's menu of a day and meal kind: the complexes by code (once
/// each), `default` the «комплекс дня»; answers how many complexes it offers.
pub fn set_day_menu(
    c: &mut DbConnection,
    school: &str,
    day: NaiveDate,
    kind: &str,
    codes: &[String],
    default: &str,
) -> Result<usize, StorageError> {
    diesel::delete(
        day_menus::table
            .filter(day_menus::school_id.eq(school))
            .filter(day_menus::date.eq(day))
            .filter(day_menus::meal_kind.eq(kind)),
    )
    .execute(c)?;
    let mut seen = std::collections::BTreeSet::new();
    for code in codes {
        if !seen.insert(code) {
            continue;
        }
        diesel::insert_into(day_menus::table)
            .values((
                day_menus::school_id.eq(school),
                day_menus::date.eq(day),
                day_menus::meal_kind.eq(kind),
                day_menus::complex_code.eq(code),
                day_menus::is_default.eq(code == default),
            ))
            .execute(c)?;
    }
    Ok(seen.len())
}

/// Forgets the incomplete-menu notice of a day (its menu is complete now).
pub fn clear_menu_notice(
    c: &mut DbConnection,
    school: &str,
    day: NaiveDate,
    kind: &str,
) -> Result<(), StorageError> {
    diesel::delete(menu_notices::table.find((school, day, kind))).execute(c)?;
    Ok(())
}

/// An organizer's incomplete-menu notices: school, day, meal kind, complexes
/// offered, when noticed.
pub fn notices_of(c: &mut DbConnection, org: &str) -> Result<Vec<NoticeRow>, StorageError> {
    Ok(menu_notices::table
        .filter(menu_notices::organizer.eq(org))
        .order((menu_notices::date, menu_notices::school_id))
        .select((
            menu_notices::school_id,
            menu_notices::date,
            menu_notices::meal_kind,
            menu_notices::offered,
            menu_notices::noticed_at,
        ))
        .load(c)?)
}
