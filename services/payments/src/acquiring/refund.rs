//! Refunds of a deposited order, partial or whole, never below what the
//! personal account holds less refunds already pending.

use platform::ServiceContext;
use primitives::Money;

use super::top_up::order_and_config;
use super::*;
use crate::domain::acquiring::OrderStatus;
use crate::domain::ledger::{AccountKind, Movement, MovementKind};
use crate::store::acquiring::{self as db, OrderRow, RefundRow};
use crate::store::{self, StoreError};

/// A refund whose outcome the bank left unknown is settled by a repeat of the
/// request no sooner than this after the last attempt (longer than a bank call
/// can take, so two attempts never overlap).
pub const REFUND_RETRY_AFTER_SECS: i64 = 60;
pub(super) const REFUND_PENDING: &str = "pending";
pub(super) const REFUND_DONE: &str = "done";

/// A refund to make.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub order_id: String,
    pub amount: Money,
    pub reason: String,
    pub author: String,
    /// Scoped to the order already.
    pub key: String,
}

/// A refund the bank confirmed; `fresh` is false when an earlier request with
/// the key had finished it.
#[derive(Debug, Clone)]
pub struct Refunded {
    pub refund: RefundRow,
    pub order: OrderRow,
    pub fresh: bool,
}

/// Refunds part or all of a paid top-up: reserves the amount (never more than
/// paid minus earlier refunds), asks the bank, and on its confirmation moves
/// the money from the personal account back to clearing.
pub async fn refund(
    ctx: &ServiceContext,
    request: RefundRequest,
) -> Result<Refunded, AcquiringError> {
    let id = request.order_id.clone();
    let (order, config) = order_and_config(ctx, id).await?;
    let Some(bank_order_id) = order.bank_order_id.clone() else {
        return Err(AcquiringError::NotRefundable {
            order: order.id,
            status: OrderStatus::Registering.as_str().into(),
        });
    };
    let at = now(ctx);
    let row = RefundRow {
        id: uuid::Uuid::now_v7().to_string(),
        order_id: order.id.clone(),
        idempotency_key: request.key.clone(),
        amount_kopecks: request.amount.kopecks(),
        reason: request.reason.clone(),
        author: request.author.clone(),
        status: REFUND_PENDING.into(),
        movement_id: None,
        created_at: at,
        updated_at: at,
    };
    let reserve = row.clone();
    let reserved = ctx
        .db
        .write(move |conn| {
            if let Some(existing) = db::find_refund_by_key(conn, &reserve.idempotency_key)? {
                if existing.order_id != reserve.order_id
                    || existing.amount_kopecks != reserve.amount_kopecks
                {
                    return Err(AcquiringError::KeyReused);
                }
                if existing.status == REFUND_PENDING {
                    // Settle an unknown outcome only once the first attempt is
                    // surely over, and let one repeat at a time do it.
                    let settled_before = at - chrono::Duration::seconds(REFUND_RETRY_AFTER_SECS);
                    if existing.updated_at > settled_before
                        || db::claim_refund(
                            conn,
                            &existing.id,
                            REFUND_PENDING,
                            existing.updated_at,
                            at,
                        )? == 0
                    {
                        return Err(AcquiringError::InProgress);
                    }
                }
                return Ok((existing, false));
            }
            let paid = OrderStatus::Deposited.as_str();
            if db::reserve_refund(conn, &reserve.order_id, paid, reserve.amount_kopecks)? == 0 {
                let order = db::find_order(conn, &reserve.order_id)?
                    .ok_or_else(|| AcquiringError::UnknownOrder(reserve.order_id.clone()))?;
                let status = status_of(&order);
                return Err(
                    if matches!(status, OrderStatus::Deposited | OrderStatus::Refunded) {
                        AcquiringError::RefundTooLarge(Money::from_kopecks(
                            order.amount_kopecks - order.refund_reserved_kopecks,
                        ))
                    } else {
                        AcquiringError::NotRefundable {
                            order: order.id,
                            status: status.as_str().into(),
                        }
                    },
                );
            }
            // Within what the top-up has left to refund (above), and within what
            // the account holds: its balance less the refunds already on their
            // way, so a refund never takes the balance below zero (the credit
            // limit lends for meals, not cash back to a card).
            let order_row = db::find_order(conn, &reserve.order_id)?
                .ok_or_else(|| AcquiringError::UnknownOrder(reserve.order_id.clone()))?;
            store::lock_balances(conn, &[order_row.account_id.as_str()])?;
            let balance = store::balance(conn, &order_row.account_id)?;
            let promised =
                db::pending_refunds_of_account(conn, &order_row.account_id, REFUND_PENDING)?;
            let available = balance - Money::from_kopecks(promised);
            if available.kopecks() < reserve.amount_kopecks {
                return Err(AcquiringError::RefundOverBalance {
                    available: available.max(Money::ZERO),
                });
            }
            db::insert_refund(conn, &reserve)?;
            Ok((reserve, true))
        })
        .await;
    let (refund_row, fresh) = match reserved {
        Ok(r) => r,
        // A concurrent request with the same key reserved first: it reports.
        Err(AcquiringError::Store(StoreError::Storage(e))) if e.is_unique_violation() => {
            return Err(AcquiringError::InProgress)
        }
        Err(e) => return Err(e),
    };
    if refund_row.status == REFUND_DONE {
        return Ok(Refunded {
            refund: refund_row,
            order,
            fresh: false,
        });
    }
    let acquirer = acquirer_for(&config);
    let amount = Money::from_kopecks(refund_row.amount_kopecks);
    if !fresh {
        // A repeat of a refund whose outcome was unknown: if the bank has
        // refunded more than we booked, that was this refund.
        let bank = acquirer
            .order_status(&bank_order_id)
            .await
            .map_err(|e| AcquiringError::RefundUnconfirmed(e.to_string()))?;
        let booked = ctx
            .db
            .read({
                let id = order.id.clone();
                move |conn| db::find_order(conn, &id)
            })
            .await?
            .map(|o| o.refunded_kopecks)
            .unwrap_or(order.refunded_kopecks);
        if bank.refunded.kopecks() >= booked + refund_row.amount_kopecks {
            return finish_refund(ctx, refund_row, false).await;
        }
    }
    match acquirer.refund(&bank_order_id, amount).await {
        Ok(()) => finish_refund(ctx, refund_row, fresh).await,
        Err(AcquirerError::Rejected { code, message }) => {
            let refund_id = refund_row.id.clone();
            let order_id = refund_row.order_id.clone();
            let kopecks = refund_row.amount_kopecks;
            ctx.db
                .write(move |conn| {
                    if db::delete_pending_refund(conn, &refund_id, REFUND_PENDING)? == 1 {
                        db::release_refund(conn, &order_id, kopecks)?;
                    }
                    Ok::<_, AcquiringError>(())
                })
                .await?;
            tracing::warn!(order = %order.id, %code, %message, "the bank refused a refund");
            Err(AcquirerError::Rejected { code, message }.into())
        }
        Err(e) => {
            // The outcome is unknown: keep the reservation so nobody refunds
            // the same money twice; a repeat with the same key settles it.
            tracing::warn!(order = %order.id, refund = %refund_row.id, error = %e, "refund outcome unknown");
            Err(AcquiringError::RefundUnconfirmed(e.to_string()))
        }
    }
}

async fn finish_refund(
    ctx: &ServiceContext,
    refund: RefundRow,
    fresh: bool,
) -> Result<Refunded, AcquiringError> {
    let at = now(ctx);
    let (refund, order, posted) = ctx
        .db
        .write(move |conn| {
            let mut posted = false;
            if db::complete_refund(conn, &refund.id, REFUND_PENDING, REFUND_DONE, at)? == 1 {
                let order = db::find_order(conn, &refund.order_id)?
                    .ok_or_else(|| AcquiringError::UnknownOrder(refund.order_id.clone()))?;
                let clearing = clearing_account(&order.organizer);
                store::ensure_system_account(conn, &clearing, AccountKind::BankClearing, at)?;
                let movement = Movement::transfer(
                    MovementKind::Refund,
                    &order.account_id,
                    &clearing,
                    Money::from_kopecks(refund.amount_kopecks),
                    &format!(
                        "Возврат по интернет-эквайрингу, заказ {}: {}",
                        order.id, refund.reason
                    ),
                    &refund.author,
                )
                .map_err(|e| AcquiringError::Ledger(e.to_string()))?;
                let result = store::post(
                    conn,
                    &movement,
                    &format!("acquiring-refund:{}", refund.id),
                    None,
                    at,
                )?;
                db::set_refund_movement(conn, &refund.id, &result.movement_id)?;
                let refunded = OrderStatus::Refunded;
                db::add_refunded(
                    conn,
                    &order.id,
                    refund.amount_kopecks,
                    (refunded.as_str(), refunded.rank()),
                    at,
                )?;
                posted = true;
            }
            let order = db::find_order(conn, &refund.order_id)?
                .ok_or_else(|| AcquiringError::UnknownOrder(refund.order_id.clone()))?;
            let refund = db::find_refund_by_key(conn, &refund.idempotency_key)?.unwrap_or(refund);
            Ok::<_, AcquiringError>((refund, order, posted))
        })
        .await?;
    if posted {
        ctx.bus.wake_relay();
        tracing::info!(order = %order.id, refund = %refund.id, amount = %Money::from_kopecks(refund.amount_kopecks), "top-up refunded");
    }
    Ok(Refunded {
        refund,
        order,
        fresh: fresh || posted,
    })
}
