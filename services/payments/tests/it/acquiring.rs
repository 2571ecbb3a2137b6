//! Internet acquiring over real HTTP, in the current test mode, against the
//! simulated bank (also over real HTTP): top-ups, callbacks (duplicate, late,
//! concurrent, forged), polling for a lost callback, the per-top-up limit,
//! partial refunds, access, an unavailable bank, and the ledger invariants
//! after every test.

use auth::Role;
use payments::acquiring::simulator::{Checksum, SimulatedBank};
use payments::acquiring::{self, POLL_AFTER_SECS, REFUND_RETRY_AFTER_SECS};
use platform::testing::TestApp;
use primitives::Money;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{self, m};

const ACCOUNT: &str = "ls-1001";
const SECRET: &str = "callback-secret-of-org-1";
const PASSWORD: &str = "merchant-password-1";

struct World {
    app: TestApp,
    bank: SimulatedBank,
    http: reqwest::Client,
    parent: String,
    organizer: String,
    operator: String,
}

async fn world() -> World {
    let app = common::payments_at(2026, 9, 1, 9).await;
    let bank = SimulatedBank::start().await.unwrap();
    bank.add_merchant(
        "org-1-shop",
        PASSWORD,
        SECRET,
        &app.url("/api/payments/acquiring/callback"),
    );
    let w = World {
        http: reqwest::Client::new(),
        parent: app.token("parent-1", &[Role::Parent], |r| {
            r.children = vec![ACCOUNT.into()]
        }),
        organizer: app.token("org-user", &[Role::MealOrganizer], |r| {
            r.organizers = vec!["org-1".into()]
        }),
        operator: app.token("op-1", &[Role::OperatorAdmin], |_| {}),
        app,
        bank,
    };
    let res = w
        .http
        .post(w.app.url("/api/payments/accounts"))
        .bearer_auth(&w.operator)
        .json(&json!({
            "account": ACCOUNT,
            "student_name": "Иванов Пётр",
            "school": "school-17",
            "class_name": "3А",
            "municipality": "tyumen",
            "organizer": "org-1"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = w
        .put_settings(
            &w.organizer,
            json!({
                "base_url": w.bank.base_url(),
                "merchant_login": "org-1-shop",
                "merchant_password": PASSWORD,
                "callback_secret": SECRET
            }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    w
}

impl World {
    async fn put_settings(&self, token: &str, body: Value) -> reqwest::Response {
        self.http
            .put(self.app.url("/api/payments/organizers/org-1/acquiring"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn request_top_up(
        &self,
        token: &str,
        account: &str,
        amount: &str,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(
                self.app
                    .url(&format!("/api/payments/accounts/{account}/top-ups")),
            )
            .bearer_auth(token)
            .json(&json!({ "amount": amount, "return_url": "https://portal.example/paid" }));
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.unwrap()
    }

    /// A registered top-up of `amount` by the parent: its order id.
    async fn top_up(&self, amount: &str, key: &str) -> String {
        let res = self
            .request_top_up(&self.parent, ACCOUNT, amount, Some(key))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "created");
        assert!(body["payment_url"]
            .as_str()
            .unwrap()
            .starts_with(self.bank.base_url()));
        body["order_id"].as_str().unwrap().to_string()
    }

    async fn get_top_up(&self, token: &str, order: &str) -> reqwest::Response {
        self.http
            .get(self.app.url(&format!("/api/payments/top-ups/{order}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn top_up_view(&self, order: &str) -> Value {
        let res = self.get_top_up(&self.operator, order).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    async fn refund(&self, token: &str, order: &str, amount: &str, key: &str) -> reqwest::Response {
        self.http
            .post(
                self.app
                    .url(&format!("/api/payments/top-ups/{order}/refunds")),
            )
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({ "amount": amount, "reason": "the student moved to another school" }))
            .send()
            .await
            .unwrap()
    }

    async fn callback(&self, order: &str, operation: &str, status: u8) -> u16 {
        self.bank
            .send_callback(order, operation, status, Checksum::Correct)
            .await
            .unwrap()
    }

    async fn balance(&self, account: &str) -> Money {
        common::balance(&self.app, account).await
    }

    /// Movements on the personal account (credits and refunds).
    async fn movements(&self) -> i64 {
        let res = self
            .http
            .get(
                self.app
                    .url(&format!("/api/payments/accounts/{ACCOUNT}/movements")),
            )
            .bearer_auth(&self.operator)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.unwrap();
        page["total"].as_i64().unwrap()
    }

    async fn poll(&self) -> acquiring::PollReport {
        acquiring::poll_once(self.app.context("payments"))
            .await
            .unwrap()
    }

    async fn finish(self) {
        common::invariants_hold(&self.app).await;
        self.bank.stop().await;
        self.app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_credits_once() {
    let w = world().await;

    // The settings never show the secrets.
    let res = w
        .http
        .get(w.app.url("/api/payments/organizers/org-1/acquiring"))
        .bearer_auth(&w.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(!text.contains(SECRET) && !text.contains(PASSWORD), "{text}");
    let settings: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(settings["top_up_limit"], "2000.00");
    assert_eq!(
        settings["callback_path"],
        "/api/payments/acquiring/callback"
    );
    // Another organizer may not touch them; the parent neither.
    let other_org = w.app.token("org-2-user", &[Role::MealOrganizer], |r| {
        r.organizers = vec!["org-2".into()]
    });
    let res = w
        .put_settings(
            &other_org,
            json!({ "base_url": "https://evil.example", "merchant_login": "x" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = w
        .put_settings(
            &w.parent,
            json!({ "base_url": "https://evil.example", "merchant_login": "x" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Bad input: no key, zero, negative, not a URL — 400 naming the field.
    let res = w.request_top_up(&w.parent, ACCOUNT, "500.00", None).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    for (amount, field) in [("0.00", "amount"), ("-5.00", "amount")] {
        let res = w
            .request_top_up(&w.parent, ACCOUNT, amount, Some("bad"))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field);
    }
    let res = w
        .http
        .post(
            w.app
                .url(&format!("/api/payments/accounts/{ACCOUNT}/top-ups")),
        )
        .bearer_auth(&w.parent)
        .header("Idempotency-Key", "bad-url")
        .json(&json!({ "amount": "5.00", "return_url": "javascript:alert(1)" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Only a parent tops up.
    let res = w
        .request_top_up(&w.operator, ACCOUNT, "500.00", Some("op"))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let order = w.top_up("500.00", "k1").await;
    // The same request again answers the same order, registered once.
    let res = w
        .request_top_up(&w.parent, ACCOUNT, "500.00", Some("k1"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["order_id"], order.as_str());
    // The same key for another amount is refused.
    let res = w
        .request_top_up(&w.parent, ACCOUNT, "600.00", Some("k1"))
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The parent sees the top-up, unpaid.
    let res = w.get_top_up(&w.parent, &order).await;
    assert_eq!(res.status(), StatusCode::OK);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["status"], "created");
    assert_eq!(view["amount"], "500.00");
    assert_eq!(view["refunded"], "0.00");

    // The parent pays; the bank calls back; the status is confirmed, then credited.
    assert!(w.bank.pay(&order));
    let queries = w.bank.status_queries();
    assert_eq!(w.callback(&order, "deposited", 1).await, 200);
    assert_eq!(
        w.bank.status_queries(),
        queries + 1,
        "the callback is confirmed with a status query"
    );
    assert_eq!(w.balance(ACCOUNT).await, m("500.00"));
    assert_eq!(w.movements().await, 1);
    let view = w.top_up_view(&order).await;
    assert_eq!(view["status"], "deposited");
    assert_eq!(view["refundable"], "500.00");
    let res = w
        .http
        .get(
            w.app
                .url(&format!("/api/payments/accounts/{ACCOUNT}/movements")),
        )
        .bearer_auth(&w.parent)
        .send()
        .await
        .unwrap();
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"][0]["kind"], "top_up");
    assert_eq!(page["items"][0]["amount"], "500.00");
    // The money came from the organizer's acquiring clearing account.
    assert_eq!(w.balance("clearing:acquiring:org-1").await, m("-500.00"));

    // The routes are in the OpenAPI document.
    let res = w.http.get(w.app.url("/api/docs")).send().await.unwrap();
    let doc: Value = res.json().await.unwrap();
    for path in [
        "/api/payments/accounts/{account}/top-ups",
        "/api/payments/top-ups/{order}/refunds",
        "/api/payments/acquiring/callback",
        "/api/payments/organizers/{organizer}/acquiring",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_callback_credits_once() {
    let w = world().await;
    let order = w.top_up("250.50", "dup").await;
    w.bank.pay(&order);
    for _ in 0..3 {
        assert_eq!(w.callback(&order, "deposited", 1).await, 200);
    }
    // The bank's id works as well as the order number for the simulator.
    let bank_id = w.bank.order(&order).unwrap().bank_order_id;
    assert_eq!(w.callback(&bank_id, "deposited", 1).await, 200);
    assert_eq!(w.balance(ACCOUNT).await, m("250.50"));
    assert_eq!(w.movements().await, 1);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_callbacks_never_overwrite_a_final_status() {
    let w = world().await;
    let order = w.top_up("300.00", "ooo").await;
    w.bank.pay(&order);
    assert_eq!(w.callback(&order, "deposited", 1).await, 200);
    assert_eq!(w.balance(ACCOUNT).await, m("300.00"));

    // A late "declined" notification, even with the bank now saying declined,
    // does not overwrite deposited; neither does a late "approved".
    w.bank.decline(&order);
    assert_eq!(w.callback(&order, "declinedByTimeout", 0).await, 200);
    assert_eq!(w.top_up_view(&order).await["status"], "deposited");
    w.bank.set_status(&order, 1);
    assert_eq!(w.callback(&order, "approved", 1).await, 200);
    assert_eq!(w.top_up_view(&order).await["status"], "deposited");
    assert_eq!(w.balance(ACCOUNT).await, m("300.00"));

    // The other way round: a declined order is not credited by a late "deposited".
    let declined = w.top_up("40.00", "ooo-2").await;
    w.bank.decline(&declined);
    assert_eq!(w.callback(&declined, "declinedByTimeout", 0).await, 200);
    assert_eq!(w.top_up_view(&declined).await["status"], "declined");
    w.bank.pay(&declined);
    assert_eq!(w.callback(&declined, "deposited", 1).await, 200);
    assert_eq!(w.top_up_view(&declined).await["status"], "declined");

    // Non-final statuses advance: held, then paid.
    let held = w.top_up("60.00", "ooo-3").await;
    w.bank.set_status(&held, 1);
    assert_eq!(w.callback(&held, "approved", 1).await, 200);
    assert_eq!(w.top_up_view(&held).await["status"], "approved");
    assert_eq!(w.balance(ACCOUNT).await, m("300.00"));
    w.bank.pay(&held);
    assert_eq!(w.callback(&held, "deposited", 1).await, 200);
    assert_eq!(w.top_up_view(&held).await["status"], "deposited");
    assert_eq!(w.balance(ACCOUNT).await, m("360.00"));
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callbacks_credit_once() {
    let w = world().await;
    let order = w.top_up("777.77", "conc").await;
    w.bank.pay(&order);
    let (a, b, c, d, e) = tokio::join!(
        w.callback(&order, "deposited", 1),
        w.callback(&order, "deposited", 1),
        w.callback(&order, "deposited", 1),
        w.callback(&order, "deposited", 1),
        w.callback(&order, "deposited", 1),
    );
    assert_eq!([a, b, c, d, e], [200; 5]);
    assert_eq!(w.balance(ACCOUNT).await, m("777.77"));
    assert_eq!(w.movements().await, 1);
    assert_eq!(w.top_up_view(&order).await["status"], "deposited");
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_checksum_changes_nothing() {
    let w = world().await;
    let order = w.top_up("900.00", "forged").await;
    w.bank.pay(&order);
    let queries = w.bank.status_queries();
    let status = w
        .bank
        .send_callback(&order, "deposited", 1, Checksum::Forged)
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert_eq!(
        w.bank.status_queries(),
        queries,
        "a forged callback does not even reach the bank"
    );
    assert_eq!(w.top_up_view(&order).await["status"], "created");
    assert_eq!(w.balance(ACCOUNT).await, Money::ZERO);

    // Missing parameters and unknown orders are refused too.
    let res = w
        .http
        .get(
            w.app
                .url("/api/payments/acquiring/callback?mdOrder=x&operation=deposited&status=1"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = w
        .http
        .get(w.app.url(
            "/api/payments/acquiring/callback?mdOrder=x&orderNumber=nope&operation=deposited&status=1&checksum=AB",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // A checksum made for other parameters does not fit these.
    let bank_id = w.bank.order(&order).unwrap().bank_order_id;
    let mut params = vec![
        ("mdOrder".to_string(), bank_id.clone()),
        ("orderNumber".to_string(), order.clone()),
        ("operation".to_string(), "deposited".to_string()),
        ("status".to_string(), "0".to_string()),
    ];
    let sum = acquiring::checksum(&params, SECRET);
    params[3].1 = "1".into();
    params.push(("checksum".into(), sum));
    let res = w
        .http
        .get(w.app.url("/api/payments/acquiring/callback"))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(w.balance(ACCOUNT).await, Money::ZERO);

    // The genuine callback, with the checksum in lower case, still works.
    params.pop();
    let sum = acquiring::checksum(&params, SECRET).to_lowercase();
    params.push(("checksum".into(), sum));
    let res = w
        .http
        .get(w.app.url("/api/payments/acquiring/callback"))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["credited"], true);
    assert_eq!(w.balance(ACCOUNT).await, m("900.00"));
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_callback_is_made_up_for_by_polling() {
    let w = world().await;
    let order = w.top_up("1500.00", "poll").await;
    let unpaid = w.top_up("10.00", "poll-unpaid").await;
    w.bank.pay(&order);

    // Too early: the callback may still come; the poller leaves the bank alone.
    let queries = w.bank.status_queries();
    assert_eq!(w.poll().await.asked, 0);
    assert_eq!(w.bank.status_queries(), queries);

    w.app
        .clock
        .advance(chrono::Duration::seconds(POLL_AFTER_SECS + 1));
    let report = w.poll().await;
    assert_eq!(report.asked, 2);
    assert_eq!(report.credited, 1);
    assert_eq!(report.failed, 0);
    assert_eq!(w.balance(ACCOUNT).await, m("1500.00"));
    assert_eq!(w.top_up_view(&order).await["status"], "deposited");
    assert_eq!(w.top_up_view(&unpaid).await["status"], "created");

    // Right away nothing is asked again; the unpaid one is asked later.
    assert_eq!(w.poll().await.asked, 0);
    w.app.clock.advance(chrono::Duration::seconds(61));
    let report = w.poll().await;
    assert_eq!(report.asked, 1, "only the unfinished order");
    w.bank.decline(&unpaid);
    w.app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(w.poll().await.changed, 1);
    assert_eq!(w.top_up_view(&unpaid).await["status"], "declined");
    assert_eq!(w.poll().await.asked, 0);

    // The callback arriving late changes nothing.
    assert_eq!(w.callback(&order, "deposited", 1).await, 200);
    assert_eq!(w.balance(ACCOUNT).await, m("1500.00"));
    assert_eq!(w.movements().await, 1);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_up_over_the_limit_is_refused_naming_the_limit() {
    let w = world().await;
    let res = w
        .request_top_up(&w.parent, ACCOUNT, "2000.01", Some("big"))
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = res.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("at most 2000.00 rubles per top-up"),
        "{problem}"
    );
    assert_eq!(problem["errors"][0]["field"], "amount");
    w.top_up("2000.00", "max").await;

    // The organizer lowers its limit; the secrets stay as they were.
    let res = w
        .put_settings(
            &w.organizer,
            json!({
                "base_url": w.bank.base_url(),
                "merchant_login": "org-1-shop",
                "top_up_limit": "1000.00"
            }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = w
        .request_top_up(&w.parent, ACCOUNT, "1500.00", Some("mid"))
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = res.json().await.unwrap();
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("at most 1000.00 rubles per top-up"));
    let order = w.top_up("1000.00", "ok").await;
    w.bank.pay(&order);
    assert_eq!(w.callback(&order, "deposited", 1).await, 200);
    assert_eq!(w.balance(ACCOUNT).await, m("1000.00"));

    // A new organizer's settings need the secrets.
    let res = w
        .http
        .put(w.app.url("/api/payments/organizers/org-9/acquiring"))
        .bearer_auth(&w.operator)
        .json(&json!({ "base_url": "https://bank.example/rest", "merchant_login": "m" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refund_then_the_rest_and_over_refund_refused() {
    let w = world().await;
    let order = w.top_up("1000.00", "r").await;
    // Nothing to refund before it is paid.
    let res = w.refund(&w.organizer, &order, "1.00", "early").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    w.bank.pay(&order);
    assert_eq!(w.callback(&order, "deposited", 1).await, 200);

    // A parent may see the top-up but not refund it.
    let res = w.refund(&w.parent, &order, "100.00", "p").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = w.refund(&w.organizer, &order, "300.00", "r1").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["top_up"]["refunded"], "300.00");
    assert_eq!(first["top_up"]["status"], "deposited");
    assert_eq!(w.balance(ACCOUNT).await, m("700.00"));
    // Repeated: the same refund, nothing more.
    let res = w.refund(&w.organizer, &order, "300.00", "r1").await;
    assert_eq!(res.status(), StatusCode::OK);
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["refund_id"], first["refund_id"]);
    assert_eq!(w.balance(ACCOUNT).await, m("700.00"));
    assert_eq!(w.bank.order(&order).unwrap().refunded_kopecks, 30_000);

    // More than is left is refused, naming what is left.
    let res = w.refund(&w.organizer, &order, "700.01", "r2").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = res.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("at most 700.00 rubles can be refunded"),
        "{problem}"
    );

    // The rest, by the operator.
    let res = w.refund(&w.operator, &order, "700.00", "r3").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let last: Value = res.json().await.unwrap();
    assert_eq!(last["top_up"]["status"], "refunded");
    assert_eq!(last["top_up"]["refunded"], "1000.00");
    assert_eq!(last["top_up"]["refundable"], "0.00");
    assert_eq!(w.balance(ACCOUNT).await, Money::ZERO);
    let res = w.refund(&w.organizer, &order, "0.01", "r4").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let sim = w.bank.order(&order).unwrap();
    assert_eq!((sim.status, sim.refunded_kopecks), (4, 100_000));

    // The bank's own "refunded" notification changes nothing more.
    assert_eq!(w.callback(&order, "refunded", 1).await, 200);
    let view = w.top_up_view(&order).await;
    assert_eq!(view["status"], "refunded");
    assert_eq!(w.balance(ACCOUNT).await, Money::ZERO);
    assert_eq!(w.balance("clearing:acquiring:org-1").await, Money::ZERO);
    assert_eq!(w.movements().await, 3);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_of_another_child_gets_404() {
    let w = world().await;
    let order = w.top_up("100.00", "mine").await;
    let stranger = w.app.token("parent-2", &[Role::Parent], |r| {
        r.children = vec!["ls-9999".into()]
    });
    let res = w.get_top_up(&stranger, &order).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = w
        .request_top_up(&stranger, ACCOUNT, "100.00", Some("theirs"))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Another parent of the same child sees the account, not this parent's top-up.
    let co_parent = w.app.token("parent-3", &[Role::Parent], |r| {
        r.children = vec![ACCOUNT.into()]
    });
    let res = w.get_top_up(&co_parent, &order).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let other_org = w.app.token("org-2-user", &[Role::MealOrganizer], |r| {
        r.organizers = vec!["org-2".into()]
    });
    let res = w.get_top_up(&other_org, &order).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = w.refund(&other_org, &order, "1.00", "x").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        w.get_top_up(&w.organizer, &order).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        w.get_top_up(&w.parent, &order).await.status(),
        StatusCode::OK
    );
    let res = w
        .request_top_up(&w.parent, "ls-9999", "100.00", Some("nope"))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_bank_answers_503_and_a_refund_settles_on_repeat() {
    let w = world().await;
    w.bank.set_unavailable(true);
    let res = w
        .request_top_up(&w.parent, ACCOUNT, "200.00", Some("down"))
        .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    w.bank.set_unavailable(false);
    // Nothing was kept: the same request now goes through.
    let order = w.top_up("200.00", "down").await;
    w.bank.pay(&order);

    w.bank.set_unavailable(true);
    assert_eq!(w.callback(&order, "deposited", 1).await, 503);
    w.app
        .clock
        .advance(chrono::Duration::seconds(POLL_AFTER_SECS + 1));
    assert_eq!(w.poll().await.failed, 1);
    assert_eq!(w.balance(ACCOUNT).await, Money::ZERO);
    w.bank.set_unavailable(false);
    assert_eq!(w.callback(&order, "deposited", 1).await, 200);
    assert_eq!(w.balance(ACCOUNT).await, m("200.00"));

    // A refund whose outcome is unknown keeps its amount reserved...
    w.bank.set_unavailable(true);
    let res = w.refund(&w.organizer, &order, "50.00", "rf").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(w.balance(ACCOUNT).await, m("200.00"));
    assert_eq!(w.top_up_view(&order).await["refundable"], "150.00");
    // ...a repeat right away does not race the first attempt...
    w.bank.set_unavailable(false);
    let res = w.refund(&w.organizer, &order, "50.00", "rf").await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    // ...and a later repeat with the same key finishes it, once.
    w.app
        .clock
        .advance(chrono::Duration::seconds(REFUND_RETRY_AFTER_SECS + 1));
    let res = w.refund(&w.organizer, &order, "50.00", "rf").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(w.balance(ACCOUNT).await, m("150.00"));
    let res = w.refund(&w.organizer, &order, "50.00", "rf").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(w.balance(ACCOUNT).await, m("150.00"));
    assert_eq!(w.bank.order(&order).unwrap().refunded_kopecks, 5_000);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balance_after_everything_is_exact_to_the_kopeck() {
    let w = world().await;
    let a = w.top_up("500.00", "e1").await;
    let b = w.top_up("1234.56", "e2").await;
    let c = w.top_up("0.01", "e3").await;
    let d = w.top_up("999.99", "e4").await;
    let e = w.top_up("333.33", "e5").await;
    for order in [&a, &b, &c] {
        w.bank.pay(order);
    }
    w.bank.decline(&d);
    w.bank.pay(&e);
    // a and b by callback (b twice), c by the poller, d declined, e by callback
    // after a forged one.
    assert_eq!(w.callback(&a, "deposited", 1).await, 200);
    assert_eq!(w.callback(&b, "deposited", 1).await, 200);
    assert_eq!(w.callback(&b, "deposited", 1).await, 200);
    assert_eq!(w.callback(&d, "declinedByTimeout", 0).await, 200);
    assert_eq!(
        w.bank
            .send_callback(&e, "deposited", 1, Checksum::Forged)
            .await
            .unwrap(),
        400
    );
    assert_eq!(w.callback(&e, "deposited", 1).await, 200);
    w.app
        .clock
        .advance(chrono::Duration::seconds(POLL_AFTER_SECS + 1));
    assert_eq!(w.poll().await.credited, 1);
    // Refund part of b, and all of e in two steps.
    assert_eq!(
        w.refund(&w.organizer, &b, "234.56", "e-r1").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        w.refund(&w.organizer, &e, "0.33", "e-r2").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        w.refund(&w.operator, &e, "333.00", "e-r3").await.status(),
        StatusCode::CREATED
    );
    // 500.00 + 1234.56 + 0.01 + 333.33 − 234.56 − 0.33 − 333.00
    assert_eq!(w.balance(ACCOUNT).await, m("1500.01"));
    assert_eq!(w.balance("clearing:acquiring:org-1").await, m("-1500.01"));
    assert_eq!(w.movements().await, 7);
    let res = w
        .http
        .get(w.app.url(&format!("/api/payments/accounts/{ACCOUNT}")))
        .bearer_auth(&w.parent)
        .send()
        .await
        .unwrap();
    let account: Value = res.json().await.unwrap();
    assert_eq!(account["balance"], "1500.01");
    w.finish().await;
}

/// The stored merchant password and callback secret, as the table holds them.
async fn stored_secrets(app: &TestApp) -> (String, String) {
    use diesel::prelude::*;
    use payments::store::acquiring::acquiring_organizers as t;
    app.context("payments")
        .db
        .read(|c| {
            t::table
                .find("org-1")
                .select((t::merchant_password, t::callback_secret))
                .first::<(String, String)>(c)
                .map_err(storage::StorageError::from)
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_at_rest_and_opened_only_where_used() {
    let w = world().await;
    let (password, secret) = stored_secrets(&w.app).await;
    let current = w.app.context("payments").secrets.current().to_string();
    for stored in [&password, &secret] {
        assert!(
            stored.starts_with(&format!("sealed:v1:{current}:")),
            "{stored}"
        );
        assert!(!stored.contains(PASSWORD) && !stored.contains(SECRET));
    }
    // A sealed value moved into the other column does not open there.
    let keys = w.app.context("payments").secrets.clone();
    assert!(keys
        .open(&password, "acquiring_organizers.callback_secret:org-1")
        .is_err());

    // The flow opens them where they are used: the bank takes the password and
    // the callback's checksum verifies with the secret.
    let order = w.top_up("300.00", "k-sealed").await;
    assert!(w.bank.pay(&order));
    assert_eq!(w.callback(&order, "deposited", 1).await, 200);
    assert_eq!(w.balance(ACCOUNT).await, m("300.00"));

    // Saved again, they are sealed afresh (a new nonce), not copied.
    let res = w
        .put_settings(
            &w.organizer,
            json!({ "base_url": w.bank.base_url(), "merchant_login": "org-1-shop" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (password_again, _) = stored_secrets(&w.app).await;
    assert_ne!(password_again, password);
    assert_eq!(
        keys.open(
            &password_again,
            "acquiring_organizers.merchant_password:org-1"
        )
        .unwrap(),
        PASSWORD
    );
    w.finish().await;
}

/// A stored order the bank never answered: what a crash between storing the
/// order and the bank's answer leaves.
async fn crashed_order(w: &World, key: &str) -> String {
    use calendar::Clock;
    let at = w.app.clock.now().naive_utc();
    let row = payments::store::acquiring::OrderRow {
        id: format!("crashed-{key}"),
        idempotency_key: format!("top-up:parent-1:{key}"),
        account_id: ACCOUNT.into(),
        organizer: "org-1".into(),
        parent: "parent-1".into(),
        amount_kopecks: 10_000,
        bank_order_id: None,
        payment_url: None,
        status: "registering".into(),
        status_rank: 0,
        refund_reserved_kopecks: 0,
        refunded_kopecks: 0,
        credit_movement: None,
        created_at: at,
        updated_at: at,
        polled_at: None,
    };
    let id = row.id.clone();
    w.app
        .context("payments")
        .db
        .write(move |c| payments::store::acquiring::insert_order(c, &row))
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_left_registering_by_a_crash_is_forgotten_and_can_be_made_again() {
    let w = world().await;
    let first = crashed_order(&w, "crash").await;
    let second = crashed_order(&w, "crash-2").await;
    // Right after the crash the request may still be on its way: wait.
    let res = w
        .request_top_up(&w.parent, ACCOUNT, "100.00", Some("crash"))
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    // Later the same request registers anew and the parent gets a page.
    w.app.clock.advance(chrono::Duration::seconds(
        acquiring::REGISTERING_STALE_SECS + 1,
    ));
    let order = w.top_up("100.00", "crash").await;
    assert_ne!(order, first);
    // The poller forgets one nobody asked about again.
    let report = w.poll().await;
    assert_eq!(report.abandoned, 1, "{report:?}");
    let res = w.get_top_up(&w.operator, &second).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Nothing was credited for the forgotten orders.
    assert_eq!(w.balance(ACCOUNT).await, Money::ZERO);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_the_bank_left_unknown_is_settled_by_the_poller() {
    let w = world().await;
    let order = w.top_up("200.00", "pending").await;
    w.bank.pay(&order);
    assert_eq!(w.callback(&order, "deposited", 1).await, 200);
    w.bank.set_unavailable(true);
    let res = w.refund(&w.organizer, &order, "50.00", "rf-p").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    w.bank.set_unavailable(false);
    // Too soon: the first attempt might still be running.
    assert_eq!(w.poll().await.refunds_settled, 0);
    w.app
        .clock
        .advance(chrono::Duration::seconds(REFUND_RETRY_AFTER_SECS + 1));
    let report = w.poll().await;
    assert_eq!(report.refunds_settled, 1, "{report:?}");
    assert_eq!(w.balance(ACCOUNT).await, m("150.00"));
    assert_eq!(w.bank.order(&order).unwrap().refunded_kopecks, 5_000);
    // Settled once: the next round and the parent's repeat change nothing.
    w.app
        .clock
        .advance(chrono::Duration::seconds(REFUND_RETRY_AFTER_SECS + 1));
    assert_eq!(w.poll().await.refunds_settled, 0);
    let res = w.refund(&w.organizer, &order, "50.00", "rf-p").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(w.balance(ACCOUNT).await, m("150.00"));
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_never_takes_the_balance_below_zero() {
    let w = world().await;
    let order = w.top_up("200.00", "spent").await;
    w.bank.pay(&order);
    assert_eq!(w.callback(&order, "deposited", 1).await, 200);
    // 180.00 of it eaten since.
    let res = w
        .http
        .post(
            w.app
                .url(&format!("/api/payments/accounts/{ACCOUNT}/adjustments")),
        )
        .bearer_auth(&w.operator)
        .header("Idempotency-Key", "meals")
        .json(&json!({ "amount": "-180.00", "reason": "meals of September" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = w.refund(&w.organizer, &order, "50.00", "too-much").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(
        problem["type"], "urn:problem:refund-exceeds-balance",
        "{problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("20.00"),
        "{problem}"
    );
    assert_eq!(w.bank.order(&order).unwrap().refunded_kopecks, 0);
    assert_eq!(w.top_up_view(&order).await["refundable"], "200.00");
    // What the account holds can go back, and then nothing more.
    let res = w.refund(&w.organizer, &order, "20.00", "the-rest").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(w.balance(ACCOUNT).await, Money::ZERO);
    let res = w.refund(&w.organizer, &order, "0.01", "one-more").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversal_by_the_bank_after_the_deposit_is_booked_once() {
    let w = world().await;
    let order = w.top_up("200.00", "rev").await;
    w.bank.pay(&order);
    assert_eq!(w.callback(&order, "deposited", 1).await, 200);
    let res = w.refund(&w.organizer, &order, "50.00", "rev-1").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(w.balance(ACCOUNT).await, m("150.00"));
    // The bank returns the payment to the card on its own: what is left of
    // the credit (200.00 less the 50.00 refunded) leaves the account.
    w.bank.set_status(&order, 3);
    assert_eq!(w.callback(&order, "reversed", 1).await, 200);
    assert_eq!(w.top_up_view(&order).await["status"], "reversed");
    assert_eq!(w.balance(ACCOUNT).await, Money::ZERO);
    // Told again, nothing more moves.
    assert_eq!(w.callback(&order, "reversed", 1).await, 200);
    assert_eq!(w.balance(ACCOUNT).await, Money::ZERO);
    w.finish().await;
}
