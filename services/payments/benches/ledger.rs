//! Ledger movements per second under 64 concurrent writers on this machine's
//! PostgreSQL, and no lost update.
//!
//! Each movement is what a real request does: one `Movement::transfer` posted by
//! `payments::store::post` inside its own `db.write` transaction (postings,
//! balance increments, `BalanceChanged` events in the outbox). Runs:
//!
//! 1. the commit ceiling: 64 writers, each transaction one single-row INSERT;
//! 2. one writer, random pairs of 2,000 personal accounts (the latency of one movement);
//! 3. 64 writers, random pairs of 2,000 personal accounts;
//! 4. 64 writers, every movement from ONE clearing account (the hot-row cost);
//! 5. and 6. runs 3 and 4 again through `LedgerWriter`, the group commit the
//!    adjustments endpoint posts through: concurrent movements share
//!    transactions (`post_many`), each writer still waits for its own commit.
//!
//! After each run the ledger invariants must hold and every balance must equal
//! the net the benchmark computed itself.
//!
//! Run: `cargo bench -p payments --bench ledger` (PostgreSQL must run:
//! `bash scripts/services.sh`). `BENCH_MOVEMENTS` sets the total per 64-writer
//! run (default 64000); `BENCH_COMMITTERS` and `BENCH_BATCH` set the group
//! commit's committers and batch size (default: the service's); `BENCH_KEEP=1`
//! keeps the schema.

#![allow(clippy::unwrap_used, clippy::float_arithmetic)]

#[path = "common/cpu.rs"]
mod cpu;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;
use payments::domain::ledger::{Movement, MovementKind};
use payments::store::group_commit::LedgerWriter;
use payments::store::{self, StoreError};
use primitives::Money;
use storage::{Db, DbLocation, StorageError};

const ACCOUNTS: u64 = 2_000;
const WRITERS: usize = 64;
const HOT: &str = "clearing:bench";
/// Group commit as the adjustments endpoint runs it.
const COMMITTERS: usize = payments::api::LEDGER_COMMITTERS;
const BATCH: usize = payments::api::LEDGER_BATCH;

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

fn personal(n: u64) -> String {
    format!("ls-{n:04}")
}

/// Share of the machine's CPU that was busy, and this process's share of that.
struct Cpu {
    busy: u64,
    total: u64,
    own: u64,
}

impl Cpu {
    fn now() -> Cpu {
        let (busy, total) = cpu::machine_ticks();
        Cpu {
            busy,
            total,
            own: cpu::own_ticks(),
        }
    }

    fn since(&self) -> (f64, f64) {
        let now = Cpu::now();
        let busy = (now.busy - self.busy) as f64;
        (
            busy / (now.total - self.total) as f64,
            (now.own - self.own) as f64 / busy,
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pairs {
    /// Random pairs of personal accounts.
    Spread,
    /// From the one clearing account to a random personal account.
    Hot,
}

struct Figures {
    done: usize,
    seconds: f64,
    deadlocks: u64,
    cpu_busy: f64,
    cpu_own: f64,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.done as f64 / self.seconds
    }
}

fn is_deadlock(e: &StoreError) -> bool {
    e.to_string().contains("deadlock detected")
}

/// `total` movements by `writers` tasks, each in its own transaction or through
/// the group-commit `writer`; adds each account's net to `expected`.
#[allow(clippy::too_many_arguments)]
async fn movements(
    db: &Db,
    writer: Option<&LedgerWriter>,
    tag: &str,
    pairs: Pairs,
    writers: usize,
    total: usize,
    expected: &mut HashMap<String, i64>,
) -> Figures {
    let per_writer = total / writers;
    let cpu = Cpu::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (db, tag, writer) = (db.clone(), tag.to_string(), writer.cloned());
        tasks.push(tokio::spawn(async move {
            let mut rng = Lcg(0x9e37_79b9_7f4a_7c15 ^ ((w as u64 + 1) << 20) ^ tag.len() as u64);
            let mut net: HashMap<String, i64> = HashMap::new();
            let mut deadlocks = 0_u64;
            for i in 0..per_writer {
                let (from, to) = match pairs {
                    Pairs::Spread => {
                        let a = rng.below(ACCOUNTS);
                        let b = (a + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
                        (personal(a), personal(b))
                    }
                    Pairs::Hot => (HOT.to_string(), personal(rng.below(ACCOUNTS))),
                };
                let kopecks = i64::try_from(1 + rng.below(10_000)).unwrap();
                let kind = match pairs {
                    Pairs::Spread => MovementKind::Adjustment,
                    Pairs::Hot => MovementKind::BankPayment,
                };
                let movement = Movement::transfer(
                    kind,
                    &from,
                    &to,
                    Money::from_kopecks(kopecks),
                    "benchmark transfer",
                    "bench",
                )
                .unwrap();
                let key = format!("{tag}:{w}:{i}");
                if let Some(writer) = &writer {
                    let posted = writer
                        .post(movement.clone(), key.clone(), storage::now_naive())
                        .await
                        .unwrap_or_else(|e| panic!("{key}: {e}"));
                    assert!(!posted.duplicate, "{key} posted twice");
                }
                while writer.is_none() {
                    let (m, k) = (movement.clone(), key.clone());
                    match db
                        .write(move |conn| store::post(conn, &m, &k, None, storage::now_naive()))
                        .await
                    {
                        Ok(posted) => {
                            assert!(!posted.duplicate, "{key} posted twice");
                            break;
                        }
                        // PostgreSQL aborted the whole transaction: nothing of it
                        // stayed, so posting again is the client's correct retry.
                        Err(e) if is_deadlock(&e) => deadlocks += 1,
                        Err(e) => panic!("{key}: {e}"),
                    }
                }
                *net.entry(from).or_default() -= kopecks;
                *net.entry(to).or_default() += kopecks;
            }
            (net, deadlocks)
        }));
    }
    let mut deadlocks = 0;
    for t in tasks {
        let (net, d) = t.await.unwrap();
        deadlocks += d;
        for (account, k) in net {
            *expected.entry(account).or_default() += k;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (cpu_busy, cpu_own) = cpu.since();
    Figures {
        done: per_writer * writers,
        seconds,
        deadlocks,
        cpu_busy,
        cpu_own,
    }
}

/// Transactions of one single-row INSERT each: the commit rate through the same
/// pool and `db.write` path, the ceiling for one movement per transaction.
async fn bare_commits(db: &Db, writers: usize, total: usize) -> Figures {
    let per_writer = total / writers;
    let cpu = Cpu::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                db.write(move |conn| -> Result<(), StorageError> {
                    diesel::sql_query("INSERT INTO bench_commits (writer, n) VALUES ($1, $2)")
                        .bind::<diesel::sql_types::Integer, _>(i32::try_from(w).unwrap())
                        .bind::<diesel::sql_types::Integer, _>(i32::try_from(i).unwrap())
                        .execute(conn)?;
                    Ok(())
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let (cpu_busy, cpu_own) = cpu.since();
    Figures {
        done: per_writer * writers,
        seconds,
        deadlocks: 0,
        cpu_busy,
        cpu_own,
    }
}

/// No lost update: the invariants hold and every balance is the expected net.
async fn verify(db: &Db, expected: &HashMap<String, i64>, movements_so_far: i64) {
    let expected = expected.clone();
    db.read(move |conn| -> Result<(), StoreError> {
        let problems = store::check_invariants(conn)?;
        assert!(problems.is_empty(), "ledger invariants: {problems:?}");
        for n in 0..ACCOUNTS {
            let account = personal(n);
            let want = expected.get(&account).copied().unwrap_or(0);
            assert_eq!(
                store::balance(conn, &account)?.kopecks(),
                want,
                "balance of {account}"
            );
        }
        let hot = expected.get(HOT).copied().unwrap_or(0);
        assert_eq!(
            store::balance(conn, HOT)?.kopecks(),
            hot,
            "balance of {HOT}"
        );
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let n = diesel::sql_query("SELECT count(*) AS n FROM movements")
            .get_result::<Count>(conn)?
            .n;
        assert_eq!(n, movements_so_far, "movements in the ledger");
        Ok(())
    })
    .await
    .unwrap();
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let total = env_or("BENCH_MOVEMENTS", 64_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut test_db = storage::testing::TestDb::postgres("bench_ledger").unwrap();
        // One connection per writer, so commits can group.
        test_db.db =
            Db::open(&test_db.location, WRITERS as u32, Duration::from_secs(60)).unwrap();
        let db = test_db.db.clone();
        let DbLocation::Postgres { schema, .. } = test_db.location.clone() else {
            panic!("this benchmark runs on PostgreSQL")
        };
        db.migrate(&platform::app::migration_sets(&payments::PaymentsService))
            .unwrap();
        // Only the seeded tables are analyzed: see registry_import.rs on why an
        // empty ledger table analyzed here would skew every later plan.
        db.conn()
            .unwrap()
            .batch_execute(&format!(
                "INSERT INTO accounts (id, kind, purpose, student_name, school, class_name, \
                 municipality, organizer, active, created_at) \
                 SELECT 'ls-' || lpad(g::text, 4, '0'), 'personal', 'meals', 'Ученик ' || g, \
                 'school-' || (g % 50), '5А', 'Тюмень', 'org-1', TRUE, now() \
                 FROM generate_series(0, {}) AS g; \
                 INSERT INTO accounts (id, kind, purpose, created_at) \
                 VALUES ('{HOT}', 'bank_clearing', 'system', now()); \
                 INSERT INTO balances (account_id, balance_kopecks) \
                 SELECT id, 0 FROM accounts WHERE id LIKE 'ls-%' OR id = '{HOT}'; \
                 CREATE TABLE bench_commits (id BIGSERIAL PRIMARY KEY, writer INTEGER NOT NULL, \
                 n INTEGER NOT NULL); \
                 ANALYZE accounts, balances",
                ACCOUNTS - 1
            ))
            .unwrap();

        let mut expected: HashMap<String, i64> = HashMap::new();
        let mut posted = 0_i64;
        let commits = bare_commits(&db, WRITERS, total).await;
        let single =
            movements(&db, None, "one", Pairs::Spread, 1, total / 32, &mut expected).await;
        posted += single.done as i64;
        verify(&db, &expected, posted).await;
        let spread =
            movements(&db, None, "spread", Pairs::Spread, WRITERS, total, &mut expected).await;
        posted += spread.done as i64;
        verify(&db, &expected, posted).await;
        let hot = movements(&db, None, "hot", Pairs::Hot, WRITERS, total, &mut expected).await;
        posted += hot.done as i64;
        verify(&db, &expected, posted).await;
        let committers = env_or("BENCH_COMMITTERS", COMMITTERS);
        let batch = env_or("BENCH_BATCH", BATCH);
        let writer = LedgerWriter::new(db.clone(), committers, batch);
        let grouped = movements(
            &db,
            Some(&writer),
            "grouped",
            Pairs::Spread,
            WRITERS,
            total,
            &mut expected,
        )
        .await;
        posted += grouped.done as i64;
        verify(&db, &expected, posted).await;
        let grouped_hot = movements(
            &db,
            Some(&writer),
            "grouped-hot",
            Pairs::Hot,
            WRITERS,
            total,
            &mut expected,
        )
        .await;
        posted += grouped_hot.done as i64;
        verify(&db, &expected, posted).await;

        println!(
            "{ACCOUNTS} personal accounts; runs 1–4 one movement per transaction (store::post in db.write), 5–6 group commit ({committers} committers, batches up to {batch}); pool {WRITERS}"
        );
        println!("| run | writers | transactions | seconds | per second | deadlocks retried | CPU busy % | of it this process % |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (name, writers, f) in [
            ("bare commits: one single-row INSERT per transaction", WRITERS, &commits),
            ("movements between random pairs of personal accounts", 1, &single),
            ("movements between random pairs of personal accounts", WRITERS, &spread),
            ("movements all from ONE clearing account (hot row)", WRITERS, &hot),
            ("group commit (LedgerWriter): random pairs of personal accounts", WRITERS, &grouped),
            ("group commit (LedgerWriter): all from ONE clearing account", WRITERS, &grouped_hot),
        ] {
            println!(
                "| {name} | {writers} | {} | {:.2} | {:.0} | {} | {:.0} | {:.0} |",
                f.done,
                f.seconds,
                f.rate(),
                f.deadlocks,
                f.cpu_busy * 100.0,
                f.cpu_own * 100.0
            );
        }
        println!("checked after each run: invariants hold, every balance equals the benchmark's own net, no movement lost or doubled");
        println!(
            "goal ≥ 5000 balanced movements/s with 64 writers (group commit, as the service posts): {:.0}/s — {}",
            grouped.rate(),
            if grouped.rate() >= 5000.0 { "met" } else { "NOT met" }
        );

        if std::env::var("BENCH_KEEP").is_ok() {
            eprintln!("kept schema {schema}");
        } else {
            db.conn()
                .unwrap()
                .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .unwrap();
        }
    });
}
