//! Queries behind students' registration and the meal admin's per-student
//! settings (`api::students`).

use chrono::NaiveDate;
use diesel::prelude::*;
use storage::{DbConnection, StorageError};

use super::{menu_types, pchvr_categories, students, Student};

/// Moves a registered student to `class`, with the name, birth date and
/// schooling the school gives now.
pub fn update_student(
    c: &mut DbConnection,
    account: &str,
    class: &str,
    full_name: &str,
    birth: NaiveDate,
    home_schooled: bool,
) -> Result<(), StorageError> {
    diesel::update(students::table.find(account))
        .set((
            students::class_id.eq(class),
            students::full_name.eq(full_name),
            students::birth_date.eq(birth),
            students::home_schooled.eq(home_schooled),
        ))
        .execute(c)?;
    Ok(())
}

pub fn insert_student(c: &mut DbConnection, student: &Student) -> Result<(), StorageError> {
    diesel::insert_into(students::table)
        .values(student)
        .execute(c)?;
    Ok(())
}

/// Whether the municipality has the ПЧВР category.
pub fn category_exists(
    c: &mut DbConnection,
    municipality: &str,
    code: &str,
) -> Result<bool, StorageError> {
    let n: i64 = pchvr_categories::table
        .find((municipality, code))
        .count()
        .get_result(c)?;
    Ok(n > 0)
}

/// Whether the municipality has the menu type.
pub fn menu_type_exists(
    c: &mut DbConnection,
    municipality: &str,
    code: &str,
) -> Result<bool, StorageError> {
    let n: i64 = menu_types::table
        .find((municipality, code))
        .count()
        .get_result(c)?;
    Ok(n > 0)
}

/// The meal admin's settings of a student: ПЧВР category, meal kinds, menu type.
pub fn set_settings(
    c: &mut DbConnection,
    account: &str,
    category: Option<&str>,
    meal_kinds: &str,
    menu_type: Option<&str>,
) -> Result<(), StorageError> {
    diesel::update(students::table.find(account))
        .set((
            students::category.eq(category),
            students::meal_kinds.eq(meal_kinds),
            students::menu_type.eq(menu_type),
        ))
        .execute(c)?;
    Ok(())
}
