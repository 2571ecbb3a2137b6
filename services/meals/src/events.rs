//! Everything the meals service publishes, built in one place: a reader
//! looking for what meals puts on the bus finds it here, not in handlers. Each
//! event goes into the outbox in the transaction of the change it reports.

use bus::{BusError, Envelope};
use contracts::meals::{AccountOpened, ClassRequestReady, DebitRequested};
use contracts::Contract;

fn envelope<C: Contract>(body: &C) -> Result<Envelope, BusError> {
    Envelope::json(C::TOPIC, C::KIND, body)
}

/// A student as payments should know it, sent on every change that matters
/// (registered, moved to another class, the school's organizer linked).
pub fn account_opened(event: &AccountOpened) -> Result<Envelope, BusError> {
    envelope(event)
}

/// The write-off of one meal at the day's close. The message id is the debit
/// key's, so a close that runs again publishes the same message, which
/// payments takes once.
pub fn debit_requested(request: &DebitRequested) -> Result<Envelope, BusError> {
    Ok(envelope(request)?.with_id(format!("meal-debit:{}", request.key)))
}

/// A class request for the organizer's accounting system (pushed by the
/// gateway to caterers who registered a service): `reason` is `formed` or
/// `closed`. `None` when the request is gone or its class has no organizer.
pub fn class_request_ready(
    conn: &mut storage::DbConnection,
    request_id: &str,
    reason: &str,
) -> Result<Option<Envelope>, crate::store::StoreError> {
    let Some(view) = crate::api::requests::view(conn, request_id)? else {
        return Ok(None);
    };
    let (Some(school), Some(class)) = (
        crate::store::school(conn, &view.school)?,
        crate::store::class(conn, &view.class)?,
    ) else {
        return Ok(None);
    };
    let Some(organizer) = crate::store::organizer_of(conn, &school, &class)? else {
        return Ok(None);
    };
    let date = chrono::NaiveDate::parse_from_str(&view.date, "%Y-%m-%d")
        .map_err(|e| bus::BusError::Encode(format!("request date {}: {e}", view.date)))?;
    let event = ClassRequestReady {
        organizer,
        school: view.school.clone(),
        date,
        reason: reason.to_string(),
        request: serde_json::to_value(&view).map_err(|e| bus::BusError::Encode(e.to_string()))?,
    };
    Ok(Some(
        envelope(&event)?.with_id(format!("class-request:{request_id}:{reason}")),
    ))
}
