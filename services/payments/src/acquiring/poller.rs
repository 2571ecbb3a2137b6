//! The poller: makes up for lost callbacks, forgets orders a crash left
//! registering, and settles refunds whose outcome the bank left unknown.

use platform::ServiceContext;
use primitives::Money;

use super::refund::REFUND_PENDING;
use super::*;
use crate::domain::acquiring::OrderStatus;
use crate::store::acquiring::{self as db};

/// What one round of polling did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub asked: usize,
    pub changed: usize,
    pub credited: usize,
    pub failed: usize,
    /// Orders left `registering` by a crash, forgotten.
    pub abandoned: usize,
    /// Refunds whose outcome the bank had left unknown, settled now.
    pub refunds_settled: usize,
}

/// Asks the bank about every order still unfinished [`POLL_AFTER_SECS`] after
/// registration (and not asked about in the last [`POLL_REPEAT_SECS`]), so a
/// lost callback delays a credit but never loses it.
pub async fn poll_once(ctx: &ServiceContext) -> Result<PollReport, AcquiringError> {
    let at = now(ctx);
    let created_before = at - chrono::Duration::seconds(POLL_AFTER_SECS);
    let polled_before = at - chrono::Duration::seconds(POLL_REPEAT_SECS);
    let created_after = at - chrono::Duration::hours(POLL_GIVE_UP_HOURS);
    let due = ctx
        .db
        .read(move |conn| {
            db::orders_to_poll(
                conn,
                OrderStatus::FINAL_RANK,
                created_after,
                created_before,
                polled_before,
                POLL_BATCH,
            )
        })
        .await?;
    let mut report = PollReport::default();
    let stale = at - chrono::Duration::seconds(REGISTERING_STALE_SECS);
    report.abandoned = ctx
        .db
        .write(move |conn| {
            db::delete_stale_registering(conn, OrderStatus::Registering.as_str(), stale)
        })
        .await?;
    if report.abandoned > 0 {
        tracing::warn!(
            orders = report.abandoned,
            "top-ups left registering by a crash forgotten"
        );
    }
    for order in due {
        let id = order.id.clone();
        ctx.db
            .write(move |conn| db::mark_polled(conn, &id, at))
            .await?;
        report.asked += 1;
        match confirm(ctx, &order.id).await {
            Ok(applied) => {
                report.changed += usize::from(applied.changed);
                report.credited += usize::from(applied.credited);
            }
            Err(e) => {
                report.failed += 1;
                tracing::warn!(order = %order.id, error = %e, "could not confirm a top-up with the bank");
            }
        }
    }
    // Refunds the bank left unknown: the same request again settles them (it
    // asks the bank first whether the money went back).
    let retry_before = at - chrono::Duration::seconds(REFUND_RETRY_AFTER_SECS);
    let pending = ctx
        .db
        .read(move |conn| db::pending_refunds(conn, REFUND_PENDING, retry_before, POLL_BATCH))
        .await?;
    for r in pending {
        let request = RefundRequest {
            order_id: r.order_id.clone(),
            amount: Money::from_kopecks(r.amount_kopecks),
            reason: r.reason.clone(),
            author: r.author.clone(),
            key: r.idempotency_key.clone(),
        };
        match refund(ctx, request).await {
            Ok(_) => report.refunds_settled += 1,
            Err(e) => {
                report.failed += 1;
                tracing::warn!(refund = %r.id, error = %e, "could not settle a pending refund");
            }
        }
    }
    if report.asked > 0 || report.abandoned > 0 || report.refunds_settled > 0 {
        tracing::info!(?report, "acquiring poll");
    }
    Ok(report)
}

/// The background poller: [`poll_once`] every [`POLL_INTERVAL`] until `cancel`.
pub fn spawn_poller(
    ctx: ServiceContext,
    cancel: platform::tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + POLL_INTERVAL, POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            // Stopping mid-round is safe: each order is recorded in its own
            // transaction and the next round picks up the rest.
            tokio::select! {
                _ = cancel.cancelled() => break,
                result = poll_once(&ctx) => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "acquiring poll failed");
                    }
                }
            }
        }
    })
}
