//! Shared set-up of the bus tests: two services' databases, a bus of the current
//! test mode, and a consumer whose effect is a row per message.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, ConsumerOptions, Envelope, Handler, HandlerError, QueueSpec, ServiceBus};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use settings::{BusBackend, BusSettings};
use storage::testing::{distributed, unique_name, TestDb};
use storage::DbConnection;
use tokio_util::sync::CancellationToken;

pub fn bus_settings() -> BusSettings {
    let mut s = settings::Settings::default().bus;
    s.backend = if distributed() {
        BusBackend::Rabbitmq
    } else {
        BusBackend::Memory
    };
    if let Ok(url) = std::env::var("PORTAL_TEST_AMQP_URL") {
        s.amqp_url = url;
    }
    s.retry_delays_ms = vec![50, 150];
    s.max_attempts = 3;
    s.relay_poll_ms = 50;
    s.relay_batch = 500;
    s
}

pub struct Side {
    pub test_db: TestDb,
    pub sb: ServiceBus,
}

pub async fn side(name: &str, bus: &Bus, settings: &BusSettings) -> Side {
    let test_db = TestDb::new(name).unwrap();
    test_db.db.migrate(&[&bus::store::MIGRATIONS]).unwrap();
    test_db
        .db
        .conn()
        .unwrap()
        .batch_execute("CREATE TABLE effects (message_id TEXT NOT NULL, body TEXT NOT NULL)")
        .unwrap();
    let sb = ServiceBus::new(name, test_db.db.clone(), bus.clone(), settings.clone());
    Side { test_db, sb }
}

diesel::table! {
    effects (message_id) {
        message_id -> Text,
        body -> Text,
    }
}

/// Writes one `effects` row per message it handles.
pub struct RecordEffect;

impl Handler for RecordEffect {
    fn handle(&self, conn: &mut DbConnection, message: &Envelope) -> Result<(), HandlerError> {
        diesel::insert_into(effects::table)
            .values((
                effects::message_id.eq(&message.id),
                effects::body.eq(&message.payload),
            ))
            .execute(conn)?;
        Ok(())
    }
}

pub fn effect_counts(side: &Side) -> (i64, i64) {
    let mut conn = side.test_db.db.conn().unwrap();
    let total: i64 = effects::table.count().get_result(&mut *conn).unwrap();
    #[derive(QueryableByName)]
    struct Distinct {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let distinct = diesel::sql_query("SELECT count(DISTINCT message_id) AS n FROM effects")
        .get_result::<Distinct>(&mut *conn)
        .unwrap()
        .n;
    (total, distinct)
}

/// A topic prefix of its own, so tests sharing one broker do not see each other.
pub fn topic_prefix() -> String {
    unique_name("t")
}

pub fn queue_for(prefix: &str, consumer: &str) -> ConsumerOptions {
    let mut opts = ConsumerOptions::new(
        consumer,
        QueueSpec::new(format!("{prefix}.{consumer}"), &[&format!("{prefix}.#")]),
    );
    opts.batch = 200;
    opts.concurrency = 2;
    opts
}

/// Enqueues `n` messages on `side`'s outbox in transactions of `per_tx`.
pub async fn enqueue(side: &Side, prefix: &str, from: usize, n: usize, per_tx: usize) {
    let mut i = from;
    while i < from + n {
        let end = (i + per_tx).min(from + n);
        let prefix = prefix.to_string();
        side.test_db
            .db
            .write(move |conn| {
                for k in i..end {
                    let env = Envelope::json(
                        &format!("{prefix}.thing.v1"),
                        "test.Thing.v1",
                        &serde_json::json!({ "n": k }),
                    )
                    .map_err(|e| storage::StorageError::Config(e.to_string()))?;
                    bus::store::enqueue(conn, &env)?;
                }
                Ok::<(), storage::StorageError>(())
            })
            .await
            .unwrap();
        side.sb.wake_relay();
        i = end;
    }
}

pub async fn wait_for<F: Fn() -> bool>(what: &str, timeout: Duration, f: F) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn pending_outbox(side: &Side) -> i64 {
    let mut conn = side.test_db.db.conn().unwrap();
    bus::store::count_pending(&mut conn).unwrap()
}

pub async fn start(
    producer: &Side,
    consumer: &Side,
    opts: ConsumerOptions,
    handler: Arc<dyn Handler>,
) -> CancellationToken {
    consumer
        .sb
        .bus
        .declare(std::slice::from_ref(&opts.spec))
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    bus::spawn_consumer(&consumer.sb, opts, handler, cancel.clone());
    bus::spawn_relay(&producer.sb, cancel.clone());
    cancel
}

/// Removes a test's queues from the shared broker.
pub async fn drop_queue(settings: &BusSettings, queue: &str) {
    if distributed() {
        let _ = bus::rabbit::delete_queue(settings, queue).await;
    }
}
