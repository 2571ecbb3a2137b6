//! Queries of the day's close (`close.rs`).

use chrono::NaiveDate;
use diesel::prelude::*;
use storage::{DbConnection, StorageError};

use super::{
    day_closes, meal_requests, request_lines, schools, write_offs, DayClose, RequestLine, School,
    WriteOff,
};

/// Claims a school's day for closing: false when someone closed it already
/// (the row's key is the school and the day, so only one close wins).
pub fn claim_day(c: &mut DbConnection, row: &DayClose) -> Result<bool, StorageError> {
    let inserted = storage::per_backend!(c, |cc| diesel::insert_into(day_closes::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(cc))?;
    Ok(inserted > 0)
}

/// The lines of a school's open requests of the day, with each request's
/// class and meal time.
pub fn open_lines(
    c: &mut DbConnection,
    school: &str,
    day: NaiveDate,
) -> Result<Vec<(RequestLine, String, String)>, StorageError> {
    Ok(request_lines::table
        .inner_join(meal_requests::table.on(meal_requests::id.eq(request_lines::request_id)))
        .filter(meal_requests::school_id.eq(school))
        .filter(meal_requests::date.eq(day))
        .filter(meal_requests::closed.eq(false))
        .select((
            RequestLine::as_select(),
            meal_requests::class_id,
            meal_requests::meal_time,
        ))
        .load(c)?)
}

/// Records the write-offs, closes the day's requests and completes the
/// day's close row with its totals.
pub fn finish_close(
    c: &mut DbConnection,
    school: &str,
    day: NaiveDate,
    rows: &[WriteOff],
    (to_pay, reimbursed): (i64, i64),
) -> Result<(), StorageError> {
    for chunk in rows.chunks(500) {
        storage::per_backend!(c, |cc| diesel::insert_into(write_offs::table)
            .values(chunk)
            .execute(cc))?;
    }
    diesel::update(
        meal_requests::table
            .filter(meal_requests::school_id.eq(school))
            .filter(meal_requests::date.eq(day)),
    )
    .set(meal_requests::closed.eq(true))
    .execute(c)?;
    diesel::update(day_closes::table.find((school, day)))
        .set((
            day_closes::debits.eq(i32::try_from(rows.len()).unwrap_or(i32::MAX)),
            day_closes::to_pay_kopecks.eq(to_pay),
            day_closes::reimbursed_kopecks.eq(reimbursed),
        ))
        .execute(c)?;
    Ok(())
}

/// The last day each school closed.
pub type LastCloses = std::collections::HashMap<String, NaiveDate>;

/// Every school, by id, and the last day each closed.
pub fn schools_and_last_close(
    c: &mut DbConnection,
) -> Result<(Vec<School>, LastCloses), StorageError> {
    let all = schools::table
        .order(schools::id)
        .select(School::as_select())
        .load(c)?;
    let last: Vec<(String, Option<NaiveDate>)> = day_closes::table
        .group_by(day_closes::school_id)
        .select((day_closes::school_id, diesel::dsl::max(day_closes::date)))
        .load(c)?;
    let last = last
        .into_iter()
        .filter_map(|(s, d)| d.map(|d| (s, d)))
        .collect();
    Ok((all, last))
}

/// Records payments' answer to a write-off; false when the write-off is not
/// this service's.
pub fn set_write_off_status(
    c: &mut DbConnection,
    key: &str,
    status: &str,
    reason: Option<&str>,
) -> Result<bool, StorageError> {
    let n = diesel::update(write_offs::table.find(key))
        .set((write_offs::status.eq(status), write_offs::reason.eq(reason)))
        .execute(c)?;
    Ok(n > 0)
}
