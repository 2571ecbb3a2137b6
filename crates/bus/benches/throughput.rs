//! Bus throughput, 1 KiB messages, on this machine's PostgreSQL and RabbitMQ:
//!
//! 1. bare lapin: publish with confirms → consume with manual acks, one quorum queue;
//! 2. the platform's full path: business transactions that each commit one outbox
//!    row on PostgreSQL → relay → RabbitMQ with confirms → consumer that commits
//!    its effect and inbox row on PostgreSQL → ack.
//!
//! Run: `cargo bench -p bus --bench throughput` (PostgreSQL and RabbitMQ must run:
//! `bash scripts/services.sh`). `BENCH_MESSAGES` sets the count (default 20000).

#![allow(clippy::unwrap_used, clippy::float_arithmetic)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bus::{Bus, ConsumerOptions, Envelope, HandlerError, QueueSpec, ServiceBus};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use storage::testing::{unique_name, TestDb};

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn figures(n: usize, elapsed: Duration, mut lat: Vec<u64>) -> Figures {
    lat.sort_unstable();
    Figures {
        rate: n as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
    }
}

async fn bare_lapin(amqp: &str, n: usize) -> Figures {
    let queue = unique_name("bench.bare");
    let publisher = Connection::connect(amqp, ConnectionProperties::default())
        .await
        .unwrap();
    let consumer_conn = Connection::connect(amqp, ConnectionProperties::default())
        .await
        .unwrap();
    let pch = publisher.create_channel().await.unwrap();
    let cch = consumer_conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    pch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    )
    .await
    .unwrap();
    pch.confirm_select(Default::default()).await.unwrap();
    cch.basic_qos(256, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = cch
        .basic_consume(
            queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let received = tokio::spawn(async move {
        let mut lat = Vec::with_capacity(n);
        while lat.len() < n {
            let d = consumer.next().await.unwrap().unwrap();
            let sent = u64::from_le_bytes(d.data[..8].try_into().unwrap());
            lat.push(now_micros().saturating_sub(sent));
            d.acker.ack(BasicAckOptions::default()).await.unwrap();
        }
        lat
    });
    let started = Instant::now();
    let mut pending = Vec::new();
    for _ in 0..n {
        let mut body = vec![b'x'; 1024];
        body[..8].copy_from_slice(&now_micros().to_le_bytes());
        let confirm = pch
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap();
        pending.push(confirm);
        // Confirms awaited in windows, as a real publisher would.
        if pending.len() == 500 {
            for c in pending.drain(..) {
                assert!(c.await.unwrap().is_ack());
            }
        }
    }
    for c in pending {
        assert!(c.await.unwrap().is_ack());
    }
    let lat = received.await.unwrap();
    let elapsed = started.elapsed();
    pch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    figures(n, elapsed, lat)
}

struct Measure {
    lat: Mutex<Vec<u64>>,
}

async fn full_path(
    settings: &settings::BusSettings,
    n: usize,
    writers: usize,
    per_tx: usize,
) -> Figures {
    let bus = Bus::connect(settings).await.unwrap();
    let mut producer_db = TestDb::postgres("bench_producer").unwrap();
    // As many connections as writers, so commits can group.
    producer_db.db = storage::Db::open(
        &producer_db.location,
        writers as u32 + 4,
        Duration::from_secs(10),
    )
    .unwrap();
    let consumer_db = TestDb::postgres("bench_consumer").unwrap();
    for db in [&producer_db, &consumer_db] {
        db.db.migrate(&[&bus::store::MIGRATIONS]).unwrap();
    }
    {
        use diesel::connection::SimpleConnection;
        consumer_db
            .db
            .conn()
            .unwrap()
            .batch_execute(
                "CREATE TABLE effects (message_id TEXT PRIMARY KEY, bytes INTEGER NOT NULL)",
            )
            .unwrap();
    }
    let producer = ServiceBus::new(
        "bench_producer",
        producer_db.db.clone(),
        bus.clone(),
        settings.clone(),
    );
    let consumer = ServiceBus::new(
        "bench_consumer",
        consumer_db.db.clone(),
        bus.clone(),
        settings.clone(),
    );
    let prefix = unique_name("bench");
    let spec = QueueSpec::new(format!("{prefix}.effects"), &[&format!("{prefix}.#")]);
    bus.declare(std::slice::from_ref(&spec)).await.unwrap();

    let measure = Arc::new(Measure {
        lat: Mutex::new(Vec::with_capacity(n)),
    });
    let m = measure.clone();
    let handler =
        move |conn: &mut storage::DbConnection, msg: &Envelope| -> Result<(), HandlerError> {
            use diesel::RunQueryDsl;
            let body: serde_json::Value = msg.decode()?;
            diesel::sql_query("INSERT INTO effects (message_id, bytes) VALUES ($1, $2)")
                .bind::<diesel::sql_types::Text, _>(&msg.id)
                .bind::<diesel::sql_types::Integer, _>(msg.payload.len() as i32)
                .execute(conn)?;
            let sent = body["t"].as_u64().unwrap_or(0);
            m.lat
                .lock()
                .unwrap()
                .push(now_micros().saturating_sub(sent));
            Ok(())
        };
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut opts = ConsumerOptions::new("bench", spec.clone());
    opts.batch = std::env::var("BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    opts.concurrency = std::env::var("BENCH_CONSUMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    bus::spawn_consumer(&consumer, opts, Arc::new(handler), cancel.clone());
    bus::spawn_relay(&producer, cancel.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pad = "x".repeat(1000);
    let started = Instant::now();
    let per_writer = n / writers;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (db, prefix, pad, producer) = (
            producer_db.db.clone(),
            prefix.clone(),
            pad.clone(),
            producer.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while i < per_writer {
                let (prefix, pad) = (prefix.clone(), pad.clone());
                let end = (i + per_tx).min(per_writer);
                db.write(move |conn| {
                    let batch: Vec<Envelope> = (i..end)
                        .map(|k| {
                            Envelope::json(
                                &format!("{prefix}.thing.v1"),
                                "bench.Thing.v1",
                                &serde_json::json!({ "w": w, "i": k, "t": now_micros(), "pad": pad }),
                            )
                            .unwrap()
                        })
                        .collect();
                    bus::store::enqueue_all(conn, &batch)
                })
                .await
                .unwrap();
                producer.wake_relay();
                i = end;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let produced = started.elapsed();
    let total = per_writer * writers;
    let mut relayed = None;
    loop {
        if relayed.is_none() {
            let pending = producer_db
                .db
                .read(bus::store::count_pending)
                .await
                .unwrap();
            if pending == 0 {
                relayed = Some(started.elapsed());
            }
        }
        if measure.lat.lock().unwrap().len() >= total {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "full path stalled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    eprintln!("full path: producers committed {total} in {produced:?}, outbox empty after {relayed:?}, all consumed after {elapsed:?}");
    cancel.cancel();
    let _ = bus::rabbit::delete_queue(settings, &spec.queue).await;
    let lat = std::mem::take(&mut *measure.lat.lock().unwrap());
    figures(total, elapsed, lat)
}

fn main() {
    let n: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let amqp = std::env::var("PORTAL_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let mut settings = settings::Settings::default().bus;
    settings.backend = settings::BusBackend::Rabbitmq;
    settings.amqp_url = amqp.clone();
    settings.relay_batch = 500;
    settings.prefetch = std::env::var("BENCH_PREFETCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    settings.relay_poll_ms = 20;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Warm-up so connection set-up is not in the figures.
        let _ = bare_lapin(&amqp, 1_000).await;
        let bare = bare_lapin(&amqp, n).await;
        let single = full_path(&settings, n, 32, 1).await;
        let bulk = full_path(&settings, n, 4, 100).await;
        println!("messages: {n}, 1 KiB each, quorum queue, PostgreSQL for the outbox and inbox");
        println!("| path | messages/s | p50 latency ms | p99 latency ms |");
        println!("|---|---:|---:|---:|");
        println!(
            "| bare lapin publish (confirms) → consume (acks) | {:.0} | {:.1} | {:.1} |",
            bare.rate, bare.p50_ms, bare.p99_ms
        );
        println!(
            "| full path, 1 event per business transaction, 32 writers | {:.0} | {:.1} | {:.1} |",
            single.rate, single.p50_ms, single.p99_ms
        );
        println!(
            "| full path, 100 events per business transaction, 4 writers | {:.0} | {:.1} | {:.1} |",
            bulk.rate, bulk.p50_ms, bulk.p99_ms
        );
        println!(
            "full path / bare: {:.2} (single), {:.2} (bulk)",
            single.rate / bare.rate,
            bulk.rate / bare.rate
        );
    });
}
