//! Exactly-once effect over at-least-once delivery, retries, dead letters,
//! replay and request/reply, on the bus of the current test mode.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use bus::{Bus, Envelope, HandlerError};
use common::*;
use storage::DbConnection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_takes_effect_once_even_when_delivered_twice() {
    let settings = bus_settings();
    let bus = Bus::connect(&settings).await.unwrap();
    let producer = side("producer", &bus, &settings).await;
    let consumer = side("consumer", &bus, &settings).await;
    let prefix = topic_prefix();
    let cancel = start(
        &producer,
        &consumer,
        queue_for(&prefix, "effects"),
        Arc::new(RecordEffect),
    )
    .await;
    enqueue(&producer, &prefix, 0, 300, 50).await;
    wait_for("300 effects", Duration::from_secs(60), || {
        effect_counts(&consumer).0 == 300
    })
    .await;

    // The relay publishes everything again, as after a lost confirm: the inbox
    // must turn every copy into a no-op.
    {
        use diesel::prelude::*;
        let mut conn = producer.test_db.db.conn().unwrap();
        diesel::sql_query("UPDATE outbox SET published_at = NULL")
            .execute(&mut *conn)
            .unwrap();
    }
    producer.sb.wake_relay();
    wait_for("outbox drained again", Duration::from_secs(60), || {
        pending_outbox(&producer) == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(effect_counts(&consumer), (300, 300));
    cancel.cancel();
    drop_queue(&settings, &format!("{prefix}.effects")).await;
}

/// Fails the first `fail_times` deliveries of every message, then succeeds.
struct Flaky {
    fail_times: u32,
    /// (message id, attempt) pairs the handler saw: a batch's fast pass and its
    /// per-message pass may both run one attempt, which counts once.
    attempts: Mutex<BTreeSet<(String, u32)>>,
    permanent: bool,
}

impl bus::Handler for Flaky {
    fn handle(&self, conn: &mut DbConnection, message: &Envelope) -> Result<(), HandlerError> {
        self.attempts
            .lock()
            .unwrap()
            .insert((message.id.clone(), message.attempt));
        if self.permanent {
            return Err(HandlerError::Permanent("body is not a thing".into()));
        }
        if message.attempt <= self.fail_times {
            return Err(HandlerError::Transient(format!(
                "attempt {} refused",
                message.attempt
            )));
        }
        RecordEffect.handle(conn, message)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_with_backoff() {
    let settings = bus_settings();
    let bus = Bus::connect(&settings).await.unwrap();
    let producer = side("producer", &bus, &settings).await;
    let consumer = side("consumer", &bus, &settings).await;
    let prefix = topic_prefix();
    let flaky = Arc::new(Flaky {
        fail_times: 2,
        attempts: Mutex::default(),
        permanent: false,
    });
    let cancel = start(
        &producer,
        &consumer,
        queue_for(&prefix, "flaky"),
        flaky.clone(),
    )
    .await;
    enqueue(&producer, &prefix, 0, 5, 5).await;
    wait_for("5 effects after retries", Duration::from_secs(30), || {
        effect_counts(&consumer).0 == 5
    })
    .await;
    assert_eq!(effect_counts(&consumer), (5, 5));
    assert_eq!(
        flaky.attempts.lock().unwrap().len(),
        15,
        "two failed attempts and one success each"
    );
    let letters =
        bus::store::list_dead_letters(&mut consumer.test_db.db.conn().unwrap(), false).unwrap();
    assert!(letters.is_empty());
    cancel.cancel();
    drop_queue(&settings, &format!("{prefix}.flaky")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_messages_are_dead_lettered_and_replayable() {
    let settings = bus_settings();
    let bus = Bus::connect(&settings).await.unwrap();
    let producer = side("producer", &bus, &settings).await;
    let consumer = side("consumer", &bus, &settings).await;
    let prefix = topic_prefix();
    // Always fails: after max_attempts (3) the message is parked.
    let flaky = Arc::new(Flaky {
        fail_times: u32::MAX,
        attempts: Mutex::default(),
        permanent: false,
    });
    let mut opts = queue_for(&prefix, "stubborn");
    opts.concurrency = 1;
    let cancel = start(&producer, &consumer, opts.clone(), flaky.clone()).await;
    enqueue(&producer, &prefix, 0, 2, 2).await;
    let db = consumer.test_db.db.clone();
    wait_for("2 dead letters", Duration::from_secs(30), || {
        bus::store::list_dead_letters(&mut db.conn().unwrap(), false)
            .unwrap()
            .len()
            == 2
    })
    .await;
    assert_eq!(
        flaky.attempts.lock().unwrap().len(),
        6,
        "three attempts each"
    );
    let letters = bus::store::list_dead_letters(&mut db.conn().unwrap(), false).unwrap();
    assert!(
        letters[0].error.contains("after 3 attempts"),
        "{}",
        letters[0].error
    );
    assert_eq!(letters[0].queue, opts.spec.queue);
    assert_eq!(effect_counts(&consumer).0, 0);
    cancel.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The operator fixes the cause (now the handler succeeds) and replays one.
    let cured = Arc::new(Flaky {
        fail_times: 0,
        attempts: Mutex::default(),
        permanent: false,
    });
    let cancel = start(&consumer, &consumer, opts, cured).await;
    let replayed = bus::store::replay_dead_letter(&mut db.conn().unwrap(), letters[0].id).unwrap();
    assert!(replayed.is_some());
    assert!(
        bus::store::replay_dead_letter(&mut db.conn().unwrap(), letters[0].id)
            .unwrap()
            .is_none(),
        "replayed once"
    );
    consumer.sb.wake_relay();
    wait_for(
        "replayed message takes effect",
        Duration::from_secs(30),
        || effect_counts(&consumer).0 == 1,
    )
    .await;
    let open = bus::store::list_dead_letters(&mut db.conn().unwrap(), false).unwrap();
    assert_eq!(open.len(), 1, "the other letter stays parked");
    cancel.cancel();
    drop_queue(&settings, &format!("{prefix}.stubborn")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_skip_the_retries() {
    let settings = bus_settings();
    let bus = Bus::connect(&settings).await.unwrap();
    let producer = side("producer", &bus, &settings).await;
    let consumer = side("consumer", &bus, &settings).await;
    let prefix = topic_prefix();
    let bad = Arc::new(Flaky {
        fail_times: 0,
        attempts: Mutex::default(),
        permanent: true,
    });
    let cancel = start(
        &producer,
        &consumer,
        queue_for(&prefix, "strict"),
        bad.clone(),
    )
    .await;
    enqueue(&producer, &prefix, 0, 1, 1).await;
    let db = consumer.test_db.db.clone();
    wait_for("a dead letter", Duration::from_secs(30), || {
        bus::store::list_dead_letters(&mut db.conn().unwrap(), false)
            .unwrap()
            .len()
            == 1
    })
    .await;
    assert_eq!(bad.attempts.lock().unwrap().len(), 1);
    cancel.cancel();
    drop_queue(&settings, &format!("{prefix}.strict")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_round_trip_and_timeout() {
    let settings = bus_settings();
    let bus = Bus::connect(&settings).await.unwrap();
    let server = side("server", &bus, &settings).await;
    let prefix = topic_prefix();
    let cancel = tokio_util::sync::CancellationToken::new();
    let responder = |_: &mut DbConnection, req: &Envelope| -> Result<String, HandlerError> {
        let v: serde_json::Value = req.decode()?;
        if v["n"] == 13 {
            return Err(HandlerError::Permanent("unlucky number".into()));
        }
        Ok(serde_json::json!({ "double": v["n"].as_i64().unwrap_or(0) * 2 }).to_string())
    };
    let mut opts = queue_for(&prefix, "doubler");
    opts.spec = bus::QueueSpec::new(
        format!("{prefix}.doubler"),
        &[&format!("{prefix}.double.v1")],
    );
    bus::spawn_responder(&server.sb, opts, Arc::new(responder), cancel.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut req = Envelope::json(
        &format!("{prefix}.double.v1"),
        "test.Double.v1",
        &serde_json::json!({ "n": 21 }),
    )
    .unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    req.headers.insert("traceparent".into(), traceparent.into());
    let reply = bus.request(req, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        reply.headers.get("traceparent").map(String::as_str),
        Some(traceparent),
        "trace context crosses the bus both ways"
    );
    let v: serde_json::Value = serde_json::from_str(&reply.payload).unwrap();
    assert_eq!(v["double"], 42);

    let req = Envelope::json(
        &format!("{prefix}.double.v1"),
        "test.Double.v1",
        &serde_json::json!({ "n": 13 }),
    )
    .unwrap();
    let err = bus.request(req, Duration::from_secs(10)).await.unwrap_err();
    assert!(err.to_string().contains("unlucky number"), "{err}");

    // Nobody serves this topic: the caller gets a timeout (or, in process, an
    // immediate "nobody serves"), never a hang.
    let req = Envelope::json(
        &format!("{prefix}.nobody.v1"),
        "test.Nobody.v1",
        &serde_json::json!({}),
    )
    .unwrap();
    let err = bus
        .request(req, Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            bus::BusError::Timeout(_) | bus::BusError::Unavailable(_)
        ),
        "{err}"
    );
    cancel.cancel();
    drop_queue(&settings, &format!("{prefix}.doubler")).await;
}

/// Refuses, for good, only the message whose body has `n == 3`.
struct PickyAboutThree;

impl bus::Handler for PickyAboutThree {
    fn handle(&self, conn: &mut DbConnection, message: &Envelope) -> Result<(), HandlerError> {
        let body: serde_json::Value = message.decode()?;
        if body["n"] == 3 {
            return Err(HandlerError::Permanent("three is not accepted".into()));
        }
        RecordEffect.handle(conn, message)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_message_does_not_undo_its_batch() {
    let settings = bus_settings();
    let bus = Bus::connect(&settings).await.unwrap();
    let producer = side("producer", &bus, &settings).await;
    let consumer = side("consumer", &bus, &settings).await;
    let prefix = topic_prefix();
    let mut opts = queue_for(&prefix, "picky");
    opts.concurrency = 1;
    // All ten are committed before the consumer starts, so they arrive as one batch.
    enqueue(&producer, &prefix, 0, 10, 10).await;
    let cancel = start(&producer, &consumer, opts, Arc::new(PickyAboutThree)).await;
    wait_for("9 effects", Duration::from_secs(30), || {
        effect_counts(&consumer).0 == 9
    })
    .await;
    let db = consumer.test_db.db.clone();
    wait_for("the dead letter", Duration::from_secs(30), || {
        bus::store::list_dead_letters(&mut db.conn().unwrap(), false)
            .unwrap()
            .len()
            == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(effect_counts(&consumer), (9, 9));
    cancel.cancel();
    drop_queue(&settings, &format!("{prefix}.picky")).await;
}

/// Records the order it handles messages in; its lock key runs against the
/// delivery order.
struct Ordered {
    seen: Mutex<Vec<i64>>,
}

impl bus::Handler for Ordered {
    fn handle(&self, _conn: &mut DbConnection, message: &Envelope) -> Result<(), HandlerError> {
        let body: serde_json::Value = message.decode()?;
        self.seen.lock().unwrap().push(body["n"].as_i64().unwrap());
        Ok(())
    }

    fn lock_key(&self, message: &Envelope) -> Option<String> {
        let body: serde_json::Value = message.decode().ok()?;
        Some(format!("{:03}", 100 - body["n"].as_i64()?))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_handled_in_the_order_of_its_lock_keys() {
    let settings = bus_settings();
    let bus = Bus::connect(&settings).await.unwrap();
    let producer = side("producer", &bus, &settings).await;
    let consumer = side("consumer", &bus, &settings).await;
    let prefix = topic_prefix();
    let mut opts = queue_for(&prefix, "ordered");
    opts.concurrency = 1;
    // All ten are committed before the consumer starts, so they arrive in few
    // batches; two consumers taking rows in one order cannot deadlock.
    enqueue(&producer, &prefix, 0, 10, 10).await;
    let handler = Arc::new(Ordered {
        seen: Mutex::new(Vec::new()),
    });
    let cancel = start(&producer, &consumer, opts, handler.clone()).await;
    wait_for("10 handled", Duration::from_secs(30), || {
        handler.seen.lock().unwrap().len() == 10
    })
    .await;
    // Each batch runs against the delivery order; the broker may split the ten
    // into a few batches (6 and 4, say), never into ten of one.
    let seen = handler.seen.lock().unwrap().clone();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, (0..10).collect::<Vec<i64>>(), "each once: {seen:?}");
    let batch_starts = seen.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        batch_starts < 4,
        "not in lock-key order within batches: {seen:?}"
    );
    cancel.cancel();
    drop_queue(&settings, &format!("{prefix}.ordered")).await;
}

/// A reply leaves only after the responder's transaction committed: a batch
/// whose fast path rolls back (a request without reply_to beside a good one)
/// answers the good request once, from the run that committed, so what the
/// reply names is in the database when the caller reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_names_only_what_was_committed() {
    use diesel::prelude::*;
    let settings = bus_settings();
    let bus = Bus::connect(&settings).await.unwrap();
    let server = side("replies", &bus, &settings).await;
    let prefix = topic_prefix();
    let cancel = tokio_util::sync::CancellationToken::new();
    let responder = |conn: &mut DbConnection, req: &Envelope| -> Result<String, HandlerError> {
        let id = uuid::Uuid::now_v7().to_string();
        diesel::insert_into(common::effects::table)
            .values((
                common::effects::message_id.eq(&id),
                common::effects::body.eq(&req.payload),
            ))
            .execute(conn)?;
        Ok(serde_json::json!({ "row": id }).to_string())
    };
    let mut opts = queue_for(&prefix, "recorder");
    opts.spec = bus::QueueSpec::new(
        format!("{prefix}.recorder"),
        &[&format!("{prefix}.record.v1")],
    );
    bus::spawn_responder(&server.sb, opts, Arc::new(responder), cancel.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in 0..5 {
        // A message without reply_to fails its handler: the batch it shares
        // with the request falls back to one savepoint per message.
        let stray = Envelope::json(&format!("{prefix}.record.v1"), "test.Record.v1", &n).unwrap();
        bus.publish(vec![stray]).await.unwrap().await.unwrap();
        let req = Envelope::json(&format!("{prefix}.record.v1"), "test.Record.v1", &n).unwrap();
        let reply = bus.request(req, Duration::from_secs(10)).await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&reply.payload).unwrap();
        let row = v["row"].as_str().unwrap().to_string();
        let mut conn = server.test_db.db.conn().unwrap();
        let found: i64 = common::effects::table
            .filter(common::effects::message_id.eq(&row))
            .count()
            .get_result(&mut *conn)
            .unwrap();
        assert_eq!(
            found, 1,
            "the reply named row {row}, which was not committed"
        );
    }
    cancel.cancel();
    drop_queue(&settings, &format!("{prefix}.recorder")).await;
}
