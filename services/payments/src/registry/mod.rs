//! Importing a payment registry: a first streaming pass parses every line and
//! checks the totals (nothing is written if anything is wrong), a second
//! streaming pass reconciles the lines in transactions of [`CHUNK`] lines that
//! also record how far they got, so an interrupted import resumes where it stopped
//! and a repeated one changes nothing. The lines are never held: memory grows
//! only by the 128-bit hash of each line's transaction id (duplicate lines, and
//! the online payments the registry does not mention, are found with it), about
//! 34 MiB for a million lines.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use primitives::Money;
use sha2::Digest;
use storage::Db;

use crate::domain::ledger::{AccountKind, Movement, MovementKind, SUSPENSE};
use crate::domain::registry::{self, FormatError, Line, Outcome, Posted, Tally, Totals};
use crate::store::banking::{self as bank_store, BankPaymentRow};
use crate::store::registry::{self as reg_store, ItemRow, RegistryRow};
use crate::store::{self, system, StoreError};

mod reader;
pub mod report;

/// Lines reconciled in one transaction.
pub const CHUNK: usize = 5000;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
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
    #[error("{0}")]
    Invalid(String),
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
    /// 1 while checking, 2 while reconciling.
    pub pass: AtomicU64,
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

fn open(path: &Path, progress: &Arc<Progress>) -> Result<impl Read, ImportError> {
    let file = std::fs::File::open(path).map_err(|e| ImportError::Io(e.to_string()))?;
    progress.bytes.store(0, Ordering::Relaxed);
    Ok(Counting {
        inner: BufReader::with_capacity(256 * 1024, file),
        progress: progress.clone(),
    })
}

/// Imports the registry at `path` (blocking: run it on a blocking thread).
pub fn import(
    db: &Db,
    now: chrono::DateTime<chrono::Utc>,
    path: &Path,
    request: &ImportRequest,
    progress: &Arc<Progress>,
) -> Result<Imported, ImportError> {
    let id = file_id(path)?;
    {
        let mut conn = db.conn()?;
        if let Some(existing) = reg_store::find(&mut conn, &id)? {
            if existing.status == reg_store::DONE {
                return Ok(Imported {
                    registry: existing,
                    already_imported: true,
                });
            }
        }
    }

    // Pass 1: the whole file must parse and agree with its totals line.
    // The file is opened (its byte count reset) before the pass is announced, so
    // a progress bar never pairs a new pass with the old pass's count.
    let input = open(path, progress)?;
    progress.pass.store(1, Ordering::Relaxed);
    let mut tally = Tally::default();
    let header = reader::read(input, request.format, &mut |line: Line| {
        tally.add(&line);
        Ok(())
    })?;
    let totals: Totals = tally.check(header.totals)?;
    let date = match (request.date, header.date) {
        (Some(asked), Some(stated)) if asked != stated => {
            return Err(ImportError::Invalid(format!(
                "date: the registry is for {stated}, the upload says {asked}"
            )));
        }
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => {
            return Err(ImportError::Invalid(
                "date: a CSV registry needs the registry date".into(),
            ))
        }
    };
    if let Some(bank) = &header.bank {
        if bank != &request.bank {
            return Err(ImportError::Invalid(format!(
                "bank: the registry is from bank {bank}, not {}",
                request.bank
            )));
        }
    }

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
    let resume_after = db.write_blocking(|conn| -> Result<i64, ImportError> {
        if let Some(other) = reg_store::other_for_day(conn, &request.bank, date, &id)? {
            return Err(ImportError::OtherRegistryForDay {
                bank: request.bank.clone(),
                date,
                other,
            });
        }
        match reg_store::find(conn, &id)? {
            Some(existing) => Ok(existing.processed_lines),
            None => {
                reg_store::insert(conn, &row)?;
                Ok(0)
            }
        }
    })?;

    // Pass 2: reconcile, CHUNK lines per transaction.
    let input = open(path, progress)?;
    progress.pass.store(2, Ordering::Relaxed);
    let mut chunk: Vec<Line> = Vec::with_capacity(CHUNK);
    let skip = u64::try_from(resume_after).unwrap_or(0);
    let mut seen = Seen::with_capacity(usize::try_from(totals.count).unwrap_or(0));
    let mut mentioned = Mentioned::default();
    let day = Day {
        registry: &id,
        bank: &request.bank,
        date,
        now,
    };
    reader::read(input, request.format, &mut |line: Line| {
        if line.number <= skip {
            // Reconciled by an earlier, interrupted run of this import.
            seen.insert(seen.key(&line.txn_id));
            return Ok(());
        }
        chunk.push(line);
        if chunk.len() == CHUNK {
            reconcile_chunk(db, &day, &chunk, &mut seen, &mut mentioned)
                .map_err(|e| FormatError::Unreadable(e.to_string()))?;
            chunk.clear();
        }
        Ok(())
    })?;
    if !chunk.is_empty() {
        reconcile_chunk(db, &day, &chunk, &mut seen, &mut mentioned)?;
    }

    // Online payments of the day the registry does not mention. When the day's
    // unconfirmed payments are exactly those the lines matched (count and sum;
    // a resumed import cannot tell), none is missing and none is read.
    let registry = db.write_blocking(|conn| -> Result<RegistryRow, ImportError> {
        let (count, kopecks) = reg_store::unconfirmed_of_day_totals(conn, &request.bank, date)?;
        let mut missing = 0_i64;
        if skip > 0 || count != mentioned.count || kopecks != mentioned.kopecks {
            let mut after = String::new();
            loop {
                let page = reg_store::unconfirmed_of_day_page(
                    conn,
                    &request.bank,
                    date,
                    &after,
                    MISSING_PAGE,
                )?;
                let Some(last) = page.last() else { break };
                after = last.0.clone();
                let items: Vec<ItemRow> = page
                    .iter()
                    .filter(|(txn, ..)| !seen.contains(seen.key(txn)))
                    .map(|(txn, account, kopecks, paid_at)| ItemRow {
                        id: 0,
                        registry_id: id.clone(),
                        line_no: 0,
                        txn_id: txn.clone(),
                        account: account.clone(),
                        outcome: Outcome::MissingFromRegistry.as_str().into(),
                        amount_kopecks: 0,
                        posted_kopecks: Some(*kopecks),
                        paid_at: Some(*paid_at),
                        note: format!(
                            "posted online for {} on {date} but not in the registry",
                            Money::from_kopecks(*kopecks)
                        ),
                    })
                    .collect();
                reg_store::insert_items(conn, &items)?;
                missing += items.len() as i64;
            }
        }
        let processed = resume_after.max(i64::try_from(totals.count).unwrap_or(i64::MAX));
        reg_store::advance(
            conn,
            &id,
            processed,
            &[(Outcome::MissingFromRegistry, missing)],
        )?;
        reg_store::finish(conn, &id, now.naive_utc())?;
        reg_store::find(conn, &id)?.ok_or_else(|| ImportError::Invalid("registry vanished".into()))
    })?;
    Ok(Imported {
        registry,
        already_imported: false,
    })
}

/// Online payments of the day read per statement when looking for those the
/// registry does not mention.
const MISSING_PAGE: i64 = 10_000;

/// The transaction ids an import has read, kept as 128-bit hashes (two SipHash
/// keys): 16 bytes a line whatever the id's length, and a false "seen" about as
/// likely as guessing a random 128-bit key.
struct Seen {
    set: HashSet<u128>,
    keys: (
        std::collections::hash_map::RandomState,
        std::collections::hash_map::RandomState,
    ),
}

impl Seen {
    fn with_capacity(lines: usize) -> Self {
        Seen {
            set: HashSet::with_capacity(lines),
            keys: Default::default(),
        }
    }

    /// The id's hash, computed once per line and passed to the other methods.
    fn key(&self, txn: &str) -> u128 {
        (u128::from(self.keys.0.hash_one(txn)) << 64) | u128::from(self.keys.1.hash_one(txn))
    }

    fn insert(&mut self, key: u128) {
        self.set.insert(key);
    }

    fn contains(&self, key: u128) -> bool {
        self.set.contains(&key)
    }
}

/// The online payments of the registry's own day, unconfirmed by any other
/// registry, that its lines named (matched or with another amount).
#[derive(Debug, Default)]
struct Mentioned {
    count: i64,
    kopecks: i64,
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

/// Reconciles one chunk of lines in one transaction, with a fixed number of
/// statements per chunk: look-ups of the chunk's online payments, accounts and
/// suspense keys; one `post_many` for every line to credit; multi-row inserts
/// of bank payments and report items; the confirmation of the payments of
/// other days it matched. A matched payment of the registry's own day costs no
/// write: being in the registry is its confirmation.
fn reconcile_chunk(
    db: &Db,
    day: &Day<'_>,
    lines: &[Line],
    seen: &mut Seen,
    mentioned: &mut Mentioned,
) -> Result<(), ImportError> {
    let Day {
        registry,
        bank,
        date,
        now,
    } = *day;
    // The first line of its transaction in the registry? The set and the tally
    // change only once the chunk's transaction has committed.
    let keys: Vec<u128> = lines.iter().map(|l| seen.key(&l.txn_id)).collect();
    let mut chunk_seen: HashSet<u128> = HashSet::with_capacity(lines.len());
    let fresh: Vec<bool> = keys
        .iter()
        .map(|k| !seen.contains(*k) && chunk_seen.insert(*k))
        .collect();
    let own_day = db.write_blocking(|conn| -> Result<Mentioned, ImportError> {
        let mut own_day = Mentioned::default();
        let txn_ids: Vec<&str> = lines.iter().map(|l| l.txn_id.as_str()).collect();
        let posted = reg_store::posted(conn, bank, &txn_ids)?;
        // Only a line no online payment answers needs its account (to credit it
        // or send the money to suspense).
        let accounts: Vec<&str> = lines
            .iter()
            .filter(|l| !posted.contains_key(&l.txn_id))
            .map(|l| l.account.as_str())
            .collect();
        let existing = reg_store::existing_accounts(conn, &accounts)?;
        // Unknown-account lines of an earlier, interrupted run of this import
        // left their suspense movement.
        let suspense_keys: Vec<String> = lines
            .iter()
            .filter(|l| !posted.contains_key(&l.txn_id) && !existing.contains(&l.account))
            .map(|l| unknown_key(bank, &l.txn_id))
            .collect();
        let in_suspense = store::keys_present(conn, &suspense_keys)?;
        let clearing = system::clearing(bank);
        store::ensure_system_account(conn, &clearing, AccountKind::BankClearing)?;
        let author = format!("bank:{bank}");
        let at = now.naive_utc();

        // Online payments of other days this registry confirms.
        let mut confirmed: Vec<&str> = Vec::new();
        let mut items: Vec<ItemRow> = Vec::new();
        let mut counts: HashMap<Outcome, i64> = HashMap::new();
        // Lines that move money now: the line, its outcome, its movement and key.
        let mut to_post: Vec<(&Line, Outcome, Movement, String)> = Vec::new();
        for (line, fresh) in lines.iter().zip(&fresh) {
            // An earlier line of this registry named the same transaction (the
            // `Seen` set); a payment credited from this registry carries its id;
            // an unknown-account line of an interrupted run left its suspense
            // movement.
            let online = posted.get(&line.txn_id);
            let state = if !fresh {
                Posted::InThisRegistry
            } else {
                match online {
                    Some(p) if p.confirmed_by.as_deref() == Some(registry) => {
                        Posted::InThisRegistry
                    }
                    Some(p) => Posted::Online(Money::from_kopecks(p.kopecks)),
                    None if !existing.contains(&line.account)
                        && in_suspense.contains(&unknown_key(bank, &line.txn_id)) =>
                    {
                        Posted::InThisRegistry
                    }
                    None => Posted::No,
                }
            };
            if let (Posted::Online(_), Some(p)) = (state, online) {
                if p.confirmed_by.is_none() {
                    if p.banking_day == date {
                        own_day.count += 1;
                        own_day.kopecks += p.kopecks;
                    } else {
                        confirmed.push(line.txn_id.as_str());
                    }
                }
            }
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
                    )
                    .map_err(|e| ImportError::Invalid(e.to_string()))?;
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
                    let posted_kopecks = online.map(|p| p.kopecks);
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
                    )
                    .map_err(|e| ImportError::Invalid(e.to_string()))?;
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
        let last = lines
            .last()
            .map(|l| i64::try_from(l.number).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let counts: Vec<(Outcome, i64)> = counts.into_iter().collect();
        reg_store::advance(conn, registry, last, &counts)?;
        Ok(own_day)
    })?;
    for (key, fresh) in keys.into_iter().zip(fresh) {
        if fresh {
            seen.insert(key);
        }
    }
    mentioned.count += own_day.count;
    mentioned.kopecks += own_day.kopecks;
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
