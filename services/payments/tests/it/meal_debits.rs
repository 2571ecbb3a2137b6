//! Meal debits arrive over the bus (as the meals service sends them after the day
//! closed), are written off once per key, may take the balance down to minus the
//! credit limit and no further, and each is answered with a DebitResult event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth::Role;
use contracts::meals::DebitRequested;
use contracts::payments::DebitResult;
use contracts::Contract;
use platform::testing::TestApp;
use serde_json::json;

use crate::common::{balance, invariants_hold, m};

/// On RabbitMQ the tests' apps consume one queue, `payments.meal-debits` (each
/// test has its own exchange, not its own queues), so one test's debits could
/// be taken by another's consumer and written into its schema: the tests of
/// this file take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn debit(key: &str, amount: &str, reimbursed: &str, limit: &str) -> DebitRequested {
    DebitRequested {
        key: key.into(),
        account: "ls-5".into(),
        amount: m(amount),
        reimbursed: m(reimbursed),
        credit_limit: m(limit),
        organizer: "org-1".into(),
        municipality: "tyumen".into(),
        date: "2026-05-12".into(),
        meal_time: "lunch".into(),
    }
}

async fn send(app: &TestApp, request: &DebitRequested) {
    let env = bus::Envelope::json(DebitRequested::TOPIC, DebitRequested::KIND, request).unwrap();
    let confirms = app
        .context("payments")
        .bus
        .bus
        .publish(vec![env])
        .await
        .unwrap();
    // The in-process bus confirms when the consumer committed; RabbitMQ when queued.
    confirms.await.unwrap();
}

async fn results(app: &TestApp) -> Vec<DebitResult> {
    use diesel::prelude::*;
    let payloads: Vec<String> = app
        .context("payments")
        .db
        .read(|c| {
            bus::store::outbox::table
                .filter(bus::store::outbox::kind.eq(DebitResult::KIND))
                .order(bus::store::outbox::id)
                .select(bus::store::outbox::payload)
                .load(c)
                .map_err(storage::StorageError::from)
        })
        .await
        .unwrap();
    payloads
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect()
}

async fn wait_results(app: &TestApp, n: usize) -> Vec<DebitResult> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = results(app).await;
        if r.len() >= n {
            return r;
        }
        assert!(Instant::now() < deadline, "only {} results of {n}", r.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debits_respect_the_credit_limit_and_take_effect_once() {
    let _turn = TURN.lock().await;
    let clock = calendar::FixedClock::at_local(
        chrono::NaiveDate::from_ymd_opt(2026, 5, 12)
            .unwrap()
            .and_hms_opt(23, 0, 0)
            .unwrap(),
    );
    let app = TestApp::spawn(vec![Arc::new(payments::PaymentsService)], clock).await;
    let http = reqwest::Client::new();
    let operator = app.token("op", &[Role::OperatorAdmin], |_| {});
    let res = http
        .post(app.url("/api/payments/accounts"))
        .bearer_auth(&operator)
        .json(&json!({ "account": "ls-5", "student_name": "Козлов Иван", "school": "s", "class_name": "4А",
                       "municipality": "tyumen", "organizer": "org-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = http
        .post(app.url("/api/payments/accounts/ls-5/adjustments"))
        .bearer_auth(&operator)
        .header("Idempotency-Key", "seed")
        .json(&json!({ "amount": "100.00", "reason": "opening balance" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // 80.00 of 100.00: written off; the budget's 45.50 goes to the organizer too.
    send(
        &app,
        &debit("ls-5:2026-05-12:lunch", "80.00", "45.50", "50.00"),
    )
    .await;
    let r = wait_results(&app, 1).await;
    assert!(r[0].accepted, "{:?}", r[0]);
    assert_eq!(r[0].balance, m("20.00"));
    // The same debit again (meals retried with a new message): no second write-off.
    send(
        &app,
        &debit("ls-5:2026-05-12:lunch", "80.00", "45.50", "50.00"),
    )
    .await;
    let r = wait_results(&app, 2).await;
    assert!(r[1].accepted);
    assert_eq!(r[1].movement_id, r[0].movement_id);
    assert_eq!(balance(&app, "ls-5").await, m("20.00"));
    // 70.01 would take 20.00 to −50.01, past the −50.00 credit: refused, with the reason.
    send(&app, &debit("ls-5:2026-05-12:snack", "70.01", "0", "50.00")).await;
    let r = wait_results(&app, 3).await;
    assert!(!r[2].accepted);
    assert!(
        r[2].reason
            .as_deref()
            .unwrap()
            == "balance 20.00 less 70.01 for this meal would be -50.01, below the credit limit of -50.00",
        "{:?}",
        r[2].reason
    );
    assert_eq!(balance(&app, "ls-5").await, m("20.00"));
    // Exactly to the limit is allowed.
    send(&app, &debit("ls-5:2026-05-13:lunch", "70.00", "0", "50.00")).await;
    let r = wait_results(&app, 4).await;
    assert!(r[3].accepted);
    assert_eq!(balance(&app, "ls-5").await, m("-50.00"));
    // An unknown account is refused, not retried.
    let mut unknown = debit("ls-404:2026-05-12:lunch", "10.00", "0", "0");
    unknown.account = "ls-404".into();
    send(&app, &unknown).await;
    let r = wait_results(&app, 5).await;
    assert!(!r[4].accepted);

    assert_eq!(
        balance(&app, "settlement:org-1").await,
        m("195.50"),
        "80.00 + 45.50 + 70.00"
    );
    assert_eq!(balance(&app, "budget:tyumen").await, m("-45.50"));
    invariants_hold(&app).await;
    app.stop().await;
}

/// An app with personal accounts `ls-a` and `ls-c` (balance 0) and the shared
/// settlement and budget accounts already open (as after the first night:
/// opening them would make a second transaction wait for the first's insert
/// instead), and the debit handler to drive by hand.
async fn two_accounts() -> (
    TestApp,
    Arc<payments::consumers::MealDebitHandler>,
    storage::Db,
) {
    let clock = calendar::FixedClock::at_local(
        chrono::NaiveDate::from_ymd_opt(2026, 5, 12)
            .unwrap()
            .and_hms_opt(23, 0, 0)
            .unwrap(),
    );
    let app = TestApp::spawn(vec![Arc::new(payments::PaymentsService)], clock.clone()).await;
    let http = reqwest::Client::new();
    let operator = app.token("op", &[Role::OperatorAdmin], |_| {});
    for account in ["ls-a", "ls-c"] {
        let res = http
            .post(app.url("/api/payments/accounts"))
            .bearer_auth(&operator)
            .json(&json!({ "account": account, "student_name": "Козлов Иван", "school": "s", "class_name": "4А",
                           "municipality": "tyumen", "organizer": "org-1" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let db = app.context("payments").db.clone();
    let at = calendar::Clock::now(&clock).naive_utc();
    db.write_blocking(|c| {
        use payments::domain::ledger::AccountKind;
        payments::store::ensure_system_account(
            c,
            "settlement:org-1",
            AccountKind::OrganizerSettlement,
            at,
        )?;
        payments::store::ensure_system_account(c, "budget:tyumen", AccountKind::Budget, at)
    })
    .unwrap();
    let handler = Arc::new(payments::consumers::MealDebitHandler {
        clock: Arc::new(clock),
    });
    (app, handler, db)
}

fn debit_of(account: &str, day: &str, amount: &str) -> bus::Envelope {
    let mut d = debit(&format!("{account}:{day}:lunch"), amount, "5.00", "100.00");
    d.account = account.into();
    bus::Envelope::json(DebitRequested::TOPIC, DebitRequested::KIND, &d).unwrap()
}

/// Runs two consumers' batches in two transactions: the first handles its
/// first message, then lets the second start and goes on with the rest 300 ms
/// later, while the second is (or should be) waiting for it.
fn two_batches(
    handler: &Arc<payments::consumers::MealDebitHandler>,
    db: &storage::Db,
    first: Vec<bus::Envelope>,
    second: Vec<bus::Envelope>,
) -> (Result<(), bus::HandlerError>, Result<(), bus::HandlerError>) {
    use bus::Handler;
    use std::sync::mpsc;
    let (first_holds, second_may_start) = mpsc::channel::<()>();
    let (second_started, first_may_go_on) = mpsc::channel::<()>();
    let (h1, db1) = (handler.clone(), db.clone());
    let one = std::thread::spawn(move || {
        db1.write_blocking(|c| -> Result<(), bus::HandlerError> {
            let all: Vec<&bus::Envelope> = first.iter().collect();
            h1.lock_batch(c, &all)?;
            h1.handle(c, all[0])?;
            first_holds.send(()).unwrap();
            let _ = first_may_go_on.recv_timeout(Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(300));
            for m in &all[1..] {
                h1.handle(c, m)?;
            }
            Ok(())
        })
    });
    let (h2, db2) = (handler.clone(), db.clone());
    let two = std::thread::spawn(move || {
        second_may_start
            .recv_timeout(Duration::from_secs(5))
            .unwrap();
        second_started.send(()).unwrap();
        db2.write_blocking(|c| -> Result<(), bus::HandlerError> {
            let all: Vec<&bus::Envelope> = second.iter().collect();
            h2.lock_batch(c, &all)?;
            h2.handle_batch(c, &all)
        })
    });
    (one.join().unwrap(), two.join().unwrap())
}

/// Two consumers' batches that share personal accounts in opposite orders: the
/// first holds account A and the shared settlement and budget accounts while
/// it goes on to debit C; the second starts on C. Had a debit locked its
/// personal account before the shared ones (as one debit at a time did), the
/// second would hold C and wait for the settlement account, and PostgreSQL
/// would kill one of them as a deadlock (the night's 200,000 debits did that
/// over and over). Rows are taken in one order, so both pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_batches_sharing_accounts_in_opposite_orders_do_not_deadlock() {
    let _turn = TURN.lock().await;
    let (app, handler, db) = two_accounts().await;
    let (r1, r2) = two_batches(
        &handler,
        &db,
        vec![
            debit_of("ls-a", "12", "10.00"),
            debit_of("ls-c", "12", "10.00"),
        ],
        vec![
            debit_of("ls-c", "13", "10.00"),
            debit_of("ls-a", "13", "10.00"),
        ],
    );
    assert!(r1.is_ok(), "the first batch failed: {r1:?}");
    assert!(r2.is_ok(), "the second batch failed: {r2:?}");
    assert_eq!(balance(&app, "ls-a").await, m("-20.00"));
    assert_eq!(balance(&app, "ls-c").await, m("-20.00"));
    assert_eq!(balance(&app, "settlement:org-1").await, m("60.00"));
    app.stop().await;
}

/// A batch judges every debit on balances it has locked: a second consumer's
/// debit of the same account waits for the first batch to commit and is judged
/// on what it left. Judged on a balance read before that commit, both 80.00
/// debits of a 0.00 balance with 100.00 of credit would pass and take it to
/// −160.00.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debit_is_judged_on_the_balance_the_other_consumer_left() {
    let _turn = TURN.lock().await;
    let (app, handler, db) = two_accounts().await;
    let (r1, r2) = two_batches(
        &handler,
        &db,
        vec![
            debit_of("ls-a", "12", "80.00"),
            debit_of("ls-c", "12", "1.00"),
        ],
        vec![debit_of("ls-a", "13", "80.00")],
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert_eq!(balance(&app, "ls-a").await, m("-80.00"));
    let refused: Vec<DebitResult> = results(&app)
        .await
        .into_iter()
        .filter(|r| !r.accepted)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].key, "ls-a:13:lunch");
    assert_eq!(
        refused[0].reason.as_deref(),
        Some("balance -80.00 less 80.00 for this meal would be -160.00, below the credit limit of -100.00")
    );
    app.stop().await;
}
