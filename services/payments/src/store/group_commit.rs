//! Group commit of ledger movements: concurrent requests share transactions.
//!
//! One movement per transaction is bounded by the database's commit rate (one
//! WAL flush and a dozen round trips each). Here a request queues its movement;
//! whoever holds one of the committer slots takes every movement waiting (up to
//! `max_batch`) and posts them with [`post_many`] in one transaction, so the
//! cost of a commit is shared by everyone who arrived meanwhile. Each request is
//! answered only after the transaction holding its movement has committed, with
//! that movement's own result: a refusal (unknown account) stays that request's
//! alone. Alone, a request is a batch of one: nothing waits for company.
//!
//! If a batch's transaction fails (a key raced in by another process, a lost
//! connection), each of its movements is posted again in a transaction of its
//! own, so one bad movement cannot fail the others.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use storage::{Db, StorageError};
use tokio::sync::{oneshot, Semaphore};

use super::{post_many, Entry, Posted, StoreError};
use crate::domain::ledger::Movement;

struct Job {
    movement: Movement,
    key: String,
    at: chrono::NaiveDateTime,
    /// The requesting span: the movement's events carry its trace.
    span: tracing::Span,
    reply: oneshot::Sender<Result<Posted, StoreError>>,
}

impl Job {
    fn entry(&self) -> Entry<'_> {
        Entry {
            movement: &self.movement,
            key: &self.key,
            reverses: None,
            at: self.at,
            trace: Some(&self.span),
        }
    }
}

struct Inner {
    db: Db,
    queue: Mutex<VecDeque<Job>>,
    committers: Semaphore,
    max_batch: usize,
}

/// Posts movements with group commit; cheap to clone. The service keeps one per
/// process (in `ServiceContext::shared`), so all HTTP workers' requests batch
/// together.
#[derive(Clone)]
pub struct LedgerWriter {
    inner: Arc<Inner>,
}

fn dropped() -> StoreError {
    StoreError::Storage(StorageError::Task(
        "the ledger writer stopped before answering".into(),
    ))
}

impl LedgerWriter {
    /// `committers` transactions may run at once (each holds a pooled
    /// connection); a transaction posts at most `max_batch` movements.
    pub fn new(db: Db, committers: usize, max_batch: usize) -> LedgerWriter {
        LedgerWriter {
            inner: Arc::new(Inner {
                db,
                queue: Mutex::new(VecDeque::new()),
                committers: Semaphore::new(committers.max(1)),
                max_batch: max_batch.max(1),
            }),
        }
    }

    /// Posts `movement` once per `key` and answers after it has committed.
    pub async fn post(
        &self,
        movement: Movement,
        key: String,
        at: chrono::NaiveDateTime,
    ) -> Result<Posted, StoreError> {
        let (reply, mut answer) = oneshot::channel();
        self.inner.lock_queue().push_back(Job {
            movement,
            key,
            at,
            span: tracing::Span::current(),
            reply,
        });
        loop {
            tokio::select! {
                biased;
                result = &mut answer => return result.map_err(|_| dropped())?,
                permit = self.inner.committers.acquire() => {
                    let Ok(_permit) = permit else { break };
                    let batch = self.inner.take();
                    // Another committer has taken ours with its batch.
                    if batch.is_empty() {
                        break;
                    }
                    let inner = self.inner.clone();
                    // Answers are sent from the blocking thread after the commit,
                    // so a request that goes away mid-commit strands nobody.
                    let _ = tokio::task::spawn_blocking(move || inner.commit(batch)).await;
                }
            }
        }
        answer.await.map_err(|_| dropped())?
    }
}

impl Inner {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take(&self) -> Vec<Job> {
        let mut queue = self.lock_queue();
        let n = queue.len().min(self.max_batch);
        queue.drain(..n).collect()
    }

    fn commit(&self, batch: Vec<Job>) {
        let entries: Vec<Entry<'_>> = batch.iter().map(Job::entry).collect();
        let together = match self.db.write_blocking(|conn| post_many(conn, &entries)) {
            Ok(results) if results.len() == batch.len() => Some(results),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, movements = batch.len(), "a ledger batch failed; posting its movements one by one");
                None
            }
        };
        drop(entries);
        match together {
            Some(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            None => {
                for job in batch {
                    let once = || {
                        self.db
                            .write_blocking(|conn| post_many(conn, &[job.entry()]))
                            .and_then(|mut r| r.pop().ok_or_else(dropped).and_then(|r| r))
                    };
                    // The same key posted at once by the other committer: its
                    // transaction won the insert, so a second try finds the
                    // movement and answers it as the duplicate.
                    let result = match once() {
                        Err(StoreError::Storage(e)) if e.is_unique_violation() => once(),
                        other => other,
                    };
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}
