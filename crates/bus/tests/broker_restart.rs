//! 10,000 messages through outbox → bus → inbox while the broker restarts in the
//! middle (distributed mode: RabbitMQ is stopped and started for real; embedded
//! mode: the process's bus, relay and consumers are dropped and started anew, as
//! after a crash). Every message must arrive and take effect exactly once.
//!
//! Alone in its test binary, because it restarts the shared broker.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, ServiceBus};
use common::*;
use storage::testing::distributed;

const TOTAL: usize = 10_000;

fn rabbitmqctl(args: &[&str]) -> bool {
    Command::new("rabbitmqctl")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn restart_rabbitmq() {
    assert!(rabbitmqctl(&["stop"]), "rabbitmqctl stop failed");
    let started = Command::new("rabbitmq-server")
        .arg("-detached")
        .status()
        .unwrap();
    assert!(started.success(), "rabbitmq-server -detached failed");
    // The node takes a moment to accept CLI connections before it can be awaited.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !rabbitmqctl(&["await_startup", "--timeout", "120"]) {
        assert!(
            std::time::Instant::now() < deadline,
            "RabbitMQ did not come back"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_survive_a_broker_restart() {
    let settings = bus_settings();
    let bus = Bus::connect(&settings).await.unwrap();
    let producer = side("producer", &bus, &settings).await;
    let consumer = side("consumer", &bus, &settings).await;
    let prefix = topic_prefix();
    let opts = queue_for(&prefix, "restart");
    let cancel = start(&producer, &consumer, opts.clone(), Arc::new(RecordEffect)).await;

    enqueue(&producer, &prefix, 0, TOTAL / 2, 250).await;
    wait_for("a first part to arrive", Duration::from_secs(120), || {
        effect_counts(&consumer).0 >= 2_000
    })
    .await;

    let (producer, consumer, cancel) = if distributed() {
        // The broker goes away with messages in flight, queued and unacked.
        let restart = tokio::task::spawn_blocking(restart_rabbitmq);
        enqueue(&producer, &prefix, TOTAL / 2, TOTAL / 4, 250).await;
        restart.await.unwrap();
        (producer, consumer, cancel)
    } else {
        // The in-process bus dies with the process: everything in it is gone.
        cancel.cancel();
        tokio::time::sleep(Duration::from_millis(200)).await;
        enqueue(&producer, &prefix, TOTAL / 2, TOTAL / 4, 250).await;
        let fresh = Bus::connect(&settings).await.unwrap();
        let producer = Side {
            sb: ServiceBus::new(
                "producer",
                producer.test_db.db.clone(),
                fresh.clone(),
                settings.clone(),
            ),
            test_db: producer.test_db,
        };
        let consumer = Side {
            sb: ServiceBus::new(
                "consumer",
                consumer.test_db.db.clone(),
                fresh,
                settings.clone(),
            ),
            test_db: consumer.test_db,
        };
        let cancel = start(&producer, &consumer, opts, Arc::new(RecordEffect)).await;
        (producer, consumer, cancel)
    };
    enqueue(&producer, &prefix, TOTAL * 3 / 4, TOTAL / 4, 250).await;

    wait_for("all 10,000 effects", Duration::from_secs(300), || {
        effect_counts(&consumer).0 >= TOTAL as i64
    })
    .await;
    wait_for("the outbox to drain", Duration::from_secs(120), || {
        pending_outbox(&producer) == 0
    })
    .await;
    // Redeliveries still on their way must change nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        effect_counts(&consumer),
        (TOTAL as i64, TOTAL as i64),
        "each message exactly once"
    );
    let letters =
        bus::store::list_dead_letters(&mut consumer.test_db.db.conn().unwrap(), true).unwrap();
    assert!(letters.is_empty(), "nothing dead-lettered: {letters:?}");
    cancel.cancel();
    drop_queue(&settings, &format!("{prefix}.restart")).await;
}
