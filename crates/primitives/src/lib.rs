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
