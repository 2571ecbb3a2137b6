//! Queries behind the municipality's dictionaries (`api::dictionaries`).

use diesel::prelude::*;
use storage::{DbConnection, StorageError};

use super::{age_categories, menu_types, pchvr_categories, pchvr_rates, upsert};

pub fn save_menu_type(
    c: &mut DbConnection,
    municipality: &str,
    code: &str,
    name: &str,
) -> Result<(), StorageError> {
    upsert(
        c,
        |c| {
            diesel::update(menu_types::table.find((municipality, code)))
                .set(menu_types::name.eq(name))
                .execute(c)
        },
        |c| {
            diesel::insert_into(menu_types::table)
                .values((
                    menu_types::municipality.eq(municipality),
                    menu_types::code.eq(code),
                    menu_types::name.eq(name),
                ))
                .execute(c)
        },
    )
}

pub fn save_age_category(
    c: &mut DbConnection,
    municipality: &str,
    code: &str,
    name: &str,
    min_age: i32,
    max_age: i32,
) -> Result<(), StorageError> {
    upsert(
        c,
        |c| {
            diesel::update(age_categories::table.find((municipality, code)))
                .set((
                    age_categories::name.eq(name),
                    age_categories::min_age.eq(min_age),
                    age_categories::max_age.eq(max_age),
                ))
                .execute(c)
        },
        |c| {
            diesel::insert_into(age_categories::table)
                .values((
                    age_categories::municipality.eq(municipality),
                    age_categories::code.eq(code),
                    age_categories::name.eq(name),
                    age_categories::min_age.eq(min_age),
                    age_categories::max_age.eq(max_age),
                ))
                .execute(c)
        },
    )
}

/// A ПЧВР category and its rates per meal kind (the old rates replaced).
pub fn save_category(
    c: &mut DbConnection,
    municipality: &str,
    code: &str,
    (name, funder, kind): (&str, &str, &str),
    rates: &[(String, i64)],
) -> Result<(), StorageError> {
    upsert(
        c,
        |c| {
            diesel::update(pchvr_categories::table.find((municipality, code)))
                .set((
                    pchvr_categories::name.eq(name),
                    pchvr_categories::funder.eq(funder),
                    pchvr_categories::kind.eq(kind),
                ))
                .execute(c)
        },
        |c| {
            diesel::insert_into(pchvr_categories::table)
                .values((
                    pchvr_categories::municipality.eq(municipality),
                    pchvr_categories::code.eq(code),
                    pchvr_categories::name.eq(name),
                    pchvr_categories::funder.eq(funder),
                    pchvr_categories::kind.eq(kind),
                ))
                .execute(c)
        },
    )?;
    diesel::delete(
        pchvr_rates::table
            .filter(pchvr_rates::municipality.eq(municipality))
            .filter(pchvr_rates::category.eq(code)),
    )
    .execute(c)?;
    for (k, v) in rates {
        diesel::insert_into(pchvr_rates::table)
            .values((
                pchvr_rates::municipality.eq(municipality),
                pchvr_rates::category.eq(code),
                pchvr_rates::meal_kind.eq(k),
                pchvr_rates::value.eq(v),
            ))
            .execute(c)?;
    }
    Ok(())
}

/// The municipality's menu types: code, name.
pub fn menu_types_of(
    c: &mut DbConnection,
    municipality: &str,
) -> Result<Vec<(String, String)>, StorageError> {
    Ok(menu_types::table
        .filter(menu_types::municipality.eq(municipality))
        .order(menu_types::code)
        .select((menu_types::code, menu_types::name))
        .load(c)?)
}

/// The municipality's age categories: code, name, min and max age.
pub fn age_categories_of(
    c: &mut DbConnection,
    municipality: &str,
) -> Result<Vec<(String, String, i32, i32)>, StorageError> {
    Ok(age_categories::table
        .filter(age_categories::municipality.eq(municipality))
        .order(age_categories::code)
        .select((
            age_categories::code,
            age_categories::name,
            age_categories::min_age,
            age_categories::max_age,
        ))
        .load(c)?)
}

/// The municipality's ПЧВР categories: code, name, funder, kind.
pub fn categories_of(
    c: &mut DbConnection,
    municipality: &str,
) -> Result<Vec<(String, String, String, String)>, StorageError> {
    Ok(pchvr_categories::table
        .filter(pchvr_categories::municipality.eq(municipality))
        .order(pchvr_categories::code)
        .select((
            pchvr_categories::code,
            pchvr_categories::name,
            pchvr_categories::funder,
            pchvr_categories::kind,
        ))
        .load(c)?)
}

/// The municipality's ПЧВР rates: category, meal kind, value.
pub fn rates_of(
    c: &mut DbConnection,
    municipality: &str,
) -> Result<Vec<(String, String, i64)>, StorageError> {
    Ok(pchvr_rates::table
        .filter(pchvr_rates::municipality.eq(municipality))
        .order((pchvr_rates::category, pchvr_rates::meal_kind))
        .select((
            pchvr_rates::category,
            pchvr_rates::meal_kind,
            pchvr_rates::value,
        ))
        .load(c)?)
}
