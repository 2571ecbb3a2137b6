//! The rules of the meal module, free of storage: what a meal costs a parent,
//! when an order locks, when a request freezes, who is excluded for credit, when
//! a day closes.

pub mod catalog;
pub mod close;
pub mod orders;
pub mod requests;

use calendar::ProductionCalendar;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use primitives::Money;
use serde::{Deserialize, Serialize};

/// How far ahead parents order: the next two weeks.
pub const ORDER_HORIZON_DAYS: i64 = 14;
/// Orders lock this many working days before the meal day.
pub const LOCK_WORKING_DAYS: i32 = 5;
/// A request is formed no later than this before the meal time.
pub const REQUEST_LEAD: Duration = Duration::hours(1);
/// A day's menu must offer parents at least this many complexes.
pub const MIN_COMPLEXES: usize = 2;

/// The kinds of meal a school serves, in the order of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MealKind {
    Breakfast,
    Lunch,
    Snack,
}

impl MealKind {
    pub const ALL: [MealKind; 3] = [MealKind::Breakfast, MealKind::Lunch, MealKind::Snack];

    pub fn as_str(self) -> &'static str {
        match self {
            MealKind::Breakfast => "breakfast",
            MealKind::Lunch => "lunch",
            MealKind::Snack => "snack",
        }
    }

    pub fn parse(s: &str) -> Option<MealKind> {
        MealKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How a ПЧВР category reimburses a meal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateKind {
    /// A share of the complex price, in basis points (10000 = 100 %).
    Percent,
    /// A fixed sum per meal, in kopecks, at most the complex price.
    Fixed,
}

impl RateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RateKind::Percent => "percent",
            RateKind::Fixed => "fixed",
        }
    }
    pub fn parse(s: &str) -> Option<RateKind> {
        match s {
            "percent" => Some(RateKind::Percent),
            "fixed" => Some(RateKind::Fixed),
            _ => None,
        }
    }
}

/// The part of a complex's price the budget pays. A percentage is rounded to
/// the kopeck, half away from zero; neither kind pays more than the price.
pub fn reimbursement(price: Money, kind: RateKind, value: i64) -> Money {
    let price_k = price.kopecks();
    let k = match kind {
        RateKind::Fixed => value.min(price_k),
        RateKind::Percent => {
            let bp = value.clamp(0, 10_000);
            // price_k · bp / 10000, rounded half up (both are non-negative).
            let scaled = price_k.saturating_mul(bp);
            ((scaled + 5_000) / 10_000).min(price_k)
        }
    };
    Money::from_kopecks(k.max(0))
}

/// What one meal costs: the complex's full price, the reimbursed part, the
/// additional items (always at full price), and what the parent pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MealPrice {
    pub price: Money,
    pub reimbursed: Money,
    pub extras: Money,
    pub to_pay: Money,
}

impl MealPrice {
    pub fn new(price: Money, reimbursed: Money, extras: Money) -> MealPrice {
        MealPrice {
            price,
            reimbursed,
            extras,
            to_pay: Money::from_kopecks(price.kopecks() - reimbursed.kopecks() + extras.kopecks()),
        }
    }
}

/// The first day on which a meal day's order can no longer be changed: five
/// working days before it (production calendar). From that day on, the order
/// stands.
pub fn lock_date(
    calendar: &ProductionCalendar,
    meal_day: NaiveDate,
) -> Result<NaiveDate, calendar::CalendarError> {
    calendar.add_working_days(meal_day, -LOCK_WORKING_DAYS)
}

/// Why an order for `meal_day` cannot be placed or changed `today`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderRefusal {
    #[error("{day} is outside the ordering window {first} – {last}")]
    OutsideWindow {
        day: NaiveDate,
        first: NaiveDate,
        last: NaiveDate,
    },
    #[error("{day} is not a school day")]
    NotSchoolDay { day: NaiveDate },
    #[error("the order for {day} locked on {lock}, 5 working days before the meal day")]
    Locked { day: NaiveDate, lock: NaiveDate },
    #[error("the production calendar does not cover {0}")]
    Calendar(String),
}

/// Whether an order for `meal_day` may be placed or changed on `today`: the day
/// is a school (working) day within the next two weeks, and its lock has not
/// come yet.
pub fn may_order(
    calendar: &ProductionCalendar,
    today: NaiveDate,
    meal_day: NaiveDate,
) -> Result<(), OrderRefusal> {
    let first = today + Duration::days(1);
    let last = today + Duration::days(ORDER_HORIZON_DAYS);
    if meal_day < first || meal_day > last {
        return Err(OrderRefusal::OutsideWindow {
            day: meal_day,
            first,
            last,
        });
    }
    let cal = |e: calendar::CalendarError| OrderRefusal::Calendar(e.to_string());
    if !calendar.is_working_day(meal_day).map_err(cal)? {
        return Err(OrderRefusal::NotSchoolDay { day: meal_day });
    }
    let lock = lock_date(calendar, meal_day).map_err(cal)?;
    if today >= lock {
        return Err(OrderRefusal::Locked {
            day: meal_day,
            lock,
        });
    }
    Ok(())
}

/// The last moment a request for a meal at `starts_at` on `day` may be formed.
pub fn request_deadline(day: NaiveDate, starts_at: NaiveTime) -> NaiveDateTime {
    day.and_time(starts_at) - REQUEST_LEAD
}

/// The moment `day` closes (Tyumen local time).
pub fn close_moment(day: NaiveDate, close_at: NaiveTime) -> NaiveDateTime {
    day.and_time(close_at)
}

/// The latest day whose close moment has come at local time `now`.
pub fn latest_closable(now: NaiveDateTime, close_at: NaiveTime) -> NaiveDate {
    if now.time() >= close_at {
        now.date()
    } else {
        now.date() - Duration::days(1)
    }
}

/// Whether a student with `balance`, already committed to `pending` (meals
/// requested and not yet written off), may have a meal costing `to_pay` when the
/// school allows `credit` below zero. Exactly down to −credit is allowed.
pub fn credit_exclusion(
    balance: Money,
    pending: Money,
    to_pay: Money,
    credit: Money,
) -> Option<String> {
    if to_pay.kopecks() <= 0 {
        return None;
    }
    let after = balance.kopecks() - pending.kopecks() - to_pay.kopecks();
    if after >= -credit.kopecks() {
        None
    } else {
        Some(format!(
            "balance {balance} less {pending} already requested and {to_pay} for this meal {}",
            contracts::payments::below_credit_limit(Money::from_kopecks(after), credit)
        ))
    }
}

/// How much more money the orders need: `ordered − (balance + credit)`, or zero.
pub fn shortfall(ordered: Money, balance: Money, credit: Money) -> Money {
    let missing = ordered.kopecks() - balance.kopecks() - credit.kopecks();
    Money::from_kopecks(missing.max(0))
}

/// Age in full years on `day`.
pub fn age_on(birth: NaiveDate, day: NaiveDate) -> i32 {
    let mut age = day.year() - birth.year();
    if (day.month(), day.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// The idempotency key of one student's meal debit: `<account>:<date>:<meal time>`.
pub fn debit_key(account: &str, date: NaiveDate, meal_time: &str) -> String {
    format!("{account}:{date}:{meal_time}")
}

/// Parses `HH:MM`.
pub fn parse_clock(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }
    fn d(y: i32, mo: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, mo, day).unwrap()
    }
    fn cal() -> ProductionCalendar {
        ProductionCalendar::load_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/calendar"
        ))
        .unwrap()
    }

    #[test]
    fn meal_kinds_parse_and_sort_in_the_order_of_the_day() {
        for k in MealKind::ALL {
            assert_eq!(MealKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(MealKind::parse("dinner"), None);
        let mut kinds = vec!["snack", "breakfast", "lunch"];
        kinds.sort_by_key(|k| MealKind::parse(k));
        assert_eq!(kinds, ["breakfast", "lunch", "snack"]);
    }

    #[test]
    fn reimbursement_rounds_to_the_kopeck_and_never_exceeds_the_price() {
        assert_eq!(
            reimbursement(m("151.15"), RateKind::Percent, 5_000),
            m("75.58")
        );
        assert_eq!(
            reimbursement(m("151.13"), RateKind::Percent, 5_000),
            m("75.57")
        );
        assert_eq!(
            reimbursement(m("150.00"), RateKind::Percent, 10_000),
            m("150.00")
        );
        assert_eq!(
            reimbursement(m("150.00"), RateKind::Percent, 12_000),
            m("150.00")
        );
        assert_eq!(
            reimbursement(m("150.00"), RateKind::Fixed, 8_050),
            m("80.50")
        );
        assert_eq!(
            reimbursement(m("60.00"), RateKind::Fixed, 8_050),
            m("60.00")
        );
        let p = MealPrice::new(m("150.00"), m("80.50"), m("25.10"));
        assert_eq!(p.to_pay, m("94.60"));
    }

    #[test]
    fn orders_lock_five_working_days_before_across_the_may_holidays() {
        let cal = cal();
        // 2026: 1–3 May and 9–11 May are days off. The lock of Tuesday 12 May is
        // five working days back: 8, 7, 6, 5, 4 May → 4 May.
        assert_eq!(lock_date(&cal, d(2026, 5, 12)).unwrap(), d(2026, 5, 4));
        assert!(may_order(&cal, d(2026, 5, 3), d(2026, 5, 12)).is_ok());
        assert_eq!(
            may_order(&cal, d(2026, 5, 4), d(2026, 5, 12)),
            Err(OrderRefusal::Locked {
                day: d(2026, 5, 12),
                lock: d(2026, 5, 4)
            })
        );
        assert!(matches!(
            may_order(&cal, d(2026, 4, 27), d(2026, 5, 11)),
            Err(OrderRefusal::NotSchoolDay { .. })
        ));
        assert!(matches!(
            may_order(&cal, d(2026, 4, 27), d(2026, 5, 12)),
            Err(OrderRefusal::OutsideWindow { .. })
        ));
        assert!(matches!(
            may_order(&cal, d(2026, 4, 27), d(2026, 4, 27)),
            Err(OrderRefusal::OutsideWindow { .. })
        ));
    }

    #[test]
    fn credit_allows_exactly_down_to_the_limit() {
        assert_eq!(
            credit_exclusion(m("10.00"), m("0"), m("110.00"), m("100.00")),
            None
        );
        assert_eq!(
            credit_exclusion(m("10.00"), m("19.75"), m("145.00"), m("100.00")).as_deref(),
            Some(
                "balance 10.00 less 19.75 already requested and 145.00 for this meal \
                 would be -154.75, below the credit limit of -100.00"
            )
        );
        assert!(credit_exclusion(m("10.00"), m("0"), m("110.01"), m("100.00")).is_some());
        assert!(credit_exclusion(m("100.00"), m("50.00"), m("60.00"), m("0")).is_some());
        assert_eq!(credit_exclusion(m("-500.00"), m("0"), m("0"), m("0")), None);
        assert_eq!(shortfall(m("300.00"), m("120.00"), m("100.00")), m("80.00"));
        assert_eq!(shortfall(m("200.00"), m("120.00"), m("100.00")), m("0"));
    }

    #[test]
    fn the_request_freezes_an_hour_before_and_the_day_closes_at_23() {
        let t = parse_clock("12:30").unwrap();
        assert_eq!(
            request_deadline(d(2026, 5, 12), t),
            d(2026, 5, 12).and_hms_opt(11, 30, 0).unwrap()
        );
        let close = parse_clock("23:00").unwrap();
        let at = |h, mi| d(2026, 5, 12).and_hms_opt(h, mi, 0).unwrap();
        assert_eq!(latest_closable(at(22, 59), close), d(2026, 5, 11));
        assert_eq!(latest_closable(at(23, 0), close), d(2026, 5, 12));
        assert_eq!(age_on(d(2015, 5, 13), d(2026, 5, 12)), 10);
        assert_eq!(age_on(d(2015, 5, 12), d(2026, 5, 12)), 11);
    }
}
