//! The message bus: one publish/consume API with two back ends (RabbitMQ through
//! lapin, and an in-process bus for the embedded mode), the transactional outbox,
//! the inbox that makes redelivery harmless, retries with backoff, dead letters,
//! and request/reply.
//!
//! Delivery is at least once end to end: the outbox row is stamped published only
//! after the broker confirmed it, a delivery is acknowledged only after the
//! consumer's transaction (effect + inbox row) committed, and the inbox turns the
//! duplicates this allows into no-ops.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use storage::{DbConnection, StorageError};

mod consumer;
pub mod memory;
pub mod rabbit;
mod relay;
pub mod store;

pub use consumer::{spawn_consumer, spawn_responder, ConsumerOptions};
pub use relay::{spawn_relay, RelayHandle};
pub use settings::BusSettings;

/// One message on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique id; the inbox deduplicates on it.
    pub id: String,
    /// Routing key on the topic exchange, `<service>.<event>.v<version>`.
    pub topic: String,
    /// The contract type and version, e.g. `meals.DebitRequested.v1`.
    pub kind: String,
    /// JSON body.
    pub payload: String,
    /// W3C trace context and other metadata.
    pub headers: BTreeMap<String, String>,
    pub correlation_id: Option<String>,
    pub reply_to: Option<String>,
    /// 1 on the first delivery, incremented by each retry.
    pub attempt: u32,
    /// When set, delivered straight to this queue instead of by topic.
    pub destination: Option<String>,
}

/// The largest body a message may carry (RabbitMQ 4 refuses messages over
/// 16 MiB by default; this platform stays well below). A larger document
/// travels in chunks or by reference (the gateway's documents).
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

/// Refuses a body over [`MAX_PAYLOAD_BYTES`].
pub fn check_payload(kind: &str, payload: &str) -> Result<(), BusError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(BusError::Encode(format!(
            "a {kind} of {} bytes exceeds the {} MiB a bus message may carry; send it in chunks or by reference",
            payload.len(),
            MAX_PAYLOAD_BYTES / (1024 * 1024)
        )));
    }
    Ok(())
}

impl Envelope {
    /// A new message with a fresh id, carrying the current trace context.
    /// A body over [`MAX_PAYLOAD_BYTES`] is refused.
    pub fn json<T: Serialize>(topic: &str, kind: &str, body: &T) -> Result<Envelope, BusError> {
        let payload = serde_json::to_string(body).map_err(|e| BusError::Encode(e.to_string()))?;
        check_payload(kind, &payload)?;
        Ok(Envelope {
            id: uuid::Uuid::now_v7().to_string(),
            topic: topic.to_string(),
            kind: kind.to_string(),
            payload,
            headers: telemetry::current_trace_headers(),
            correlation_id: None,
            reply_to: None,
            attempt: 1,
            destination: None,
        })
    }

    /// The body as `T`; a body that does not parse is a permanent failure.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_str(&self.payload)
            .map_err(|e| HandlerError::Permanent(format!("{} body does not parse: {e}", self.kind)))
    }

    /// Uses `key` as the message id, so a retried command stays one message.
    pub fn with_id(mut self, key: impl Into<String>) -> Envelope {
        self.id = key.into();
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    #[error("broker refused the message: {0}")]
    Nacked(String),
    #[error("message could not be encoded: {0}")]
    Encode(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the responder failed: {0}")]
    Remote(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<diesel::result::Error> for BusError {
    fn from(e: diesel::result::Error) -> Self {
        BusError::Storage(StorageError::from(e))
    }
}

/// Why a handler did not take effect.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again later (a lock, a dependency that is down).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (a malformed body): dead-letter at once.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<StorageError> for HandlerError {
    fn from(e: StorageError) -> Self {
        HandlerError::Transient(e.to_string())
    }
}

impl From<diesel::result::Error> for HandlerError {
    fn from(e: diesel::result::Error) -> Self {
        HandlerError::Transient(e.to_string())
    }
}

/// A consumer's effect. It runs inside the transaction that also records the
/// message in the inbox, so it must do all its writes through `conn` (follow-up
/// events go to the outbox with [`store::enqueue`]).
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, conn: &mut DbConnection, message: &Envelope) -> Result<(), HandlerError>;

    /// The row a message's effect locks (an account, say). A batch's messages
    /// are handled in the order of their keys, so two consumers whose batches
    /// touch the same rows take their locks in one order and cannot deadlock
    /// each other. Only for handlers whose effects commute (the newest
    /// movement's balance wins, whatever order it arrives in); `None` (the
    /// default) keeps the delivery order.
    fn lock_key(&self, _message: &Envelope) -> Option<String> {
        None
    }

    /// Handles a batch's new messages at once, in the batch's transaction (one
    /// savepoint). The default hands them to [`Handler::handle`] one by one; a
    /// handler that can do a whole batch in a fixed number of statements
    /// overrides it. If it fails, the batch is run again one savepoint per
    /// message through `handle`, so only the failing messages fail.
    fn handle_batch(
        &self,
        conn: &mut DbConnection,
        messages: &[&Envelope],
    ) -> Result<(), HandlerError> {
        for message in messages {
            consumer::in_span(message, || self.handle(conn, message))?;
        }
        Ok(())
    }

    /// Runs once per batch, before any of its handlers, in the batch's
    /// transaction (outside the handlers' savepoints, so what it locks stays
    /// locked if the batch falls back to one savepoint per message). A handler
    /// whose effect locks rows that every message shares (a settlement account,
    /// say) takes all of the batch's rows here in one statement, in one order,
    /// so two batches cannot each hold a row the other waits for. `messages` are
    /// the batch's new messages; undecodable ones are for `handle` to refuse.
    fn lock_batch(
        &self,
        _conn: &mut DbConnection,
        _messages: &[&Envelope],
    ) -> Result<(), HandlerError> {
        Ok(())
    }

    /// Runs once the batch's transaction committed: `done` took effect in it,
    /// `rest` did not (failed, or seen before). What must not leave before
    /// the commit (a request's reply) leaves here.
    fn after_commit(&self, _done: &[&Envelope], _rest: &[&Envelope]) {}
}

impl<F> Handler for F
where
    F: Fn(&mut DbConnection, &Envelope) -> Result<(), HandlerError> + Send + Sync + 'static,
{
    fn handle(&self, conn: &mut DbConnection, message: &Envelope) -> Result<(), HandlerError> {
        self(conn, message)
    }
}

/// The answering side of request/reply: the returned JSON body is the reply.
pub trait Responder: Send + Sync + 'static {
    fn respond(&self, conn: &mut DbConnection, request: &Envelope) -> Result<String, HandlerError>;
}

impl<F> Responder for F
where
    F: Fn(&mut DbConnection, &Envelope) -> Result<String, HandlerError> + Send + Sync + 'static,
{
    fn respond(&self, conn: &mut DbConnection, request: &Envelope) -> Result<String, HandlerError> {
        self(conn, request)
    }
}

/// A durable queue and the topics bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub queue: String,
    pub bindings: Vec<String>,
}

impl QueueSpec {
    pub fn new(queue: impl Into<String>, bindings: &[&str]) -> QueueSpec {
        QueueSpec {
            queue: queue.into(),
            bindings: bindings.iter().map(|b| b.to_string()).collect(),
        }
    }

    /// The queue as named on a broker whose queues carry `prefix`
    /// (`BusSettings::queue_prefix`).
    pub fn prefixed(mut self, prefix: &str) -> QueueSpec {
        self.queue = format!("{prefix}{}", self.queue);
        self
    }
}

/// Resolves once the broker has taken responsibility for a published batch.
pub type Confirms = futures::future::BoxFuture<'static, Result<(), BusError>>;

/// The bus a process talks to.
#[derive(Clone)]
pub enum Bus {
    Memory(memory::MemoryBus),
    Rabbit(rabbit::RabbitBus),
}

impl Bus {
    /// The back end the settings name.
    pub async fn connect(settings: &BusSettings) -> Result<Bus, BusError> {
        match settings.backend {
            settings::BusBackend::Memory => Ok(Bus::Memory(memory::MemoryBus::new())),
            settings::BusBackend::Rabbitmq => {
                Ok(Bus::Rabbit(rabbit::RabbitBus::connect(settings).await?))
            }
        }
    }

    /// Publishes a batch; the returned future resolves when all are confirmed.
    /// A message over [`MAX_PAYLOAD_BYTES`] is refused, and the batch with it.
    pub async fn publish(&self, batch: Vec<Envelope>) -> Result<Confirms, BusError> {
        for m in &batch {
            check_payload(&m.kind, &m.payload)?;
        }
        match self {
            Bus::Memory(m) => m.publish(batch),
            Bus::Rabbit(r) => r.publish(batch).await,
        }
    }

    /// Sends a request to whoever serves `request.topic` and waits for the reply.
    pub async fn request(
        &self,
        mut request: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, BusError> {
        request.correlation_id = Some(request.id.clone());
        let reply = match self {
            Bus::Memory(m) => m.request(request, timeout).await?,
            Bus::Rabbit(r) => r.request(request, timeout).await?,
        };
        if reply.kind == ERROR_KIND {
            return Err(BusError::Remote(reply.payload));
        }
        Ok(reply)
    }

    /// Declares queues and their bindings (idempotent). Run for the whole topology
    /// before any relay publishes: a topic with no bound queue drops messages.
    pub async fn declare(&self, specs: &[QueueSpec]) -> Result<(), BusError> {
        match self {
            Bus::Memory(m) => {
                for spec in specs {
                    m.declare(spec);
                }
                Ok(())
            }
            Bus::Rabbit(r) => r.declare(specs).await,
        }
    }

    /// Whether the broker answers (readiness).
    pub async fn ping(&self) -> Result<(), BusError> {
        match self {
            Bus::Memory(_) => Ok(()),
            Bus::Rabbit(r) => r.ping().await,
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Bus::Memory(_) => "memory",
            Bus::Rabbit(_) => "rabbitmq",
        }
    }
}

/// `kind` of the reply a responder sends when it failed.
pub const ERROR_KIND: &str = "bus.Error.v1";

/// AMQP topic matching: words separated by `.`, `*` matches one word, `#` zero or more.
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    fn go(p: &[&str], t: &[&str]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    go(&p, &t)
}

/// The delay before attempt `next_attempt` (2 = the first retry).
pub fn retry_delay(settings: &BusSettings, next_attempt: u32) -> Duration {
    let idx = usize::try_from(next_attempt.saturating_sub(2)).unwrap_or(usize::MAX);
    let ms = settings
        .retry_delays_ms
        .get(idx)
        .or(settings.retry_delays_ms.last())
        .copied()
        .unwrap_or(1_000);
    Duration::from_millis(ms)
}

/// What a service needs to talk on the bus: its database (outbox, inbox), the bus,
/// and the relay to wake after a commit.
#[derive(Clone)]
pub struct ServiceBus {
    pub service: String,
    pub db: storage::Db,
    pub bus: Bus,
    pub settings: Arc<BusSettings>,
    pub relay: RelayHandle,
}

impl ServiceBus {
    /// The spec of one of this service's queues, named as the settings
    /// name queues on the broker (see `BusSettings::queue_prefix`).
    pub fn queue_spec(&self, queue: &str, bindings: &[&str]) -> QueueSpec {
        QueueSpec::new(queue, bindings).prefixed(&self.settings.queue_prefix)
    }

    pub fn new(service: &str, db: storage::Db, bus: Bus, settings: BusSettings) -> ServiceBus {
        ServiceBus {
            service: service.to_string(),
            db,
            bus,
            settings: Arc::new(settings),
            relay: RelayHandle::default(),
        }
    }

    /// Tells the relay that committed outbox rows are waiting.
    pub fn wake_relay(&self) {
        self.relay.wake();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_follow_amqp() {
        assert!(topic_matches("meals.#", "meals.debit.requested.v1"));
        assert!(topic_matches(
            "meals.*.requested.v1",
            "meals.debit.requested.v1"
        ));
        assert!(!topic_matches("meals.*", "meals.debit.requested"));
        assert!(topic_matches("#", "a.b"));
        assert!(topic_matches("a.#.z", "a.z"));
        assert!(!topic_matches("payments.#", "meals.x"));
    }

    #[test]
    fn a_body_over_four_mib_is_refused() {
        let small = "x".repeat(MAX_PAYLOAD_BYTES - 2);
        assert!(Envelope::json("t.v1", "K.v1", &small).is_ok());
        let big = "x".repeat(MAX_PAYLOAD_BYTES);
        let err = Envelope::json("t.v1", "K.v1", &big)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exceeds the 4 MiB"), "{err}");
    }

    #[test]
    fn retry_delays_repeat_the_last() {
        let mut s = settings::Settings::default().bus;
        s.retry_delays_ms = vec![10, 20];
        assert_eq!(retry_delay(&s, 2), Duration::from_millis(10));
        assert_eq!(retry_delay(&s, 3), Duration::from_millis(20));
        assert_eq!(retry_delay(&s, 9), Duration::from_millis(20));
    }
}
