//! Several movements in one transaction (`store::post_many`) and the group
//! commit built on it (`LedgerWriter`), in the current test mode's database:
//! each movement keeps its own result, its key takes effect once, its answer and
//! its event carry the balance right after it, and the ledger invariants hold.

use std::collections::HashMap;

use diesel::RunQueryDsl;
use payments::domain::ledger::{Movement, MovementKind, SUSPENSE};
use payments::store::group_commit::LedgerWriter;
use payments::store::{self, Entry, NewAccount, StoreError};
use primitives::Money;
use storage::testing::TestDb;

fn rub(s: &str) -> Money {
    s.parse().unwrap()
}

fn ledger() -> TestDb {
    let test_db = TestDb::new("payments").unwrap();
    test_db
        .db
        .migrate(&platform::app::migration_sets(&payments::PaymentsService))
        .unwrap();
    test_db
}

fn open(db: &storage::Db, ids: &[&str]) {
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    db.write_blocking(move |conn| -> Result<(), StoreError> {
        for id in &ids {
            store::open_account(
                conn,
                &NewAccount {
                    id: id.clone(),
                    kind: "personal".into(),
                    purpose: "meals".into(),
                    student_name: format!("Ученик {id}"),
                    school: "school-1".into(),
                    class_name: "1А".into(),
                    municipality: "tyumen".into(),
                    organizer: "org-1".into(),
                    active: true,
                    created_at: storage::now_naive(),
                    class_id: "c-1a".into(),
                },
            )?;
        }
        Ok(())
    })
    .unwrap();
}

fn transfer(from: &str, to: &str, amount: &str) -> Movement {
    Movement::transfer(
        MovementKind::Adjustment,
        from,
        to,
        rub(amount),
        "test transfer",
        "tester",
    )
    .unwrap()
}

fn balance(db: &storage::Db, account: &str) -> Money {
    let account = account.to_string();
    db.write_blocking(move |conn| store::balance(conn, &account))
        .unwrap()
}

fn invariants_hold(db: &storage::Db) {
    let problems = db.write_blocking(store::check_invariants).unwrap();
    assert!(problems.is_empty(), "ledger invariants: {problems:?}");
}

/// `(account, balance)` of every BalanceChanged event in the outbox, oldest first.
fn balance_events(db: &storage::Db) -> Vec<(String, String)> {
    #[derive(diesel::QueryableByName)]
    struct Payload {
        #[diesel(sql_type = diesel::sql_types::Text)]
        payload: String,
    }
    let rows: Vec<Payload> = db
        .write_blocking(|conn| {
            diesel::sql_query(
                "SELECT payload FROM outbox WHERE kind = 'payments.BalanceChanged.v1' ORDER BY id",
            )
            .load::<Payload>(conn)
            .map_err(StoreError::from)
        })
        .unwrap();
    rows.into_iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
            (
                v["account"].as_str().unwrap().to_string(),
                v["balance"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn one_transaction_keeps_each_movement_its_own_result() {
    let t = ledger();
    open(&t.db, &["ls-a", "ls-b"]);
    let at = storage::now_naive();
    let first = transfer(SUSPENSE, "ls-a", "100.00");
    let to_nowhere = transfer("ls-a", "ls-missing", "5.00");
    let repeat = transfer(SUSPENSE, "ls-a", "999.00");
    let onwards = transfer("ls-a", "ls-b", "30.50");
    let back = transfer("ls-b", "ls-a", "0.50");
    let results =
        t.db.write_blocking(|conn| {
            store::post_many(
                conn,
                &[
                    Entry {
                        movement: &first,
                        key: "k1",
                        reverses: None,
                        at,
                        trace: None,
                    },
                    Entry {
                        movement: &to_nowhere,
                        key: "k2",
                        reverses: None,
                        at,
                        trace: None,
                    },
                    Entry {
                        movement: &repeat,
                        key: "k1",
                        reverses: None,
                        at,
                        trace: None,
                    },
                    Entry {
                        movement: &onwards,
                        key: "k3",
                        reverses: None,
                        at,
                        trace: None,
                    },
                    Entry {
                        movement: &back,
                        key: "k4",
                        reverses: None,
                        at,
                        trace: None,
                    },
                ],
            )
        })
        .unwrap();
    assert_eq!(results.len(), 5);
    let first_posted = results[0].as_ref().unwrap();
    assert!(!first_posted.duplicate);
    assert_eq!(
        first_posted.balances_after,
        vec![
            (SUSPENSE.to_string(), rub("-100.00")),
            ("ls-a".to_string(), rub("100.00"))
        ]
    );
    // The unknown account refuses that movement alone.
    assert!(
        matches!(&results[1], Err(StoreError::UnknownAccount(a)) if a == "ls-missing"),
        "{:?}",
        results[1]
    );
    // A key repeated in the same batch answers the first movement.
    let repeat_posted = results[2].as_ref().unwrap();
    assert!(repeat_posted.duplicate);
    assert_eq!(repeat_posted.movement_id, first_posted.movement_id);
    assert_eq!(
        results[3].as_ref().unwrap().balances_after,
        vec![
            ("ls-a".to_string(), rub("69.50")),
            ("ls-b".to_string(), rub("30.50"))
        ]
    );
    assert_eq!(
        results[4].as_ref().unwrap().balances_after,
        vec![
            ("ls-b".to_string(), rub("30.00")),
            ("ls-a".to_string(), rub("70.00"))
        ]
    );
    assert_eq!(balance(&t.db, "ls-a"), rub("70.00"));
    assert_eq!(balance(&t.db, "ls-b"), rub("30.00"));
    assert_eq!(balance(&t.db, SUSPENSE), rub("-100.00"));
    // One event per personal account a movement touched, each with the balance
    // right after that movement (not the batch's final balance).
    assert_eq!(
        balance_events(&t.db),
        vec![
            ("ls-a".to_string(), "100.00".to_string()),
            ("ls-a".to_string(), "69.50".to_string()),
            ("ls-b".to_string(), "30.50".to_string()),
            ("ls-b".to_string(), "30.00".to_string()),
            ("ls-a".to_string(), "70.00".to_string()),
        ]
    );
    invariants_hold(&t.db);

    // The same keys in a later transaction change nothing.
    let again =
        t.db.write_blocking(|conn| {
            store::post_many(
                conn,
                &[
                    Entry {
                        movement: &first,
                        key: "k1",
                        reverses: None,
                        at,
                        trace: None,
                    },
                    Entry {
                        movement: &onwards,
                        key: "k3",
                        reverses: None,
                        at,
                        trace: None,
                    },
                ],
            )
        })
        .unwrap();
    assert!(again.iter().all(|r| r.as_ref().unwrap().duplicate));
    assert_eq!(balance(&t.db, "ls-a"), rub("70.00"));
    assert_eq!(balance_events(&t.db).len(), 5);
    invariants_hold(&t.db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_under_concurrency_loses_and_doubles_nothing() {
    let t = ledger();
    let accounts: Vec<String> = (0..10).map(|n| format!("ls-{n}")).collect();
    let ids: Vec<&str> = accounts.iter().map(String::as_str).collect();
    open(&t.db, &ids);
    // Few committers and small batches, so batches really form and interleave.
    let writer = LedgerWriter::new(t.db.clone(), 2, 16);
    let mut tasks = Vec::new();
    for w in 0..16_usize {
        let writer = writer.clone();
        let accounts = accounts.clone();
        tasks.push(tokio::spawn(async move {
            let mut net: HashMap<String, i64> = HashMap::new();
            let mut refused = 0;
            for i in 0..25_usize {
                let from = &accounts[(w + i) % 10];
                let to = &accounts[(w + 3 * i + 1) % 10];
                let to = if to == from {
                    &accounts[(w + i + 5) % 10]
                } else {
                    to
                };
                let kopecks = i64::try_from(100 + w * 7 + i).unwrap();
                let amount = Money::from_kopecks(kopecks);
                let movement = Movement::transfer(
                    MovementKind::Adjustment,
                    from,
                    to,
                    amount,
                    "concurrent transfer",
                    "tester",
                )
                .unwrap();
                // Every writer sends each of its movements twice: the second
                // answers the first, whichever batch each landed in.
                let key = format!("w{w}:{i}");
                let (a, b) = tokio::join!(
                    writer.post(movement.clone(), key.clone(), storage::now_naive()),
                    writer.post(movement, key.clone(), storage::now_naive())
                );
                let (a, b) = (a.unwrap(), b.unwrap());
                assert_eq!(a.movement_id, b.movement_id, "{key}");
                assert!(a.duplicate != b.duplicate, "{key}: exactly one is new");
                *net.entry(from.clone()).or_default() -= kopecks;
                *net.entry(to.clone()).or_default() += kopecks;
                // A movement to an unknown account fails alone.
                if i % 10 == 0 {
                    let bad = Movement::transfer(
                        MovementKind::Adjustment,
                        from,
                        "ls-nobody",
                        amount,
                        "to nowhere",
                        "tester",
                    )
                    .unwrap();
                    let result = writer
                        .post(bad, format!("bad:{w}:{i}"), storage::now_naive())
                        .await;
                    assert!(matches!(result, Err(StoreError::UnknownAccount(_))));
                    refused += 1;
                }
            }
            (net, refused)
        }));
    }
    let mut expected: HashMap<String, i64> = HashMap::new();
    let mut refused = 0;
    for task in tasks {
        let (net, r) = task.await.unwrap();
        refused += r;
        for (account, k) in net {
            *expected.entry(account).or_default() += k;
        }
    }
    assert_eq!(refused, 16 * 3);
    for account in &accounts {
        assert_eq!(
            balance(&t.db, account).kopecks(),
            expected.get(account).copied().unwrap_or(0),
            "balance of {account}"
        );
    }
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let movements =
        t.db.write_blocking(|conn| {
            diesel::sql_query("SELECT count(*) AS n FROM movements")
                .get_result::<Count>(conn)
                .map_err(StoreError::from)
        })
        .unwrap()
        .n;
    assert_eq!(movements, 16 * 25, "one movement per key, none refused");
    invariants_hold(&t.db);
}
