//! Everything the meals service publishes, built in one place: a reader
//! looking for what meals puts on the bus finds it here, not in handlers. Each
//! event goes into the outbox in the transaction of the change it reports.

use bus::{BusError, Envelope};
use contracts::meals::{AccountOpened, DebitRequested};
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
