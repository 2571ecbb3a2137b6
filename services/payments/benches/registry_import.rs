//! Registry import of a 1,000,000-line CSV registry on this machine's PostgreSQL:
//!
//! 1. bare parse: Windows-1251 decoding (encoding_rs_io) + the csv crate with `;`,
//!    every field touched — the floor any import stands on;
//! 2. `registry::parse_only`: the import's own reader (field checks, money and
//!    time parsing, the totals check);
//! 3. the full `registry::import` (hash, check pass, reconcile pass, report of the
//!    online payments missing from the registry).
//!
//! Each path runs in a child process (this binary re-executed with `BENCH_CHILD`),
//! which prints its time and its `VmHWM`, so the peak memory is that path's alone.
//!
//! Set-up (not timed): 10,000 personal accounts and, for a realistic mix, the
//! bank's online payments: ~97 % of the registry's lines were posted online with
//! the same amount (matched), ~0.5 % with another amount (amount differs), ~2 %
//! were not posted (credited from the registry, which posts ledger movements) and
//! ~0.5 % name accounts that do not exist (suspense); one online payment in
//! 10,000 lines is absent from the registry, so the import reads the day's
//! online payments to find it. At the end the import's
//! outcome counts and the ledger are checked against what was generated.
//!
//! Run: `cargo bench -p payments --bench registry_import` (PostgreSQL must run:
//! `bash scripts/services.sh`). `BENCH_LINES` sets the size (default 1000000);
//! `BENCH_KEEP=1` keeps the schema and the file for a look afterwards.

#![allow(clippy::unwrap_used, clippy::float_arithmetic)]

#[path = "common/cpu.rs"]
mod cpu;

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::RunQueryDsl;
use payments::registry::{self, Format, ImportRequest, Pass, Progress};
use storage::{Db, DbConnection, DbLocation};

const BANK: &str = "bench";
const ACCOUNTS: u64 = 10_000;
const CHILD_ENV: &str = "BENCH_CHILD";
const RESULT: &str = "BENCH_RESULT";

fn registry_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 9, 14).unwrap()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A 64-bit linear congruential generator (Knuth's MMIX constants): repeatable
/// pseudo-random values without a dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// What the generated registry holds, per expected outcome.
#[derive(Debug, Default, Clone, Copy)]
struct Mix {
    matched: i64,
    credited: i64,
    credited_kopecks: i64,
    unknown: i64,
    unknown_kopecks: i64,
    differs: i64,
    /// Online payments of the day the registry does not mention.
    missing: i64,
}

/// Online payments waiting to be inserted, as column arrays.
#[derive(Default)]
struct Online {
    txn: Vec<String>,
    account: Vec<String>,
    kopecks: Vec<i64>,
    at: Vec<NaiveDateTime>,
}

fn insert_online(conn: &mut DbConnection, rows: &mut Online) {
    use diesel::sql_types::{Array, BigInt, Date, Text, Timestamp};
    let DbConnection::Pg(pg) = conn else {
        panic!("this benchmark runs on PostgreSQL")
    };
    if rows.txn.is_empty() {
        return;
    }
    diesel::sql_query(
        "INSERT INTO bank_payments (id, bank, txn_id, account, amount_kopecks, txn_at, \
         accepted_at, banking_day, movement_id, status) \
         SELECT 'bp-' || t, $1, t, a, k, ts, ts, $2, 'online-' || t, 'accepted' \
         FROM unnest($3::text[], $4::text[], $5::bigint[], $6::timestamp[]) AS u(t, a, k, ts)",
    )
    .bind::<Text, _>(BANK)
    .bind::<Date, _>(registry_date())
    .bind::<Array<Text>, _>(&rows.txn)
    .bind::<Array<Text>, _>(&rows.account)
    .bind::<Array<BigInt>, _>(&rows.kopecks)
    .bind::<Array<Timestamp>, _>(&rows.at)
    .execute(pg)
    .unwrap();
    *rows = Online::default();
}

fn rubles(kopecks: i64, comma: bool) -> String {
    let sep = if comma { ',' } else { '.' };
    format!("{}{sep}{:02}", kopecks / 100, kopecks % 100)
}

/// Writes the registry file (Windows-1251) and inserts the bank's online payments.
fn generate(db: &Db, path: &Path, lines: u64) -> Mix {
    use diesel::connection::SimpleConnection;
    let mut conn = db.conn().unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO accounts (id, kind, purpose, student_name, school, class_name, \
         municipality, organizer, active, created_at) \
         SELECT 'ls-' || lpad(g::text, 5, '0'), 'personal', 'meals', 'Ученик ' || g, \
         'school-' || (g % 50), '5А', 'Тюмень', 'org-1', TRUE, now() \
         FROM generate_series(0, {}) AS g; \
         INSERT INTO balances (account_id, balance_kopecks) \
         SELECT id, 0 FROM accounts WHERE kind = 'personal';",
        ACCOUNTS - 1
    ))
    .unwrap();

    const PAYERS: [&str; 6] = [
        "Иванова Мария Петровна",
        "Петров Сергей Иванович",
        "Сидорова Анна Викторовна",
        "Кузнецов Алексей",
        "Смирнова Ольга Николаевна",
        "",
    ];
    let day = registry_date().and_hms_opt(0, 0, 0).unwrap();
    let mut rng = Lcg(0x5eed_1234_abcd_0001);
    let mut mix = Mix::default();
    let mut total_kopecks = 0_i64;
    let mut online = Online::default();
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let write_line = |out: &mut BufWriter<std::fs::File>, line: &str| {
        let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(line);
        assert!(!unmappable, "not representable in Windows-1251: {line}");
        out.write_all(&bytes).unwrap();
    };
    for i in 0..lines {
        let pick = rng.below(1000);
        let txn = format!("T{i:09}");
        let kopecks = i64::try_from(100 + rng.below(500_000)).unwrap();
        let local = day
            + chrono::Duration::seconds(i64::try_from(8 * 3600 + rng.below(12 * 3600)).unwrap());
        let account = if (990..995).contains(&pick) {
            format!("ls-x{i}")
        } else {
            format!("ls-{:05}", rng.below(ACCOUNTS))
        };
        let posted_online = match pick {
            0..=969 => {
                mix.matched += 1;
                Some(kopecks)
            }
            970..=989 => {
                mix.credited += 1;
                mix.credited_kopecks += kopecks;
                None
            }
            990..=994 => {
                mix.unknown += 1;
                mix.unknown_kopecks += kopecks;
                None
            }
            _ => {
                mix.differs += 1;
                Some(kopecks + 100)
            }
        };
        if i % 10_000 == 5_000 {
            // Paid online that day, absent from the registry.
            mix.missing += 1;
            online.txn.push(format!("M{i:09}"));
            online
                .account
                .push(format!("ls-{:05}", rng.below(ACCOUNTS)));
            online.kopecks.push(kopecks);
            online.at.push(calendar::local_to_utc(local).naive_utc());
        }
        if let Some(k) = posted_online {
            online.txn.push(txn.clone());
            online.account.push(account.clone());
            online.kopecks.push(k);
            online.at.push(calendar::local_to_utc(local).naive_utc());
            if online.txn.len() == 50_000 {
                insert_online(&mut conn, &mut online);
            }
        }
        total_kopecks += kopecks;
        let line = format!(
            "{txn};{account};{};{};{}\r\n",
            rubles(kopecks, i % 2 == 0),
            local.format("%d.%m.%Y %H:%M:%S"),
            PAYERS[usize::try_from(i % 6).unwrap()]
        );
        write_line(&mut out, &line);
    }
    insert_online(&mut conn, &mut online);
    write_line(
        &mut out,
        &format!("ИТОГО;{lines};{}\r\n", rubles(total_kopecks, true)),
    );
    out.flush().unwrap();
    // A production database has its statistics; without them the planner guesses.
    // Only the tables seeded here: a table analyzed while empty keeps plans made
    // for an empty table (sequential scans, cached per connection, also in the
    // foreign-key checks) while it grows, because autovacuum, which re-analyzes
    // a growing table in production, is off on this machine. A never-analyzed
    // table is planned by its real size.
    conn.batch_execute("ANALYZE accounts, balances, bank_payments")
        .unwrap();
    mix
}

/// The peak resident set of this process so far, in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn bare_parse(path: &Path) -> u64 {
    let file = std::fs::File::open(path).unwrap();
    let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding_rs::WINDOWS_1251))
        .build(BufReader::with_capacity(256 * 1024, file));
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .flexible(true)
        .from_reader(decoded);
    let mut record = csv::StringRecord::new();
    let (mut records, mut touched) = (0_u64, 0_u64);
    while csv.read_record(&mut record).unwrap() {
        records += 1;
        for field in record.iter() {
            touched = touched.wrapping_add(field.len() as u64);
            touched = touched.wrapping_add(u64::from(field.bytes().last().unwrap_or(0)));
        }
    }
    assert!(touched > 0);
    records
}

/// One measured path, run as a child process: prints `BENCH_RESULT <seconds> <VmHWM KiB> <extra>`.
fn child(mode: &str) {
    let path = PathBuf::from(std::env::var("BENCH_FILE").unwrap());
    let lines: u64 = env_or("BENCH_LINES", 1_000_000);
    let started = Instant::now();
    let extra = match mode {
        "bare" => {
            let records = bare_parse(&path);
            assert_eq!(records, lines + 1, "payment lines and the totals line");
            String::new()
        }
        "parse" => {
            let (header, tally) = registry::parse_only(&path, Format::Csv).unwrap();
            assert_eq!(tally.count, lines);
            tally.check(header.totals).unwrap();
            String::new()
        }
        "import" => return child_import(&path),
        other => panic!("unknown {CHILD_ENV} {other}"),
    };
    let seconds = started.elapsed().as_secs_f64();
    println!("{RESULT} {seconds} {} {extra}", vm_hwm_kib());
}

fn child_import(path: &Path) {
    let location = DbLocation::Postgres {
        url: storage::testing::test_database_url(),
        schema: std::env::var("BENCH_SCHEMA").unwrap(),
    };
    let db = Db::open(&location, 2, Duration::from_secs(10)).unwrap();
    let progress = Arc::new(Progress::default());
    let done = Arc::new(AtomicBool::new(false));
    // Samples the progress to split the time into the import's phases.
    let sampler = {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut marks = [None::<Duration>; 3];
            while !done.load(Ordering::Relaxed) {
                let pass = progress.pass();
                if pass >= Pass::Checking && marks[0].is_none() {
                    marks[0] = Some(started.elapsed());
                }
                if pass >= Pass::Reconciling && marks[1].is_none() {
                    marks[1] = Some(started.elapsed());
                }
                if pass >= Pass::Reporting && marks[2].is_none() {
                    marks[2] = Some(started.elapsed());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            marks
        })
    };
    let request = ImportRequest {
        format: Format::Csv,
        bank: BANK.into(),
        date: Some(registry_date()),
        file_name: "bench.csv".into(),
        uploaded_by: "bench".into(),
    };
    let started = Instant::now();
    let cpu_before = cpu::own_ticks();
    let machine_before = cpu::machine_ticks().0;
    let postgres_before = cpu::ticks_of("postgres");
    let imported = registry::import(&db, chrono::Utc::now(), path, &request, &progress).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu::seconds(cpu::own_ticks() - cpu_before);
    let machine = cpu::seconds(cpu::machine_ticks().0 - machine_before);
    let postgres = cpu::seconds(cpu::ticks_of("postgres") - postgres_before);
    done.store(true, Ordering::Relaxed);
    let marks = sampler.join().unwrap();
    let at = |m: Option<Duration>| m.map_or(f64::NAN, |d| d.as_secs_f64());
    let (hashed, checked, read) = (at(marks[0]), at(marks[1]), at(marks[2]));
    let r = &imported.registry;
    assert!(!imported.already_imported);
    println!(
        "{RESULT} {seconds} {} {} {} {} {hashed} {checked} {read} {cpu} {machine} {postgres}",
        vm_hwm_kib(),
        r.status,
        r.processed_lines,
        r.counts
    );
}

struct Measured {
    seconds: f64,
    peak_kib: u64,
    extra: Vec<String>,
}

fn run_child(mode: &str, schema: &str, path: &Path) -> Measured {
    let output = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, mode)
        .env("BENCH_SCHEMA", schema)
        .env("BENCH_FILE", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{mode} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT))
        .unwrap_or_else(|| panic!("{mode}: no result in {stdout}"));
    let mut parts = line.split_whitespace();
    Measured {
        seconds: parts.next().unwrap().parse().unwrap(),
        peak_kib: parts.next().unwrap().parse().unwrap(),
        extra: parts.map(str::to_string).collect(),
    }
}

/// The import's outcome counts and the ledger must be what was generated.
fn verify(db: &Db, lines: u64, mix: &Mix, import: &Measured) {
    let (status, processed, counts) = (&import.extra[0], &import.extra[1], &import.extra[2]);
    assert_eq!(status, "done");
    assert_eq!(processed.parse::<u64>().unwrap(), lines);
    let counts: std::collections::BTreeMap<String, i64> = serde_json::from_str(counts).unwrap();
    let got = |k: &str| counts.get(k).copied().unwrap_or(0);
    let expected = [
        ("matched", mix.matched),
        ("credited", mix.credited),
        ("unknown_account", mix.unknown),
        ("amount_differs", mix.differs),
        ("duplicate_line", 0),
        ("missing_from_registry", mix.missing),
    ];
    for (outcome, n) in expected {
        assert_eq!(
            got(outcome),
            n,
            "{outcome}: import says {}, generated {n}",
            got(outcome)
        );
    }
    let mut conn = db.conn().unwrap();
    let problems = payments::store::check_invariants(&mut conn).unwrap();
    assert!(problems.is_empty(), "ledger invariants: {problems:?}");
    let suspense = payments::store::balance(&mut conn, payments::domain::ledger::SUSPENSE).unwrap();
    assert_eq!(suspense.kopecks(), mix.unknown_kopecks, "suspense balance");
    let clearing =
        payments::store::balance(&mut conn, &payments::store::system::clearing(BANK)).unwrap();
    assert_eq!(
        clearing.kopecks(),
        -(mix.credited_kopecks + mix.unknown_kopecks),
        "clearing balance"
    );
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count = |conn: &mut DbConnection, sql: &str| -> i64 {
        diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
    };
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM movements"),
        mix.credited + mix.unknown,
        "one movement per credited or unknown line"
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM registry_items"),
        mix.credited + mix.unknown + mix.differs + mix.missing,
        "an item per line that did not simply match, and per missing payment"
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM bank_payments WHERE registry_id IS NOT NULL"
        ),
        mix.credited,
        "only the payments credited from the registry carry its id"
    );
}

fn main() {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        child(&mode);
        return;
    }
    let lines: u64 = env_or("BENCH_LINES", 1_000_000);
    let test_db = storage::testing::TestDb::postgres("bench_registry").unwrap();
    let db = test_db.db.clone();
    let DbLocation::Postgres { schema, .. } = &test_db.location else {
        panic!("this benchmark runs on PostgreSQL")
    };
    db.migrate(&platform::app::migration_sets(&payments::PaymentsService))
        .unwrap();
    let path = std::env::temp_dir().join(format!("{schema}.csv"));

    let started = Instant::now();
    let mix = generate(&db, &path, lines);
    eprintln!(
        "set-up: {lines} lines ({} MiB) and {} online payments in {:.1} s; {mix:?}",
        std::fs::metadata(&path).unwrap().len() >> 20,
        mix.matched + mix.differs + mix.missing,
        started.elapsed().as_secs_f64()
    );
    // Every path reads the file from the page cache.
    std::io::copy(
        &mut std::fs::File::open(&path).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();

    let bare = run_child("bare", schema, &path);
    let parse = run_child("parse", schema, &path);
    let import = run_child("import", schema, &path);
    verify(&db, lines, &mix, &import);

    let rate = |m: &Measured| lines as f64 / m.seconds;
    let mib = |m: &Measured| m.peak_kib as f64 / 1024.0;
    println!(
        "lines: {lines} (CSV, Windows-1251), {} MiB; mix: {} matched, {} credited, {} unknown account, {} amount differs",
        std::fs::metadata(&path).unwrap().len() >> 20,
        mix.matched,
        mix.credited,
        mix.unknown,
        mix.differs
    );
    println!("| path | seconds | lines/s | × bare parse | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|");
    for (name, m) in [
        (
            "bare parse: encoding_rs_io + csv, every field touched",
            &bare,
        ),
        ("`registry::parse_only`", &parse),
        ("full `registry::import` on PostgreSQL", &import),
    ] {
        println!(
            "| {name} | {:.2} | {:.0} | {:.1} | {:.1} |",
            m.seconds,
            rate(m),
            m.seconds / bare.seconds,
            mib(m)
        );
    }
    let phase = |i: usize| import.extra[i].parse::<f64>().unwrap_or(f64::NAN);
    let (hashed, checked, read) = (phase(3), phase(4), phase(5));
    println!(
        "import phases: hash and load the day's online payments {:.2} s, check pass {:.2} s, reconcile {:.2} s, missing payments and finish {:.2} s",
        hashed,
        checked - hashed,
        read - checked,
        import.seconds - read
    );
    println!(
        "importer CPU (user + system, all its threads): {:.2} s of {:.2} s; the rest is waiting for PostgreSQL",
        phase(6),
        import.seconds
    );
    // The work the import made the machine do, spread perfectly over every
    // core, is the least time any schedule of that work could take.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let work = phase(6) + phase(8);
    let floor = work / cores as f64;
    println!(
        "CPU of the import's work: importer {:.2} s + PostgreSQL {:.2} s = {work:.2} s on {cores} cores: no schedule of it ends before {floor:.2} s = {:.1}× the bare parse (the whole machine was busy {:.2} s)",
        phase(6),
        phase(8),
        floor / bare.seconds,
        phase(7)
    );
    let ratio = import.seconds / bare.seconds;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "goal full import within 5× of the bare parse: {:.1}× — {}",
        ratio,
        verdict(ratio <= 5.0)
    );
    println!(
        "goal peak memory of the import under 100 MiB: {:.1} MiB — {}",
        mib(&import),
        verdict(mib(&import) < 100.0)
    );

    if std::env::var("BENCH_KEEP").is_ok() {
        eprintln!("kept schema {schema} and {}", path.display());
    } else {
        use diesel::connection::SimpleConnection;
        let _ = std::fs::remove_file(&path);
        db.conn()
            .unwrap()
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .unwrap();
    }
}
