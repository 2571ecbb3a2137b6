//! Tyumen time zone and clocks.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Time zone of Tyumen. Tyumen has no zone of its own in the tz database: it
/// keeps Yekaterinburg time, `Asia/Yekaterinburg`, UTC+5 all year with no
/// daylight saving time (since 2014-10-26).
pub const TYUMEN: Tz = chrono_tz::Asia::Yekaterinburg;

/// Source of the current time. Code takes a `Clock` instead of calling
/// `Utc::now()` so tests can fix and move time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// The current instant in Tyumen time.
    fn now_local(&self) -> DateTime<Tz> {
        self.now().with_timezone(&TYUMEN)
    }

    /// Today's date in Tyumen, which is what "today" means to users and to
    /// the production calendar, not the UTC date.
    fn today(&self) -> NaiveDate {
        self.now_local().date_naive()
    }
}

/// The real system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A settable clock for tests. Clones share the same time, so a test can
/// keep one clone and move time for the code under test that holds another.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<Mutex<DateTime<Utc>>>);

impl FixedClock {
    /// A clock standing at `now`.
    pub fn new(now: DateTime<Utc>) -> FixedClock {
        FixedClock(Arc::new(Mutex::new(now)))
    }

    /// A clock standing at `local`, read as Tyumen wall-clock time.
    pub fn at_local(local: NaiveDateTime) -> FixedClock {
        FixedClock::new(local_to_utc(local))
    }

    /// Moves the clock (and all its clones) to `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.lock() = now;
    }

    /// Moves the clock (and all its clones) by `by`, which may be negative.
    pub fn advance(&self, by: Duration) {
        let mut guard = self.lock();
        *guard += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A panic while holding the lock cannot leave a DateTime half
        // written, so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

/// A clock that starts at a chosen instant and runs `speed` times as fast as
/// real time: a trainer, a demo or an integrator's test contour walks a
/// fortnight of school days in minutes (`portal serve --clock … --speed N`).
#[derive(Debug, Clone, Copy)]
pub struct MovingClock {
    started: DateTime<Utc>,
    at: DateTime<Utc>,
    speed: u32,
}

impl MovingClock {
    /// A clock reading `at` now and moving on `speed` seconds per real second.
    pub fn new(at: DateTime<Utc>, speed: u32) -> MovingClock {
        MovingClock {
            started: Utc::now(),
            at,
            speed: speed.max(1),
        }
    }

    /// The instant this clock reads when the real clock reads `real`.
    pub fn at_real(&self, real: DateTime<Utc>) -> DateTime<Utc> {
        let elapsed = (real - self.started).num_milliseconds();
        self.at + Duration::milliseconds(elapsed.saturating_mul(i64::from(self.speed)))
    }
}

impl Clock for MovingClock {
    fn now(&self) -> DateTime<Utc> {
        self.at_real(Utc::now())
    }
}

/// A stored UTC timestamp (the naive form both databases keep) in Tyumen time.
pub fn in_tyumen(utc: NaiveDateTime) -> DateTime<Tz> {
    utc.and_utc().with_timezone(&TYUMEN)
}

/// A stored UTC timestamp as Tyumen time with its offset
/// (`2026-05-12T23:00:00+05:00`), the form the APIs answer with.
pub fn tyumen_iso(utc: NaiveDateTime) -> String {
    in_tyumen(utc).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// Converts Tyumen wall-clock time to UTC.
///
/// Tyumen has had a fixed UTC+5 offset since 2014, so every local time maps
/// to exactly one instant. For historical times that fell into a
/// daylight-saving change the earlier instant is taken for a repeated hour,
/// and a skipped hour is read with the offset in force just before the gap.
pub fn local_to_utc(local: NaiveDateTime) -> DateTime<Utc> {
    match TYUMEN.from_local_datetime(&local).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => {
            // A day earlier is safely before the gap whichever way the
            // naive time is read, so its offset is the pre-gap one.
            let before_gap = local - Duration::days(1);
            let offset = TYUMEN.offset_from_utc_datetime(&before_gap).fix();
            Utc.from_utc_datetime(&(local - Duration::seconds(i64::from(offset.local_minus_utc()))))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_moving_clock_starts_where_asked_and_runs_speed_times_as_fast() {
        let clock = MovingClock::new(utc("2026-05-12 05:00"), 60);
        let started = clock.started;
        assert_eq!(clock.at_real(started), utc("2026-05-12 05:00"));
        assert_eq!(
            clock.at_real(started + Duration::seconds(90)),
            utc("2026-05-12 06:30")
        );
        let now = clock.now();
        assert!(now >= utc("2026-05-12 05:00") && now < utc("2026-05-12 06:00"));
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        local(s).and_utc()
    }

    #[test]
    fn tyumen_is_utc_plus_5_all_year() {
        assert_eq!(
            local_to_utc(local("2026-01-15 12:00")),
            utc("2026-01-15 07:00")
        );
        assert_eq!(
            local_to_utc(local("2026-07-15 12:00")),
            utc("2026-07-15 07:00")
        );
        // 2011-03-27 02:00–03:00 was skipped (last spring-forward, UTC+5 → +6).
        assert_eq!(
            local_to_utc(local("2011-03-27 02:30")),
            utc("2011-03-26 21:30")
        );
    }

    #[test]
    fn fixed_clock_local_date_and_advance() {
        let clock = FixedClock::at_local(local("2026-05-08 23:30"));
        assert_eq!(clock.now(), utc("2026-05-08 18:30"));
        assert_eq!(clock.today(), NaiveDate::from_ymd_opt(2026, 5, 8).unwrap());
        let shared = clock.clone();
        clock.advance(Duration::hours(1));
        // Still 8 May in UTC, already 9 May in Tyumen.
        assert_eq!(shared.now(), utc("2026-05-08 19:30"));
        assert_eq!(shared.today(), NaiveDate::from_ymd_opt(2026, 5, 9).unwrap());
        assert_eq!(shared.now_local().naive_local(), local("2026-05-09 00:30"));
        shared.set(utc("2027-01-01 00:00"));
        assert_eq!(clock.now(), utc("2027-01-01 00:00"));
        clock.advance(Duration::minutes(-1));
        assert_eq!(shared.now(), utc("2026-12-31 23:59"));
    }

    #[test]
    fn clocks_work_as_trait_objects() {
        let clocks: Vec<Arc<dyn Clock>> = vec![
            Arc::new(SystemClock),
            Arc::new(FixedClock::new(utc("2026-03-01 00:00"))),
        ];
        assert!(clocks[0].now() > utc("2025-01-01 00:00"));
        assert_eq!(
            clocks[1].now_local().naive_local(),
            local("2026-03-01 05:00")
        );
    }
}
