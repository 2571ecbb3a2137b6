//! Importing a payment registry. The registry day's online payments are
//! loaded once into an index of 128-bit id hashes ([`day::DayIndex`]); one
//! streaming pass parses every line, checks the totals (nothing is written if
//! anything is wrong) and sorts the lines against the index: a line that
//! matches its online payment needs nothing more, the others (another amount,
//! a duplicate, a payment of another day or none) wait, at most
//! [`PENDING_LIMIT`] of them. The waiting lines are then reconciled in
//! transactions of [`CHUNK`] lines that also record how far they got, so an
//! interrupted import resumes where it stopped and a repeated one changes
//! nothing; where they did not all fit, the file is read again from the first
//! line that did not. Memory grows by about 35 bytes per online payment of the
//! day and 16 per line no such payment answers (about 40 MiB for a million
//! lines), plus the waiting lines.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use primitives::Money;
use sha2::Digest;
use storage::{Db, DbConnection};

use crate::domain::ledger::{AccountKind, Movement, MovementKind, SUSPENSE};
use crate::domain::registry::{self, FormatError, Line, Outcome, Posted, Tally, Totals};
use crate::store::banking::{self as bank_store, BankPaymentRow};
use crate::store::registry::{self as reg_store, ItemRow, RegistryRow};
use crate::store::{self, system, StoreError};
use day::{DayIndex, Hit, Ids, Seen, Totals as DayTotals};

mod day;
pub mod delivered;
mod reader;
pub mod report;

/// Lines reconciled in one transaction.
pub const CHUNK: usize = 5000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Xml,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xml => "xml",
        }
    }
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub format: Format,
    /// The bank that sent the registry.
    pub bank: String,
    /// The registry's day; required for CSV, checked against the XML's `date`.
    pub date: Option<chrono::NaiveDate>,
    pub file_name: String,
    pub uploaded_by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Format(#[from] FormatError),
    /// The upload contradicts the file or an earlier import: the field at
    /// fault and why.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A line the ledger cannot post (a bug of the reader's checks).
    #[error("{0}")]
    Ledger(#[from] crate::domain::ledger::LedgerError),
    #[error("a different registry of bank {bank} for {date} was imported already ({other})")]
    OtherRegistryForDay {
        bank: String,
        date: chrono::NaiveDate,
        other: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the file: {0}")]
    Io(String),
    #[error("this registry is being imported by another request; ask again when it has finished")]
    Busy,
}

impl ImportError {
    fn invalid(field: &'static str, message: impl Into<String>) -> ImportError {
        ImportError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<storage::StorageError> for ImportError {
    fn from(e: storage::StorageError) -> Self {
        ImportError::Store(StoreError::Storage(e))
    }
}

impl From<diesel::result::Error> for ImportError {
    fn from(e: diesel::result::Error) -> Self {
        ImportError::Store(StoreError::from(e))
    }
}

/// How far an import got, for a progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes of the file read in the current pass.
    pub bytes: AtomicU64,
    pass: AtomicU8,
}

/// The passes of an import, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pass {
    /// Loading the day's online payments.
    Loading,
    /// Reading the file and checking its totals.
    Checking,
    /// Reconciling every line (reading the file again).
    Reconciling,
    /// Reporting the online payments the registry lacks.
    Reporting,
}

impl Pass {
    const ALL: [Pass; 4] = [
        Pass::Loading,
        Pass::Checking,
        Pass::Reconciling,
        Pass::Reporting,
    ];

    /// A word for a progress bar.
    pub fn label(self) -> &'static str {
        match self {
            Pass::Loading => "loading",
            Pass::Checking => "checking",
            Pass::Reconciling => "reconciling",
            Pass::Reporting => "finishing",
        }
    }
}

impl Progress {
    /// The pass the import is in.
    pub fn pass(&self) -> Pass {
        let i = usize::from(self.pass.load(Ordering::Relaxed));
        Pass::ALL.get(i).copied().unwrap_or(Pass::Reporting)
    }

    fn enter(&self, pass: Pass) {
        self.pass.store(pass as u8, Ordering::Relaxed);
    }
}

/// The result of an import.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    pub registry: RegistryRow,
    /// The same file had been imported before: nothing changed now.
    pub already_imported: bool,
}

/// The registry's id: SHA-256 of its bytes.
pub fn file_id(path: &Path) -> Result<String, ImportError> {
    let mut file = std::fs::File::open(path).map_err(|e| ImportError::Io(e.to_string()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| ImportError::Io(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Counts bytes as they are read.
struct Counting<R> {
    inner: R,
    progress: Arc<Progress>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open(path: &Path, progress: &Arc<Progress>) -> Result<impl Read + Send, ImportError> {
    let file = std::fs::File::open(path).map_err(|e| ImportError::Io(e.to_string()))?;
    progress.bytes.store(0, Ordering::Relaxed);
    Ok(Counting {
        inner: BufReader::with_capacity(256 * 1024, file),
        progress: progress.clone(),
    })
}

/// The same bytes are one registry, of one bank and one day: `existing` (the
/// file's registry, imported or being imported) must be `bank`'s and of `date`
/// (when the upload names one). Another bank is not told whose it was.
fn same_registry(
    existing: &RegistryRow,
    bank: &str,
    date: Option<chrono::NaiveDate>,
) -> Result<(), ImportError> {
    if existing.bank != bank {
        return Err(ImportError::invalid(
            "bank",
            "this file was imported as another bank's registry",
        ));
    }
    if let Some(asked) = date.filter(|d| *d != existing.registry_date) {
        return Err(ImportError::invalid(
            "date",
            format!(
                "this file was imported as the registry of {}, the upload says {asked}",
                existing.registry_date
            ),
        ));
    }
    Ok(())
}

/// Lines waiting to be reconciled after the check, at most: a registry whose
/// lines mostly name no online payment of its day (cash-desk payments) is
/// reconciled in a second reading of the file from the first line that did
/// not fit.
pub const PENDING_LIMIT: usize = 10 * CHUNK;

/// Imports the registry at `path` (blocking: run it on a blocking thread).
pub fn import(
    db: &Db,
    now: chrono::DateTime<chrono::Utc>,
    path: &Path,
    request: &ImportRequest,
    progress: &Arc<Progress>,
) -> Result<Imported, ImportError> {
    import_with_limit(db, now, path, request, progress, PENDING_LIMIT)
}

/// [`import`] keeping at most `pending_limit` lines waiting (tests use a small one).
#[doc(hidden)]
pub fn import_with_limit(
    db: &Db,
    now: chrono::DateTime<chrono::Utc>,
    path: &Path,
    request: &ImportRequest,
    progress: &Arc<Progress>,
    pending_limit: usize,
) -> Result<Imported, ImportError> {
    let id = file_id(path)?;
    let existing = reg_store::find(&mut *db.conn()?, &id)?;
    if let Some(existing) = &existing {
        same_registry(existing, &request.bank, request.date)?;
        if existing.status == reg_store::DONE {
            return Ok(Imported {
                registry: existing.clone(),
                already_imported: true,
            });
        }
    }
    // Lines up to this one were reconciled by an earlier, interrupted run.
    let skip = existing.map_or(0, |e| e.processed_lines);

    let stated = reader::peek(open(path, progress)?, request.format)?;
    let date = match (request.date, stated.date) {
        (Some(asked), Some(stated)) if asked != stated => {
            return Err(ImportError::invalid(
                "date",
                format!("the registry is for {stated}, the upload says {asked}"),
            ));
        }
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => {
            return Err(ImportError::invalid(
                "date",
                "a CSV registry needs the registry date",
            ))
        }
    };
    if let Some(bank) = &stated.bank {
        if bank != &request.bank {
            return Err(ImportError::invalid(
                "bank",
                format!("the registry is from bank {bank}, not {}", request.bank),
            ));
        }
    }

    // The day's online payments, once, instead of a look-up per line.
    let ids = Ids::default();
    let mut index = DayIndex::load(&mut *db.conn()?, &ids, &request.bank, date, &id)?;
    let mut seen = Seen::default();

    // Pass 1: the whole file must parse and agree with its totals line; on the
    // way each line is sorted: one that matches its online payment needs
    // nothing more, the others wait (up to `pending_limit` of them). The file
    // is opened (its byte count reset) before the pass is announced, so a
    // progress bar never pairs a new pass with the old pass's count.
    let input = open(path, progress)?;
    progress.enter(Pass::Checking);
    let mut tally = Tally::default();
    let mut sorter = Sorter {
        index: &mut index,
        ids: &ids,
        seen: &mut seen,
        skip: u64::try_from(skip).unwrap_or(0),
        matched: 0,
        pending: Vec::new(),
        limit: pending_limit.max(1),
        stopped_at: None,
    };
    let header = read_beside(input, request.format, progress, &mut |line, offset| {
        tally.add(&line);
        sorter.take(line, offset);
    })?;
    let totals: Totals = tally.check(header.totals)?;

    let row = RegistryRow {
        id: id.clone(),
        bank: request.bank.clone(),
        registry_date: date,
        format: request.format.as_str().into(),
        file_name: request.file_name.clone(),
        lines_total: i64::try_from(totals.count).unwrap_or(i64::MAX),
        amount_total_kopecks: totals.amount.kopecks(),
        status: reg_store::PROCESSING.into(),
        processed_lines: 0,
        counts: "{}".into(),
        uploaded_by: request.uploaded_by.clone(),
        uploaded_at: now.naive_utc(),
        finished_at: None,
    };
    db.write_blocking(|conn| -> Result<(), ImportError> {
        if let Some(other) = reg_store::other_for_day(conn, &request.bank, date, &id)? {
            return Err(ImportError::OtherRegistryForDay {
                bank: request.bank.clone(),
                date,
                other,
            });
        }
        match reg_store::find(conn, &id)? {
            // Also a row inserted meanwhile by an upload of this file as
            // another bank's or day's registry, which is not this one's to resume.
            Some(existing) => {
                same_registry(&existing, &request.bank, Some(date))?;
                if existing.processed_lines == skip && existing.status == reg_store::PROCESSING {
                    Ok(())
                } else {
                    Err(ImportError::Busy)
                }
            }
            None if reg_store::insert(conn, &row)? => Ok(()),
            // Another request inserted a registry of the day since the look
            // above: this one, or another file.
            None => match reg_store::other_for_day(conn, &request.bank, date, &id)? {
                Some(other) => Err(ImportError::OtherRegistryForDay {
                    bank: request.bank.clone(),
                    date,
                    other,
                }),
                None => Err(ImportError::Busy),
            },
        }
    })?;

    // Pass 2: reconcile the waiting lines, CHUNK per transaction; where they
    // did not all fit, read the rest of the file again.
    progress.enter(Pass::Reconciling);
    let day = Day {
        registry: &id,
        bank: &request.bank,
        date,
        now,
    };
    let mut done = Done {
        processed: skip,
        ..Done::default()
    };
    let stopped_at = sorter.stopped_at.take();
    for chunk in std::mem::take(&mut sorter.pending).chunks(CHUNK) {
        reconcile_chunk(db, &day, chunk, &mut done)?;
        progress
            .bytes
            .store(chunk.last().map_or(0, |p| p.offset), Ordering::Relaxed);
    }
    if let Some(from) = stopped_at {
        let flush_at = CHUNK.min(sorter.limit);
        let input = open(path, progress)?;
        // A chunk's failure stops the reading and is answered as itself, not
        // as a fault of the file (which the first pass found sound).
        let mut failed = None;
        let read = reader::read(input, request.format, &mut |line: Line| {
            if line.number < from {
                return Ok(());
            }
            sorter.take(line, progress.bytes.load(Ordering::Relaxed));
            if sorter.pending.len() >= flush_at {
                let chunk = std::mem::take(&mut sorter.pending);
                if let Err(e) = reconcile_chunk(db, &day, &chunk, &mut done) {
                    failed = Some(e);
                    return Err(FormatError::Unreadable("reconciling stopped".into()));
                }
            }
            Ok(())
        });
        if let Some(e) = failed {
            return Err(e);
        }
        read?;
        let chunk = std::mem::take(&mut sorter.pending);
        if !chunk.is_empty() {
            reconcile_chunk(db, &day, &chunk, &mut done)?;
        }
    }
    let matched = sorter.matched;
    progress.bytes.store(
        std::fs::metadata(path).map_or(0, |m| m.len()),
        Ordering::Relaxed,
    );

    // Online payments of the day the registry does not mention.
    progress.enter(Pass::Reporting);
    let registry = db.write_blocking(|conn| -> Result<RegistryRow, ImportError> {
        if !reg_store::claim(conn, &id, done.processed)? {
            return Err(ImportError::Busy);
        }
        let missing = report_missing(conn, &day, &ids, &index, &seen, done.own_day)?;
        let processed = skip.max(i64::try_from(totals.count).unwrap_or(i64::MAX));
        let matched_now = i64::try_from(matched - done.matched).unwrap_or(i64::MAX);
        reg_store::advance(
            conn,
            &id,
            processed,
            &[
                (Outcome::Matched, matched_now),
                (Outcome::MissingFromRegistry, missing),
            ],
        )?;
        reg_store::finish(conn, &id, now.naive_utc())?;
        Ok(reg_store::find(conn, &id)?.ok_or(diesel::result::Error::NotFound)?)
    })?;
    Ok(Imported {
        registry,
        already_imported: false,
    })
}

/// Online payments of the day read per statement when looking for those the
/// registry does not mention, where the day's index cannot tell which.
const MISSING_PAGE: i64 = 10_000;

/// Reports the day's unconfirmed online payments no line named; returns how
/// many. When the day's unconfirmed payments are, by count and sum, those the
/// index held plus those the look-ups found, the missing ones are the index's
/// unnamed ones and only their ranges of the id order are read; otherwise
/// (payments came or were confirmed during the import) the whole day is read
/// page by page.
fn report_missing(
    conn: &mut DbConnection,
    day: &Day<'_>,
    ids: &Ids,
    index: &DayIndex,
    seen: &Seen,
    looked_up: DayTotals,
) -> Result<i64, ImportError> {
    let (count, kopecks) = reg_store::unconfirmed_of_day_totals(conn, day.bank, day.date)?;
    let now = DayTotals { count, kopecks };
    let (named, not_named) = index.unconfirmed();
    let mut missing = 0_i64;
    let mut report = |conn: &mut DbConnection,
                      rows: &[(String, String, i64, chrono::NaiveDateTime)]|
     -> Result<(), ImportError> {
        let items: Vec<ItemRow> = rows
            .iter()
            .filter(|(txn, ..)| {
                let key = ids.key(txn);
                !index.found(key).unwrap_or_else(|| seen.contains(key))
            })
            .map(|(txn, account, kopecks, paid_at)| ItemRow {
                id: 0,
                registry_id: day.registry.to_string(),
                line_no: 0,
                txn_id: txn.clone(),
                account: account.clone(),
                outcome: Outcome::MissingFromRegistry.as_str().into(),
                amount_kopecks: 0,
                posted_kopecks: Some(*kopecks),
                paid_at: Some(*paid_at),
                note: format!(
                    "posted online for {} on {} but not in the registry",
                    Money::from_kopecks(*kopecks),
                    day.date
                ),
            })
            .collect();
        reg_store::insert_items(conn, &items)?;
        missing += items.len() as i64;
        Ok(())
    };
    if now == named + looked_up + not_named {
        for range in index.missing_ranges() {
            let rows = reg_store::unconfirmed_of_day_page(conn, day.bank, day.date, range, None)?;
            report(conn, &rows)?;
        }
    } else {
        let mut after = String::new();
        loop {
            let page = reg_store::unconfirmed_of_day_page(
                conn,
                day.bank,
                day.date,
                (Some(&after), None),
                Some(MISSING_PAGE),
            )?;
            let Some(last) = page.last() else { break };
            after = last.0.clone();
            report(conn, &page)?;
        }
    }
    Ok(missing)
}

/// What is known of a waiting line's transaction before the database is asked.
#[derive(Debug, Clone, Copy)]
enum Known {
    /// The first line naming an online payment of the day, posted with these
    /// kopecks (another amount than the line's: matching lines do not wait).
    Online(i64),
    /// An earlier line of this registry named the same transaction, or this
    /// registry credited it (an interrupted run).
    Duplicate,
    /// Not one of the day's online payments when the import began: one of
    /// another day, or none (the line is to be credited).
    LookUp,
}

/// A line waiting to be reconciled.
struct Pending {
    line: Line,
    known: Known,
    /// Lines after the resume point that matched before this one.
    matched_before: u64,
    /// Bytes of the file read when the line was, for the progress.
    offset: u64,
}

/// Sorts the lines in file order against the day's index: a line that
/// matches needs nothing more and is only counted; the others wait.
struct Sorter<'a> {
    index: &'a mut DayIndex,
    ids: &'a Ids,
    seen: &'a mut Seen,
    skip: u64,
    /// Lines after `skip` that matched.
    matched: u64,
    pending: Vec<Pending>,
    limit: usize,
    /// The first line not sorted because `limit` lines were waiting.
    stopped_at: Option<u64>,
}

impl Sorter<'_> {
    /// Sorts the next line; `offset` is the bytes read when it was.
    fn take(&mut self, line: Line, offset: u64) {
        if self.stopped_at.is_some() {
            return;
        }
        if self.pending.len() >= self.limit {
            self.stopped_at = Some(line.number);
            return;
        }
        // Every line is sorted, also those of an interrupted run (skipped
        // below), so the index and the set know every transaction named.
        let key = self.ids.key(&line.txn_id);
        let known = match self.index.hit(key) {
            Some(Hit::First { kopecks }) => Known::Online(kopecks),
            Some(Hit::Again) => Known::Duplicate,
            None if self.seen.insert(key) => Known::LookUp,
            None => Known::Duplicate,
        };
        if line.number <= self.skip {
            return;
        }
        if let Known::Online(kopecks) = known {
            if kopecks == line.amount.kopecks() {
                self.matched += 1;
                return;
            }
        }
        self.pending.push(Pending {
            line,
            known,
            matched_before: self.matched,
            offset,
        });
    }
}

/// Runs `produce` on a second thread and hands what it sends, in order, to
/// `consume` on this one, at most `waiting` items queued between them.
/// Either side stopping stops the other: `produce` returning (done or failed)
/// ends the items; `consume` failing ends the receiving, so `produce`'s next
/// send fails. `consume`'s error is the cause when both failed; a panic of
/// the second thread is raised again here.
fn beside<T: Send, R: Send>(
    waiting: usize,
    produce: impl FnOnce(&SyncSender<T>) -> Result<R, ImportError> + Send,
    consume: impl FnMut(T) -> Result<(), ImportError>,
) -> Result<R, ImportError> {
    std::thread::scope(|scope| {
        let (items, arriving) = std::sync::mpsc::sync_channel(waiting);
        let producer = scope.spawn(move || produce(&items));
        let consumed = arriving.iter().try_for_each(consume);
        drop(arriving);
        let produced = producer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        consumed.and(produced)
    })
}

/// Lines handed from the reading thread to the sorting one at a time.
const BATCH: usize = 1024;

/// [`reader::read`] on a second thread: `on_line` gets every line in order,
/// with the bytes read when it was, while the next lines are being parsed.
/// On a format error the lines before it have been handed over, as with
/// `reader::read`.
fn read_beside(
    input: impl Read + Send,
    format: Format,
    progress: &Progress,
    on_line: &mut dyn FnMut(Line, u64),
) -> Result<Header, ImportError> {
    // A few batches wait at most: memory stays a few thousand lines.
    beside(
        4,
        |batches| {
            let mut batch = Vec::with_capacity(BATCH);
            let read = reader::read(input, format, &mut |line: Line| {
                batch.push((line, progress.bytes.load(Ordering::Relaxed)));
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    batches
                        .send(full)
                        .map_err(|_| FormatError::Unreadable("the import stopped".into()))?;
                }
                Ok(())
            });
            // The lines before a format error too; the receiving side never
            // stops first, so this send cannot fail.
            if !batch.is_empty() {
                let _ = batches.send(batch);
            }
            read
        },
        |batch: Vec<(Line, u64)>| {
            for (line, offset) in batch {
                on_line(line, offset);
            }
            Ok(())
        },
    )
}

/// What the reconciled chunks did so far.
#[derive(Debug, Default)]
struct Done {
    /// The registry's resume point: lines up to this one are reconciled.
    processed: i64,
    /// Matched lines counted into the registry's outcomes.
    matched: u64,
    /// Online payments of the registry's day, unconfirmed, that lines named and
    /// only the look-ups found (posted after the day's index was loaded).
    own_day: DayTotals,
}

/// What every chunk of one import shares.
struct Day<'a> {
    registry: &'a str,
    bank: &'a str,
    date: chrono::NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
}

/// The key of the suspense movement of a line whose account is unknown.
fn unknown_key(bank: &str, txn_id: &str) -> String {
    format!("registry-unknown:{bank}:{txn_id}")
}

/// Reconciles one chunk of waiting lines in one transaction, with a fixed
/// number of statements per chunk: look-ups of the online payments of the
/// lines the day's index did not answer, of accounts and of suspense keys; one
/// `post_many` for every line to credit; multi-row inserts of bank payments
/// and report items; the confirmation of the payments of other days it
/// matched; the registry's counts and resume point, which also covers the
/// matched lines before the chunk's last. A matched payment of the registry's
/// own day costs no write: being in the registry is its confirmation.
fn reconcile_chunk(
    db: &Db,
    day: &Day<'_>,
    chunk: &[Pending],
    done: &mut Done,
) -> Result<(), ImportError> {
    let Day {
        registry,
        bank,
        date,
        now,
    } = *day;
    let Some(last) = chunk.last() else {
        return Ok(());
    };
    let own_day = db.write_blocking(|conn| -> Result<DayTotals, ImportError> {
        if !reg_store::claim(conn, registry, done.processed)? {
            return Err(ImportError::Busy);
        }
        let mut own_day = DayTotals::default();
        let txn_ids: Vec<&str> = chunk
            .iter()
            .filter(|p| matches!(p.known, Known::LookUp))
            .map(|p| p.line.txn_id.as_str())
            .collect();
        let posted = reg_store::posted(conn, bank, &txn_ids)?;
        // Only a line no online payment answers needs its account (to credit it
        // or send the money to suspense).
        let unanswered =
            |p: &&Pending| matches!(p.known, Known::LookUp) && !posted.contains_key(&p.line.txn_id);
        let accounts: Vec<&str> = chunk
            .iter()
            .filter(unanswered)
            .map(|p| p.line.account.as_str())
            .collect();
        let existing = reg_store::existing_accounts(conn, &accounts)?;
        // Unknown-account lines of an earlier, interrupted run of this import
        // left their suspense movement.
        let suspense_keys: Vec<String> = chunk
            .iter()
            .filter(unanswered)
            .filter(|p| !existing.contains(&p.line.account))
            .map(|p| unknown_key(bank, &p.line.txn_id))
            .collect();
        let in_suspense = store::keys_present(conn, &suspense_keys)?;
        let clearing = system::clearing(bank);
        let at = now.naive_utc();
        store::ensure_system_account(conn, &clearing, AccountKind::BankClearing, at)?;
        let author = format!("bank:{bank}");

        // Online payments of other days this registry confirms.
        let mut confirmed: Vec<&str> = Vec::new();
        let mut items: Vec<ItemRow> = Vec::new();
        let mut counts: HashMap<Outcome, i64> = HashMap::new();
        // Lines that move money now: the line, its outcome, its movement and key.
        let mut to_post: Vec<(&Line, Outcome, Movement, String)> = Vec::new();
        for Pending { line, known, .. } in chunk {
            // An earlier line of this registry named the same transaction; a
            // payment credited from this registry carries its id; an
            // unknown-account line of an interrupted run left its suspense
            // movement.
            let (state, posted_kopecks) = match known {
                Known::Online(kopecks) => (
                    Posted::Online(Money::from_kopecks(*kopecks)),
                    Some(*kopecks),
                ),
                Known::Duplicate => (Posted::InThisRegistry, None),
                Known::LookUp => match posted.get(&line.txn_id) {
                    Some(p) if p.confirmed_by.as_deref() == Some(registry) => {
                        (Posted::InThisRegistry, None)
                    }
                    Some(p) => {
                        if p.confirmed_by.is_none() {
                            if p.banking_day == date {
                                own_day.count += 1;
                                own_day.kopecks += p.kopecks;
                            } else {
                                confirmed.push(line.txn_id.as_str());
                            }
                        }
                        (
                            Posted::Online(Money::from_kopecks(p.kopecks)),
                            Some(p.kopecks),
                        )
                    }
                    None if !existing.contains(&line.account)
                        && in_suspense.contains(&unknown_key(bank, &line.txn_id)) =>
                    {
                        (Posted::InThisRegistry, None)
                    }
                    None => (Posted::No, None),
                },
            };
            let outcome = registry::classify(line.amount, state, existing.contains(&line.account));
            *counts.entry(outcome).or_default() += 1;
            let item = |note: String, posted_kopecks: Option<i64>| ItemRow {
                id: 0,
                registry_id: registry.to_string(),
                line_no: i64::try_from(line.number).unwrap_or(i64::MAX),
                txn_id: line.txn_id.clone(),
                account: line.account.clone(),
                outcome: outcome.as_str().into(),
                amount_kopecks: line.amount.kopecks(),
                posted_kopecks,
                paid_at: Some(line.paid_at),
                note,
            };
            match outcome {
                Outcome::Matched => {}
                Outcome::Credited => {
                    let movement = Movement::transfer(
                        MovementKind::BankPayment,
                        &clearing,
                        &line.account,
                        line.amount,
                        &format!(
                            "payment {} through bank {bank}, from its registry",
                            line.txn_id
                        ),
                        &author,
                    )?;
                    // The same key as an online `pay`: a late online repeat is a duplicate.
                    to_post.push((
                        line,
                        outcome,
                        movement,
                        format!("bank:{bank}:{}", line.txn_id),
                    ));
                    items.push(item(
                        "not posted online: credited from the registry".into(),
                        None,
                    ));
                }
                Outcome::AmountDiffers => {
                    // In the registry, so not "missing" from it; the item keeps the difference.
                    let note = format!(
                        "the registry says {}, {} was posted online",
                        line.amount,
                        Money::from_kopecks(posted_kopecks.unwrap_or(0))
                    );
                    items.push(item(note, posted_kopecks));
                }
                Outcome::UnknownAccount => {
                    let movement = Movement::transfer(
                        MovementKind::BankPayment,
                        &clearing,
                        SUSPENSE,
                        line.amount,
                        &format!(
                            "payment {} through bank {bank} for unknown account {}",
                            line.txn_id, line.account
                        ),
                        &author,
                    )?;
                    to_post.push((line, outcome, movement, unknown_key(bank, &line.txn_id)));
                    items.push(item(
                        format!(
                            "no personal account {}: the money waits on suspense",
                            line.account
                        ),
                        None,
                    ));
                }
                Outcome::DuplicateLine => items.push(item(
                    "this transaction appears earlier in the registry".into(),
                    None,
                )),
                Outcome::MissingFromRegistry => {}
            }
        }

        let entries: Vec<store::Entry<'_>> = to_post
            .iter()
            .map(|(_, _, movement, key)| store::Entry {
                movement,
                key,
                reverses: None,
                at,
                trace: None,
            })
            .collect();
        let results = store::post_many(conn, &entries)?;
        let mut payments: Vec<BankPaymentRow> = Vec::new();
        for ((line, outcome, _, _), result) in to_post.iter().zip(results) {
            let posted_now = result?;
            // A credited line becomes a bank payment; an unknown account's money
            // waits on suspense with no payment row.
            if *outcome == Outcome::Credited {
                payments.push(BankPaymentRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    bank: bank.to_string(),
                    txn_id: line.txn_id.clone(),
                    account: line.account.clone(),
                    amount_kopecks: line.amount.kopecks(),
                    txn_at: line.paid_at,
                    accepted_at: at,
                    banking_day: calendar::in_tyumen(line.paid_at).date_naive(),
                    movement_id: posted_now.movement_id,
                    status: bank_store::ACCEPTED.into(),
                    cancelled_at: None,
                    registry_id: Some(registry.to_string()),
                });
            }
        }
        bank_store::insert_all(conn, &payments)?;
        reg_store::confirm(conn, bank, registry, &confirmed)?;
        reg_store::insert_items(conn, &items)?;
        let last_line = i64::try_from(last.line.number).unwrap_or(i64::MAX);
        // The matched lines before the chunk's last are reconciled with it.
        *counts.entry(Outcome::Matched).or_default() +=
            i64::try_from(last.matched_before - done.matched).unwrap_or(i64::MAX);
        let counts: Vec<(Outcome, i64)> = counts.into_iter().collect();
        reg_store::advance(conn, registry, last_line, &counts)?;
        Ok(own_day)
    })?;
    done.processed = i64::try_from(last.line.number).unwrap_or(i64::MAX);
    done.matched = last.matched_before;
    done.own_day = done.own_day + own_day;
    Ok(())
}

pub use reader::Header;

/// Parses a registry without touching the database (used by the benchmark as
/// the floor of an import, and by tests).
pub fn parse_only(path: &Path, format: Format) -> Result<(Header, Tally), ImportError> {
    let progress = Arc::new(Progress::default());
    let mut tally = Tally::default();
    let header = reader::read(open(path, &progress)?, format, &mut |line: Line| {
        tally.add(&line);
        Ok(())
    })?;
    Ok((header, tally))
}
