//! What the meals service consumes: balances and debit results from payments,
//! attendance marks from the Electronic school.

use std::sync::Arc;

use bus::{ConsumerOptions, HandlerError};
use chrono::NaiveDate;
use platform::tokio_util::sync::CancellationToken;
use platform::ServiceContext;
use storage::DbConnection;
use tokio::task::JoinHandle;

use crate::domain::close::WriteOffStatus;
use crate::store;

pub fn spawn(ctx: &ServiceContext, cancel: CancellationToken) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for def in contracts::meals::QUEUES {
        let handler: Arc<dyn bus::Handler> = match def.queue {
            "meals.balances" => Arc::new(Balances {
                clock: ctx.clock.clone(),
            }),
            "meals.debit-results" => Arc::new(DebitResults {
                clock: ctx.clock.clone(),
            }),
            "meals.attendance" => Arc::new(Attendance {
                clock: ctx.clock.clone(),
            }),
            other => {
                tracing::error!(queue = other, "no handler for a meals queue");
                continue;
            }
        };
        let opts = ConsumerOptions::new(def.queue, ctx.bus.queue_spec(def.queue, def.bindings));
        tasks.extend(bus::spawn_consumer(&ctx.bus, opts, handler, cancel.clone()));
    }
    // Caterers' accounting systems through the XML gateway.
    let def = contracts::gateway::MEALS_CALLS;
    let opts = ConsumerOptions::new(def.queue, ctx.bus.queue_spec(def.queue, def.bindings));
    let clock = ctx.clock.clone();
    tasks.extend(bus::spawn_responder(
        &ctx.bus,
        opts,
        Arc::new(platform::calls::CallResponder(Box::new(
            move |conn, call| crate::api::gateway::gateway_call(conn, call, clock.as_ref()),
        ))),
        cancel,
    ));
    tasks
}

fn transient(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(e.to_string())
}

/// Keeps the balances payments reports, for requests and parents' shortfalls.
struct Balances {
    clock: Arc<dyn calendar::Clock>,
}

impl bus::Handler for Balances {
    fn handle(&self, conn: &mut DbConnection, message: &bus::Envelope) -> Result<(), HandlerError> {
        let event: contracts::payments::BalanceChanged = message.decode()?;
        store::record_balance(
            conn,
            &event.account,
            event.balance,
            &event.movement_id,
            self.clock.now().naive_utc(),
        )
        .map_err(transient)
    }

    /// A batch takes its accounts' balance rows in account order: two
    /// consumers (or replicas) absorbing the night's events at once cannot
    /// deadlock on them.
    fn lock_key(&self, message: &bus::Envelope) -> Option<String> {
        message
            .decode::<contracts::payments::BalanceChanged>()
            .ok()
            .map(|e| e.account)
    }
}

/// Marks each write-off accepted or refused, as payments answered.
struct DebitResults {
    clock: Arc<dyn calendar::Clock>,
}

impl bus::Handler for DebitResults {
    fn handle(&self, conn: &mut DbConnection, message: &bus::Envelope) -> Result<(), HandlerError> {
        let result: contracts::payments::DebitResult = message.decode()?;
        let status = WriteOffStatus::answered(result.accepted).as_str();
        let known = store::closing::set_write_off_status(
            conn,
            &result.key,
            status,
            result.reason.as_deref(),
        )
        .map_err(transient)?;
        if !known {
            tracing::debug!(key = %result.key, "debit result for a write-off this service does not know");
            return Ok(());
        }
        if let Some(reason) = &result.reason {
            tracing::warn!(key = %result.key, reason, "payments refused a meal debit");
        }
        if let Some(movement) = &result.movement_id {
            store::record_balance(
                conn,
                &result.account,
                result.balance,
                movement,
                self.clock.now().naive_utc(),
            )
            .map_err(transient)?;
        }
        Ok(())
    }

    /// In account order, like [`Balances`]: both touch the balance rows.
    fn lock_key(&self, message: &bus::Envelope) -> Option<String> {
        message
            .decode::<contracts::payments::DebitResult>()
            .ok()
            .map(|r| r.account)
    }
}

/// Attendance marks of the first lesson, for every meal time of the day.
struct Attendance {
    clock: Arc<dyn calendar::Clock>,
}

impl bus::Handler for Attendance {
    fn handle(&self, conn: &mut DbConnection, message: &bus::Envelope) -> Result<(), HandlerError> {
        let event: contracts::school::AttendanceMarked = message.decode()?;
        let date = NaiveDate::parse_from_str(&event.date, "%Y-%m-%d")
            .map_err(|e| HandlerError::Permanent(format!("date {:?}: {e}", event.date)))?;
        let marks: Vec<(String, bool)> = event
            .marks
            .into_iter()
            .map(|m| (m.account, m.present))
            .collect();
        let at = self.clock.now().naive_utc();
        let unknown =
            store::requests::mark_attendance(conn, &event.class, date, &marks, "school", at)
                .map_err(transient)?;
        if !unknown.is_empty() {
            tracing::warn!(class = %event.class, ?unknown, "attendance for students not in the class, ignored");
        }
        Ok(())
    }

    /// A batch marks class by class in class order (and each class's students
    /// in account order, see [`store::requests::mark_attendance`]), so two consumers marking
    /// the same classes cannot deadlock on their rows.
    fn lock_key(&self, message: &bus::Envelope) -> Option<String> {
        message
            .decode::<contracts::school::AttendanceMarked>()
            .ok()
            .map(|e| e.class)
    }
}
