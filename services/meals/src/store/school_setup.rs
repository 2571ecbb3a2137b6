//! Queries behind schools, their buildings, classes and meal times, the
//! organizer links and the credit limit (`api::schools`).

use diesel::prelude::*;
use storage::{DbConnection, StorageError};

use super::{buildings, classes, meal_times, schools, students, upsert, Class, MealTime, School};

/// A building as the school view lists it: id, name, address, own organizer.
pub type BuildingRow = (String, String, String, Option<String>);
/// A class as the school view lists it: id, name, shift, building.
pub type ClassRow = (String, String, i32, Option<String>);

pub fn rename_school(c: &mut DbConnection, id: &str, name: &str) -> Result<(), StorageError> {
    diesel::update(schools::table.find(id))
        .set(schools::name.eq(name))
        .execute(c)?;
    Ok(())
}

pub fn insert_school(c: &mut DbConnection, school: &School) -> Result<(), StorageError> {
    diesel::insert_into(schools::table)
        .values(school)
        .execute(c)?;
    Ok(())
}

/// A school's buildings: id, name, address, own organizer.
pub fn buildings_of(c: &mut DbConnection, school: &str) -> Result<Vec<BuildingRow>, StorageError> {
    Ok(buildings::table
        .filter(buildings::school_id.eq(school))
        .order(buildings::id)
        .select((
            buildings::id,
            buildings::name,
            buildings::address,
            buildings::organizer,
        ))
        .load(c)?)
}

/// A school's classes: id, name, shift, building.
pub fn classes_of(c: &mut DbConnection, school: &str) -> Result<Vec<ClassRow>, StorageError> {
    Ok(classes::table
        .filter(classes::school_id.eq(school))
        .order(classes::id)
        .select((
            classes::id,
            classes::name,
            classes::shift,
            classes::building_id,
        ))
        .load(c)?)
}

/// A school's meal times: code, kind, shift, starts at.
pub fn meal_times_of(
    c: &mut DbConnection,
    school: &str,
) -> Result<Vec<(String, String, i32, String)>, StorageError> {
    Ok(meal_times::table
        .filter(meal_times::school_id.eq(school))
        .order(meal_times::starts_at)
        .select((
            meal_times::code,
            meal_times::kind,
            meal_times::shift,
            meal_times::starts_at,
        ))
        .load(c)?)
}

/// How many students a school has registered.
pub fn student_count(c: &mut DbConnection, school: &str) -> Result<i64, StorageError> {
    Ok(students::table
        .filter(students::school_id.eq(school))
        .count()
        .get_result(c)?)
}

/// The school a building belongs to.
pub fn building_owner(
    c: &mut DbConnection,
    building: &str,
) -> Result<Option<String>, StorageError> {
    Ok(buildings::table
        .find(building)
        .select(buildings::school_id)
        .first(c)
        .optional()?)
}

pub fn update_building(
    c: &mut DbConnection,
    id: &str,
    name: &str,
    address: &str,
) -> Result<(), StorageError> {
    diesel::update(buildings::table.find(id))
        .set((buildings::name.eq(name), buildings::address.eq(address)))
        .execute(c)?;
    Ok(())
}

pub fn insert_building(
    c: &mut DbConnection,
    id: &str,
    school: &str,
    name: &str,
    address: &str,
) -> Result<(), StorageError> {
    diesel::insert_into(buildings::table)
        .values((
            buildings::id.eq(id),
            buildings::school_id.eq(school),
            buildings::name.eq(name),
            buildings::address.eq(address),
        ))
        .execute(c)?;
    Ok(())
}

pub fn update_class(c: &mut DbConnection, class: &Class) -> Result<(), StorageError> {
    diesel::update(classes::table.find(&class.id))
        .set((
            classes::name.eq(&class.name),
            classes::shift.eq(class.shift),
            classes::building_id.eq(&class.building_id),
        ))
        .execute(c)?;
    Ok(())
}

pub fn insert_class(c: &mut DbConnection, class: &Class) -> Result<(), StorageError> {
    diesel::insert_into(classes::table)
        .values(class)
        .execute(c)?;
    Ok(())
}

/// Sets a meal time of a school, adding it if new.
pub fn save_meal_time(c: &mut DbConnection, row: &MealTime) -> Result<(), StorageError> {
    upsert(
        c,
        |c| {
            diesel::update(meal_times::table.find((&row.school_id, &row.code)))
                .set((
                    meal_times::kind.eq(&row.kind),
                    meal_times::shift.eq(row.shift),
                    meal_times::starts_at.eq(&row.starts_at),
                ))
                .execute(c)
        },
        |c| {
            diesel::insert_into(meal_times::table)
                .values(row)
                .execute(c)
        },
    )
}

/// Links one of the school's buildings to an organizer; whether the school
/// has that building.
pub fn link_building(
    c: &mut DbConnection,
    school: &str,
    building: &str,
    organizer: &str,
) -> Result<bool, StorageError> {
    let n = diesel::update(
        buildings::table
            .find(building)
            .filter(buildings::school_id.eq(school)),
    )
    .set(buildings::organizer.eq(organizer))
    .execute(c)?;
    Ok(n > 0)
}

/// Links the whole school to an organizer.
pub fn link_school(
    c: &mut DbConnection,
    school: &str,
    organizer: &str,
) -> Result<(), StorageError> {
    diesel::update(schools::table.find(school))
        .set(schools::organizer.eq(organizer))
        .execute(c)?;
    Ok(())
}

/// The accounts of every student of a school.
pub fn accounts_of(c: &mut DbConnection, school: &str) -> Result<Vec<String>, StorageError> {
    Ok(students::table
        .filter(students::school_id.eq(school))
        .select(students::account)
        .load(c)?)
}

pub fn set_credit_limit(
    c: &mut DbConnection,
    school: &str,
    kopecks: i64,
) -> Result<(), StorageError> {
    diesel::update(schools::table.find(school))
        .set(schools::credit_limit_kopecks.eq(kopecks))
        .execute(c)?;
    Ok(())
}
