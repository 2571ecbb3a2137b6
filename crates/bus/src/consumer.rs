//! Consumers: take deliveries in batches, run each handler in its own savepoint
//! inside one transaction that also writes the inbox rows, commit, then
//! acknowledge. Failures go to a retry after backoff, and after the last attempt
//! (or at once, if permanent) into the dead-letter table.

use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::memory::MemDelivery;
use crate::rabbit::{declare_queue, envelope_of, open_link, publish_on, retry_queue};
use crate::{
    retry_delay, store, Bus, BusSettings, Envelope, Handler, HandlerError, QueueSpec, Responder,
    ServiceBus, ERROR_KIND,
};

/// How a consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Name recorded in the inbox; one per logical consumer (not per replica).
    pub consumer: String,
    pub spec: QueueSpec,
    /// Deliveries handled in one transaction at most.
    pub batch: usize,
    /// Parallel consumer tasks in this process.
    pub concurrency: usize,
}

impl ConsumerOptions {
    pub fn new(consumer: &str, spec: QueueSpec) -> ConsumerOptions {
        ConsumerOptions {
            consumer: consumer.to_string(),
            spec,
            batch: 64,
            concurrency: 2,
        }
    }
}

#[derive(Debug)]
enum Outcome {
    Done,
    Duplicate,
    Failed(HandlerError),
}

/// Runs `handler` over `messages` in one transaction. The fast path runs every new
/// message's handler in one savepoint and records them in the inbox with one
/// statement; if any handler fails, that savepoint is rolled back and the batch is
/// run again one savepoint per message, so only the failing ones fail.
fn process_batch(
    sb: &ServiceBus,
    consumer: &str,
    handler: &dyn Handler,
    messages: &[Envelope],
) -> Result<Vec<Outcome>, HandlerError> {
    // Handled in lock-key order (stable: delivery order among equal keys);
    // the outcomes are answered in delivery order.
    let mut order: Vec<usize> = (0..messages.len()).collect();
    let keys: Vec<Option<String>> = messages.iter().map(|m| handler.lock_key(m)).collect();
    if keys.iter().any(Option::is_some) {
        order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    }
    sb.db.write_blocking(|conn| {
        let ids: Vec<&str> = messages
            .iter()
            .map(|m| m.id.as_str())
            .filter(|id| !id.is_empty())
            .collect();
        let seen = store::inbox_seen(conn, consumer, &ids)?;
        let mut fresh: Vec<&Envelope> = Vec::new();
        let mut in_batch = std::collections::HashSet::new();
        for m in order.iter().map(|i| &messages[*i]) {
            // The same id twice in one batch (a redelivery racing the original)
            // counts as a duplicate the second time.
            if !m.id.is_empty() && !seen.contains(&m.id) && in_batch.insert(m.id.as_str()) {
                fresh.push(m);
            }
        }
        handler.lock_batch(conn, &fresh)?;
        let fast = conn.transaction::<(), HandlerError, _>(|c| {
            handler.handle_batch(c, &fresh)?;
            let fresh_ids: Vec<&str> = fresh.iter().map(|m| m.id.as_str()).collect();
            store::record_inbox_all(c, consumer, &fresh_ids)?;
            Ok(())
        });
        if fast.is_ok() {
            let mut counted = std::collections::HashSet::new();
            return Ok(messages
                .iter()
                .map(|m| {
                    if m.id.is_empty() {
                        Outcome::Failed(HandlerError::Permanent("message has no id".into()))
                    } else if !seen.contains(&m.id) && counted.insert(m.id.as_str()) {
                        Outcome::Done
                    } else {
                        Outcome::Duplicate
                    }
                })
                .collect());
        }
        let mut outcomes: Vec<Option<Outcome>> = messages.iter().map(|_| None).collect();
        for &i in &order {
            let message = &messages[i];
            if message.id.is_empty() {
                outcomes[i] = Some(Outcome::Failed(HandlerError::Permanent(
                    "message has no id".into(),
                )));
                continue;
            }
            let result = conn.transaction::<Outcome, HandlerError, _>(|c| {
                // Checked before the insert: a failed insert would poison a
                // PostgreSQL transaction; a check-then-insert race between replicas
                // ends in a unique violation, a retry, and then this check.
                if store::inbox_contains(c, consumer, &message.id)? {
                    return Ok(Outcome::Duplicate);
                }
                store::record_inbox(c, consumer, &message.id)?;
                in_span(message, || handler.handle(c, message))?;
                Ok(Outcome::Done)
            });
            outcomes[i] = Some(result.unwrap_or_else(Outcome::Failed));
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Duplicate))
            .collect())
    })
}

/// Runs `f` in the span of handling `message`, joined to the trace the message
/// carries (the consumer's name is on the enclosing consumer span).
pub(crate) fn in_span<T>(message: &Envelope, f: impl FnOnce() -> T) -> T {
    let span = tracing::info_span!("consume", message_id = %message.id, kind = %message.kind);
    telemetry::adopt_trace_headers(
        &span,
        message
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let _entered = span.enter();
    f()
}

/// Where a failed message goes next.
enum NextStep {
    Retry(Duration),
    DeadLetter(String),
}

fn next_step(settings: &BusSettings, message: &Envelope, error: &HandlerError) -> NextStep {
    match error {
        HandlerError::Permanent(reason) => NextStep::DeadLetter(reason.clone()),
        HandlerError::Transient(reason) => {
            if message.attempt >= settings.max_attempts {
                NextStep::DeadLetter(format!("{reason} (after {} attempts)", message.attempt))
            } else {
                NextStep::Retry(retry_delay(settings, message.attempt + 1))
            }
        }
    }
}

async fn dead_letter(
    sb: &ServiceBus,
    opts: &ConsumerOptions,
    message: &Envelope,
    reason: &str,
) -> Result<(), HandlerError> {
    let (consumer, queue, message_c, reason_c) = (
        opts.consumer.clone(),
        opts.spec.queue.clone(),
        message.clone(),
        reason.to_string(),
    );
    sb.db
        .write(move |conn| {
            store::insert_dead_letter(conn, &consumer, &queue, &message_c, &reason_c)
                .map_err(HandlerError::from)
        })
        .await?;
    tracing::error!(consumer = %opts.consumer, message_id = %message.id, kind = %message.kind, reason, "message dead-lettered");
    telemetry::metrics::metrics()
        .bus_dead_lettered
        .with_label_values(&[&opts.consumer])
        .inc();
    Ok(())
}

fn count(opts: &ConsumerOptions, outcome: &Outcome) {
    let label = match outcome {
        Outcome::Done => "done",
        Outcome::Duplicate => "duplicate",
        Outcome::Failed(_) => "failed",
    };
    telemetry::metrics::metrics()
        .bus_consumed
        .with_label_values(&[&opts.consumer, label])
        .inc();
}

async fn run_batch(
    sb: &ServiceBus,
    opts: &ConsumerOptions,
    handler: &Arc<dyn Handler>,
    messages: Vec<Envelope>,
) -> Result<Vec<Outcome>, HandlerError> {
    let (sb2, consumer, h) = (sb.clone(), opts.consumer.clone(), handler.clone());
    let (messages, outcomes) = tokio::task::spawn_blocking(move || {
        process_batch(&sb2, &consumer, h.as_ref(), &messages).map(|o| (messages, o))
    })
    .await
    .map_err(|e| HandlerError::Transient(e.to_string()))??;
    let (mut done, mut rest) = (Vec::new(), Vec::new());
    for (m, o) in messages.iter().zip(&outcomes) {
        if matches!(o, Outcome::Done) {
            done.push(m);
        } else {
            rest.push(m);
        }
    }
    handler.after_commit(&done, &rest);
    if outcomes.iter().any(|o| matches!(o, Outcome::Done)) {
        // Handlers may have written follow-up events to the outbox.
        sb.wake_relay();
    }
    Ok(outcomes)
}

/// Starts the consumer tasks of `opts` with `handler`.
pub fn spawn_consumer(
    sb: &ServiceBus,
    opts: ConsumerOptions,
    handler: Arc<dyn Handler>,
    cancel: CancellationToken,
) -> Vec<JoinHandle<()>> {
    (0..opts.concurrency.max(1))
        .map(|n| {
            let (sb, opts, handler, cancel) =
                (sb.clone(), opts.clone(), handler.clone(), cancel.clone());
            let span = tracing::info_span!("consumer", consumer = %opts.consumer, n);
            tokio::spawn(
                async move {
                    match sb.bus.clone() {
                        Bus::Memory(m) => memory_loop(&sb, &m, &opts, &handler, &cancel).await,
                        Bus::Rabbit(_) => rabbit_loop(&sb, &opts, &handler, &cancel).await,
                    }
                }
                .instrument(span),
            )
        })
        .collect()
}

async fn memory_loop(
    sb: &ServiceBus,
    bus: &crate::memory::MemoryBus,
    opts: &ConsumerOptions,
    handler: &Arc<dyn Handler>,
    cancel: &CancellationToken,
) {
    let rx = bus.declare(&opts.spec);
    loop {
        let mut batch: Vec<MemDelivery> = Vec::new();
        {
            let mut guard = tokio::select! {
                _ = cancel.cancelled() => return,
                g = rx.lock() => g,
            };
            let first = tokio::select! {
                _ = cancel.cancelled() => return,
                d = guard.recv() => d,
            };
            let Some(first) = first else { return };
            batch.push(first);
            while batch.len() < opts.batch {
                match guard.try_recv() {
                    Ok(d) => batch.push(d),
                    Err(_) => break,
                }
            }
        }
        let messages: Vec<Envelope> = batch.iter().map(|d| d.envelope.clone()).collect();
        let outcomes = match run_batch(sb, opts, handler, messages).await {
            Ok(o) => o,
            Err(e) => {
                // The transaction itself failed (database down): try the whole batch
                // again shortly without spending an attempt.
                tracing::warn!(error = %e, "batch failed; redelivering");
                tokio::time::sleep(Duration::from_millis(500)).await;
                for d in batch {
                    bus.redeliver(&opts.spec.queue, d);
                }
                continue;
            }
        };
        for (mut delivery, outcome) in batch.into_iter().zip(outcomes) {
            count(opts, &outcome);
            match outcome {
                Outcome::Done | Outcome::Duplicate => delivery.ack(),
                Outcome::Failed(error) => match next_step(&sb.settings, &delivery.envelope, &error)
                {
                    NextStep::Retry(delay) => {
                        telemetry::metrics::metrics()
                            .bus_retried
                            .with_label_values(&[&opts.consumer])
                            .inc();
                        tracing::warn!(message_id = %delivery.envelope.id, %error, ?delay, "retrying");
                        delivery.envelope.attempt += 1;
                        let (bus, queue) = (bus.clone(), opts.spec.queue.clone());
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            bus.redeliver(&queue, delivery);
                        });
                    }
                    NextStep::DeadLetter(reason) => {
                        match dead_letter(sb, opts, &delivery.envelope, &reason).await {
                            Ok(()) => delivery.ack(),
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot store dead letter; redelivering");
                                let (bus, queue) = (bus.clone(), opts.spec.queue.clone());
                                tokio::spawn(async move {
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                    bus.redeliver(&queue, delivery);
                                });
                            }
                        }
                    }
                },
            }
        }
    }
}

async fn rabbit_loop(
    sb: &ServiceBus,
    opts: &ConsumerOptions,
    handler: &Arc<dyn Handler>,
    cancel: &CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    while !cancel.is_cancelled() {
        match rabbit_session(sb, opts, handler, cancel).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, ?backoff, "consumer lost the broker; reconnecting");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// One connection's worth of consuming; returns `Ok` only when cancelled.
async fn rabbit_session(
    sb: &ServiceBus,
    opts: &ConsumerOptions,
    handler: &Arc<dyn Handler>,
    cancel: &CancellationToken,
) -> Result<(), crate::BusError> {
    let settings = &sb.settings;
    let link = open_link(settings, true).await?;
    declare_queue(&link.channel, settings, &opts.spec).await?;
    link.channel
        .basic_qos(settings.prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| crate::BusError::Unavailable(e.to_string()))?;
    let mut consumer = link
        .channel
        .basic_consume(
            opts.spec.queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| crate::BusError::Unavailable(e.to_string()))?;
    tracing::info!(queue = %opts.spec.queue, "consuming");
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => {
                let _ = link.connection.close(200, "shutdown".into()).await;
                return Ok(());
            }
            d = consumer.next() => d,
        };
        let first = match first {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(crate::BusError::Unavailable(e.to_string())),
            None => return Err(crate::BusError::Unavailable("consumer stream ended".into())),
        };
        let mut batch: Vec<Delivery> = vec![first];
        while batch.len() < opts.batch {
            match consumer.next().now_or_never() {
                Some(Some(Ok(d))) => batch.push(d),
                _ => break,
            }
        }
        let messages: Vec<Envelope> = batch
            .iter()
            .map(|d| envelope_of(&d.routing_key, &d.properties, &d.data))
            .collect();
        let outcomes = match run_batch(sb, opts, handler, messages.clone()).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "batch failed; requeueing");
                tokio::time::sleep(Duration::from_millis(500)).await;
                for d in &batch {
                    let _ = d
                        .acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..Default::default()
                        })
                        .await;
                }
                continue;
            }
        };
        let mut settled_all = true;
        let mut unsettled = Vec::new();
        for ((delivery, message), outcome) in batch.iter().zip(messages).zip(outcomes) {
            count(opts, &outcome);
            let settled = match outcome {
                Outcome::Done | Outcome::Duplicate => true,
                Outcome::Failed(error) => match next_step(settings, &message, &error) {
                    NextStep::Retry(delay) => {
                        telemetry::metrics::metrics()
                            .bus_retried
                            .with_label_values(&[&opts.consumer])
                            .inc();
                        tracing::warn!(message_id = %message.id, %error, ?delay, "retrying");
                        let mut again = message.clone();
                        again.attempt += 1;
                        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                        again.destination = Some(retry_queue(&opts.spec.queue, ms));
                        match publish_on(&link.channel, &settings.exchange, vec![again]).await {
                            Ok(confirms) => confirms.await.is_ok(),
                            Err(_) => false,
                        }
                    }
                    NextStep::DeadLetter(reason) => {
                        dead_letter(sb, opts, &message, &reason).await.is_ok()
                    }
                },
            };
            settled_all &= settled;
            if !settled {
                unsettled.push(delivery);
            }
        }
        // A lost ack means redelivery, which the inbox absorbs.
        let acked = if settled_all {
            // One frame for the whole batch: every earlier delivery on this
            // channel is settled already.
            match batch.last() {
                Some(last) => last
                    .acker
                    .ack(BasicAckOptions { multiple: true })
                    .await
                    .map(|_| ()),
                None => Ok(()),
            }
        } else {
            let mut result = Ok(());
            for delivery in &batch {
                let r = if unsettled
                    .iter()
                    .any(|u| u.delivery_tag == delivery.delivery_tag)
                {
                    delivery
                        .acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..Default::default()
                        })
                        .await
                } else {
                    delivery.acker.ack(BasicAckOptions::default()).await
                };
                if let Err(e) = r {
                    result = Err(e);
                }
            }
            result.map(|_| ())
        };
        acked.map_err(|e| crate::BusError::Unavailable(e.to_string()))?;
    }
}

/// Serves request/reply on `opts.spec`: each request runs `responder` in a
/// transaction and the body it returns goes back to the caller.
pub fn spawn_responder(
    sb: &ServiceBus,
    opts: ConsumerOptions,
    responder: Arc<dyn Responder>,
    cancel: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let handler = Replies {
        responder,
        bus: sb.bus.clone(),
        pending: std::sync::Mutex::new(std::collections::HashMap::new()),
    };
    spawn_consumer(sb, opts, Arc::new(handler), cancel)
}

/// A responder as a consumer: each request is answered in the batch's
/// transaction, and its reply leaves only after that transaction committed,
/// so a caller never holds an answer whose effect was rolled back (a batch
/// that falls back to one savepoint per message answers each request once,
/// from the run that committed).
struct Replies {
    responder: Arc<dyn Responder>,
    bus: Bus,
    /// Replies by request id, waiting for the commit.
    pending: std::sync::Mutex<std::collections::HashMap<String, Envelope>>,
}

impl Replies {
    fn pending(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Envelope>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Handler for Replies {
    fn handle(
        &self,
        conn: &mut storage::DbConnection,
        request: &Envelope,
    ) -> Result<(), HandlerError> {
        let reply_to = request
            .reply_to
            .clone()
            .ok_or_else(|| HandlerError::Permanent("request without reply_to".into()))?;
        let body =
            conn.transaction::<String, HandlerError, _>(|c| self.responder.respond(c, request));
        let body = body.and_then(|p| {
            crate::check_payload(&request.kind, &p)
                .map(|_| p)
                .map_err(|e| HandlerError::Permanent(e.to_string()))
        });
        let (kind, payload) = match body {
            Ok(p) => (format!("{}.reply", request.kind), p),
            Err(e) => (ERROR_KIND.to_string(), e.to_string()),
        };
        let reply = Envelope {
            id: uuid::Uuid::now_v7().to_string(),
            topic: request.topic.clone(),
            kind,
            payload,
            headers: request.headers.clone(),
            correlation_id: request.correlation_id.clone(),
            reply_to: None,
            attempt: 1,
            destination: Some(reply_to),
        };
        self.pending().insert(request.id.clone(), reply);
        Ok(())
    }

    fn after_commit(&self, done: &[&Envelope], rest: &[&Envelope]) {
        let replies: Vec<Envelope> = {
            let mut pending = self.pending();
            for m in rest {
                pending.remove(&m.id);
            }
            done.iter().filter_map(|m| pending.remove(&m.id)).collect()
        };
        if replies.is_empty() {
            return;
        }
        let bus = self.bus.clone();
        // Replies are not stored: a lost reply surfaces as the caller's timeout.
        tokio::spawn(async move {
            if let Ok(confirms) = bus.publish(replies).await {
                let _ = confirms.await;
            }
        });
    }
}
