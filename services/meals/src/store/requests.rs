//! Queries behind class meal requests (`api::requests`): forming, viewing and
//! confirming who ate.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use storage::{DbConnection, StorageError};

use super::{
    attendance, meal_requests, meal_times, request_lines, students, MealRequest, MealTime,
    RequestLine, Student,
};

/// A request by id.
pub fn request(c: &mut DbConnection, id: &str) -> Result<Option<MealRequest>, StorageError> {
    Ok(meal_requests::table
        .find(id)
        .select(MealRequest::as_select())
        .first(c)
        .optional()?)
}

/// A request's lines with each student's full name, by name.
pub fn lines_with_names(
    c: &mut DbConnection,
    id: &str,
) -> Result<Vec<(RequestLine, String)>, StorageError> {
    Ok(request_lines::table
        .inner_join(students::table.on(students::account.eq(request_lines::account)))
        .filter(request_lines::request_id.eq(id))
        .order(students::full_name)
        .select((RequestLine::as_select(), students::full_name))
        .load(c)?)
}

/// Whether the class has a request for the day and meal time already.
pub fn request_exists(
    c: &mut DbConnection,
    class: &str,
    day: NaiveDate,
    meal_time: &str,
) -> Result<bool, StorageError> {
    let n: i64 = meal_requests::table
        .filter(meal_requests::class_id.eq(class))
        .filter(meal_requests::date.eq(day))
        .filter(meal_requests::meal_time.eq(meal_time))
        .count()
        .get_result(c)?;
    Ok(n > 0)
}

/// The class's active students who eat at school (not home-schooled), by account.
pub fn pupils_of(c: &mut DbConnection, class: &str) -> Result<Vec<Student>, StorageError> {
    Ok(students::table
        .filter(students::class_id.eq(class))
        .filter(students::active.eq(true))
        .filter(students::home_schooled.eq(false))
        .order(students::account)
        .select(Student::as_select())
        .load(c)?)
}

/// Stores a formed request and its lines.
pub fn insert_request(
    c: &mut DbConnection,
    request: &MealRequest,
    lines: &[RequestLine],
) -> Result<(), StorageError> {
    diesel::insert_into(meal_requests::table)
        .values(request)
        .execute(c)?;
    for chunk in lines.chunks(500) {
        storage::per_backend!(c, |cc| diesel::insert_into(request_lines::table)
            .values(chunk)
            .execute(cc))?;
    }
    Ok(())
}

/// The student's attendance mark of the day: present, absent, or none.
pub fn present(
    c: &mut DbConnection,
    account: &str,
    day: NaiveDate,
) -> Result<Option<bool>, StorageError> {
    Ok(attendance::table
        .find((account, day))
        .select(attendance::present)
        .first(c)
        .optional()?)
}

/// A school's meal time.
pub fn meal_time(
    c: &mut DbConnection,
    school: &str,
    code: &str,
) -> Result<Option<MealTime>, StorageError> {
    Ok(meal_times::table
        .find((school, code))
        .select(MealTime::as_select())
        .first(c)
        .optional()?)
}

/// Whether the request's day has closed.
pub fn is_closed(c: &mut DbConnection, id: &str) -> Result<bool, StorageError> {
    Ok(meal_requests::table
        .find(id)
        .select(meal_requests::closed)
        .first(c)?)
}

/// A line as the confirmation judges it.
pub struct LineState {
    pub account: String,
    pub complex_id: Option<String>,
    pub included: bool,
    pub to_pay_kopecks: i64,
}

/// The request's lines, as the confirmation of who ate judges them.
pub fn line_states(c: &mut DbConnection, id: &str) -> Result<Vec<LineState>, StorageError> {
    let rows: Vec<(String, Option<String>, bool, i64)> = request_lines::table
        .filter(request_lines::request_id.eq(id))
        .select((
            request_lines::account,
            request_lines::complex_id,
            request_lines::included,
            request_lines::to_pay_kopecks,
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(
            |(account, complex_id, included, to_pay_kopecks)| LineState {
                account,
                complex_id,
                included,
                to_pay_kopecks,
            },
        )
        .collect())
}

/// Records whether a student ate, and whether the line now counts.
pub fn set_ate(
    c: &mut DbConnection,
    id: &str,
    account: &str,
    ate: bool,
    included: bool,
) -> Result<(), StorageError> {
    diesel::update(request_lines::table.find((id, account)))
        .set((
            request_lines::ate.eq(ate),
            request_lines::included.eq(included),
        ))
        .execute(c)?;
    Ok(())
}

/// Marks the request confirmed by `who` at `at`.
pub fn confirm(
    c: &mut DbConnection,
    id: &str,
    who: &str,
    at: NaiveDateTime,
) -> Result<(), StorageError> {
    diesel::update(meal_requests::table.find(id))
        .set((
            meal_requests::confirmed_by.eq(who),
            meal_requests::confirmed_at.eq(at),
        ))
        .execute(c)?;
    Ok(())
}

/// The ids of a class's requests of a day, by meal time.
pub fn class_request_ids(
    c: &mut DbConnection,
    class: &str,
    day: NaiveDate,
) -> Result<Vec<String>, StorageError> {
    Ok(meal_requests::table
        .filter(meal_requests::class_id.eq(class))
        .filter(meal_requests::date.eq(day))
        .order(meal_requests::meal_time)
        .select(meal_requests::id)
        .load(c)?)
}

/// The ids of a school's requests of a day.
pub fn requests_of_school_day(
    c: &mut DbConnection,
    school: &str,
    day: NaiveDate,
) -> Result<Vec<String>, StorageError> {
    Ok(meal_requests::table
        .filter(meal_requests::school_id.eq(school))
        .filter(meal_requests::date.eq(day))
        .order((meal_requests::class_id, meal_requests::meal_time))
        .select(meal_requests::id)
        .load(c)?)
}

/// Every request of a day, by school, class and meal time.
pub fn requests_of_day(
    c: &mut DbConnection,
    day: NaiveDate,
) -> Result<Vec<MealRequest>, StorageError> {
    Ok(meal_requests::table
        .filter(meal_requests::date.eq(day))
        .order((
            meal_requests::school_id,
            meal_requests::class_id,
            meal_requests::meal_time,
        ))
        .select(MealRequest::as_select())
        .load(c)?)
}

/// Records the marks of students of `class` (the latest mark wins); returns the
/// accounts that are not in the class, which are left out.
pub fn mark_attendance(
    conn: &mut DbConnection,
    class: &str,
    date: NaiveDate,
    marks: &[(String, bool)],
    source: &str,
    at: chrono::NaiveDateTime,
) -> Result<Vec<String>, StorageError> {
    let members: std::collections::HashSet<String> = students::table
        .filter(students::class_id.eq(class))
        .select(students::account)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let mut unknown = Vec::new();
    // Rows taken in account order (stable: a student marked twice keeps the
    // order of the marks, the latest wins).
    let mut ordered: Vec<&(String, bool)> = marks.iter().collect();
    ordered.sort_by(|a, b| a.0.cmp(&b.0));
    for (account, present) in ordered {
        if !members.contains(account) {
            unknown.push(account.clone());
            continue;
        }
        let n = diesel::update(attendance::table.find((account, date)))
            .set((
                attendance::present.eq(*present),
                attendance::source.eq(source),
                attendance::marked_at.eq(at),
            ))
            .execute(conn)?;
        if n == 0 {
            diesel::insert_into(attendance::table)
                .values((
                    attendance::account.eq(account),
                    attendance::date.eq(date),
                    attendance::present.eq(*present),
                    attendance::source.eq(source),
                    attendance::marked_at.eq(at),
                ))
                .execute(conn)?;
        }
    }
    Ok(unknown)
}
