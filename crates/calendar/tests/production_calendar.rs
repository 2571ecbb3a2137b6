//! Production calendar against the real files in deploy/calendar.

#![allow(clippy::unwrap_used)]

use calendar::{CalendarError, ProductionCalendar, TYUMEN};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Weekday};
use chrono_tz::Tz;

fn real() -> ProductionCalendar {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/calendar");
    ProductionCalendar::load_dir(dir).unwrap()
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Tyumen wall-clock time.
fn t(s: &str) -> DateTime<Tz> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    TYUMEN.from_local_datetime(&naive).single().unwrap()
}

fn year_missing(r: Result<impl std::fmt::Debug, CalendarError>) -> i32 {
    match r {
        Err(CalendarError::YearMissing(y)) => y,
        other => panic!("expected YearMissing, got {other:?}"),
    }
}

#[test]
fn loads_the_three_years() {
    assert_eq!(real().years(), vec![2025, 2026, 2027]);
}

#[test]
fn yearly_totals_match_official_figures() {
    let cal = real();
    // 2025 and 2026: 247 working days, 1972 hours of a 40-hour week, as the
    // files' headers cite. The 2027 header cites no totals; 247 / 1972 is
    // what its data gives.
    for year in [2025, 2026, 2027] {
        let first = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
        let next = NaiveDate::from_ymd_opt(year + 1, 1, 1).unwrap();
        assert_eq!(
            cal.working_days_between(first, next).unwrap(),
            247,
            "{year}"
        );
        let hours: u32 = first
            .iter_days()
            .take_while(|x| *x < next)
            .map(|x| cal.working_day_hours(x).unwrap())
            .sum();
        assert_eq!(hours, 1972, "{year}");
        // The SLA timer agrees over the whole year, and does not need the
        // next year's file for an interval ending at midnight.
        let start = t(&format!("{year}-01-01 00:00"));
        let end = t(&format!("{}-01-01 00:00", year + 1));
        assert_eq!(
            cal.working_hours_between(start, end).unwrap(),
            Duration::hours(1972),
            "{year}"
        );
    }
}

#[test]
fn may_holidays_2026() {
    let cal = real();
    assert_eq!(d("2026-05-01").weekday(), Weekday::Fri);
    assert!(!cal.is_working_day(d("2026-05-01")).unwrap());
    for day in 4..=8 {
        let date = NaiveDate::from_ymd_opt(2026, 5, day).unwrap();
        assert!(cal.is_working_day(date).unwrap(), "{date}");
    }
    assert!(cal.is_short_day(d("2026-05-08")).unwrap());
    assert_eq!(cal.working_day_hours(d("2026-05-08")).unwrap(), 7);
    assert_eq!(cal.working_day_hours(d("2026-05-07")).unwrap(), 8);
    assert_eq!(cal.working_day_hours(d("2026-05-09")).unwrap(), 0);
    assert_eq!(d("2026-05-11").weekday(), Weekday::Mon);
    assert!(!cal.is_working_day(d("2026-05-11")).unwrap());
    assert_eq!(cal.working_day_hours(d("2026-05-11")).unwrap(), 0);
    assert!(cal.is_working_day(d("2026-05-12")).unwrap());
    assert_eq!(
        cal.working_days_between(d("2026-05-01"), d("2026-06-01"))
            .unwrap(),
        19
    );
}

#[test]
fn add_working_days_across_may_holidays() {
    let cal = real();
    // Back from Tue 12 May: 11 May is off, then 8, 7, 6, 5, 4 May.
    assert_eq!(
        cal.add_working_days(d("2026-05-12"), -5).unwrap(),
        d("2026-05-04")
    );
    assert_eq!(
        cal.add_working_days(d("2026-05-12"), -1).unwrap(),
        d("2026-05-08")
    );
    assert_eq!(
        cal.add_working_days(d("2026-04-30"), 1).unwrap(),
        d("2026-05-04")
    );
    assert_eq!(
        cal.add_working_days(d("2026-05-08"), 1).unwrap(),
        d("2026-05-12")
    );
    assert_eq!(
        cal.add_working_days(d("2026-05-04"), -1).unwrap(),
        d("2026-04-30")
    );
    // From a day off, the count starts at the next working day.
    assert_eq!(
        cal.add_working_days(d("2026-05-01"), 1).unwrap(),
        d("2026-05-04")
    );
    assert_eq!(
        cal.add_working_days(d("2026-05-01"), 0).unwrap(),
        d("2026-05-01")
    );
    assert_eq!(
        cal.add_working_days(d("2026-05-06"), 0).unwrap(),
        d("2026-05-06")
    );
    // Round trip over the whole May.
    let later = cal.add_working_days(d("2026-04-28"), 10).unwrap();
    assert_eq!(later, d("2026-05-14"));
    assert_eq!(cal.add_working_days(later, -10).unwrap(), d("2026-04-28"));
}

#[test]
fn add_working_days_across_new_year() {
    let cal = real();
    // 31 Dec 2025 and 1–9 Jan 2026 are off.
    assert_eq!(
        cal.add_working_days(d("2025-12-30"), 1).unwrap(),
        d("2026-01-12")
    );
    assert_eq!(
        cal.add_working_days(d("2026-01-12"), -1).unwrap(),
        d("2025-12-30")
    );
    assert_eq!(
        cal.working_days_between(d("2025-12-30"), d("2026-01-13"))
            .unwrap(),
        2
    );
    // 31 Dec 2027 is off, so the next working day is in 2028: no file.
    assert_eq!(year_missing(cal.add_working_days(d("2027-12-30"), 1)), 2028);
    assert_eq!(
        year_missing(cal.add_working_days(d("2025-01-09"), -5)),
        2024
    );
}

#[test]
fn working_days_between_is_half_open_and_antisymmetric() {
    let cal = real();
    assert_eq!(
        cal.working_days_between(d("2026-05-01"), d("2026-05-12"))
            .unwrap(),
        5
    );
    assert_eq!(
        cal.working_days_between(d("2026-05-12"), d("2026-05-01"))
            .unwrap(),
        -5
    );
    assert_eq!(
        cal.working_days_between(d("2026-05-04"), d("2026-05-05"))
            .unwrap(),
        1
    );
    assert_eq!(
        cal.working_days_between(d("2026-05-04"), d("2026-05-04"))
            .unwrap(),
        0
    );
    // An empty interval needs no data.
    assert_eq!(
        cal.working_days_between(d("2030-01-01"), d("2030-01-01"))
            .unwrap(),
        0
    );
}

#[test]
fn transferred_working_saturdays() {
    let cal = real();
    // 2025: Saturday 1 Nov works (short day) for Monday 3 Nov.
    assert_eq!(d("2025-11-01").weekday(), Weekday::Sat);
    assert!(cal.is_working_day(d("2025-11-01")).unwrap());
    assert_eq!(cal.working_day_hours(d("2025-11-01")).unwrap(), 7);
    assert!(!cal.is_working_day(d("2025-11-02")).unwrap());
    assert!(!cal.is_working_day(d("2025-11-03")).unwrap());
    assert_eq!(
        cal.add_working_days(d("2025-10-31"), 1).unwrap(),
        d("2025-11-01")
    );
    assert_eq!(
        cal.add_working_days(d("2025-11-01"), 1).unwrap(),
        d("2025-11-05")
    );
    // 2027: Saturday 20 Feb works (short day) for Monday 22 Feb.
    assert_eq!(d("2027-02-20").weekday(), Weekday::Sat);
    assert!(cal.is_working_day(d("2027-02-20")).unwrap());
    assert_eq!(cal.working_day_hours(d("2027-02-20")).unwrap(), 7);
    assert!(!cal.is_working_day(d("2027-02-22")).unwrap());
    assert!(!cal.is_working_day(d("2027-02-23")).unwrap());
    // An ordinary Saturday is off.
    assert!(!cal.is_working_day(d("2027-02-27")).unwrap());
}

#[test]
fn working_hours_across_weekend_and_short_day() {
    let cal = real();
    // Thu 7 May 16:00–18:00 (2 h), Fri 8 May short day (4 h + 3 h),
    // weekend, Mon 11 May off, Tue 12 May 09:00–10:00 (1 h).
    assert_eq!(
        cal.working_hours_between(t("2026-05-07 16:00"), t("2026-05-12 10:00"))
            .unwrap(),
        Duration::hours(10)
    );
    // Fri 31 Oct 2025 17:00–18:00, working Sat 1 Nov (7 h), Sun, Mon 3 and
    // Tue 4 Nov off, Wed 5 Nov 09:00–10:00.
    assert_eq!(
        cal.working_hours_between(t("2025-10-31 17:00"), t("2025-11-05 10:00"))
            .unwrap(),
        Duration::hours(9)
    );
    // An ordinary weekend: Fri 17:00–18:00 and Mon 09:00–09:30.
    assert_eq!(
        cal.working_hours_between(t("2026-04-03 17:00"), t("2026-04-06 09:30"))
            .unwrap(),
        Duration::minutes(90)
    );
}

#[test]
fn working_hours_within_a_day() {
    let cal = real();
    let h = |a: &str, b: &str| cal.working_hours_between(t(a), t(b)).unwrap();
    assert_eq!(
        h("2026-04-01 00:00", "2026-04-02 00:00"),
        Duration::hours(8)
    );
    assert_eq!(
        h("2026-04-30 00:00", "2026-05-01 00:00"),
        Duration::hours(7)
    );
    assert_eq!(
        h("2026-04-30 16:30", "2026-04-30 23:00"),
        Duration::minutes(30)
    );
    assert_eq!(
        h("2026-04-01 13:30", "2026-04-01 14:30"),
        Duration::minutes(30)
    );
    assert_eq!(
        h("2026-04-01 12:00", "2026-04-01 15:00"),
        Duration::hours(2)
    );
    assert_eq!(h("2026-04-01 18:00", "2026-04-02 09:00"), Duration::zero());
    assert_eq!(h("2026-04-01 10:00", "2026-04-01 10:00"), Duration::zero());
    assert_eq!(
        h("2026-04-01 15:00", "2026-04-01 12:00"),
        Duration::hours(-2)
    );
    assert_eq!(h("2026-05-09 10:00", "2026-05-11 17:00"), Duration::zero());
}

#[test]
fn working_hours_converts_other_time_zones() {
    let cal = real();
    // 07:00 Moscow is 09:00 in Tyumen.
    let moscow = chrono_tz::Europe::Moscow
        .with_ymd_and_hms(2026, 4, 1, 7, 0, 0)
        .single()
        .unwrap();
    assert_eq!(
        cal.working_hours_between(moscow, t("2026-04-01 10:00"))
            .unwrap(),
        Duration::hours(1)
    );
}

#[test]
fn missing_years_are_errors() {
    let cal = real();
    assert_eq!(year_missing(cal.is_working_day(d("2024-12-31"))), 2024);
    assert_eq!(year_missing(cal.is_working_day(d("2028-01-03"))), 2028);
    assert_eq!(year_missing(cal.working_day_hours(d("2028-06-01"))), 2028);
    assert_eq!(year_missing(cal.add_working_days(d("2024-06-03"), 0)), 2024);
    assert_eq!(
        year_missing(cal.working_days_between(d("2024-12-30"), d("2025-01-10"))),
        2024
    );
    assert_eq!(
        year_missing(cal.working_hours_between(t("2027-12-30 10:00"), t("2028-01-10 10:00"))),
        2028
    );
    let msg = cal.is_working_day(d("2028-01-03")).unwrap_err().to_string();
    assert!(
        msg.contains("2028") && msg.contains("ru-2028.toml"),
        "{msg}"
    );
}

const GOOD_2026: &str = r#"
year = 2026
holidays = ["2026-05-01", "2026-05-11"]
working_weekends = []
short_days = ["2026-05-08"]
"#;

fn load_err(texts: &[&str]) -> String {
    ProductionCalendar::from_toml_strs(texts)
        .unwrap_err()
        .to_string()
}

#[test]
fn from_strings() {
    let cal = ProductionCalendar::from_toml_strs(&[GOOD_2026]).unwrap();
    assert_eq!(cal.years(), vec![2026]);
    assert!(!cal.is_working_day(d("2026-05-11")).unwrap());
    // A holiday on a weekend is redundant, not wrong.
    let weekend_holiday = r#"
year = 2026
holidays = ["2026-05-09"]
working_weekends = []
short_days = []
"#;
    let cal = ProductionCalendar::from_toml_strs(&[weekend_holiday]).unwrap();
    assert!(!cal.is_working_day(d("2026-05-09")).unwrap());
}

#[test]
fn rejects_inconsistent_files() {
    let outside = GOOD_2026.replace("\"2026-05-11\"", "\"2027-05-11\"");
    assert_eq!(
        load_err(&[&outside]),
        "production calendar file input #1: holidays entry 2027-05-11 is outside the file's year"
    );
    let weekday_transfer = GOOD_2026.replace(
        "working_weekends = []",
        "working_weekends = [\"2026-05-12\"]",
    );
    assert!(load_err(&[&weekday_transfer])
        .contains("working_weekends entry 2026-05-12 is not a Saturday or Sunday"));
    let both = GOOD_2026
        .replace(
            "working_weekends = []",
            "working_weekends = [\"2026-05-09\"]",
        )
        .replace("\"2026-05-11\"]", "\"2026-05-11\", \"2026-05-09\"]");
    assert!(
        load_err(&[&both]).contains("working_weekends entry 2026-05-09 is also listed in holidays")
    );
    let short_holiday = GOOD_2026.replace(
        "short_days = [\"2026-05-08\"]",
        "short_days = [\"2026-05-11\"]",
    );
    assert!(
        load_err(&[&short_holiday]).contains("short_days entry 2026-05-11 is listed in holidays")
    );
    let short_sunday = GOOD_2026.replace(
        "short_days = [\"2026-05-08\"]",
        "short_days = [\"2026-05-10\"]",
    );
    assert!(load_err(&[&short_sunday]).contains("short_days entry 2026-05-10 is a weekend day"));
    let dup = load_err(&[GOOD_2026, GOOD_2026]);
    assert_eq!(
        dup,
        "production calendar year 2026 is defined twice: in input #1 and in input #2"
    );
}

#[test]
fn rejects_malformed_files() {
    let bad_date = GOOD_2026.replace("\"2026-05-11\"", "\"2026-02-30\"");
    let msg = load_err(&[&bad_date]);
    assert!(
        msg.contains("input #1") && msg.contains("holidays"),
        "{msg}"
    );
    let typo = GOOD_2026.replace("short_days", "short_day");
    let msg = load_err(&[&typo]);
    assert!(
        msg.contains("input #1") && msg.contains("short_day"),
        "{msg}"
    );
    let missing = GOOD_2026.replace("working_weekends = []", "");
    assert!(load_err(&[&missing]).contains("working_weekends"));
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("calendar-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn load_dir_checks_names_and_ignores_other_files() {
    let dir = TempDir::new("names");
    std::fs::write(dir.0.join("ru-2026.toml"), GOOD_2026).unwrap();
    std::fs::write(dir.0.join("README.md"), "not a calendar").unwrap();
    std::fs::write(dir.0.join("ru-2026.toml.bak"), "garbage").unwrap();
    let cal = ProductionCalendar::load_dir(&dir.0).unwrap();
    assert_eq!(cal.years(), vec![2026]);

    std::fs::write(dir.0.join("ru-2027.toml"), GOOD_2026).unwrap();
    let msg = ProductionCalendar::load_dir(&dir.0)
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "production calendar file ru-2027.toml declares year = 2026, but its name says 2027"
    );
}

#[test]
fn load_dir_errors() {
    let empty = TempDir::new("empty");
    assert!(matches!(
        ProductionCalendar::load_dir(&empty.0),
        Err(CalendarError::NoFiles(_))
    ));
    let missing = empty.0.join("does-not-exist");
    assert!(matches!(
        ProductionCalendar::load_dir(&missing),
        Err(CalendarError::Io { .. })
    ));
    let broken = TempDir::new("broken");
    std::fs::write(broken.0.join("ru-2025.toml"), "year = ").unwrap();
    let msg = ProductionCalendar::load_dir(&broken.0)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("ru-2025.toml"), "{msg}");
}

#[test]
fn the_built_in_years_are_the_files() {
    let (built_in, files) = (ProductionCalendar::builtin(), real());
    assert_eq!(built_in.years(), files.years());
    let mut day = d("2025-01-01");
    while day <= d("2027-12-31") {
        assert_eq!(
            built_in.working_day_hours(day).unwrap(),
            files.working_day_hours(day).unwrap(),
            "{day}"
        );
        day += Duration::days(1);
    }
}

#[test]
fn a_directory_replaces_and_adds_years_over_the_built_in_ones() {
    let dir = std::env::temp_dir().join(format!("calendar-over-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/calendar");
    // 2026 with 2026-12-30 declared a holiday as well; 2028 as a copy of 2027's shape.
    let y2026 = std::fs::read_to_string(format!("{base}/ru-2026.toml"))
        .unwrap()
        .replace("\"2026-12-31\",", "\"2026-12-30\", \"2026-12-31\",");
    std::fs::write(dir.join("ru-2026.toml"), y2026).unwrap();
    std::fs::write(
        dir.join("ru-2028.toml"),
        "year = 2028\nholidays = []\nworking_weekends = []\nshort_days = []\n",
    )
    .unwrap();
    let calendar = ProductionCalendar::builtin_with_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(calendar.years(), vec![2025, 2026, 2027, 2028]);
    assert!(!calendar.is_working_day(d("2026-12-30")).unwrap());
    assert!(ProductionCalendar::builtin()
        .is_working_day(d("2026-12-30"))
        .unwrap());
    assert!(calendar.is_working_day(d("2028-01-03")).unwrap());
    // An empty directory setting is the built-in years alone; a missing directory is an error.
    assert_eq!(
        ProductionCalendar::builtin_with_dir("").unwrap().years(),
        vec![2025, 2026, 2027]
    );
    assert!(matches!(
        ProductionCalendar::builtin_with_dir("/nonexistent/calendar"),
        Err(CalendarError::Io { .. })
    ));
}
