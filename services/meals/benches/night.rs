//! The region's night, end to end, in distributed mode: 500 schools × 400
//! students (the population of `day_close`), meals and payments as separate
//! processes on PostgreSQL and RabbitMQ. From 23:00 until every debit is posted
//! in payments and every resulting balance is back in meals, with each leg
//! timed:
//!
//! 1. the day close and write-off in meals (`close::catch_up`): write-off rows
//!    and one `DebitRequested` per debit in the outbox;
//! 2. meals' relay has published every debit to RabbitMQ;
//! 3. payments (its own process, `portal serve --service payments`) has
//!    consumed every debit: movement posted, `DebitResult` and
//!    `BalanceChanged` in its outbox;
//! 4. meals has every write-off answered (accepted/refused) and every debited
//!    account's balance equal to the one payments holds.
//!
//! Then it reports PostgreSQL's deadlock count over the run
//! (`pg_stat_database`) and the dead letters of both services; both must be 0.
//! Then the morning after: a bank's registry of `BENCH_REGISTRY_LINES` lines
//! (default 1,000,000, 0 skips it), every line a payment not seen online, so
//! each credits its account and sends a balance event; uploaded to payments
//! over HTTP, and timed until meals holds every balance payments holds.
//!
//! Run: `cargo build --release --bin portal && cargo bench -p meals --bench night`
//! (PostgreSQL and RabbitMQ must run: `bash scripts/services.sh`). `BENCH_SCHOOLS`
//! (default 500) and `BENCH_STUDENTS` per school (default 400) scale it;
//! `PORTAL_BIN` names another `portal` binary. The services' queues are named
//! by the services, not by the run: a run stopped midway leaves its messages in
//! `payments.meal-debits` (`rabbitmqctl purge_queue payments.meal-debits`
//! before the tests or the next run).

#![allow(
    clippy::unwrap_used,
    clippy::float_arithmetic,
    clippy::inconsistent_digit_grouping
)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

#[path = "common/region.rs"]
mod region;

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}

/// The payments process; killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// PostgreSQL's deadlock count for the database. After a run, call
/// [`settle`] first: a backend reports its count within a second of its
/// transaction's end.
fn deadlock_count(conn: &mut PgConnection) -> i64 {
    count(
        conn,
        "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()",
    )
}

async fn settle(conn: &mut PgConnection) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    conn.batch_execute("SELECT pg_stat_clear_snapshot()")
        .unwrap();
}

/// A production PostgreSQL analyses growing tables (autovacuum); this machine's
/// CI configuration turns autovacuum off, and without fresh statistics the
/// plans cached in the services' connections (the foreign-key checks of
/// postings, made while `movements` was empty) keep scanning whole tables. So
/// the bench analyses the tables a leg fills every 15 s, as autovacuum would.
struct Analyser {
    on: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl Analyser {
    fn start(url: &str, tables: Vec<String>) -> Analyser {
        let on = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (url, running) = (url.to_string(), on.clone());
        let statement = format!("ANALYZE {}", tables.join(", "));
        let thread = std::thread::spawn(move || {
            let mut c = PgConnection::establish(&url).unwrap();
            let mut runs = 0;
            loop {
                for _ in 0..150 {
                    std::thread::sleep(Duration::from_millis(100));
                    if !running.load(std::sync::atomic::Ordering::Relaxed) {
                        return runs;
                    }
                }
                c.batch_execute(&statement).unwrap();
                runs += 1;
            }
        });
        Analyser { on, thread }
    }

    /// Stops it; answers how many times it analysed.
    fn stop(self) -> usize {
        self.on.store(false, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let schools_n = region::env("BENCH_SCHOOLS", 500);
    let per_school = region::env("BENCH_STUDENTS", 400);
    let day = NaiveDate::from_ymd_opt(2026, 5, 12).unwrap();
    let clock = calendar::FixedClock::at_local(day.and_hms_opt(22, 0, 0).unwrap());
    let bin = std::env::var("PORTAL_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/portal").to_string()
    });
    assert!(
        std::path::Path::new(&bin).exists(),
        "{bin} not found: run `cargo build --release --bin portal` first"
    );
    let database_url = storage::testing::test_database_url();
    let amqp_url = std::env::var("PORTAL_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let run = storage::testing::unique_name("night");
    let meals_schema = format!("{run}_meals");
    let payments_schema = format!("{run}_payments");
    let dir = std::env::temp_dir().join(&run);
    std::fs::create_dir_all(&dir).unwrap();

    // Payments: its own process, on its own schema.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.join("payments.log")).unwrap();
    let payments = Process(
        Command::new(&bin)
            .args(["serve", "--service", "payments"])
            .current_dir(&dir)
            .env("PORTAL_STORAGE__DATABASE_URL", &database_url)
            .env("PORTAL_STORAGE__POOL_SIZE", "8")
            .env("PORTAL_BUS__BACKEND", "rabbitmq")
            .env("PORTAL_BUS__AMQP_URL", &amqp_url)
            .env("PORTAL_BUS__EXCHANGE", &run)
            .env("PORTAL_SERVICES__PAYMENTS__SCHEMA", &payments_schema)
            .env("PORTAL_HTTP__BIND", format!("127.0.0.1:{port}"))
            .env(
                "PORTAL_SECRETS__KEYS__N1",
                "bmlnaHQtYmVuY2gta2V5LW9mLXRoaXJ0eS10d28tYnk",
            )
            .env("PORTAL_SECRETS__CURRENT", "n1")
            .env("PORTAL_TELEMETRY__LOG_FILTER", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/health/ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(http.get(&ready).send().await, Ok(r) if r.status().is_success()) {
        assert!(
            Instant::now() < deadline,
            "payments did not become ready; see {}",
            dir.join("payments.log").display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Meals: this process, its relay and consumers on the same broker.
    let mut settings = region::meals_settings(&dir, &meals_schema);
    settings.storage.pool_size = 8;
    settings.bus.backend = settings::BusBackend::Rabbitmq;
    settings.bus.amqp_url = amqp_url;
    settings.bus.exchange = run.clone();
    settings.bus.max_attempts = 5;
    let app = platform::testing::TestApp::spawn_with(
        vec![Arc::new(meals::MealsService)],
        clock.clone(),
        settings,
    )
    .await;
    let ctx = app.context("meals").clone();

    // The population: the students in meals' requests, their accounts in
    // payments with 300.00 each (written directly: not what is measured).
    let started = Instant::now();
    let created = {
        use calendar::Clock;
        clock.now().naive_utc()
    };
    let db = ctx.db.clone();
    tokio::task::spawn_blocking(move || region::populate(&db, created, day, schools_n, per_school))
        .await
        .unwrap();
    let mut pg = PgConnection::establish(&database_url).unwrap();
    pg.batch_execute(&format!(
        "INSERT INTO \"{payments_schema}\".accounts
             (id, kind, purpose, student_name, school, class_name, municipality, organizer, active, created_at)
         SELECT 's' || lpad(s::text, 3, '0') || '-' || lpad(n::text, 4, '0'), 'personal', 'meals',
                'Ученик ' || n, 's' || lpad(s::text, 3, '0'), '', 'tyumen', 'org-' || (s % 20), TRUE, now()
         FROM generate_series(0, {s_max}) s, generate_series(0, {n_max}) n;
         INSERT INTO \"{payments_schema}\".balances (account_id, balance_kopecks)
         SELECT id, 30000 FROM \"{payments_schema}\".accounts WHERE kind = 'personal';
         ANALYZE \"{payments_schema}\".accounts; ANALYZE \"{payments_schema}\".balances;",
        s_max = schools_n - 1,
        n_max = per_school - 1,
    ))
    .unwrap();
    assert_eq!(
        region::account(schools_n - 1, per_school - 1),
        format!("s{:03}-{:04}", schools_n - 1, per_school - 1)
    );
    println!(
        "population: {schools_n} schools × {per_school} students in meals and payments, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let deadlocks_before = deadlock_count(&mut pg);
    let (ms, ps) = (&meals_schema, &payments_schema);
    let analyser = Analyser::start(
        &database_url,
        ["outbox", "inbox", "write_offs", "balances"]
            .iter()
            .map(|t| format!("\"{ms}\".{t}"))
            .chain(
                ["outbox", "inbox", "movements", "postings", "balances"]
                    .iter()
                    .map(|t| format!("\"{ps}\".{t}")),
            )
            .collect(),
    );

    // 23:00: the close, then the money's way there and back.
    clock.set(calendar::local_to_utc(day.and_hms_opt(23, 0, 0).unwrap()));
    let t0 = Instant::now();
    let c = ctx.clone();
    let closed = tokio::task::spawn_blocking(move || meals::close::catch_up(&c))
        .await
        .unwrap()
        .unwrap();
    let close = t0.elapsed();
    let debits: i64 = closed.iter().map(|c| c.debits as i64).sum();
    assert_eq!(closed.len(), schools_n);
    println!(
        "1. day close + write-off: {debits} debits in {:.1} s",
        close.as_secs_f64()
    );

    let queries = [
        format!(
            "SELECT count(*) AS n FROM \"{ms}\".outbox
             WHERE kind = 'meals.DebitRequested.v1' AND published_at IS NOT NULL"
        ),
        format!("SELECT count(*) AS n FROM \"{ps}\".inbox WHERE consumer = 'payments.meal-debits'"),
        format!("SELECT count(*) AS n FROM \"{ms}\".write_offs WHERE status <> 'sent'"),
        format!(
            "SELECT count(*) AS n FROM \"{ms}\".balances m
             JOIN \"{ps}\".balances p ON p.account_id = m.account
             WHERE m.balance_kopecks = p.balance_kopecks"
        ),
    ];
    let names = [
        "2. meals' relay published every debit to RabbitMQ",
        "3. payments posted every debit (movement, DebitResult, BalanceChanged)",
        "4a. meals has every write-off answered",
        "4b. meals holds every debited account's balance as payments does",
    ];
    let mut done: [Option<Duration>; 4] = [None; 4];
    let limit = Duration::from_secs(region::env("BENCH_LIMIT_SECS", 1800) as u64);
    let mut last = [0_i64; 4];
    let mut reported = Instant::now();
    while done.iter().any(Option::is_none) {
        for (i, sql) in queries.iter().enumerate() {
            if done[i].is_none() {
                last[i] = count(&mut pg, sql);
                if last[i] >= debits {
                    done[i] = Some(t0.elapsed());
                    println!(
                        "{}: {:.1} s after 23:00",
                        names[i],
                        t0.elapsed().as_secs_f64()
                    );
                }
            }
        }
        if reported.elapsed() > Duration::from_secs(30) {
            println!(
                "  … {:.0} s: {last:?} of {debits}",
                t0.elapsed().as_secs_f64()
            );
            reported = Instant::now();
        }
        assert!(
            t0.elapsed() < limit,
            "the night did not finish in {limit:?}: {last:?} of {debits}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let total = t0.elapsed();
    let analyses = analyser.stop();

    // What went wrong, if anything: deadlocks, dead letters, refusals.
    settle(&mut pg).await;
    let deadlocks = deadlock_count(&mut pg) - deadlocks_before;
    let dead_meals = count(
        &mut pg,
        &format!("SELECT count(*) AS n FROM \"{ms}\".dead_letters"),
    );
    let dead_payments = count(
        &mut pg,
        &format!("SELECT count(*) AS n FROM \"{ps}\".dead_letters"),
    );
    let refused = count(
        &mut pg,
        &format!("SELECT count(*) AS n FROM \"{ms}\".write_offs WHERE status = 'refused'"),
    );
    let movements = count(
        &mut pg,
        &format!("SELECT count(*) AS n FROM \"{ps}\".movements WHERE idempotency_key LIKE 'meal-debit:%'"),
    );
    println!(
        "the night: {debits} debits, from 23:00 to the last balance back in meals {:.1} s \
         ({:.0} debits/s end to end); deadlocks {deadlocks}, dead letters meals {dead_meals} \
         payments {dead_payments}, refused {refused}, movements {movements}; ANALYZE run {analyses} times",
        total.as_secs_f64(),
        debits as f64 / total.as_secs_f64()
    );
    assert_eq!(movements, debits, "one movement per debit");
    assert_eq!(refused, 0, "every student had the money");

    // The morning after: a bank's registry of `BENCH_REGISTRY_LINES` payments
    // (default 1,000,000, none of them seen online, so each is credited: one
    // movement and one balance event), uploaded to payments over HTTP, then
    // meals catching up until every account's balance equals payments'.
    let lines = region::env("BENCH_REGISTRY_LINES", 1_000_000);
    if lines > 0 {
        let accounts = schools_n * per_school;
        let path = dir.join("registry.csv");
        {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            let mut total = 0_i64;
            for i in 0..lines {
                let a = i % accounts;
                let kopecks = 10_000 + (i % 997) as i64;
                total += kopecks;
                write!(
                    out,
                    "T{i:09};{};{}.{:02};12.05.2026 {:02}:{:02}:00;\r\n",
                    region::account(a / per_school, a % per_school),
                    kopecks / 100,
                    kopecks % 100,
                    8 + (i / 60) % 12,
                    i % 60
                )
                .unwrap();
            }
            // «ИТОГО» in Windows-1251, the registry's encoding.
            out.write_all(&[0xC8, 0xD2, 0xCE, 0xC3, 0xCE]).unwrap();
            write!(out, ";{lines};{}.{:02}\r\n", total / 100, total % 100).unwrap();
        }
        let token = Command::new(&bin)
            .args([
                "token",
                "--role",
                "bank",
                "--subject",
                "bench-bank",
                "--bank",
                "sber",
            ])
            .current_dir(&dir)
            .env("PORTAL_STORAGE__DATABASE_URL", &database_url)
            .env("PORTAL_BUS__BACKEND", "rabbitmq")
            .output()
            .unwrap();
        assert!(token.status.success(), "{token:?}");
        let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
        let body = std::fs::read(&path).unwrap();
        let dead_before = count(
            &mut pg,
            &format!("SELECT count(*) AS n FROM \"{ms}\".dead_letters"),
        );
        let deadlocks_before = deadlock_count(&mut pg);
        let analyser = Analyser::start(
            &database_url,
            [
                format!("\"{ms}\".inbox"),
                format!("\"{ms}\".balances"),
                format!("\"{ps}\".outbox"),
                format!("\"{ps}\".movements"),
                format!("\"{ps}\".postings"),
                format!("\"{ps}\".registry_items"),
                format!("\"{ps}\".bank_payments"),
            ]
            .into(),
        );
        let t1 = Instant::now();
        let res = reqwest::Client::builder()
            .timeout(Duration::from_secs(3600))
            .build()
            .unwrap()
            .post(format!(
                "http://127.0.0.1:{port}/api/payments/registries?format=csv&date=2026-05-12"
            ))
            .bearer_auth(&token)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let summary: serde_json::Value = res.json().await.unwrap();
        assert!(status.is_success(), "{status} {summary}");
        let imported = t1.elapsed();
        println!(
            "registry: {lines} lines imported in {:.1} s ({:.0} lines/s); outcomes {}",
            imported.as_secs_f64(),
            lines as f64 / imported.as_secs_f64(),
            summary["outcomes"]
        );
        let caught_up = format!(
            "SELECT count(*) AS n FROM \"{ms}\".balances m
             JOIN \"{ps}\".balances p ON p.account_id = m.account
             WHERE m.balance_kopecks = p.balance_kopecks"
        );
        let mut reported = Instant::now();
        loop {
            let n = count(&mut pg, &caught_up);
            if n >= accounts as i64 {
                break;
            }
            if reported.elapsed() > Duration::from_secs(30) {
                println!(
                    "  … {:.0} s: {n} of {accounts} balances caught up",
                    t1.elapsed().as_secs_f64()
                );
                reported = Instant::now();
            }
            assert!(
                t1.elapsed() < limit,
                "meals did not catch up in {limit:?}: {n} of {accounts}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let total = t1.elapsed();
        analyser.stop();
        settle(&mut pg).await;
        let deadlocks = deadlock_count(&mut pg) - deadlocks_before;
        let dead = count(
            &mut pg,
            &format!("SELECT count(*) AS n FROM \"{ms}\".dead_letters"),
        ) - dead_before;
        println!(
            "registry then meals caught up: {lines} balance events, every one of {accounts} balances \
             equal in meals {:.1} s after the upload began ({:.1} s after the import); deadlocks {deadlocks}, \
             meals dead letters {dead}",
            total.as_secs_f64(),
            (total - imported).as_secs_f64()
        );
    }

    app.stop().await;
    drop(payments);
    if std::env::var("BENCH_KEEP").is_err() {
        for schema in [&meals_schema, &payments_schema] {
            pg.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
