//! The bus tables (outbox, inbox, dead letters) and the queries on them. They
//! live in each service's own database, beside the rows they belong with.

use diesel::prelude::*;
use storage::{DbConnection, MigrationSet, StorageError};

use crate::Envelope;

diesel::table! {
    outbox (id) {
        id -> BigInt,
        message_id -> Text,
        topic -> Text,
        kind -> Text,
        payload -> Text,
        headers -> Text,
        destination -> Nullable<Text>,
        created_at -> Timestamp,
        published_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    inbox (consumer, message_id) {
        consumer -> Text,
        message_id -> Text,
        processed_at -> Timestamp,
    }
}

diesel::table! {
    dead_letters (id) {
        id -> BigInt,
        consumer -> Text,
        queue -> Text,
        message_id -> Text,
        topic -> Text,
        kind -> Text,
        payload -> Text,
        headers -> Text,
        error -> Text,
        attempts -> Integer,
        dead_at -> Timestamp,
        replayed_at -> Nullable<Timestamp>,
    }
}

const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/sqlite");

/// The bus tables; every service that publishes or consumes runs these first.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    name: "bus",
    postgres: || PG,
    sqlite: || SQLITE,
};

#[derive(Insertable)]
#[diesel(table_name = outbox)]
struct NewOutboxRow<'a> {
    message_id: &'a str,
    topic: &'a str,
    kind: &'a str,
    payload: &'a str,
    headers: String,
    destination: Option<&'a str>,
    created_at: chrono::NaiveDateTime,
}

#[derive(Queryable, Selectable, Debug, Clone)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub message_id: String,
    pub topic: String,
    pub kind: String,
    pub payload: String,
    pub headers: String,
    pub destination: Option<String>,
}

impl OutboxRow {
    pub fn into_envelope(self) -> Envelope {
        Envelope {
            id: self.message_id,
            topic: self.topic,
            kind: self.kind,
            payload: self.payload,
            headers: serde_json::from_str(&self.headers).unwrap_or_default(),
            correlation_id: None,
            reply_to: None,
            attempt: 1,
            destination: self.destination,
        }
    }
}

/// Writes `message` to the outbox. Call it inside the transaction that makes the
/// state change the message announces: both commit or neither does.
pub fn enqueue(conn: &mut DbConnection, message: &Envelope) -> Result<(), StorageError> {
    enqueue_all(conn, std::slice::from_ref(message))
}

/// Writes several messages to the outbox in one statement per 500 rows.
pub fn enqueue_all(conn: &mut DbConnection, messages: &[Envelope]) -> Result<(), StorageError> {
    let now = storage::now_naive();
    for chunk in messages.chunks(500) {
        let rows: Vec<NewOutboxRow<'_>> = chunk
            .iter()
            .map(|message| NewOutboxRow {
                message_id: &message.id,
                topic: &message.topic,
                kind: &message.kind,
                payload: &message.payload,
                headers: serde_json::to_string(&message.headers).unwrap_or_else(|_| "{}".into()),
                destination: message.destination.as_deref(),
                created_at: now,
            })
            .collect();
        storage::per_backend!(conn, |c| diesel::insert_into(outbox::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(())
}

/// Ids of unpublished rows, oldest first.
pub fn pending_ids(conn: &mut DbConnection, limit: i64) -> Result<Vec<i64>, StorageError> {
    Ok(outbox::table
        .filter(outbox::published_at.is_null())
        .order(outbox::id)
        .select(outbox::id)
        .limit(limit)
        .load(conn)?)
}

pub fn rows_by_id(conn: &mut DbConnection, ids: &[i64]) -> Result<Vec<OutboxRow>, StorageError> {
    Ok(outbox::table
        .filter(outbox::id.eq_any(ids))
        .order(outbox::id)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

pub fn mark_published(conn: &mut DbConnection, ids: &[i64]) -> Result<usize, StorageError> {
    Ok(diesel::update(outbox::table.filter(outbox::id.eq_any(ids)))
        .set(outbox::published_at.eq(Some(storage::now_naive())))
        .execute(conn)?)
}

pub fn count_pending(conn: &mut DbConnection) -> Result<i64, StorageError> {
    Ok(outbox::table
        .filter(outbox::published_at.is_null())
        .count()
        .get_result(conn)?)
}

/// Whether `consumer` has processed `message_id` already.
pub fn inbox_contains(
    conn: &mut DbConnection,
    consumer: &str,
    message_id: &str,
) -> Result<bool, StorageError> {
    let n: i64 = inbox::table
        .filter(inbox::consumer.eq(consumer))
        .filter(inbox::message_id.eq(message_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Which of `message_ids` `consumer` has processed already.
pub fn inbox_seen(
    conn: &mut DbConnection,
    consumer: &str,
    message_ids: &[&str],
) -> Result<std::collections::HashSet<String>, StorageError> {
    let mut seen = std::collections::HashSet::new();
    for chunk in message_ids.chunks(500) {
        let found: Vec<String> = inbox::table
            .filter(inbox::consumer.eq(consumer))
            .filter(inbox::message_id.eq_any(chunk))
            .select(inbox::message_id)
            .load(conn)?;
        seen.extend(found);
    }
    Ok(seen)
}

/// Records several processed messages in one statement per 500 rows.
pub fn record_inbox_all(
    conn: &mut DbConnection,
    consumer: &str,
    message_ids: &[&str],
) -> Result<(), StorageError> {
    let now = storage::now_naive();
    for chunk in message_ids.chunks(500) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|id| {
                (
                    inbox::consumer.eq(consumer),
                    inbox::message_id.eq(*id),
                    inbox::processed_at.eq(now),
                )
            })
            .collect();
        storage::per_backend!(conn, |c| diesel::insert_into(inbox::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(())
}

/// Records that `consumer` has processed `message_id`. `Ok(false)` means it had
/// already: the caller must skip the effect.
pub fn record_inbox(
    conn: &mut DbConnection,
    consumer: &str,
    message_id: &str,
) -> Result<bool, StorageError> {
    let result = diesel::insert_into(inbox::table)
        .values((
            inbox::consumer.eq(consumer),
            inbox::message_id.eq(message_id),
            inbox::processed_at.eq(storage::now_naive()),
        ))
        .execute(conn);
    match result {
        Ok(_) => Ok(true),
        Err(e) => {
            let err = StorageError::from(e);
            if err.is_unique_violation() {
                Ok(false)
            } else {
                Err(err)
            }
        }
    }
}

/// A message that failed every attempt.
#[derive(Queryable, Selectable, Debug, Clone, serde::Serialize)]
#[diesel(table_name = dead_letters)]
pub struct DeadLetter {
    pub id: i64,
    pub consumer: String,
    pub queue: String,
    pub message_id: String,
    pub topic: String,
    pub kind: String,
    pub payload: String,
    pub headers: String,
    pub error: String,
    pub attempts: i32,
    pub dead_at: chrono::NaiveDateTime,
    pub replayed_at: Option<chrono::NaiveDateTime>,
}

pub fn insert_dead_letter(
    conn: &mut DbConnection,
    consumer: &str,
    queue: &str,
    message: &Envelope,
    error: &str,
) -> Result<(), StorageError> {
    diesel::insert_into(dead_letters::table)
        .values((
            dead_letters::consumer.eq(consumer),
            dead_letters::queue.eq(queue),
            dead_letters::message_id.eq(&message.id),
            dead_letters::topic.eq(&message.topic),
            dead_letters::kind.eq(&message.kind),
            dead_letters::payload.eq(&message.payload),
            dead_letters::headers.eq(serde_json::to_string(&message.headers).unwrap_or_default()),
            dead_letters::error.eq(error),
            dead_letters::attempts.eq(i32::try_from(message.attempt).unwrap_or(i32::MAX)),
            dead_letters::dead_at.eq(storage::now_naive()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Dead letters not yet replayed (or all of them), oldest first.
pub fn list_dead_letters(
    conn: &mut DbConnection,
    include_replayed: bool,
) -> Result<Vec<DeadLetter>, StorageError> {
    let mut query = dead_letters::table
        .order(dead_letters::id)
        .select(DeadLetter::as_select())
        .into_boxed();
    if !include_replayed {
        query = query.filter(dead_letters::replayed_at.is_null());
    }
    Ok(query.load(conn)?)
}

/// Puts a dead letter back on its consumer's queue through the outbox, keeping its
/// message id so the inbox still guards against a double effect.
pub fn replay_dead_letter(
    conn: &mut DbConnection,
    id: i64,
) -> Result<Option<DeadLetter>, StorageError> {
    let Some(letter) = dead_letters::table
        .find(id)
        .filter(dead_letters::replayed_at.is_null())
        .select(DeadLetter::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let envelope = Envelope {
        id: letter.message_id.clone(),
        topic: letter.topic.clone(),
        kind: letter.kind.clone(),
        payload: letter.payload.clone(),
        headers: serde_json::from_str(&letter.headers).unwrap_or_default(),
        correlation_id: None,
        reply_to: None,
        attempt: 1,
        destination: Some(letter.queue.clone()),
    };
    enqueue(conn, &envelope)?;
    diesel::update(dead_letters::table.find(id))
        .set(dead_letters::replayed_at.eq(Some(storage::now_naive())))
        .execute(conn)?;
    Ok(Some(letter))
}
