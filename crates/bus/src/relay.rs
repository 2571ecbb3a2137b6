//! The outbox relay: publishes committed outbox rows in id order, with publisher
//! confirms, and stamps them published once confirmed. Several batches may be in
//! flight at once; a row is never in two of them. On PostgreSQL one replica per
//! service relays at a time (an advisory lock), so replicas do not publish the
//! same rows twice in the ordinary case; when it happens anyway (a lost stamp),
//! the consumers' inbox absorbs the duplicate.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::RunQueryDsl;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{store, BusError, ServiceBus};

/// Wakes the relay when new rows are committed.
#[derive(Clone, Default)]
pub struct RelayHandle {
    notify: Arc<Notify>,
}

impl RelayHandle {
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

const MAX_BATCHES_IN_FLIGHT: usize = 16;

/// Starts the relay of `sb`'s outbox. When `cancel` fires it publishes what is
/// pending (the flush on shutdown), waits for the confirms, and ends.
pub fn spawn_relay(sb: &ServiceBus, cancel: CancellationToken) -> JoinHandle<()> {
    let sb = sb.clone();
    tokio::spawn(async move {
        let mut leader = Leadership::new(&sb);
        let in_flight: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let permits = Arc::new(Semaphore::new(MAX_BATCHES_IN_FLIGHT));
        let poll = Duration::from_millis(sb.settings.relay_poll_ms);
        let mut backoff = Duration::from_millis(100);
        loop {
            let stopping = cancel.is_cancelled();
            if !leader.holds().await {
                if stopping {
                    return;
                }
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep(poll * 10) => {}
                }
                continue;
            }
            match relay_once(&sb, &in_flight, &permits).await {
                Ok(0) => {
                    backoff = Duration::from_millis(100);
                    if stopping {
                        // Flushed: wait for the confirms of what is in flight.
                        let _ = permits.acquire_many(MAX_BATCHES_IN_FLIGHT as u32).await;
                        return;
                    }
                    tokio::select! {
                        _ = sb.relay.notify.notified() => {}
                        _ = cancel.cancelled() => {}
                        _ = tokio::time::sleep(poll) => {}
                    }
                }
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(service = %sb.service, error = %e, ?backoff, "outbox relay failed; retrying");
                    if stopping {
                        return;
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    })
}

/// Publishes one batch; returns how many rows it sent.
async fn relay_once(
    sb: &ServiceBus,
    in_flight: &Arc<Mutex<HashSet<i64>>>,
    permits: &Arc<Semaphore>,
) -> Result<usize, BusError> {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
    let batch = sb.settings.relay_batch;
    let busy: HashSet<i64> = in_flight.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let extra = i64::try_from(busy.len()).unwrap_or(i64::MAX);
    let rows = sb
        .db
        .read(move |conn| {
            let ids: Vec<i64> = store::pending_ids(conn, batch.saturating_add(extra))?
                .into_iter()
                .filter(|id| !busy.contains(id))
                .take(usize::try_from(batch).unwrap_or(usize::MAX))
                .collect();
            if ids.is_empty() {
                return Ok::<_, BusError>(Vec::new());
            }
            Ok(store::rows_by_id(conn, &ids)?)
        })
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    in_flight
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(ids.iter().copied());
    let envelopes = rows
        .into_iter()
        .map(store::OutboxRow::into_envelope)
        .collect();
    let confirms = match sb.bus.publish(envelopes).await {
        Ok(c) => c,
        Err(e) => {
            forget(in_flight, &ids);
            return Err(e);
        }
    };
    let sent = ids.len();
    let (sb2, in_flight2) = (sb.clone(), in_flight.clone());
    tokio::spawn(async move {
        let _permit = permit;
        let result = async {
            confirms.await?;
            let marked = ids.clone();
            sb2.db
                .write(move |conn| store::mark_published(conn, &marked).map_err(BusError::from))
                .await?;
            Ok::<(), BusError>(())
        }
        .await;
        match result {
            Ok(()) => {
                telemetry::metrics::metrics()
                    .bus_published
                    .with_label_values(&[&sb2.service])
                    .inc_by(ids.len() as u64);
            }
            // Not stamped: the rows go out again and the inbox drops the copies.
            Err(e) => {
                tracing::warn!(service = %sb2.service, error = %e, "batch not confirmed; will resend")
            }
        }
        forget(&in_flight2, &ids);
    });
    Ok(sent)
}

fn forget(in_flight: &Arc<Mutex<HashSet<i64>>>, ids: &[i64]) {
    let mut set = in_flight.lock().unwrap_or_else(|p| p.into_inner());
    for id in ids {
        set.remove(id);
    }
}

/// On PostgreSQL, a session advisory lock held on a dedicated connection makes one
/// replica the relay of a service; elsewhere this process always is.
struct Leadership {
    db: storage::Db,
    key: String,
    conn: Option<storage::PooledConn>,
    checked: std::time::Instant,
}

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    locked: i32,
}

impl Leadership {
    fn new(sb: &ServiceBus) -> Leadership {
        Leadership {
            db: sb.db.clone(),
            key: format!(
                "outbox-relay:{}:{}",
                sb.db.schema().unwrap_or(""),
                sb.service
            ),
            conn: None,
            checked: std::time::Instant::now(),
        }
    }

    async fn holds(&mut self) -> bool {
        if self.db.backend() != storage::Backend::Postgres {
            return true;
        }
        let fresh = self.checked.elapsed() < Duration::from_secs(5);
        if self.conn.is_some() && fresh {
            return true;
        }
        let db = self.db.clone();
        let key = self.key.clone();
        let previous = self.conn.take();
        let result = tokio::task::spawn_blocking(move || {
            let mut conn = match previous {
                Some(c) => c,
                None => db.conn().ok()?,
            };
            let row: Locked = diesel::sql_query(
                "SELECT CASE WHEN pg_try_advisory_lock(hashtext($1)) THEN 1 ELSE 0 END AS locked",
            )
            .bind::<diesel::sql_types::Text, _>(&key)
            .get_result(&mut *conn)
            .ok()?;
            (row.locked == 1).then_some(conn)
        })
        .await
        .ok()
        .flatten();
        self.checked = std::time::Instant::now();
        self.conn = result;
        self.conn.is_some()
    }
}
