//! What an import knows of transaction ids without asking the database for each
//! line: the registry day's online payments, loaded once before the lines are
//! read ([`DayIndex`]), and the ids of the lines no such payment answers
//! ([`Seen`]). Both keep 128-bit hashes of the ids (two SipHash keys chosen per
//! import): 16 bytes an id whatever its length, and two ids taken for one about
//! as likely as guessing a random 128-bit key.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::BuildHasher;

use storage::DbConnection;

use super::ImportError;
use crate::store::registry as reg_store;

/// Hashes transaction ids for one import.
#[derive(Default)]
pub struct Ids(RandomState, RandomState);

impl Ids {
    /// The id's 128-bit hash.
    pub fn key(&self, txn: &str) -> u128 {
        (u128::from(self.0.hash_one(txn)) << 64) | u128::from(self.1.hash_one(txn))
    }
}

/// Flags of a [`DayIndex`] entry.
const FOUND: u8 = 1;
/// Confirmed by this registry when loaded (it credited the payment).
const BY_THIS: u8 = 2;
/// Confirmed by a registry of another day when loaded.
const BY_OTHER: u8 = 4;

/// Entries per page of the load, and per mark (see [`DayIndex::missing_ranges`]).
const LOAD_PAGE: i64 = 20_000;
const MARK_EVERY: usize = 256;

/// One of the day's online payments as a line finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// The first line naming it; the payment is confirmed by nothing yet or by
    /// a registry of another day, and was posted with these kopecks.
    First { kopecks: i64 },
    /// An earlier line of this registry named it, or this registry credited
    /// it (an interrupted run of this import).
    Again,
}

/// The accepted online payments of one bank and banking day, loaded in
/// transaction id order: 24 bytes and a flag byte a payment, plus a hash
/// table of 4-byte positions (about 35 MiB for a million payments).
pub struct DayIndex {
    keys: Vec<[u64; 2]>,
    kopecks: Vec<i64>,
    flags: Vec<u8>,
    table: hashbrown::HashTable<u32>,
    /// The id of every `MARK_EVERY`-th payment, the last of its range: a range
    /// of the order can be read back without keeping the ids.
    marks: Vec<String>,
}

fn split(key: u128) -> [u64; 2] {
    // Truncation is the point: the two halves of the key.
    #[allow(clippy::cast_possible_truncation)]
    [(key >> 64) as u64, key as u64]
}

impl DayIndex {
    /// Loads the day's accepted payments of `bank`, in pages. A second thread
    /// fetches the pages, so the database reads the next one while this thread
    /// hashes the last.
    pub fn load(
        conn: &mut DbConnection,
        ids: &Ids,
        bank: &str,
        day: chrono::NaiveDate,
        registry: &str,
    ) -> Result<DayIndex, ImportError> {
        Self::load_paged(conn, ids, bank, day, registry, LOAD_PAGE)
    }

    fn load_paged(
        conn: &mut DbConnection,
        ids: &Ids,
        bank: &str,
        day: chrono::NaiveDate,
        registry: &str,
        page_size: i64,
    ) -> Result<DayIndex, ImportError> {
        let mut index = DayIndex {
            keys: Vec::new(),
            kopecks: Vec::new(),
            flags: Vec::new(),
            table: hashbrown::HashTable::new(),
            marks: Vec::new(),
        };
        // One page waits at most: memory stays three pages (one being read,
        // one waiting, one being hashed).
        super::beside(
            1,
            |pages| {
                let mut after = String::new();
                loop {
                    let page = reg_store::of_day_page(conn, bank, day, &after, page_size)?;
                    let Some((last, ..)) = page.last() else {
                        return Ok(());
                    };
                    after = last.clone();
                    if pages.send(page).is_err() {
                        // The hashing side stopped (and says why).
                        return Ok(());
                    }
                }
            },
            |page| index.add(ids, page, registry),
        )?;
        Ok(index)
    }

    /// Adds one page of the day's payments, in transaction id order.
    fn add(
        &mut self,
        ids: &Ids,
        page: Vec<(String, i64, Option<String>)>,
        registry: &str,
    ) -> Result<(), ImportError> {
        for (txn, kopecks, confirmed_by) in page {
            let key = split(ids.key(&txn));
            let at = u32::try_from(self.keys.len()).map_err(|_| ImportError::Invalid {
                field: "registry",
                message: "more than 4 billion payments in a day".into(),
            })?;
            self.keys.push(key);
            self.kopecks.push(kopecks);
            self.flags.push(match confirmed_by.as_deref() {
                None => 0,
                Some(r) if r == registry => BY_THIS,
                Some(_) => BY_OTHER,
            });
            let keys = &self.keys;
            self.table
                .insert_unique(key[0], at, |&i| keys[i as usize][0]);
            if self.keys.len() % MARK_EVERY == 0 {
                self.marks.push(txn);
            }
        }
        Ok(())
    }

    fn position(&self, key: u128) -> Option<usize> {
        let key = split(key);
        self.table
            .find(key[0], |&i| self.keys[i as usize] == key)
            .map(|&i| i as usize)
    }

    /// The payment a line names, if it is one of the day's, marking it found.
    pub fn hit(&mut self, key: u128) -> Option<Hit> {
        let at = self.position(key)?;
        let flags = self.flags[at];
        self.flags[at] |= FOUND;
        Some(if flags & (FOUND | BY_THIS) != 0 {
            Hit::Again
        } else {
            Hit::First {
                kopecks: self.kopecks[at],
            }
        })
    }

    /// Whether a line named the payment (`None`: not one of the loaded ones).
    pub fn found(&self, key: u128) -> Option<bool> {
        self.position(key).map(|at| self.flags[at] & FOUND != 0)
    }

    /// Count and sum of the payments no registry had confirmed when loaded,
    /// split into those the lines named and those they did not.
    pub fn unconfirmed(&self) -> (Totals, Totals) {
        let (mut named, mut not_named) = (Totals::default(), Totals::default());
        for (flags, kopecks) in self.flags.iter().zip(&self.kopecks) {
            if flags & (BY_THIS | BY_OTHER) != 0 {
                continue;
            }
            let t = if flags & FOUND != 0 {
                &mut named
            } else {
                &mut not_named
            };
            t.count += 1;
            t.kopecks += kopecks;
        }
        (named, not_named)
    }

    /// The ranges of the transaction id order, `(after, up_to)` (either end
    /// open), that hold every unconfirmed payment no line named.
    pub fn missing_ranges(&self) -> Vec<(Option<&str>, Option<&str>)> {
        let mut ranges: Vec<(Option<&str>, Option<&str>)> = Vec::new();
        let mut last_range = None;
        for (at, flags) in self.flags.iter().enumerate() {
            if flags & (FOUND | BY_THIS | BY_OTHER) != 0 {
                continue;
            }
            let range = at / MARK_EVERY;
            if last_range == Some(range) {
                continue;
            }
            last_range = Some(range);
            let after = range
                .checked_sub(1)
                .and_then(|r| self.marks.get(r))
                .map(String::as_str);
            ranges.push((after, self.marks.get(range).map(String::as_str)));
        }
        ranges
    }
}

/// A count of payments and their sum.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub count: i64,
    pub kopecks: i64,
}

impl std::ops::Add for Totals {
    type Output = Totals;
    fn add(self, other: Totals) -> Totals {
        Totals {
            count: self.count + other.count,
            kopecks: self.kopecks + other.kopecks,
        }
    }
}

/// The ids of the lines no payment of the day answers.
#[derive(Default)]
pub struct Seen(HashSet<u128>);

impl Seen {
    /// Records the id; false if an earlier line had it.
    pub fn insert(&mut self, key: u128) -> bool {
        self.0.insert(key)
    }

    pub fn contains(&self, key: u128) -> bool {
        self.0.contains(&key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::banking::{self, BankPaymentRow};

    fn payment(n: usize, day: chrono::NaiveDate, registry: Option<&str>) -> BankPaymentRow {
        let at = day.and_hms_opt(10, 0, 0).unwrap();
        BankPaymentRow {
            id: format!("p{n}"),
            bank: "sber".into(),
            txn_id: format!("T{n:04}"),
            account: "ls-1".into(),
            amount_kopecks: 100 + i64::try_from(n).unwrap(),
            txn_at: at,
            accepted_at: at,
            banking_day: day,
            movement_id: format!("m{n}"),
            status: banking::ACCEPTED.into(),
            cancelled_at: None,
            registry_id: registry.map(str::to_string),
        }
    }

    /// The day is read in many pages by a second thread: every payment of the
    /// day arrives once, in order, with its kopecks and who confirmed it, and
    /// nothing of another day or bank.
    #[test]
    fn the_day_loads_whole_across_pages() {
        let test_db = storage::testing::TestDb::new("payments").unwrap();
        let db = &test_db.db;
        db.migrate(&platform::app::migration_sets(&crate::PaymentsService))
            .unwrap();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 9, 14).unwrap();
        let next = day.succ_opt().unwrap();
        let mut rows: Vec<BankPaymentRow> = (0..1000)
            .map(|n| {
                let confirmed = match n % 10 {
                    3 => Some("this"),
                    7 => Some("other"),
                    _ => None,
                };
                payment(n, day, confirmed)
            })
            .collect();
        rows.push(payment(5000, next, None));
        let mut elsewhere = payment(5001, day, None);
        elsewhere.bank = "vtb".into();
        rows.push(elsewhere);
        db.write_blocking(|conn| banking::insert_all(conn, &rows))
            .unwrap();

        let ids = Ids::default();
        let mut conn = db.conn().unwrap();
        let mut index = DayIndex::load_paged(&mut conn, &ids, "sber", day, "this", 37).unwrap();
        assert_eq!(index.keys.len(), 1000);
        assert_eq!(index.marks.len(), 1000 / MARK_EVERY);
        assert_eq!(index.marks[0], format!("T{:04}", MARK_EVERY - 1));
        assert_eq!(index.hit(ids.key("T5000")), None, "another day");
        assert_eq!(index.hit(ids.key("T5001")), None, "another bank");
        for n in 0..1000_usize {
            let hit = index.hit(ids.key(&format!("T{n:04}")));
            let expected = if n % 10 == 3 {
                Hit::Again
            } else {
                Hit::First {
                    kopecks: 100 + i64::try_from(n).unwrap(),
                }
            };
            assert_eq!(hit, Some(expected), "T{n:04}");
        }
        // Named once now, so a second line is a repeat.
        assert_eq!(index.hit(ids.key("T0000")), Some(Hit::Again));
        // The unconfirmed ones: not 3 (this registry) nor 7 (another) of each ten.
        let (named, not_named) = index.unconfirmed();
        assert_eq!((named.count, not_named.count), (800, 0));
    }
}
