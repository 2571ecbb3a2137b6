//! Outbound calls to participants' own services: a queue in the gateway's
//! database (`deliveries`), filled in the transaction that takes the event
//! (so a restart loses nothing and a redelivered event queues nothing twice),
//! and a sender that calls each participant's address with the SMEV envelope
//! over reqwest. A failure is tried again with a doubling delay (from
//! `gateway.outbound_retry_ms`, at most an hour), and parked after
//! `gateway.outbound_max_attempts` for the operator to replay. A slow or dead
//! participant holds no one else back: at most `outbound_per_participant`
//! calls to one participant are in flight, and after
//! `outbound_breaker_failures` failures in a row its calls pause for
//! `outbound_breaker_open_ms` (a circuit breaker; then one call tries). The
//! delivery's id is the MessageId sent, so the receiver takes it once; a
//! delivered message is never sent again. Every call is in the message log
//! (direction `out`). Deliveries are scheduled on the machine's clock, not
//! the service's business clock: a retry's delay is real time.
//!
//! First use: class requests pushed to a caterer's accounting system
//! (`caterer-push.wsdl`) when a teacher forms them and when the day closes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use contracts::meals::ClassRequestReady;
use platform::tokio_util::sync::CancellationToken;
use platform::ServiceContext;
use tokio::sync::Semaphore;

use crate::domain::envelope::{Header, Message, Org, Status};
use crate::soap::{contracts::CATERER_PUSH, json, read, write, GatewayState};
use crate::store::{self, DeliveryRow};

/// The operation pushed to caterers.
pub const PUSH_CLASS_REQUESTS: &str = "PushClassRequests";

/// Queues a push of a class request to every caterer participant of its
/// organizer that registered a service address. Runs in the consumer's
/// transaction (with the inbox row).
pub struct ClassRequestHandler;

impl bus::Handler for ClassRequestHandler {
    fn handle(
        &self,
        conn: &mut storage::DbConnection,
        message: &bus::Envelope,
    ) -> Result<(), bus::HandlerError> {
        let event: ClassRequestReady = message.decode()?;
        let payload = serde_json::json!({
            "reason": event.reason,
            "requests": [event.request],
        })
        .to_string();
        // Deliveries are scheduled on the machine's clock: retry delays are
        // real time, whatever the service's business clock says.
        let now = storage::now_naive();
        for p in store::caterers_of(conn, &event.organizer)? {
            store::queue_delivery(
                conn,
                &DeliveryRow {
                    id: format!("{}@{}", message.id, p.code),
                    participant: p.code.clone(),
                    operation: PUSH_CLASS_REQUESTS.into(),
                    payload: payload.clone(),
                    status: store::PENDING.into(),
                    attempts: 0,
                    next_at: now,
                    last_error: None,
                    created_at: now,
                    delivered_at: None,
                },
            )?;
        }
        Ok(())
    }
}

/// A participant's run of failures.
#[derive(Debug, Default, Clone, Copy)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    /// After a pause one call tries (half-open); it is in flight.
    trial: bool,
}

/// The sender's state in the process.
#[derive(Default)]
struct Sender {
    breakers: Mutex<HashMap<String, Breaker>>,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    in_flight: Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sender {
    /// Whether a call to `participant` may go now: not while its breaker
    /// pauses it, and after a pause only one (the trial) until that one ends.
    fn admit(&self, participant: &str) -> bool {
        let mut map = lock(&self.breakers);
        let Some(b) = map.get_mut(participant) else {
            return true;
        };
        match b.open_until {
            Some(t) if Instant::now() < t => false,
            Some(_) if b.trial => false,
            Some(_) => {
                b.trial = true;
                true
            }
            None => true,
        }
    }

    fn record(&self, participant: &str, ok: bool, threshold: u32, open_for: Duration) {
        let mut map = lock(&self.breakers);
        let b = map.entry(participant.to_string()).or_default();
        if ok {
            *b = Breaker::default();
        } else {
            b.failures += 1;
            b.trial = false;
            if b.failures >= threshold {
                // Paused; after the pause a single trial, and its failure
                // pauses it again.
                b.open_until = Some(Instant::now() + open_for);
                b.failures = threshold.saturating_sub(1);
            }
        }
    }

    /// Undoes an admission whose call did not go (no slot, or already taken).
    fn release_trial(&self, participant: &str) {
        if let Some(b) = lock(&self.breakers).get_mut(participant) {
            b.trial = false;
        }
    }

    /// Participants that take no more calls now: paused by the breaker, or
    /// with every slot in flight.
    fn busy(&self) -> Vec<String> {
        let mut out: Vec<String> = lock(&self.slots)
            .iter()
            .filter(|(_, s)| s.available_permits() == 0)
            .map(|(p, _)| p.clone())
            .collect();
        let now = Instant::now();
        out.extend(
            lock(&self.breakers)
                .iter()
                .filter(|(_, b)| b.trial || b.open_until.is_some_and(|t| now < t))
                .map(|(p, _)| p.clone()),
        );
        out.sort();
        out.dedup();
        out
    }

    fn slot(&self, participant: &str, per: usize) -> Arc<Semaphore> {
        lock(&self.slots)
            .entry(participant.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(per.max(1))))
            .clone()
    }
}

/// The delay before attempt `attempts + 1`: `base`, doubling, at most an hour.
pub fn backoff(base_ms: u64, attempts: u32) -> Duration {
    let factor = 1u64 << attempts.min(20);
    Duration::from_millis(base_ms.saturating_mul(factor).min(3_600_000))
}

/// Sends the due deliveries until cancelled.
pub fn spawn(
    ctx: ServiceContext,
    state: Arc<GatewayState>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let sender = Arc::new(Sender::default());
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let now = storage::now_naive();
            let busy = sender.busy();
            let due = ctx
                .db
                .read(move |c| store::due_deliveries(c, now, &busy, 200))
                .await;
            match due {
                Ok(rows) => {
                    for d in rows {
                        if lock(&sender.in_flight).contains(&d.id) || !sender.admit(&d.participant)
                        {
                            continue;
                        }
                        let slot = sender.slot(
                            &d.participant,
                            ctx.settings.gateway.outbound_per_participant,
                        );
                        let Ok(permit) = slot.try_acquire_owned() else {
                            sender.release_trial(&d.participant);
                            continue;
                        };
                        lock(&sender.in_flight).insert(d.id.clone());
                        let (ctx, state, sender, http) =
                            (ctx.clone(), state.clone(), sender.clone(), http.clone());
                        tokio::spawn(async move {
                            let id = d.id.clone();
                            deliver(&ctx, &state, &sender, &http, d).await;
                            lock(&sender.in_flight).remove(&id);
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "outbound deliveries could not be read"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    })
}

async fn deliver(
    ctx: &ServiceContext,
    state: &GatewayState,
    sender: &Sender,
    http: &reqwest::Client,
    d: DeliveryRow,
) {
    let gw = &ctx.settings.gateway;
    // Claim it: a stale read of this delivery by the next round is not sent
    // again while this send runs (the lease outlasts the call).
    let now = storage::now_naive();
    let lease = now
        + chrono::Duration::milliseconds(i64::try_from(gw.outbound_timeout_ms).unwrap_or(10_000))
        + chrono::Duration::seconds(30);
    let id = d.id.clone();
    match ctx
        .db
        .write(move |c| store::claim_delivery(c, &id, now, lease))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            sender.release_trial(&d.participant);
            return;
        }
        Err(e) => {
            tracing::warn!(delivery = %d.id, error = %e, "a delivery could not be claimed; it is tried again later");
            sender.release_trial(&d.participant);
            return;
        }
    }
    let started = Instant::now();
    let code = d.participant.clone();
    let participant = match ctx.db.read(move |c| store::participant(c, &code)).await {
        Ok(p) => p,
        Err(e) => {
            // The gateway's own database, not the participant: no attempt is
            // counted; the lease runs out and it is sent again.
            tracing::warn!(delivery = %d.id, error = %e, "the participant could not be read; the delivery is tried again later");
            sender.release_trial(&d.participant);
            return;
        }
    };
    let (request, outcome) = match &participant {
        Some(p) if p.active && !p.address.is_empty() => match state.sign(envelope(ctx, &d, p)) {
            Ok(body) => (
                body.clone(),
                call(http, gw.outbound_timeout_ms, &p.address, &d.operation, body).await,
            ),
            Err(e) => (
                String::new(),
                Err((format!("the call could not be signed: {e}"), String::new())),
            ),
        },
        _ => (
            String::new(),
            Err((
                "the participant is inactive or has no service address".to_string(),
                String::new(),
            )),
        ),
    };
    let ok = outcome.is_ok();
    sender.record(
        &d.participant,
        ok,
        gw.outbound_breaker_failures.max(1),
        Duration::from_millis(gw.outbound_breaker_open_ms),
    );
    let (status, text, response) = match &outcome {
        Ok(r) => (Status::Accept, "delivered".to_string(), r.clone()),
        Err((e, r)) => (Status::Failure, e.clone(), r.clone()),
    };
    let logged = state
        .log
        .write(store::Exchange {
            direction: "out".into(),
            participant: d.participant.clone(),
            service: CATERER_PUSH.name.into(),
            operation: d.operation.clone(),
            message_id: d.id.clone(),
            request_id_ref: None,
            origin_request_id_ref: None,
            case_number: None,
            status: status.as_str().into(),
            outcome: text.clone(),
            duration_ms: started.elapsed().as_millis() as i64,
            request_body: request,
            response_body: response,
        })
        .await;
    if let Err(e) = logged {
        tracing::warn!(delivery = %d.id, error = %e, "an outbound call could not be logged");
    }
    let now = storage::now_naive();
    let id = d.id.clone();
    let next: Option<NaiveDateTime> = (!ok && (d.attempts as u32 + 1) < gw.outbound_max_attempts)
        .then(|| {
            now + chrono::Duration::from_std(backoff(gw.outbound_retry_ms, d.attempts as u32))
                .unwrap_or_default()
        });
    let written = ctx
        .db
        .write(move |c| {
            if ok {
                store::delivered(c, &id, now)
            } else {
                store::delivery_failed(c, &id, &text, next)
            }
        })
        .await;
    if let Err(e) = written {
        tracing::warn!(delivery = %d.id, error = %e, "a delivery's outcome was not recorded; it will be sent again");
    } else if !ok && next.is_none() {
        tracing::warn!(delivery = %d.id, participant = %d.participant, "a delivery was parked after its last attempt");
    }
}

/// The SMEV request to `p`'s service for delivery `d`.
fn envelope(ctx: &ServiceContext, d: &DeliveryRow, p: &store::ParticipantRow) -> String {
    let gw = &ctx.settings.gateway;
    let now = crate::soap::smev_time(ctx.clock.as_ref());
    let header = Header {
        node_id: gw.code.clone(),
        message_id: d.id.clone(),
        time_stamp: now.clone(),
        message_class: "REQUEST".into(),
    };
    let message = Message {
        sender: Org {
            code: gw.code.clone(),
            name: gw.name.clone(),
        },
        recipient: Org {
            code: p.code.clone(),
            name: p.name.clone(),
        },
        originator: None,
        service_name: CATERER_PUSH.name.into(),
        type_code: "OTHR".into(),
        status: Status::Request.as_str().into(),
        date: now,
        exchange_type: "1".into(),
        request_id_ref: None,
        origin_request_id_ref: None,
        service_code: None,
        case_number: None,
        test_msg: (p.contour == "test").then(String::new),
    };
    let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap_or_default();
    let app = json::answer_xml(&d.operation, &payload, &crate::soap::calls::CATERERS_SHAPE);
    write::outbound(
        CATERER_PUSH.namespace,
        &d.operation,
        &header,
        &message,
        &app,
    )
}

/// Posts `body`; Ok with the answer when the service answered ACCEPT or
/// RESULT, else the reason and whatever it answered.
async fn call(
    http: &reqwest::Client,
    timeout_ms: u64,
    address: &str,
    operation: &str,
    body: String,
) -> Result<String, (String, String)> {
    let res = http
        .post(address)
        .timeout(Duration::from_millis(timeout_ms))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header(
            "SOAPAction",
            format!("\"{}:{operation}\"", CATERER_PUSH.namespace),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| (format!("no answer: {e}"), String::new()))?;
    let http_status = res.status();
    let text = res
        .text()
        .await
        .map_err(|e| (format!("the answer could not be read: {e}"), String::new()))?;
    let status = read::read(&text).map(|i| i.message().status);
    match status {
        Ok(s) if http_status.is_success() && (s == "ACCEPT" || s == "RESULT") => Ok(text),
        Ok(s) => Err((format!("answered HTTP {http_status}, Status {s:?}"), text)),
        Err(e) => Err((
            format!("answered HTTP {http_status}, not a SMEV answer: {}", e.text),
            text,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_the_base_and_stop_at_an_hour() {
        assert_eq!(backoff(1000, 0), Duration::from_secs(1));
        assert_eq!(backoff(1000, 3), Duration::from_secs(8));
        assert_eq!(backoff(1000, 40), Duration::from_secs(3600));
    }

    #[test]
    fn the_breaker_pauses_after_the_failures_in_a_row_then_lets_one_trial_through() {
        let s = Sender::default();
        for _ in 0..2 {
            s.record("P", false, 3, Duration::from_millis(30));
        }
        assert!(s.admit("P"), "two failures: not paused yet");
        s.record("P", false, 3, Duration::from_millis(30));
        assert!(!s.admit("P"), "paused");
        assert!(s.admit("Q"), "another participant is not held back");
        assert!(s.busy().contains(&"P".to_string()));
        std::thread::sleep(Duration::from_millis(40));
        assert!(s.admit("P"), "the pause is over: one trial");
        assert!(!s.admit("P"), "only one while it is in flight");
        s.record("P", false, 3, Duration::from_millis(30));
        assert!(!s.admit("P"), "the trial failed: paused again");
        std::thread::sleep(Duration::from_millis(40));
        assert!(s.admit("P"));
        s.record("P", true, 3, Duration::from_millis(30));
        assert!(s.admit("P") && s.admit("P"), "a success closes it");
    }
}
