//! A parent's top-up: the order registered with the bank, and the credit once the
//! bank confirms the payment (or its reversal after it).

use platform::ServiceContext;
use primitives::Money;

use super::*;
use crate::domain::acquiring::OrderStatus;
use crate::domain::ledger::{AccountKind, Movement, MovementKind};
use crate::store::acquiring::{self as db, OrderRow, OrganizerAcquiring};
use crate::store::{self, StoreError};

/// What a top-up request asks for.
#[derive(Debug, Clone)]
pub struct TopUpRequest {
    pub account: String,
    pub organizer: String,
    pub parent: String,
    pub amount: Money,
    pub return_url: String,
    /// Scoped to the parent already.
    pub key: String,
}

/// A registered top-up; `fresh` is false when the key had been used.
#[derive(Debug, Clone)]
pub struct TopUp {
    pub order: OrderRow,
    pub fresh: bool,
}

/// Registers a top-up with the organizer's bank, once per key.
pub async fn create_top_up(
    ctx: &ServiceContext,
    request: TopUpRequest,
) -> Result<TopUp, AcquiringError> {
    let organizer = request.organizer.clone();
    let keys = ctx.secrets.clone();
    let config = ctx
        .db
        .read(move |conn| db::find_config(conn, &organizer, &keys))
        .await?
        .ok_or_else(|| AcquiringError::NotConfigured(request.organizer.clone()))?;
    let limit = Money::from_kopecks(config.top_up_limit_kopecks);
    if request.amount > limit {
        return Err(AcquiringError::OverLimit(limit));
    }
    let at = now(ctx);
    let row = OrderRow {
        id: uuid::Uuid::now_v7().simple().to_string(),
        idempotency_key: request.key.clone(),
        account_id: request.account.clone(),
        organizer: request.organizer.clone(),
        parent: request.parent.clone(),
        amount_kopecks: request.amount.kopecks(),
        bank_order_id: None,
        payment_url: None,
        status: OrderStatus::Registering.as_str().into(),
        status_rank: OrderStatus::Registering.rank(),
        refund_reserved_kopecks: 0,
        refunded_kopecks: 0,
        credit_movement: None,
        created_at: at,
        updated_at: at,
        polled_at: None,
    };
    let insert = row.clone();
    let inserted = ctx
        .db
        .write(move |conn| {
            if let Some(existing) = db::find_order_by_key(conn, &insert.idempotency_key)? {
                // Left `registering` by a crash: the parent never got its
                // payment page, so it is forgotten and this request registers
                // anew.
                let stale = insert.created_at - chrono::Duration::seconds(REGISTERING_STALE_SECS);
                let forgotten = existing.created_at <= stale
                    && db::delete_unregistered(conn, &existing.id, OrderStatus::Registering.as_str())?
                        == 1;
                if !forgotten {
                    return Ok::<_, AcquiringError>(Err(existing));
                }
                tracing::warn!(order = %existing.id, "a top-up left registering by a crash is registered anew");
            }
            db::insert_order(conn, &insert)?;
            Ok(Ok(()))
        })
        .await;
    let existing = match inserted {
        Ok(Ok(())) => None,
        Ok(Err(existing)) => Some(existing),
        // A concurrent request with the same key inserted first.
        Err(AcquiringError::Store(StoreError::Storage(e))) if e.is_unique_violation() => {
            let key = request.key.clone();
            ctx.db
                .read(move |conn| db::find_order_by_key(conn, &key))
                .await?
        }
        Err(e) => return Err(e),
    };
    if let Some(existing) = existing {
        if existing.account_id != request.account
            || existing.amount_kopecks != request.amount.kopecks()
        {
            return Err(AcquiringError::KeyReused);
        }
        if existing.payment_url.is_none() {
            return Err(AcquiringError::InProgress);
        }
        return Ok(TopUp {
            order: existing,
            fresh: false,
        });
    }

    let registration = RegisterOrder {
        order_number: row.id.clone(),
        amount: request.amount,
        return_url: request.return_url.clone(),
        description: format!("Пополнение лицевого счёта {}", request.account),
    };
    let answer = acquirer_for(&config).register_order(&registration).await;
    let id = row.id.clone();
    match answer {
        Ok(registered) => {
            let at = now(ctx);
            let order = ctx
                .db
                .write(move |conn| {
                    let created = OrderStatus::Created;
                    db::mark_registered(
                        conn,
                        &id,
                        OrderStatus::Registering.as_str(),
                        (created.as_str(), created.rank()),
                        &registered.bank_order_id,
                        &registered.payment_url,
                        at,
                    )?;
                    db::find_order(conn, &id)?.ok_or(AcquiringError::UnknownOrder(id))
                })
                .await?;
            tracing::info!(order = %order.id, bank_order = ?order.bank_order_id, account = %order.account_id, amount = %request.amount, "top-up registered with the bank");
            Ok(TopUp { order, fresh: true })
        }
        Err(e) => {
            // The payment page never reached the parent, so an order the bank
            // may have registered anyway can never be paid: forget ours and let
            // the parent repeat the request.
            ctx.db
                .write(move |conn| {
                    db::delete_unregistered(conn, &id, OrderStatus::Registering.as_str())
                })
                .await?;
            tracing::warn!(order = %row.id, error = %e, "the bank did not register the top-up");
            Err(e.into())
        }
    }
}

/// What confirming an order's status did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub order_id: String,
    /// The status after confirming.
    pub status: OrderStatus,
    /// This call moved the status.
    pub changed: bool,
    /// This call credited the account.
    pub credited: bool,
}

/// An order and its organizer's acquiring configuration.
pub(super) async fn order_and_config(
    ctx: &ServiceContext,
    id: String,
) -> Result<(OrderRow, OrganizerAcquiring), AcquiringError> {
    let keys = ctx.secrets.clone();
    ctx.db
        .read(move |conn| {
            let order = db::find_order(conn, &id)?
                .ok_or_else(|| AcquiringError::UnknownOrder(id.clone()))?;
            let config = db::find_config(conn, &order.organizer, &keys)?
                .ok_or_else(|| AcquiringError::NotConfigured(order.organizer.clone()))?;
            Ok::<_, AcquiringError>((order, config))
        })
        .await
}

/// Asks the bank about the order and records what it says: a status of a
/// higher rank replaces the stored one, and the move to `deposited` credits the
/// account in the same transaction.
pub async fn confirm(ctx: &ServiceContext, order_id: &str) -> Result<Applied, AcquiringError> {
    let id = order_id.to_string();
    let (order, config) = order_and_config(ctx, id).await?;
    let Some(bank_order_id) = order.bank_order_id.clone() else {
        return Ok(Applied {
            order_id: order.id.clone(),
            status: status_of(&order),
            changed: false,
            credited: false,
        });
    };
    let bank = acquirer_for(&config).order_status(&bank_order_id).await?;
    apply(ctx, order, bank).await
}

async fn apply(
    ctx: &ServiceContext,
    order: OrderRow,
    bank: BankOrder,
) -> Result<Applied, AcquiringError> {
    let current = status_of(&order);
    let unchanged = |status| Applied {
        order_id: order.id.clone(),
        status,
        changed: false,
        credited: false,
    };
    if bank.status == OrderStatus::Refunded {
        // Only our refund path marks an order refunded, together with its
        // ledger movement; a refund made at the bank behind our back needs a
        // person to book it.
        if bank.refunded.kopecks() != order.refunded_kopecks {
            tracing::error!(order = %order.id, bank_refunded = %bank.refunded, our_refunded = %Money::from_kopecks(order.refunded_kopecks), "the bank reports a refund not booked here");
        }
        return Ok(unchanged(current));
    }
    if current == OrderStatus::Deposited && bank.status == OrderStatus::Reversed {
        return book_reversal(ctx, order).await;
    }
    if bank.status.rank() <= current.rank() {
        if bank.status != current && current.is_final() {
            tracing::warn!(order = %order.id, stored = current.as_str(), bank = bank.status.as_str(), "a final status is kept against a later report");
        }
        return Ok(unchanged(current));
    }
    if bank.status == OrderStatus::Deposited && bank.amount.kopecks() != order.amount_kopecks {
        tracing::error!(order = %order.id, bank_amount = %bank.amount, our_amount = %Money::from_kopecks(order.amount_kopecks), "the bank reports another amount; not credited");
        return Err(AcquiringError::AmountMismatch {
            order: order.id.clone(),
            bank: bank.amount,
            ours: Money::from_kopecks(order.amount_kopecks),
        });
    }
    let at = now(ctx);
    let new = bank.status;
    let row = order.clone();
    let (changed, credited, status) = ctx
        .db
        .write(move |conn| {
            let changed = db::advance_status(conn, &row.id, new.as_str(), new.rank(), at)? == 1;
            let mut credited = false;
            if changed && new == OrderStatus::Deposited {
                let clearing = clearing_account(&row.organizer);
                store::ensure_system_account(conn, &clearing, AccountKind::BankClearing, at)?;
                let movement = Movement::transfer(
                    MovementKind::TopUp,
                    &clearing,
                    &row.account_id,
                    Money::from_kopecks(row.amount_kopecks),
                    &format!("Пополнение через интернет-эквайринг, заказ {}", row.id),
                    &format!("acquiring:{}", row.organizer),
                )
                .map_err(|e| AcquiringError::Ledger(e.to_string()))?;
                let posted = store::post(conn, &movement, &credit_key(&row.id), None, at)?;
                db::set_credit_movement(conn, &row.id, &posted.movement_id)?;
                credited = !posted.duplicate;
            }
            let status = db::find_order(conn, &row.id)?
                .map(|o| status_of(&o))
                .unwrap_or(new);
            Ok::<_, AcquiringError>((changed, credited, status))
        })
        .await?;
    if credited {
        ctx.bus.wake_relay();
        tracing::info!(order = %order.id, account = %order.account_id, amount = %Money::from_kopecks(order.amount_kopecks), "top-up credited");
    } else if changed {
        tracing::info!(order = %order.id, status = new.as_str(), "top-up status changed");
    }
    Ok(Applied {
        order_id: order.id,
        status,
        changed,
        credited,
    })
}

/// The bank reversed a paid top-up (returned it to the card on its own): what
/// was credited and not refunded since leaves the personal account for the
/// clearing account, once, even if that takes the balance below zero (the
/// money is gone; the operator sees the warning).
async fn book_reversal(ctx: &ServiceContext, order: OrderRow) -> Result<Applied, AcquiringError> {
    let at = now(ctx);
    let row = order.clone();
    let (changed, balance) = ctx
        .db
        .write(move |conn| {
            let changed = db::reverse_deposited(
                conn,
                &row.id,
                OrderStatus::Deposited.as_str(),
                OrderStatus::Reversed.as_str(),
                at,
            )? == 1;
            let left = row.amount_kopecks - row.refunded_kopecks;
            if changed && left > 0 {
                let clearing = clearing_account(&row.organizer);
                store::ensure_system_account(conn, &clearing, AccountKind::BankClearing, at)?;
                let movement = Movement::transfer(
                    MovementKind::Refund,
                    &row.account_id,
                    &clearing,
                    Money::from_kopecks(left),
                    &format!("Отмена банком оплаченного пополнения, заказ {}", row.id),
                    &format!("acquiring:{}", row.organizer),
                )
                .map_err(|e| AcquiringError::Ledger(e.to_string()))?;
                store::post(
                    conn,
                    &movement,
                    &format!("acquiring-reversal:{}", row.id),
                    None,
                    at,
                )?;
            }
            Ok::<_, AcquiringError>((changed, store::balance(conn, &row.account_id)?))
        })
        .await?;
    if changed {
        ctx.bus.wake_relay();
        tracing::warn!(order = %order.id, account = %order.account_id, amount = %Money::from_kopecks(order.amount_kopecks - order.refunded_kopecks), %balance, "the bank reversed a paid top-up; booked");
    }
    Ok(Applied {
        order_id: order.id,
        status: OrderStatus::Reversed,
        changed,
        credited: false,
    })
}
