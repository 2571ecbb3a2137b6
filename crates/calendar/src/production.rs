//! Production calendar loaded from per-year TOML files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::clock::TYUMEN;

/// Why the calendar could not be loaded or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The calendar has no file for this year. Callers get an error rather
    /// than a guess, because treating an unknown year as "weekdays only"
    /// silently breaks deadlines around holidays.
    #[error("production calendar has no data for year {0} (expected a file ru-{0}.toml)")]
    YearMissing(i32),
    /// The directory or a file in it could not be read.
    #[error("cannot read production calendar {path}: {source}")]
    Io {
        /// Directory or file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The directory has no `ru-YYYY.toml` file.
    #[error("production calendar directory {0} contains no ru-YYYY.toml files")]
    NoFiles(PathBuf),
    /// A file is not valid TOML or does not have the expected keys.
    #[error("production calendar file {file} cannot be parsed: {source}")]
    Parse {
        /// File name (or `input #N` for strings).
        file: String,
        /// Underlying error, with line and key.
        source: toml::de::Error,
    },
    /// The `year` inside a file differs from the year in its name.
    #[error(
        "production calendar file {file} declares year = {declared}, but its name says {named}"
    )]
    YearMismatch {
        /// File name.
        file: String,
        /// `year` in the file.
        declared: i32,
        /// Year in the file name.
        named: i32,
    },
    /// Two files describe the same year.
    #[error("production calendar year {year} is defined twice: in {first} and in {second}")]
    DuplicateYear {
        /// The year.
        year: i32,
        /// File loaded first.
        first: String,
        /// File loaded second.
        second: String,
    },
    /// An entry that is certainly wrong.
    #[error("production calendar file {file}: {list} entry {date} {reason}")]
    InvalidEntry {
        /// File name (or `input #N` for strings).
        file: String,
        /// `holidays`, `working_weekends` or `short_days`.
        list: &'static str,
        /// The entry.
        date: NaiveDate,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// One `ru-YYYY.toml` file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i32,
    holidays: Vec<NaiveDate>,
    working_weekends: Vec<NaiveDate>,
    short_days: Vec<NaiveDate>,
}

#[derive(Debug, Clone)]
struct YearData {
    source: String,
    holidays: BTreeSet<NaiveDate>,
    working_weekends: BTreeSet<NaiveDate>,
    short_days: BTreeSet<NaiveDate>,
}

const fn hm(h: u32, m: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(h, m, 0) {
        Some(t) => t,
        None => panic!("invalid constant time"),
    }
}

/// Start of the working day.
const DAY_START: NaiveTime = hm(9, 0);
/// Lunch break start.
const LUNCH_START: NaiveTime = hm(13, 0);
/// Lunch break end.
const LUNCH_END: NaiveTime = hm(14, 0);
/// End of a normal working day.
const DAY_END: NaiveTime = hm(18, 0);
/// End of a shortened pre-holiday day (one hour earlier).
const SHORT_DAY_END: NaiveTime = hm(17, 0);

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The Russian production calendar (производственный календарь): which days
/// are working days and which are shortened, year by year.
///
/// Loaded from files `ru-YYYY.toml`, one per year:
///
/// ```toml
/// year = 2026
/// holidays = ["2026-01-01"]          # Monday–Friday days that are days off
/// working_weekends = []              # Saturdays/Sundays that are working days
/// short_days = ["2026-04-30"]        # pre-holiday days shortened by one hour
/// ```
///
/// A day is a working day if it is Monday–Friday and not in `holidays`, or
/// if it is in `working_weekends`. Every query about a year without a file
/// fails with [`CalendarError::YearMissing`].
///
/// Working hours for SLA timers are 09:00–18:00 Tyumen time with a lunch
/// break 13:00–14:00 (8 h); on short days the day ends at 17:00 (7 h).
#[derive(Debug, Clone)]
pub struct ProductionCalendar {
    years: BTreeMap<i32, YearData>,
}

impl ProductionCalendar {
    /// Loads every `ru-YYYY.toml` in `dir`; other files are ignored. The
    /// `year` inside each file must match its name.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<ProductionCalendar, CalendarError> {
        let dir = dir.as_ref();
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CalendarError::Io { path, source }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(year) = year_from_file_name(&name) {
                files.push((name, year, entry.path()));
            }
        }
        if files.is_empty() {
            return Err(CalendarError::NoFiles(dir.to_path_buf()));
        }
        // Sorted so that errors (and duplicate detection) are reproducible.
        files.sort();
        let mut calendar = ProductionCalendar {
            years: BTreeMap::new(),
        };
        for (name, named, path) in files {
            let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
            let data = parse_year(&name, &text)?;
            if data.0 != named {
                return Err(CalendarError::YearMismatch {
                    file: name,
                    declared: data.0,
                    named,
                });
            }
            calendar.insert(data)?;
        }
        Ok(calendar)
    }

    /// The years compiled into the binary (`deploy/calendar/ru-YYYY.toml` at
    /// build time), so the platform starts from any directory.
    pub fn builtin() -> ProductionCalendar {
        let mut calendar = ProductionCalendar {
            years: BTreeMap::new(),
        };
        for (name, text) in BUILTIN {
            // The files are checked by this crate's tests; a broken one fails them.
            if let Ok(data) = parse_year(name, text) {
                calendar.years.insert(data.0, data.1);
            }
        }
        calendar
    }

    /// The compiled-in years, with every `ru-YYYY.toml` of `dir` replacing or
    /// adding its year: a region drops next year's file beside the binary
    /// without rebuilding it. An empty `dir` means the compiled-in years alone.
    pub fn builtin_with_dir(dir: impl AsRef<Path>) -> Result<ProductionCalendar, CalendarError> {
        let dir = dir.as_ref();
        let mut calendar = Self::builtin();
        if dir.as_os_str().is_empty() {
            return Ok(calendar);
        }
        let overrides = Self::load_dir(dir)?;
        calendar.years.extend(overrides.years);
        Ok(calendar)
    }

    /// Builds a calendar from TOML texts in the file format, for tests and
    /// embedded data. Errors name the text as `input #N` (1-based).
    pub fn from_toml_strs(texts: &[&str]) -> Result<ProductionCalendar, CalendarError> {
        let mut calendar = ProductionCalendar {
            years: BTreeMap::new(),
        };
        for (i, text) in texts.iter().enumerate() {
            calendar.insert(parse_year(&format!("input #{}", i + 1), text)?)?;
        }
        Ok(calendar)
    }

    fn insert(&mut self, (year, data): (i32, YearData)) -> Result<(), CalendarError> {
        if let Some(existing) = self.years.get(&year) {
            return Err(CalendarError::DuplicateYear {
                year,
                first: existing.source.clone(),
                second: data.source,
            });
        }
        self.years.insert(year, data);
        Ok(())
    }

    /// Years that have data, ascending.
    pub fn years(&self) -> Vec<i32> {
        self.years.keys().copied().collect()
    }

    fn year(&self, date: NaiveDate) -> Result<&YearData, CalendarError> {
        self.years
            .get(&date.year())
            .ok_or(CalendarError::YearMissing(date.year()))
    }

    /// True if `date` is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        let y = self.year(date)?;
        Ok(if is_weekend(date) {
            y.working_weekends.contains(&date)
        } else {
            !y.holidays.contains(&date)
        })
    }

    /// True if `date` is a shortened pre-holiday working day.
    pub fn is_short_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        Ok(self.year(date)?.short_days.contains(&date))
    }

    /// Working hours of `date`: 8, 7 on a short day, 0 on a day off.
    pub fn working_day_hours(&self, date: NaiveDate) -> Result<u32, CalendarError> {
        Ok(
            match (self.is_working_day(date)?, self.is_short_day(date)?) {
                (false, _) => 0,
                (true, true) => 7,
                (true, false) => 8,
            },
        )
    }

    /// The `n`-th working day after `date` (before it if `n` is negative);
    /// `date` itself is not counted, so `add_working_days(friday, 1)` is the
    /// next working Monday, whether or not `date` is a working day.
    ///
    /// `n = 0` returns `date` unchanged, even if it is a day off (its year
    /// must still be covered); use [`ProductionCalendar::is_working_day`] to
    /// roll to a working day first if that is what a rule needs.
    pub fn add_working_days(&self, date: NaiveDate, n: i32) -> Result<NaiveDate, CalendarError> {
        self.year(date)?;
        let forward = n > 0;
        let mut remaining = n.unsigned_abs();
        let mut current = date;
        while remaining > 0 {
            let next = if forward {
                current.succ_opt()
            } else {
                current.pred_opt()
            };
            // Past chrono's date range no calendar year can exist.
            current = next.ok_or(CalendarError::YearMissing(if forward {
                current.year() + 1
            } else {
                current.year() - 1
            }))?;
            if self.is_working_day(current)? {
                remaining -= 1;
            }
        }
        Ok(current)
    }

    /// Number of working days in the half-open interval `[from, to)`;
    /// if `to < from` it is minus the count in `[to, from)`, so that
    /// `working_days_between(a, b) == -working_days_between(b, a)`.
    /// An empty interval is 0 without any lookup.
    pub fn working_days_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<i64, CalendarError> {
        if to < from {
            return self.working_days_between(to, from).map(|n| -n);
        }
        let mut count = 0;
        for date in from.iter_days().take_while(|d| *d < to) {
            if self.is_working_day(date)? {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Working time between two instants, for SLA timers: the overlap of
    /// `[start, end)` with the working hours of each working day in Tyumen
    /// time (09:00–13:00 and 14:00–18:00, or to 17:00 on a short day).
    /// Inputs in any time zone are converted to Tyumen time first. If
    /// `end < start` the result is negative, mirroring
    /// [`ProductionCalendar::working_days_between`].
    ///
    /// Only days whose working hours overlap the interval are looked up, so
    /// an interval ending at midnight on 1 January does not need the next
    /// year's file.
    pub fn working_hours_between(
        &self,
        start: DateTime<Tz>,
        end: DateTime<Tz>,
    ) -> Result<Duration, CalendarError> {
        if end < start {
            return self.working_hours_between(end, start).map(|d| -d);
        }
        // Wall-clock arithmetic is elapsed time because Tyumen has no DST.
        let start = start.with_timezone(&TYUMEN).naive_local();
        let end = end.with_timezone(&TYUMEN).naive_local();
        let mut total = Duration::zero();
        for date in start.date().iter_days().take_while(|d| *d <= end.date()) {
            if date.and_time(DAY_END) <= start || date.and_time(DAY_START) >= end {
                continue;
            }
            if !self.is_working_day(date)? {
                continue;
            }
            let day_end = if self.is_short_day(date)? {
                SHORT_DAY_END
            } else {
                DAY_END
            };
            for (from, to) in [(DAY_START, LUNCH_START), (LUNCH_END, day_end)] {
                total += overlap(start, end, date.and_time(from), date.and_time(to));
            }
        }
        Ok(total)
    }
}

/// Length of the intersection of `[a0, a1)` and `[b0, b1)`.
fn overlap(a0: NaiveDateTime, a1: NaiveDateTime, b0: NaiveDateTime, b1: NaiveDateTime) -> Duration {
    let from = a0.max(b0);
    let to = a1.min(b1);
    if to > from {
        to - from
    } else {
        Duration::zero()
    }
}

/// The production calendar files compiled into the binary.
const BUILTIN: &[(&str, &str)] = &[
    (
        "ru-2025.toml (built in)",
        include_str!("../../../deploy/calendar/ru-2025.toml"),
    ),
    (
        "ru-2026.toml (built in)",
        include_str!("../../../deploy/calendar/ru-2026.toml"),
    ),
    (
        "ru-2027.toml (built in)",
        include_str!("../../../deploy/calendar/ru-2027.toml"),
    ),
];

/// `ru-2026.toml` → 2026.
fn year_from_file_name(name: &str) -> Option<i32> {
    let digits = name.strip_prefix("ru-")?.strip_suffix(".toml")?;
    if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// Parses and validates one year file; `file` names it in errors.
fn parse_year(file: &str, text: &str) -> Result<(i32, YearData), CalendarError> {
    let raw: YearFile = toml::from_str(text).map_err(|source| CalendarError::Parse {
        file: file.to_owned(),
        source,
    })?;
    let invalid = |list, date, reason| CalendarError::InvalidEntry {
        file: file.to_owned(),
        list,
        date,
        reason,
    };
    let lists = [
        ("holidays", &raw.holidays),
        ("working_weekends", &raw.working_weekends),
        ("short_days", &raw.short_days),
    ];
    for (list, dates) in lists {
        if let Some(&d) = dates.iter().find(|d| d.year() != raw.year) {
            return Err(invalid(list, d, "is outside the file's year"));
        }
    }
    let holidays: BTreeSet<NaiveDate> = raw.holidays.into_iter().collect();
    let working_weekends: BTreeSet<NaiveDate> = raw.working_weekends.into_iter().collect();
    let short_days: BTreeSet<NaiveDate> = raw.short_days.into_iter().collect();
    // A holiday on a weekend is redundant but harmless, so it is accepted;
    // the checks below are for entries that contradict each other.
    for &d in &working_weekends {
        if !is_weekend(d) {
            return Err(invalid(
                "working_weekends",
                d,
                "is not a Saturday or Sunday",
            ));
        }
        if holidays.contains(&d) {
            return Err(invalid("working_weekends", d, "is also listed in holidays"));
        }
    }
    for &d in &short_days {
        if holidays.contains(&d) {
            return Err(invalid(
                "short_days",
                d,
                "is listed in holidays, so it is not a working day",
            ));
        }
        if is_weekend(d) && !working_weekends.contains(&d) {
            return Err(invalid(
                "short_days",
                d,
                "is a weekend day not listed in working_weekends, so it is not a working day",
            ));
        }
    }
    Ok((
        raw.year,
        YearData {
            source: file.to_owned(),
            holidays,
            working_weekends,
            short_days,
        },
    ))
}
