//! Everything the payments service publishes, built in one place: a reader
//! looking for what payments puts on the bus finds it here, not in handlers.
//! Each event goes into the outbox in the transaction of the change it reports.

use bus::{BusError, Envelope};
use contracts::payments::{BalanceChanged, DebitResult};
use contracts::Contract;

fn envelope<C: Contract>(body: &C) -> Result<Envelope, BusError> {
    Envelope::json(C::TOPIC, C::KIND, body)
}

/// A personal account's balance right after a movement (meals keeps it for
/// requests and parents' shortfalls).
pub fn balance_changed(event: &BalanceChanged) -> Result<Envelope, BusError> {
    envelope(event)
}

/// The answer to one meal debit: written off, or refused with the reason.
pub fn debit_result(result: &DebitResult) -> Result<Envelope, BusError> {
    envelope(result)
}
