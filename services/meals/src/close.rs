//! The day close: at 23:00 Tyumen time every school's day closes exactly once,
//! its requests freeze for good, and one debit per student per day per meal time
//! goes to payments (through the outbox, in the same transaction).
//!
//! Exactly once: the close of (school, day) is a row whose key is (school, day);
//! whoever inserts it does the write-off in that transaction, every other replica
//! (or a re-run) inserts nothing and does nothing. A process that was down at
//! 23:00 catches up on its next tick, up to `meals.catch_up_days` back.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use contracts::meals::DebitRequested;
use platform::tokio_util::sync::CancellationToken;
use platform::ServiceContext;
use primitives::Money;
use storage::DbConnection;
use tokio::task::JoinHandle;

use crate::domain;
use crate::domain::close::{written_off, WriteOffStatus};
use crate::store::{self, StoreError};

/// What closing one school's day did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub school: String,
    pub date: NaiveDate,
    pub debits: usize,
    pub to_pay: Money,
    pub reimbursed: Money,
}

/// Closes `school`'s `date` if nobody has: freezes its requests and writes one
/// debit per student who ate per meal time into the outbox. `None` when the day
/// was closed already (by this process, another replica or an earlier run).
pub fn close_day(
    conn: &mut DbConnection,
    school: &store::School,
    date: NaiveDate,
    now: NaiveDateTime,
    late: bool,
) -> Result<Option<Closed>, StoreError> {
    let row = store::DayClose {
        school_id: school.id.clone(),
        date,
        closed_at: now,
        late,
        debits: 0,
        to_pay_kopecks: 0,
        reimbursed_kopecks: 0,
    };
    if !store::closing::claim_day(conn, &row)? {
        return Ok(None);
    }
    let lines = store::closing::open_lines(conn, &school.id, date)?;
    let class_rows = store::classes_of_school(conn, &school.id)?;
    let mut organizer_of_class: HashMap<String, Option<String>> = HashMap::new();
    for c in &class_rows {
        organizer_of_class.insert(c.id.clone(), store::organizer_of(conn, school, c)?);
    }
    let credit = Money::from_kopecks(school.credit_limit_kopecks);
    let mut rows = Vec::new();
    let mut events = Vec::new();
    let (mut to_pay, mut reimbursed) = (0i64, 0i64);
    for (line, class_id, meal_time) in lines {
        if !written_off(
            line.included,
            line.ate,
            line.to_pay_kopecks,
            line.reimbursed_kopecks,
        ) {
            continue;
        }
        let Some(Some(organizer)) = organizer_of_class.get(&class_id).cloned() else {
            tracing::error!(school = %school.id, class = %class_id, "no organizer linked: nothing to write off to");
            continue;
        };
        let key = domain::debit_key(&line.account, date, &meal_time);
        let request = DebitRequested {
            key: key.clone(),
            account: line.account.clone(),
            amount: Money::from_kopecks(line.to_pay_kopecks),
            reimbursed: Money::from_kopecks(line.reimbursed_kopecks),
            credit_limit: credit,
            organizer: organizer.clone(),
            municipality: school.municipality.clone(),
            date: date.to_string(),
            meal_time: meal_time.clone(),
        };
        events.push(crate::events::debit_requested(&request)?);
        to_pay += line.to_pay_kopecks;
        reimbursed += line.reimbursed_kopecks;
        rows.push(store::WriteOff {
            key,
            account: line.account,
            school_id: school.id.clone(),
            class_id,
            date,
            meal_time,
            amount_kopecks: line.to_pay_kopecks,
            reimbursed_kopecks: line.reimbursed_kopecks,
            category: line.category,
            funder: line.funder,
            organizer,
            status: WriteOffStatus::Sent.as_str().into(),
            reason: None,
            created_at: now,
        });
    }
    store::closing::finish_close(conn, &school.id, date, &rows, (to_pay, reimbursed))?;
    // The closed requests, for the organizers' accounting systems.
    for id in store::requests::requests_of_school_day(conn, &school.id, date)? {
        if let Some(event) = crate::events::class_request_ready(conn, &id, "closed")? {
            events.push(event);
        }
    }
    bus::store::enqueue_all(conn, &events)?;
    let debits = rows.len();
    Ok(Some(Closed {
        school: school.id.clone(),
        date,
        debits,
        to_pay: Money::from_kopecks(to_pay),
        reimbursed: Money::from_kopecks(reimbursed),
    }))
}

/// The local (Tyumen) time now, by the service's clock.
pub fn local_now(ctx: &ServiceContext) -> NaiveDateTime {
    ctx.clock.now_local().naive_local()
}

/// Closes every day whose close moment has passed and that no one closed yet,
/// for every school; returns what it closed. Safe to run anywhere, any number
/// of times, on any number of replicas.
pub fn catch_up(ctx: &ServiceContext) -> Result<Vec<Closed>, StoreError> {
    let now_local = local_now(ctx);
    let close_at = ctx.settings.meals.close_at;
    let latest = domain::latest_closable(now_local, close_at);
    let horizon = latest - chrono::Duration::days(i64::from(ctx.settings.meals.catch_up_days));
    let mut conn = ctx.db.conn()?;
    let (all, last) = store::closing::schools_and_last_close(&mut conn)?;
    drop(conn);
    let now_utc = ctx.clock.now().naive_utc();
    let mut closed = Vec::new();
    for school in all {
        let created = calendar::in_tyumen(school.created_at).date_naive();
        let mut day = created.max(horizon);
        if let Some(d) = last.get(&school.id) {
            day = day.max(*d + chrono::Duration::days(1));
        }
        while day <= latest {
            let late = now_local
                > domain::close_moment(day, close_at)
                    + chrono::Duration::milliseconds(
                        i64::try_from(ctx.settings.meals.close_poll_ms).unwrap_or(0) * 2 + 60_000,
                    );
            let school_ref = &school;
            let result = ctx
                .db
                .write_blocking(|conn| close_day(conn, school_ref, day, now_utc, late))?;
            if let Some(c) = result {
                tracing::info!(school = %c.school, date = %c.date, debits = c.debits, to_pay = %c.to_pay,
                    reimbursed = %c.reimbursed, late, "school day closed, write-off sent");
                closed.push(c);
            }
            day += chrono::Duration::days(1);
        }
    }
    if !closed.is_empty() {
        ctx.bus.wake_relay();
    }
    Ok(closed)
}

/// The closer: runs [`catch_up`] at start and then every `meals.close_poll_ms`.
pub fn spawn_closer(ctx: ServiceContext, cancel: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let poll = Duration::from_millis(ctx.settings.meals.close_poll_ms);
        loop {
            let c = ctx.clone();
            match tokio::task::spawn_blocking(move || catch_up(&c)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "day close failed; retrying on the next tick")
                }
                Err(e) => tracing::error!(error = %e, "day close task failed"),
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(poll) => {}
            }
        }
    })
}
