//! Tables and queries of internet acquiring: per-organizer bank settings,
//! top-up orders and their refunds. Status changes and refund reservations are
//! single guarded UPDATEs, so concurrent callers serialise on the row and the
//! loser sees zero rows changed instead of a lost update.

use diesel::prelude::*;
use platform::secrets::Keyring;
use storage::DbConnection;

use super::StoreError;

diesel::table! {
    acquiring_organizers (organizer) {
        organizer -> Text,
        base_url -> Text,
        merchant_login -> Text,
        merchant_password -> Text,
        callback_secret -> Text,
        top_up_limit_kopecks -> BigInt,
        updated_by -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    acquiring_orders (id) {
        id -> Text,
        idempotency_key -> Text,
        account_id -> Text,
        organizer -> Text,
        parent -> Text,
        amount_kopecks -> BigInt,
        bank_order_id -> Nullable<Text>,
        payment_url -> Nullable<Text>,
        status -> Text,
        status_rank -> Integer,
        refund_reserved_kopecks -> BigInt,
        refunded_kopecks -> BigInt,
        credit_movement -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        polled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    acquiring_refunds (id) {
        id -> Text,
        order_id -> Text,
        idempotency_key -> Text,
        amount_kopecks -> BigInt,
        reason -> Text,
        author -> Text,
        status -> Text,
        movement_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(acquiring_orders, acquiring_refunds);

/// An organizer's acquiring bank and merchant credentials.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = acquiring_organizers)]
pub struct OrganizerAcquiring {
    pub organizer: String,
    pub base_url: String,
    pub merchant_login: String,
    pub merchant_password: String,
    pub callback_secret: String,
    pub top_up_limit_kopecks: i64,
    pub updated_by: String,
    pub updated_at: chrono::NaiveDateTime,
}

/// The row's identity bound into a sealed secret: a sealed value copied into
/// another organizer's row (or the other column) does not open there.
fn secret_context(organizer: &str, column: &str) -> String {
    format!("acquiring_organizers.{column}:{organizer}")
}

/// The organizer's settings with the secrets opened, for the one place that
/// uses them; the table holds them sealed (see [`platform::secrets`]).
pub fn find_config(
    conn: &mut DbConnection,
    organizer: &str,
    keys: &Keyring,
) -> Result<Option<OrganizerAcquiring>, StoreError> {
    let Some(mut row) = acquiring_organizers::table
        .find(organizer)
        .select(OrganizerAcquiring::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    row.merchant_password = keys.open(
        &row.merchant_password,
        &secret_context(&row.organizer, "merchant_password"),
    )?;
    row.callback_secret = keys.open(
        &row.callback_secret,
        &secret_context(&row.organizer, "callback_secret"),
    )?;
    Ok(Some(row))
}

/// Replaces the organizer's settings, or creates them; the secrets are sealed
/// with the current key before they reach the table.
pub fn save_config(
    conn: &mut DbConnection,
    config: &OrganizerAcquiring,
    keys: &Keyring,
) -> Result<(), StoreError> {
    let mut sealed = config.clone();
    sealed.merchant_password = keys.seal(
        &config.merchant_password,
        &secret_context(&config.organizer, "merchant_password"),
    )?;
    sealed.callback_secret = keys.seal(
        &config.callback_secret,
        &secret_context(&config.organizer, "callback_secret"),
    )?;
    let updated = diesel::update(acquiring_organizers::table.find(&sealed.organizer))
        .set(&sealed)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(acquiring_organizers::table)
            .values(&sealed)
            .execute(conn)?;
    }
    Ok(())
}

/// Seals every stored secret that is not sealed with the current key (or not
/// sealed at all, from before secrets were) again with it; returns how many.
pub fn reseal(conn: &mut DbConnection, keys: &Keyring) -> Result<usize, StoreError> {
    let rows: Vec<(String, String, String)> = acquiring_organizers::table
        .select((
            acquiring_organizers::organizer,
            acquiring_organizers::merchant_password,
            acquiring_organizers::callback_secret,
        ))
        .order(acquiring_organizers::organizer)
        .load(conn)?;
    let mut sealed = 0;
    for (organizer, password, secret) in rows {
        let again = |stored: &str, column: &str| -> Result<Option<String>, StoreError> {
            if keys.is_current(stored) {
                return Ok(None);
            }
            let context = secret_context(&organizer, column);
            Ok(Some(keys.seal(&keys.open(stored, &context)?, &context)?))
        };
        if let Some(value) = again(&password, "merchant_password")? {
            diesel::update(acquiring_organizers::table.find(&organizer))
                .set(acquiring_organizers::merchant_password.eq(value))
                .execute(conn)?;
            sealed += 1;
        }
        if let Some(value) = again(&secret, "callback_secret")? {
            diesel::update(acquiring_organizers::table.find(&organizer))
                .set(acquiring_organizers::callback_secret.eq(value))
                .execute(conn)?;
            sealed += 1;
        }
    }
    Ok(sealed)
}

/// A top-up order.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = acquiring_orders)]
pub struct OrderRow {
    pub id: String,
    pub idempotency_key: String,
    pub account_id: String,
    pub organizer: String,
    pub parent: String,
    pub amount_kopecks: i64,
    pub bank_order_id: Option<String>,
    pub payment_url: Option<String>,
    pub status: String,
    pub status_rank: i32,
    pub refund_reserved_kopecks: i64,
    pub refunded_kopecks: i64,
    pub credit_movement: Option<String>,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
    pub polled_at: Option<chrono::NaiveDateTime>,
}

pub fn find_order(conn: &mut DbConnection, id: &str) -> Result<Option<OrderRow>, StoreError> {
    Ok(acquiring_orders::table
        .find(id)
        .select(OrderRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_order_by_key(
    conn: &mut DbConnection,
    key: &str,
) -> Result<Option<OrderRow>, StoreError> {
    Ok(acquiring_orders::table
        .filter(acquiring_orders::idempotency_key.eq(key))
        .select(OrderRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert_order(conn: &mut DbConnection, order: &OrderRow) -> Result<(), StoreError> {
    diesel::insert_into(acquiring_orders::table)
        .values(order)
        .execute(conn)?;
    Ok(())
}

/// Records the bank's answer to the registration of an order still being
/// registered; returns the rows changed (0: it was not in that state).
pub fn mark_registered(
    conn: &mut DbConnection,
    id: &str,
    registering: &str,
    created: (&str, i32),
    bank_order_id: &str,
    payment_url: &str,
    now: chrono::NaiveDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        acquiring_orders::table
            .find(id)
            .filter(acquiring_orders::status.eq(registering)),
    )
    .set((
        acquiring_orders::bank_order_id.eq(bank_order_id),
        acquiring_orders::payment_url.eq(payment_url),
        acquiring_orders::status.eq(created.0),
        acquiring_orders::status_rank.eq(created.1),
        acquiring_orders::updated_at.eq(now),
    ))
    .execute(conn)?)
}

/// Forgets an order whose registration the bank refused, so the parent may
/// repeat the request with the same key.
pub fn delete_unregistered(
    conn: &mut DbConnection,
    id: &str,
    registering: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        acquiring_orders::table
            .find(id)
            .filter(acquiring_orders::status.eq(registering))
            .filter(acquiring_orders::bank_order_id.is_null()),
    )
    .execute(conn)?)
}

/// Forgets orders still `registering` (no bank order id) created at or before
/// `before`: a crash between storing an order and the bank's answer left them,
/// and the payment page never reached the parent, so none can be paid. Answers
/// how many.
pub fn delete_stale_registering(
    conn: &mut DbConnection,
    registering: &str,
    before: chrono::NaiveDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        acquiring_orders::table
            .filter(acquiring_orders::status.eq(registering))
            .filter(acquiring_orders::bank_order_id.is_null())
            .filter(acquiring_orders::created_at.le(before)),
    )
    .execute(conn)?)
}

/// The kopecks of refunds still pending on the top-ups of `account`: money
/// promised back to the card and not yet taken off the balance.
pub fn pending_refunds_of_account(
    conn: &mut DbConnection,
    account: &str,
    pending: &str,
) -> Result<i64, StoreError> {
    let amounts: Vec<i64> = acquiring_refunds::table
        .inner_join(
            acquiring_orders::table.on(acquiring_orders::id.eq(acquiring_refunds::order_id)),
        )
        .filter(acquiring_orders::account_id.eq(account))
        .filter(acquiring_refunds::status.eq(pending))
        .select(acquiring_refunds::amount_kopecks)
        .load(conn)?;
    Ok(amounts.into_iter().sum())
}

/// Refunds still pending whose last attempt was at or before `before`.
pub fn pending_refunds(
    conn: &mut DbConnection,
    pending: &str,
    before: chrono::NaiveDateTime,
    limit: i64,
) -> Result<Vec<RefundRow>, StoreError> {
    Ok(acquiring_refunds::table
        .filter(acquiring_refunds::status.eq(pending))
        .filter(acquiring_refunds::updated_at.le(before))
        .order(acquiring_refunds::updated_at)
        .limit(limit)
        .select(RefundRow::as_select())
        .load(conn)?)
}

/// Moves the order to `status` only if that ranks above its current status;
/// returns the rows changed. In PostgreSQL a concurrent update waits for the row
/// lock and then re-checks the guard, so exactly one caller wins a transition.
pub fn advance_status(
    conn: &mut DbConnection,
    id: &str,
    status: &str,
    rank: i32,
    now: chrono::NaiveDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        acquiring_orders::table
            .find(id)
            .filter(acquiring_orders::status_rank.lt(rank))
            .filter(acquiring_orders::bank_order_id.is_not_null()),
    )
    .set((
        acquiring_orders::status.eq(status),
        acquiring_orders::status_rank.eq(rank),
        acquiring_orders::updated_at.eq(now),
    ))
    .execute(conn)?)
}

/// Moves a deposited order to `reversed` (the bank returned a paid top-up to
/// the card); returns the rows changed, 0 if it was no longer deposited.
pub fn reverse_deposited(
    conn: &mut DbConnection,
    id: &str,
    deposited: &str,
    reversed: &str,
    now: chrono::NaiveDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        acquiring_orders::table
            .find(id)
            .filter(acquiring_orders::status.eq(deposited)),
    )
    .set((
        acquiring_orders::status.eq(reversed),
        acquiring_orders::updated_at.eq(now),
    ))
    .execute(conn)?)
}

pub fn set_credit_movement(
    conn: &mut DbConnection,
    id: &str,
    movement: &str,
) -> Result<(), StoreError> {
    diesel::update(acquiring_orders::table.find(id))
        .set(acquiring_orders::credit_movement.eq(movement))
        .execute(conn)?;
    Ok(())
}

/// Orders the bank has not finished with, registered at or before `created_before`
/// and not asked about since `polled_before`, oldest first.
pub fn orders_to_poll(
    conn: &mut DbConnection,
    final_rank: i32,
    created_after: chrono::NaiveDateTime,
    created_before: chrono::NaiveDateTime,
    polled_before: chrono::NaiveDateTime,
    limit: i64,
) -> Result<Vec<OrderRow>, StoreError> {
    Ok(acquiring_orders::table
        .filter(acquiring_orders::status_rank.lt(final_rank))
        .filter(acquiring_orders::bank_order_id.is_not_null())
        .filter(acquiring_orders::created_at.gt(created_after))
        .filter(acquiring_orders::created_at.le(created_before))
        .filter(
            acquiring_orders::polled_at
                .is_null()
                .or(acquiring_orders::polled_at.le(polled_before)),
        )
        .order(acquiring_orders::created_at)
        .limit(limit)
        .select(OrderRow::as_select())
        .load(conn)?)
}

pub fn mark_polled(
    conn: &mut DbConnection,
    id: &str,
    now: chrono::NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::update(acquiring_orders::table.find(id))
        .set(acquiring_orders::polled_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

/// Reserves `kopecks` of a paid order for a refund if that much is still
/// refundable; returns the rows changed (0: not paid, or not that much left).
pub fn reserve_refund(
    conn: &mut DbConnection,
    id: &str,
    paid_status: &str,
    kopecks: i64,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        acquiring_orders::table
            .find(id)
            .filter(acquiring_orders::status.eq(paid_status))
            .filter(
                acquiring_orders::amount_kopecks
                    .ge(acquiring_orders::refund_reserved_kopecks + kopecks),
            ),
    )
    .set(
        acquiring_orders::refund_reserved_kopecks
            .eq(acquiring_orders::refund_reserved_kopecks + kopecks),
    )
    .execute(conn)?)
}

/// Gives back a reservation whose refund the bank refused.
pub fn release_refund(conn: &mut DbConnection, id: &str, kopecks: i64) -> Result<(), StoreError> {
    diesel::update(acquiring_orders::table.find(id))
        .set(
            acquiring_orders::refund_reserved_kopecks
                .eq(acquiring_orders::refund_reserved_kopecks - kopecks),
        )
        .execute(conn)?;
    Ok(())
}

/// Counts a confirmed refund; when everything paid has been refunded the order
/// moves to `refunded` (guarded by its rank like every status change).
pub fn add_refunded(
    conn: &mut DbConnection,
    id: &str,
    kopecks: i64,
    refunded: (&str, i32),
    now: chrono::NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::update(acquiring_orders::table.find(id))
        .set((
            acquiring_orders::refunded_kopecks.eq(acquiring_orders::refunded_kopecks + kopecks),
            acquiring_orders::updated_at.eq(now),
        ))
        .execute(conn)?;
    diesel::update(
        acquiring_orders::table
            .find(id)
            .filter(acquiring_orders::refunded_kopecks.eq(acquiring_orders::amount_kopecks))
            .filter(acquiring_orders::status_rank.lt(refunded.1)),
    )
    .set((
        acquiring_orders::status.eq(refunded.0),
        acquiring_orders::status_rank.eq(refunded.1),
    ))
    .execute(conn)?;
    Ok(())
}

/// A refund of (part of) a paid order.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = acquiring_refunds)]
pub struct RefundRow {
    pub id: String,
    pub order_id: String,
    pub idempotency_key: String,
    pub amount_kopecks: i64,
    pub reason: String,
    pub author: String,
    pub status: String,
    pub movement_id: Option<String>,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
}

pub fn find_refund_by_key(
    conn: &mut DbConnection,
    key: &str,
) -> Result<Option<RefundRow>, StoreError> {
    Ok(acquiring_refunds::table
        .filter(acquiring_refunds::idempotency_key.eq(key))
        .select(RefundRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert_refund(conn: &mut DbConnection, refund: &RefundRow) -> Result<(), StoreError> {
    diesel::insert_into(acquiring_refunds::table)
        .values(refund)
        .execute(conn)?;
    Ok(())
}

/// Marks a pending refund done; returns the rows changed (0: someone else did).
pub fn complete_refund(
    conn: &mut DbConnection,
    id: &str,
    pending: &str,
    done: &str,
    now: chrono::NaiveDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        acquiring_refunds::table
            .find(id)
            .filter(acquiring_refunds::status.eq(pending)),
    )
    .set((
        acquiring_refunds::status.eq(done),
        acquiring_refunds::updated_at.eq(now),
    ))
    .execute(conn)?)
}

/// Takes a pending refund for one more attempt if nobody has since `seen`;
/// returns the rows changed.
pub fn claim_refund(
    conn: &mut DbConnection,
    id: &str,
    pending: &str,
    seen: chrono::NaiveDateTime,
    now: chrono::NaiveDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        acquiring_refunds::table
            .find(id)
            .filter(acquiring_refunds::status.eq(pending))
            .filter(acquiring_refunds::updated_at.eq(seen)),
    )
    .set(acquiring_refunds::updated_at.eq(now))
    .execute(conn)?)
}

pub fn set_refund_movement(
    conn: &mut DbConnection,
    id: &str,
    movement: &str,
) -> Result<(), StoreError> {
    diesel::update(acquiring_refunds::table.find(id))
        .set(acquiring_refunds::movement_id.eq(Some(movement)))
        .execute(conn)?;
    Ok(())
}

/// Forgets a pending refund the bank refused; returns the rows changed.
pub fn delete_pending_refund(
    conn: &mut DbConnection,
    id: &str,
    pending: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        acquiring_refunds::table
            .find(id)
            .filter(acquiring_refunds::status.eq(pending)),
    )
    .execute(conn)?)
}

pub fn refunds_of(conn: &mut DbConnection, order: &str) -> Result<Vec<RefundRow>, StoreError> {
    Ok(acquiring_refunds::table
        .filter(acquiring_refunds::order_id.eq(order))
        .order(acquiring_refunds::created_at)
        .select(RefundRow::as_select())
        .load(conn)?)
}
