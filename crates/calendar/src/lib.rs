//! Tyumen local time, an injectable clock and the Russian production
//! calendar (производственный календарь: the official list of working days,
//! days off and shortened pre-holiday days).

mod clock;
mod production;

pub use clock::{
    in_tyumen, local_to_utc, tyumen_iso, Clock, FixedClock, MovingClock, SystemClock, TYUMEN,
};
pub use production::{CalendarError, ProductionCalendar};
