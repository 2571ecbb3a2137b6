//! The in-process bus of the embedded mode. It keeps AMQP's topic routing, and its
//! "confirm" resolves only when every consumer has committed the message (or
//! parked it as a dead letter): until then the outbox row stays unpublished, so a
//! crash of the one process loses nothing — the relay sends it again on start and
//! the inbox drops the duplicate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::{topic_matches, BusError, Confirms, Envelope, QueueSpec};

/// One delivery of the in-process bus; `done` confirms it to the publisher.
pub struct MemDelivery {
    pub envelope: Envelope,
    pub done: Option<oneshot::Sender<()>>,
}

impl MemDelivery {
    /// The consumer took final responsibility (committed or dead-lettered).
    pub fn ack(mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}

type Receiver = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<MemDelivery>>>;

struct Queue {
    bindings: Vec<String>,
    tx: mpsc::UnboundedSender<MemDelivery>,
    rx: Receiver,
}

#[derive(Default)]
struct Inner {
    queues: HashMap<String, Queue>,
    replies: HashMap<String, oneshot::Sender<Envelope>>,
}

const REPLY_PREFIX: &str = "memory-reply.";

#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryBus {
    pub fn new() -> MemoryBus {
        MemoryBus::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Declares `spec.queue` (idempotent) and returns its receiving end, shared by
    /// every consumer of the queue.
    pub fn declare(&self, spec: &QueueSpec) -> Receiver {
        let mut inner = self.lock();
        let queue = inner.queues.entry(spec.queue.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            Queue {
                bindings: Vec::new(),
                tx,
                rx: Arc::new(tokio::sync::Mutex::new(rx)),
            }
        });
        for b in &spec.bindings {
            if !queue.bindings.contains(b) {
                queue.bindings.push(b.clone());
            }
        }
        queue.rx.clone()
    }

    /// Puts a delivery back on its queue (a retry after backoff).
    pub fn redeliver(&self, queue: &str, delivery: MemDelivery) {
        if let Some(q) = self.lock().queues.get(queue) {
            let _ = q.tx.send(delivery);
        }
    }

    pub fn publish(&self, batch: Vec<Envelope>) -> Result<Confirms, BusError> {
        let mut waits = Vec::new();
        {
            let mut inner = self.lock();
            for envelope in batch {
                if let Some(dest) = envelope.destination.clone() {
                    if dest.starts_with(REPLY_PREFIX) {
                        if let Some(waiter) = inner.replies.remove(&dest) {
                            let _ = waiter.send(envelope);
                        }
                        continue;
                    }
                    if let Some(q) = inner.queues.get(&dest) {
                        let (done, wait) = oneshot::channel();
                        let _ = q.tx.send(MemDelivery {
                            envelope,
                            done: Some(done),
                        });
                        waits.push(wait);
                    }
                    continue;
                }
                for q in inner.queues.values() {
                    if q.bindings.iter().any(|b| topic_matches(b, &envelope.topic)) {
                        let (done, wait) = oneshot::channel();
                        let _ = q.tx.send(MemDelivery {
                            envelope: envelope.clone(),
                            done: Some(done),
                        });
                        waits.push(wait);
                    }
                }
            }
        }
        Ok(async move {
            for wait in waits {
                wait.await.map_err(|_| {
                    BusError::Unavailable("in-process consumer stopped before confirming".into())
                })?;
            }
            Ok(())
        }
        .boxed())
    }

    pub async fn request(
        &self,
        mut request: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, BusError> {
        let key = format!("{REPLY_PREFIX}{}", request.id);
        let (tx, rx) = oneshot::channel();
        self.lock().replies.insert(key.clone(), tx);
        request.reply_to = Some(key.clone());
        let routed = {
            let inner = self.lock();
            inner
                .queues
                .values()
                .any(|q| q.bindings.iter().any(|b| topic_matches(b, &request.topic)))
        };
        if !routed {
            self.lock().replies.remove(&key);
            return Err(BusError::Unavailable(format!(
                "nobody serves `{}`",
                request.topic
            )));
        }
        // Requests are not confirmed by the responder's commit: the caller waits for
        // the reply itself.
        drop(self.publish(vec![request])?);
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(BusError::Unavailable("reply channel closed".into())),
            Err(_) => {
                self.lock().replies.remove(&key);
                Err(BusError::Timeout(timeout))
            }
        }
    }
}
