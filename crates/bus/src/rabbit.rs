//! RabbitMQ through lapin: a durable topic exchange, durable quorum queues,
//! publisher confirms, manual acks with bounded prefetch, retry queues with
//! per-queue TTL that dead-letter back to the work queue, and direct reply-to for
//! request/reply. Every connection is re-established after a broker restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::oneshot;

use crate::{BusError, BusSettings, Confirms, Envelope, QueueSpec};

/// Header carrying the delivery attempt across retry queues.
pub const ATTEMPT_HEADER: &str = "x-attempt";
const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// A connection and one channel on it.
pub struct Link {
    pub connection: Connection,
    pub channel: Channel,
}

impl Link {
    pub fn is_open(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// Opens a connection and a channel (in confirm mode when asked) and declares the
/// exchange.
pub async fn open_link(settings: &BusSettings, confirm: bool) -> Result<Link, BusError> {
    let connection = Connection::connect(&settings.amqp_url, ConnectionProperties::default())
        .await
        .map_err(unavailable)?;
    let channel = connection.create_channel().await.map_err(unavailable)?;
    if confirm {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
    }
    channel
        .exchange_declare(
            settings.exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(unavailable)?;
    Ok(Link {
        connection,
        channel,
    })
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

/// Name of the retry queue that holds messages for `delay_ms` before they go back
/// to `queue`.
pub fn retry_queue(queue: &str, delay_ms: u64) -> String {
    format!("{queue}.retry.{delay_ms}ms")
}

/// Declares the work queue, its bindings and its retry queues (all idempotent).
pub async fn declare_queue(
    channel: &Channel,
    settings: &BusSettings,
    spec: &QueueSpec,
) -> Result<(), BusError> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(spec.queue.as_str().into(), durable, quorum_args())
        .await
        .map_err(unavailable)?;
    for binding in &spec.bindings {
        channel
            .queue_bind(
                spec.queue.as_str().into(),
                settings.exchange.as_str().into(),
                binding.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
    }
    let mut delays = settings.retry_delays_ms.clone();
    delays.sort_unstable();
    delays.dedup();
    for delay in delays {
        let mut args = quorum_args();
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(i64::try_from(delay).unwrap_or(i64::MAX)),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(spec.queue.as_str().into()),
        );
        // At-least-once dead-lettering: the expired message is not dropped if the
        // work queue cannot take it at that moment.
        args.insert(
            "x-dead-letter-strategy".into(),
            AMQPValue::LongString("at-least-once".into()),
        );
        args.insert(
            "x-overflow".into(),
            AMQPValue::LongString("reject-publish".into()),
        );
        channel
            .queue_declare(
                retry_queue(&spec.queue, delay).as_str().into(),
                durable,
                args,
            )
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// AMQP properties of an envelope (persistent, typed, with its headers).
pub fn properties(envelope: &Envelope) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (k, v) in &envelope.headers {
        headers.insert(k.as_str().into(), AMQPValue::LongString(v.as_str().into()));
    }
    headers.insert(
        ATTEMPT_HEADER.into(),
        AMQPValue::LongLongInt(i64::from(envelope.attempt)),
    );
    headers.insert(
        "x-topic".into(),
        AMQPValue::LongString(envelope.topic.as_str().into()),
    );
    let mut props = BasicProperties::default()
        .with_message_id(envelope.id.as_str().into())
        .with_type(envelope.kind.as_str().into())
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_headers(headers);
    if let Some(c) = &envelope.correlation_id {
        props = props.with_correlation_id(c.as_str().into());
    }
    if let Some(r) = &envelope.reply_to {
        props = props.with_reply_to(r.as_str().into());
    }
    props
}

fn long_string(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// The envelope carried by an AMQP delivery.
pub fn envelope_of(routing_key: &ShortString, props: &BasicProperties, data: &[u8]) -> Envelope {
    let mut headers = BTreeMap::new();
    let mut attempt = 1;
    let mut topic = routing_key.as_str().to_string();
    if let Some(table) = props.headers() {
        for (k, v) in table.inner() {
            match k.as_str() {
                ATTEMPT_HEADER => {
                    if let AMQPValue::LongLongInt(n) = v {
                        attempt = u32::try_from(*n).unwrap_or(1);
                    }
                }
                "x-topic" => {
                    if let Some(t) = long_string(v) {
                        topic = t;
                    }
                }
                // Broker bookkeeping from dead-lettering is not ours to carry on.
                "x-death"
                | "x-first-death-exchange"
                | "x-first-death-queue"
                | "x-first-death-reason"
                | "x-last-death-exchange"
                | "x-last-death-queue"
                | "x-last-death-reason" => {}
                key => {
                    if let Some(s) = long_string(v) {
                        headers.insert(key.to_string(), s);
                    }
                }
            }
        }
    }
    Envelope {
        id: props
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        topic,
        kind: props
            .kind()
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        payload: String::from_utf8_lossy(data).into_owned(),
        headers,
        correlation_id: props
            .correlation_id()
            .as_ref()
            .map(|s| s.as_str().to_string()),
        reply_to: props.reply_to().as_ref().map(|s| s.as_str().to_string()),
        attempt,
        destination: None,
    }
}

/// Publishes `batch` on `channel` (exchange by topic, or straight to a queue) and
/// returns a future over all the confirms.
pub async fn publish_on(
    channel: &Channel,
    exchange: &str,
    batch: Vec<Envelope>,
) -> Result<Confirms, BusError> {
    let mut pending = Vec::with_capacity(batch.len());
    for envelope in &batch {
        let (ex, key) = match &envelope.destination {
            Some(queue) => ("", queue.as_str()),
            None => (exchange, envelope.topic.as_str()),
        };
        let confirm = channel
            .basic_publish(
                ex.into(),
                key.into(),
                BasicPublishOptions::default(),
                envelope.payload.as_bytes(),
                properties(envelope),
            )
            .await
            .map_err(unavailable)?;
        pending.push(confirm);
    }
    Ok(async move {
        for confirm in pending {
            let confirmation = confirm.await.map_err(unavailable)?;
            // Only a broker ack counts: a channel that lost confirm mode in a
            // reconnect answers "not requested", which proves nothing.
            if !confirmation.is_ack() {
                return Err(BusError::Nacked(format!(
                    "publish not acknowledged: {confirmation:?}"
                )));
            }
        }
        Ok(())
    }
    .boxed())
}

type Replies = Arc<Mutex<HashMap<String, oneshot::Sender<Envelope>>>>;

#[derive(Clone)]
pub struct RabbitBus {
    pub settings: Arc<BusSettings>,
    publisher: Arc<tokio::sync::Mutex<Option<Link>>>,
    requester: Arc<tokio::sync::Mutex<Option<Link>>>,
    replies: Replies,
}

impl RabbitBus {
    /// Tries to connect at once, but a broker that is down only makes the service
    /// not ready: every call reconnects.
    pub async fn connect(settings: &BusSettings) -> Result<RabbitBus, BusError> {
        let bus = RabbitBus {
            settings: Arc::new(settings.clone()),
            publisher: Arc::new(tokio::sync::Mutex::new(None)),
            requester: Arc::new(tokio::sync::Mutex::new(None)),
            replies: Arc::default(),
        };
        if let Err(e) = bus.publisher_channel().await {
            tracing::warn!(error = %e, "RabbitMQ not reachable at start; will retry");
        }
        Ok(bus)
    }

    async fn publisher_channel(&self) -> Result<Channel, BusError> {
        let mut guard = self.publisher.lock().await;
        if let Some(link) = guard.as_ref() {
            if link.is_open() {
                return Ok(link.channel.clone());
            }
        }
        *guard = None;
        let link = open_link(&self.settings, true).await?;
        let channel = link.channel.clone();
        *guard = Some(link);
        Ok(channel)
    }

    async fn reset_publisher(&self) {
        *self.publisher.lock().await = None;
    }

    pub async fn publish(&self, batch: Vec<Envelope>) -> Result<Confirms, BusError> {
        let channel = self.publisher_channel().await?;
        match publish_on(&channel, &self.settings.exchange, batch).await {
            Ok(c) => Ok(c),
            Err(e) => {
                self.reset_publisher().await;
                Err(e)
            }
        }
    }

    pub async fn declare(&self, specs: &[QueueSpec]) -> Result<(), BusError> {
        let link = open_link(&self.settings, false).await?;
        for spec in specs {
            declare_queue(&link.channel, &self.settings, spec).await?;
        }
        let _ = link.connection.close(200, "declared".into()).await;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), BusError> {
        self.publisher_channel().await.map(|_| ())
    }

    /// The channel that consumes direct replies; requests must be published on it.
    async fn requester_channel(&self) -> Result<Channel, BusError> {
        let mut guard = self.requester.lock().await;
        if let Some(link) = guard.as_ref() {
            if link.is_open() {
                return Ok(link.channel.clone());
            }
        }
        *guard = None;
        let link = open_link(&self.settings, false).await?;
        let mut consumer = link
            .channel
            .basic_consume(
                DIRECT_REPLY_TO.into(),
                "portal-replies".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        let replies = self.replies.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let envelope =
                    envelope_of(&delivery.routing_key, &delivery.properties, &delivery.data);
                let waiter = envelope
                    .correlation_id
                    .as_ref()
                    .and_then(|c| replies.lock().unwrap_or_else(|p| p.into_inner()).remove(c));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(envelope);
                }
            }
        });
        let channel = link.channel.clone();
        *guard = Some(link);
        Ok(channel)
    }

    pub async fn request(
        &self,
        mut request: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, BusError> {
        let correlation = request
            .correlation_id
            .clone()
            .unwrap_or_else(|| request.id.clone());
        let (tx, rx) = oneshot::channel();
        self.replies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(correlation.clone(), tx);
        request.reply_to = Some(DIRECT_REPLY_TO.to_string());
        let sent = async {
            let channel = self.requester_channel().await?;
            let props = properties(&request);
            channel
                .basic_publish(
                    self.settings.exchange.as_str().into(),
                    request.topic.as_str().into(),
                    BasicPublishOptions::default(),
                    request.payload.as_bytes(),
                    props,
                )
                .await
                .map_err(unavailable)?;
            Ok::<(), BusError>(())
        }
        .await;
        if let Err(e) = sent {
            self.replies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&correlation);
            *self.requester.lock().await = None;
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(BusError::Unavailable("reply channel closed".into())),
            Err(_) => {
                self.replies
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&correlation);
                Err(BusError::Timeout(timeout))
            }
        }
    }
}

/// Deletes the settings' exchange and so its bindings (a test's own exchange,
/// when the test stops); the queues stay.
pub async fn delete_exchange(settings: &BusSettings) -> Result<(), BusError> {
    let link = open_link(settings, false).await?;
    link.channel
        .exchange_delete(
            settings.exchange.as_str().into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await
        .map_err(unavailable)?;
    let _ = link.connection.close(200, "done".into()).await;
    Ok(())
}

/// Deletes a work queue and its retry queues (tests and decommissioning).
pub async fn delete_queue(settings: &BusSettings, queue: &str) -> Result<(), BusError> {
    let link = open_link(settings, false).await?;
    let mut names = vec![queue.to_string()];
    names.extend(
        settings
            .retry_delays_ms
            .iter()
            .map(|d| retry_queue(queue, *d)),
    );
    for name in names {
        link.channel
            .queue_delete(
                name.as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await
            .map_err(unavailable)?;
    }
    let _ = link.connection.close(200, "done".into()).await;
    Ok(())
}
