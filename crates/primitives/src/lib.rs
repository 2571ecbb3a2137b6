//! Domain primitives shared by the services: money in rubles and kopecks and
//! validated Russian identifiers.
//!
//! Every type here is validated when it is built, so a value that exists is
//! valid; serde deserialization goes through the same parsers, which makes bad
//! input fail at the edge of the system instead of deep inside it.

mod ids;
mod money;

pub use ids::{AccountNumber, Bik, Email, IdError, Inn, Kpp, Ogrn, Phone, Snils, Uin};
pub use money::{Money, MoneyError};

/// Whether `id` has the form of the platform's plain identifiers (personal
/// account ids, school, class and organizer codes): 1–64 Latin letters,
/// digits, `-`, `_`, `.`. The services agree on it, so an id one accepts the
/// others accept too.
pub fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}
