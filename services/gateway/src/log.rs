//! The message log's writer: records from every request are chained and
//! inserted by one task in batches (one transaction per batch, the chain's head
//! locked for it), so logging keeps up with many requests at once and none waits
//! behind another's whole exchange. A request waits for its own record: if the
//! write fails, the request fails.

use chrono::{NaiveDateTime, Utc};
use storage::{Db, StorageError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::domain::chain::{self, Break, Linked};
use crate::store::{self, Exchange, LogRow};

/// An exchange, and the digest of its signed Body when it was answered.
type Job = (
    Exchange,
    Option<String>,
    oneshot::Sender<Result<i64, String>>,
);

/// Hands records to the writer task.
#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::Sender<Job>,
}

/// Records one transaction takes at most.
const BATCH: usize = 256;

/// PostgreSQL keeps microseconds: the chain hashes what the database keeps.
fn micros(t: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike;
    t.with_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// The chained text of a timestamp (microseconds, UTC).
pub fn at_text(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

fn linked(prev: &str, row: &LogRow, at: &str) -> String {
    let e = &row.exchange;
    chain::hash(
        prev,
        &Linked {
            seq: row.seq,
            at,
            direction: &e.direction,
            participant: &e.participant,
            service: &e.service,
            operation: &e.operation,
            message_id: &e.message_id,
            request_id_ref: e.request_id_ref.as_deref(),
            origin_request_id_ref: e.origin_request_id_ref.as_deref(),
            case_number: e.case_number.as_deref(),
            status: &e.status,
            outcome: &e.outcome,
            duration_ms: e.duration_ms,
            request_body: &e.request_body,
            response_body: &e.response_body,
        },
    )
}

impl LogWriter {
    /// Starts the writer; it ends when every `LogWriter` is dropped.
    pub fn spawn(db: Db) -> (LogWriter, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Job>(4 * BATCH);
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let exchanges: Vec<(Exchange, Option<String>)> = jobs
                    .iter()
                    .map(|(e, d, _)| (e.clone(), d.clone()))
                    .collect();
                // Database time is not asked: the record's time is when it was chained.
                let now = micros(Utc::now().naive_utc());
                let result = db
                    .write(move |conn| -> Result<Vec<i64>, StorageError> {
                        let head = store::lock_head(conn)?;
                        let (mut seq, mut prev) = (head.last_seq, head.last_hash);
                        let mut seqs = Vec::with_capacity(exchanges.len());
                        for (exchange, signed_body) in exchanges {
                            seq += 1;
                            if let Some(digest) = &signed_body {
                                store::remember_signed_body(
                                    conn,
                                    &exchange.participant,
                                    digest,
                                    &exchange.message_id,
                                    now,
                                )?;
                            }
                            let mut row = LogRow {
                                seq,
                                at: now,
                                exchange,
                                hash: String::new(),
                            };
                            row.hash = linked(&prev, &row, &at_text(now));
                            store::insert_log(conn, &row)?;
                            prev = row.hash;
                            seqs.push(seq);
                        }
                        store::set_head(conn, seq, &prev)?;
                        Ok(seqs)
                    })
                    .await;
                match result {
                    Ok(seqs) => {
                        for ((_, _, reply), seq) in jobs.into_iter().zip(seqs) {
                            let _ = reply.send(Ok(seq));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the message log could not be written");
                        for (_, _, reply) in jobs {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        (LogWriter { tx }, task)
    }

    /// Logs `exchange`; its place in the chain, or why it could not be written.
    pub async fn write(&self, exchange: Exchange) -> Result<i64, String> {
        self.write_answered(exchange, None).await
    }

    /// Logs `exchange`, the answer to a signed request whose Body's digest
    /// is `signed_body`, remembered in the same transaction.
    pub async fn write_answered(
        &self,
        exchange: Exchange,
        signed_body: Option<String>,
    ) -> Result<i64, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((exchange, signed_body, tx))
            .await
            .map_err(|_| "the message log writer has stopped".to_string())?;
        rx.await
            .map_err(|_| "the message log writer has stopped".to_string())?
    }
}

/// What `portal gateway verify-log` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub checked: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub breaks: Vec<Break>,
}

/// Walks the chain from its base to its head and names every record altered
/// or removed.
pub fn verify(conn: &mut storage::DbConnection) -> Result<Verification, StorageError> {
    let head = store::head(conn)?;
    let mut v = Verification {
        checked: 0,
        first: None,
        last: None,
        breaks: Vec::new(),
    };
    let (mut expected_seq, mut prev) = (head.base_seq + 1, head.base_hash.clone());
    let mut after = head.base_seq;
    loop {
        let rows = store::log_chunk(conn, after, 1_000)?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            v.checked += 1;
            v.first.get_or_insert(row.seq);
            v.last = Some(row.seq);
            if row.seq != expected_seq {
                v.breaks.push(Break::Removed {
                    after: expected_seq - 1,
                    seq: row.seq,
                });
            } else if linked(&prev, &row, &at_text(row.at)) != row.hash {
                v.breaks.push(Break::Altered { seq: row.seq });
            }
            expected_seq = row.seq + 1;
            prev = row.hash.clone();
            after = row.seq;
        }
    }
    let last = v.last.unwrap_or(head.base_seq);
    if last != head.last_seq {
        v.breaks.push(Break::Truncated {
            last,
            head: head.last_seq,
        });
    } else if prev != head.last_hash && v.breaks.is_empty() {
        // Every record rehashed after an edit: the head still holds the true end.
        v.breaks.push(Break::Altered { seq: last });
    }
    Ok(v)
}

/// Removes records older than `before`, keeping the chain verifiable: the
/// newest removed record becomes the chain's base. Returns how many went.
pub fn prune(
    conn: &mut storage::DbConnection,
    before: NaiveDateTime,
) -> Result<usize, StorageError> {
    let Some(last) = store::last_before(conn, before)? else {
        return Ok(0);
    };
    store::lock_head(conn)?;
    let n = store::delete_through(conn, last.seq)?;
    store::set_base(conn, last.seq, &last.hash)?;
    Ok(n)
}
