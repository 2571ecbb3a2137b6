//! The gateway's tables: participants, their rights, the audit of changes to
//! both, and the message log with its hash chain.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use storage::{DbConnection, MigrationSet, StorageError};

diesel::table! {
    participants (code) {
        code -> Text,
        name -> Text,
        inn -> Text,
        ogrn -> Text,
        kind -> Text,
        contour -> Text,
        contacts -> Text,
        address -> Text,
        certificates -> Text,
        bank -> Nullable<Text>,
        organizer -> Nullable<Text>,
        active -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    participant_rights (participant, operation) {
        participant -> Text,
        operation -> Text,
        granted_at -> Timestamp,
        granted_by -> Text,
    }
}

diesel::table! {
    gateway_audit (id) {
        id -> Text,
        at -> Timestamp,
        actor -> Text,
        entity -> Text,
        entity_id -> Text,
        action -> Text,
        before_value -> Nullable<Text>,
        after_value -> Nullable<Text>,
    }
}

diesel::table! {
    message_log (seq) {
        seq -> BigInt,
        at -> Timestamp,
        direction -> Text,
        participant -> Text,
        service -> Text,
        operation -> Text,
        message_id -> Text,
        request_id_ref -> Nullable<Text>,
        origin_request_id_ref -> Nullable<Text>,
        case_number -> Nullable<Text>,
        status -> Text,
        outcome -> Text,
        duration_ms -> BigInt,
        request_body -> Text,
        response_body -> Text,
        hash -> Text,
    }
}

diesel::table! {
    signed_bodies (participant, body_digest) {
        participant -> Text,
        body_digest -> Text,
        message_id -> Text,
        answered_at -> Timestamp,
    }
}

diesel::table! {
    message_log_head (id) {
        id -> Integer,
        last_seq -> BigInt,
        last_hash -> Text,
        base_seq -> BigInt,
        base_hash -> Text,
    }
}

diesel::table! {
    documents (id) {
        id -> Text,
        participant -> Text,
        message_id -> Text,
        kind -> Text,
        request_code -> Text,
        size -> BigInt,
        sha256 -> Text,
        chunks -> Integer,
        received_at -> Timestamp,
    }
}

diesel::table! {
    document_chunks (document_id, idx) {
        document_id -> Text,
        idx -> Integer,
        data -> Text,
    }
}

diesel::table! {
    connections (participant) {
        participant -> Text,
        state -> Text,
        received_on -> Date,
        review_due -> Date,
        act_number -> Nullable<Text>,
        act_on -> Nullable<Date>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    connection_steps (id) {
        id -> Text,
        participant -> Text,
        step -> Text,
        on_date -> Date,
        at -> Timestamp,
        actor -> Text,
        note -> Text,
        late_days -> Nullable<BigInt>,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Text,
        participant -> Text,
        operation -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(documents, document_chunks);

const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/sqlite");

pub static MIGRATIONS: MigrationSet = MigrationSet {
    name: "gateway",
    postgres: || PG,
    sqlite: || SQLITE,
};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = participants)]
pub struct ParticipantRow {
    pub code: String,
    pub name: String,
    pub inn: String,
    pub ogrn: String,
    pub kind: String,
    pub contour: String,
    pub contacts: String,
    pub address: String,
    pub certificates: String,
    pub bank: Option<String>,
    pub organizer: Option<String>,
    pub active: bool,
    pub updated_at: NaiveDateTime,
}

pub fn participant(
    conn: &mut DbConnection,
    code: &str,
) -> Result<Option<ParticipantRow>, StorageError> {
    Ok(participants::table
        .find(code)
        .select(ParticipantRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn all_participants(conn: &mut DbConnection) -> Result<Vec<ParticipantRow>, StorageError> {
    Ok(participants::table
        .order(participants::code)
        .select(ParticipantRow::as_select())
        .load(conn)?)
}

/// Creates or replaces a participant; returns what was there before.
pub fn save_participant(
    conn: &mut DbConnection,
    row: &ParticipantRow,
) -> Result<Option<ParticipantRow>, StorageError> {
    let before = participant(conn, &row.code)?;
    if before.is_some() {
        diesel::update(participants::table.find(&row.code))
            .set(row)
            .execute(conn)?;
    } else {
        diesel::insert_into(participants::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(before)
}

pub fn rights_of(conn: &mut DbConnection, code: &str) -> Result<Vec<String>, StorageError> {
    Ok(participant_rights::table
        .filter(participant_rights::participant.eq(code))
        .order(participant_rights::operation)
        .select(participant_rights::operation)
        .load(conn)?)
}

pub fn is_granted(
    conn: &mut DbConnection,
    code: &str,
    operation: &str,
) -> Result<bool, StorageError> {
    let n: i64 = participant_rights::table
        .filter(participant_rights::participant.eq(code))
        .filter(participant_rights::operation.eq(operation))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Grants a right; false when it was granted already.
pub fn grant(
    conn: &mut DbConnection,
    code: &str,
    operation: &str,
    by: &str,
    at: NaiveDateTime,
) -> Result<bool, StorageError> {
    if is_granted(conn, code, operation)? {
        return Ok(false);
    }
    diesel::insert_into(participant_rights::table)
        .values((
            participant_rights::participant.eq(code),
            participant_rights::operation.eq(operation),
            participant_rights::granted_at.eq(at),
            participant_rights::granted_by.eq(by),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Revokes a right; false when it was not granted.
pub fn revoke(conn: &mut DbConnection, code: &str, operation: &str) -> Result<bool, StorageError> {
    let n = diesel::delete(
        participant_rights::table
            .filter(participant_rights::participant.eq(code))
            .filter(participant_rights::operation.eq(operation)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = gateway_audit)]
pub struct AuditRow {
    pub id: String,
    pub at: NaiveDateTime,
    pub actor: String,
    pub entity: String,
    pub entity_id: String,
    pub action: String,
    pub before_value: Option<String>,
    pub after_value: Option<String>,
}

pub fn audit(conn: &mut DbConnection, row: &AuditRow) -> Result<(), StorageError> {
    diesel::insert_into(gateway_audit::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn audit_of(
    conn: &mut DbConnection,
    entity_id: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StorageError> {
    let mut q = gateway_audit::table.into_boxed();
    if let Some(id) = entity_id {
        q = q.filter(gateway_audit::entity_id.eq(id.to_string()));
    }
    Ok(
        q.order((gateway_audit::at.desc(), gateway_audit::id.desc()))
            .offset(offset)
            .limit(limit)
            .select(AuditRow::as_select())
            .load(conn)?,
    )
}

/// An exchange as the door saw it, before the chain places it.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = message_log)]
pub struct Exchange {
    /// in: a participant called us; out: we called a participant.
    pub direction: String,
    pub participant: String,
    pub service: String,
    pub operation: String,
    pub message_id: String,
    pub request_id_ref: Option<String>,
    pub origin_request_id_ref: Option<String>,
    pub case_number: Option<String>,
    /// The status of the answer.
    pub status: String,
    pub outcome: String,
    pub duration_ms: i64,
    pub request_body: String,
    pub response_body: String,
}

/// A record of the log: an exchange at its place in the chain.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = message_log)]
pub struct LogRow {
    pub seq: i64,
    pub at: NaiveDateTime,
    #[diesel(embed)]
    pub exchange: Exchange,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = message_log_head)]
pub struct HeadRow {
    pub id: i32,
    pub last_seq: i64,
    pub last_hash: String,
    pub base_seq: i64,
    pub base_hash: String,
}

/// Takes the chain's head for this transaction: PostgreSQL locks the row until
/// commit (the empty update), SQLite's write transaction holds the database.
pub fn lock_head(conn: &mut DbConnection) -> Result<HeadRow, StorageError> {
    diesel::update(message_log_head::table.find(1))
        .set(message_log_head::id.eq(1))
        .execute(conn)?;
    head(conn)
}

pub fn head(conn: &mut DbConnection) -> Result<HeadRow, StorageError> {
    Ok(message_log_head::table
        .find(1)
        .select(HeadRow::as_select())
        .first(conn)?)
}

pub fn set_head(conn: &mut DbConnection, seq: i64, hash: &str) -> Result<(), StorageError> {
    diesel::update(message_log_head::table.find(1))
        .set((
            message_log_head::last_seq.eq(seq),
            message_log_head::last_hash.eq(hash),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn set_base(conn: &mut DbConnection, seq: i64, hash: &str) -> Result<(), StorageError> {
    diesel::update(message_log_head::table.find(1))
        .set((
            message_log_head::base_seq.eq(seq),
            message_log_head::base_hash.eq(hash),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn insert_log(conn: &mut DbConnection, row: &LogRow) -> Result<(), StorageError> {
    diesel::insert_into(message_log::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The first answer to an inbound message of `participant` with `message_id`
/// that a repeat must get again. A FAILURE is not one: it promised that asking
/// again is safe, so a repeat is answered anew. Nor is a refusal of the client
/// certificate or of the signature: the sender was not who it claimed (or the
/// message not what was signed), and the real one's message of that id must
/// not get it.
pub fn first_answer(
    conn: &mut DbConnection,
    participant: &str,
    message_id: &str,
) -> Result<Option<LogRow>, StorageError> {
    Ok(message_log::table
        .filter(message_log::participant.eq(participant))
        .filter(message_log::message_id.eq(message_id))
        .filter(message_log::direction.eq("in"))
        .filter(message_log::status.ne("FAILURE"))
        .filter(message_log::outcome.not_like("CERTIFICATE%"))
        .filter(message_log::outcome.not_like("SIGNATURE%"))
        .order(message_log::seq)
        .select(LogRow::as_select())
        .first(conn)
        .optional()?)
}

/// When a certificate (DER) was taken off participant `code`'s registered
/// certificates, from the audit of its changes: the last time.
pub fn certificate_retired(
    conn: &mut DbConnection,
    code: &str,
    der: &[u8],
) -> Result<Option<NaiveDateTime>, StorageError> {
    let rows: Vec<(NaiveDateTime, Option<String>, Option<String>)> = gateway_audit::table
        .filter(gateway_audit::entity.eq("participant"))
        .filter(gateway_audit::entity_id.eq(code))
        .order(gateway_audit::at.desc())
        .select((
            gateway_audit::at,
            gateway_audit::before_value,
            gateway_audit::after_value,
        ))
        .load(conn)?;
    let holds = |v: &Option<String>| {
        let certificates = v
            .as_deref()
            .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
            .and_then(|v| v.get("certificates").cloned())
            .and_then(|c| serde_json::from_value::<Vec<String>>(c).ok())
            .unwrap_or_default();
        platform::tls::is_one_of(der, &certificates)
    };
    Ok(rows
        .into_iter()
        .find(|(_, before, after)| holds(before) && !holds(after))
        .map(|(at, _, _)| at))
}

/// Remembers that `participant`'s signed Body of `digest` was answered as
/// `message_id` (the first time only).
pub fn remember_signed_body(
    conn: &mut DbConnection,
    participant: &str,
    digest: &str,
    message_id: &str,
    at: NaiveDateTime,
) -> Result<(), StorageError> {
    // Called by the log writer with the chain's head locked: no two at once.
    let known: i64 = signed_bodies::table
        .find((participant, digest))
        .count()
        .get_result(conn)?;
    if known == 0 {
        diesel::insert_into(signed_bodies::table)
            .values((
                signed_bodies::participant.eq(participant),
                signed_bodies::body_digest.eq(digest),
                signed_bodies::message_id.eq(message_id),
                signed_bodies::answered_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The MessageId under which `participant`'s signed Body of `digest` was
/// answered, if another than `message_id`.
pub fn signed_body_answered(
    conn: &mut DbConnection,
    participant: &str,
    digest: &str,
    message_id: &str,
) -> Result<Option<String>, StorageError> {
    Ok(signed_bodies::table
        .find((participant, digest))
        .filter(signed_bodies::message_id.ne(message_id))
        .select(signed_bodies::message_id)
        .first(conn)
        .optional()?)
}

pub fn prune_signed_bodies(
    conn: &mut DbConnection,
    before: NaiveDateTime,
) -> Result<usize, StorageError> {
    Ok(
        diesel::delete(signed_bodies::table.filter(signed_bodies::answered_at.lt(before)))
            .execute(conn)?,
    )
}

pub fn log_record(conn: &mut DbConnection, seq: i64) -> Result<Option<LogRow>, StorageError> {
    Ok(message_log::table
        .find(seq)
        .select(LogRow::as_select())
        .first(conn)
        .optional()?)
}

/// What the operator searches the log by; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub message_id: Option<String>,
    pub request_id_ref: Option<String>,
    pub origin_request_id_ref: Option<String>,
    pub case_number: Option<String>,
    pub participant: Option<String>,
    pub operation: Option<String>,
    pub status: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

pub fn search_log(
    conn: &mut DbConnection,
    f: &LogFilter,
    offset: i64,
    limit: i64,
) -> Result<Vec<LogRow>, StorageError> {
    let mut q = message_log::table.into_boxed();
    if let Some(v) = &f.message_id {
        q = q.filter(message_log::message_id.eq(v.clone()));
    }
    if let Some(v) = &f.request_id_ref {
        q = q.filter(message_log::request_id_ref.eq(v.clone()));
    }
    if let Some(v) = &f.origin_request_id_ref {
        q = q.filter(message_log::origin_request_id_ref.eq(v.clone()));
    }
    if let Some(v) = &f.case_number {
        q = q.filter(message_log::case_number.eq(v.clone()));
    }
    if let Some(v) = &f.participant {
        q = q.filter(message_log::participant.eq(v.clone()));
    }
    if let Some(v) = &f.operation {
        q = q.filter(message_log::operation.eq(v.clone()));
    }
    if let Some(v) = &f.status {
        q = q.filter(message_log::status.eq(v.clone()));
    }
    if let Some(v) = f.from {
        q = q.filter(message_log::at.ge(v));
    }
    if let Some(v) = f.to {
        q = q.filter(message_log::at.lt(v));
    }
    Ok(q.order(message_log::seq.desc())
        .offset(offset)
        .limit(limit)
        .select(LogRow::as_select())
        .load(conn)?)
}

/// Records in chain order from `after` (exclusive), `limit` at a time.
pub fn log_chunk(
    conn: &mut DbConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<LogRow>, StorageError> {
    Ok(message_log::table
        .filter(message_log::seq.gt(after))
        .order(message_log::seq)
        .limit(limit)
        .select(LogRow::as_select())
        .load(conn)?)
}

/// The newest record older than `before`, and how many records are older.
pub fn last_before(
    conn: &mut DbConnection,
    before: NaiveDateTime,
) -> Result<Option<LogRow>, StorageError> {
    Ok(message_log::table
        .filter(message_log::at.lt(before))
        .order(message_log::seq.desc())
        .select(LogRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn delete_through(conn: &mut DbConnection, seq: i64) -> Result<usize, StorageError> {
    Ok(diesel::delete(message_log::table.filter(message_log::seq.le(seq))).execute(conn)?)
}

/// A document a participant sent (its bytes are in `document_chunks`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = documents)]
pub struct DocumentRow {
    pub id: String,
    pub participant: String,
    pub message_id: String,
    pub kind: String,
    pub request_code: String,
    pub size: i64,
    pub sha256: String,
    pub chunks: i32,
    pub received_at: NaiveDateTime,
}

/// Stores a document and its chunks (base64 each), in the caller's transaction.
pub fn insert_document(
    conn: &mut DbConnection,
    row: &DocumentRow,
    chunks: &[String],
) -> Result<(), StorageError> {
    diesel::insert_into(documents::table)
        .values(row)
        .execute(conn)?;
    for (idx, data) in chunks.iter().enumerate() {
        diesel::insert_into(document_chunks::table)
            .values((
                document_chunks::document_id.eq(&row.id),
                document_chunks::idx.eq(i32::try_from(idx).unwrap_or(i32::MAX)),
                document_chunks::data.eq(data),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The document `participant` sent in its message `message_id`.
pub fn document_of_message(
    conn: &mut DbConnection,
    participant: &str,
    message_id: &str,
) -> Result<Option<DocumentRow>, StorageError> {
    Ok(documents::table
        .filter(documents::participant.eq(participant))
        .filter(documents::message_id.eq(message_id))
        .select(DocumentRow::as_select())
        .first(conn)
        .optional()?)
}

/// Chunk `idx` of a document, base64.
pub fn document_chunk(
    conn: &mut DbConnection,
    document: &str,
    idx: i32,
) -> Result<Option<String>, StorageError> {
    Ok(document_chunks::table
        .find((document, idx))
        .select(document_chunks::data)
        .first(conn)
        .optional()?)
}

/// Removes the documents received before `before`; how many.
pub fn prune_documents(
    conn: &mut DbConnection,
    before: NaiveDateTime,
) -> Result<usize, StorageError> {
    let old = documents::table
        .filter(documents::received_at.lt(before))
        .select(documents::id);
    diesel::delete(document_chunks::table.filter(document_chunks::document_id.eq_any(old)))
        .execute(conn)?;
    Ok(diesel::delete(documents::table.filter(documents::received_at.lt(before))).execute(conn)?)
}

/// A participant's connection procedure.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = connections)]
#[diesel(treat_none_as_null = true)]
pub struct ConnectionRow {
    pub participant: String,
    pub state: String,
    pub received_on: chrono::NaiveDate,
    pub review_due: chrono::NaiveDate,
    pub act_number: Option<String>,
    pub act_on: Option<chrono::NaiveDate>,
    pub updated_at: NaiveDateTime,
}

/// One step of a connection procedure.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = connection_steps)]
pub struct StepRow {
    pub id: String,
    pub participant: String,
    pub step: String,
    pub on_date: chrono::NaiveDate,
    pub at: NaiveDateTime,
    pub actor: String,
    pub note: String,
    pub late_days: Option<i64>,
}

pub fn connection(
    conn: &mut DbConnection,
    participant: &str,
) -> Result<Option<ConnectionRow>, StorageError> {
    Ok(connections::table
        .find(participant)
        .select(ConnectionRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every connection procedure in one of `states`, by participant.
pub fn connections_in(
    conn: &mut DbConnection,
    states: &[&str],
) -> Result<Vec<ConnectionRow>, StorageError> {
    Ok(connections::table
        .filter(connections::state.eq_any(states.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
        .order(connections::participant)
        .select(ConnectionRow::as_select())
        .load(conn)?)
}

/// Creates or replaces the procedure's row and records the step.
/// `from` is the state the step was judged from: if the row is no longer in
/// it (another operator recorded a step meanwhile) nothing is written and the
/// answer is false. `None` starts a procedure (a declined one restarts from
/// `declined`).
pub fn save_connection(
    conn: &mut DbConnection,
    row: &ConnectionRow,
    step: &StepRow,
    from: Option<&str>,
) -> Result<bool, StorageError> {
    let saved = match from {
        Some(state) => {
            diesel::update(
                connections::table
                    .find(&row.participant)
                    .filter(connections::state.eq(state)),
            )
            .set(row)
            .execute(conn)?
                == 1
        }
        None => {
            diesel::insert_into(connections::table)
                .values(row)
                .execute(conn)?
                == 1
        }
    };
    if !saved {
        return Ok(false);
    }
    diesel::insert_into(connection_steps::table)
        .values(step)
        .execute(conn)?;
    Ok(true)
}

pub fn steps_of(conn: &mut DbConnection, participant: &str) -> Result<Vec<StepRow>, StorageError> {
    Ok(connection_steps::table
        .filter(connection_steps::participant.eq(participant))
        .order((connection_steps::at, connection_steps::id))
        .select(StepRow::as_select())
        .load(conn)?)
}

/// Revokes every right of a participant; how many.
pub fn revoke_all(conn: &mut DbConnection, code: &str) -> Result<usize, StorageError> {
    Ok(
        diesel::delete(participant_rights::table.filter(participant_rights::participant.eq(code)))
            .execute(conn)?,
    )
}

/// Sets a participant's contour and whether it is active.
pub fn set_contour(
    conn: &mut DbConnection,
    code: &str,
    contour: &str,
    active: bool,
    at: NaiveDateTime,
) -> Result<(), StorageError> {
    diesel::update(participants::table.find(code))
        .set((
            participants::contour.eq(contour),
            participants::active.eq(active),
            participants::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// `deliveries.status`.
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const PARKED: &str = "parked";

/// An outbound call waiting, done or parked.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = deliveries)]
pub struct DeliveryRow {
    pub id: String,
    pub participant: String,
    pub operation: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_at: NaiveDateTime,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
}

/// Queues a delivery; one already queued under its id changes nothing.
pub fn queue_delivery(conn: &mut DbConnection, row: &DeliveryRow) -> Result<bool, StorageError> {
    let n = storage::per_backend!(conn, |c| diesel::insert_into(deliveries::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

/// Pending deliveries due by `now`, oldest first, except those of the
/// participants in `busy` (at their limit in flight, or paused): a backlog of
/// one participant never hides the others' deliveries.
pub fn due_deliveries(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    busy: &[String],
    limit: i64,
) -> Result<Vec<DeliveryRow>, StorageError> {
    let mut q = deliveries::table
        .filter(deliveries::status.eq(PENDING))
        .filter(deliveries::next_at.le(now))
        .into_boxed();
    if !busy.is_empty() {
        q = q.filter(deliveries::participant.ne_all(busy.to_vec()));
    }
    Ok(q.order((deliveries::next_at, deliveries::id))
        .limit(limit)
        .select(DeliveryRow::as_select())
        .load(conn)?)
}

/// Takes a due delivery for one send: moves its `next_at` to `lease_until`,
/// so a stale read of it is not sent again while this send runs; false when
/// it is not pending and due any more (another send has it, or it ended).
pub fn claim_delivery(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> Result<bool, StorageError> {
    let n = diesel::update(
        deliveries::table
            .find(id)
            .filter(deliveries::status.eq(PENDING))
            .filter(deliveries::next_at.le(now)),
    )
    .set(deliveries::next_at.eq(lease_until))
    .execute(conn)?;
    Ok(n == 1)
}

/// A delivery answered: delivered at `at`.
pub fn delivered(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> Result<(), StorageError> {
    diesel::update(
        deliveries::table
            .find(id)
            .filter(deliveries::status.eq(PENDING)),
    )
    .set((
        deliveries::status.eq(DELIVERED),
        deliveries::attempts.eq(deliveries::attempts + 1),
        deliveries::delivered_at.eq(Some(at)),
        deliveries::last_error.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(())
}

/// A delivery that failed: tried again at `next` (or parked when `next` is none).
pub fn delivery_failed(
    conn: &mut DbConnection,
    id: &str,
    error: &str,
    next: Option<NaiveDateTime>,
) -> Result<(), StorageError> {
    let status = if next.is_some() { PENDING } else { PARKED };
    let target = deliveries::table
        .find(id)
        .filter(deliveries::status.eq(PENDING));
    match next {
        Some(at) => diesel::update(target)
            .set((
                deliveries::status.eq(status),
                deliveries::attempts.eq(deliveries::attempts + 1),
                deliveries::last_error.eq(Some(error)),
                deliveries::next_at.eq(at),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set((
                deliveries::status.eq(status),
                deliveries::attempts.eq(deliveries::attempts + 1),
                deliveries::last_error.eq(Some(error)),
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// Deliveries by status and participant, newest first.
pub fn list_deliveries(
    conn: &mut DbConnection,
    status: Option<&str>,
    participant: Option<&str>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, StorageError> {
    let mut q = deliveries::table.into_boxed();
    if let Some(s) = status {
        q = q.filter(deliveries::status.eq(s.to_string()));
    }
    if let Some(p) = participant {
        q = q.filter(deliveries::participant.eq(p.to_string()));
    }
    Ok(
        q.order((deliveries::created_at.desc(), deliveries::id.desc()))
            .limit(limit)
            .select(DeliveryRow::as_select())
            .load(conn)?,
    )
}

pub fn delivery(conn: &mut DbConnection, id: &str) -> Result<Option<DeliveryRow>, StorageError> {
    Ok(deliveries::table
        .find(id)
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()?)
}

/// Sends a parked delivery again from its first attempt; false when it is not parked.
pub fn replay_delivery(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let n = diesel::update(
        deliveries::table
            .find(id)
            .filter(deliveries::status.eq(PARKED)),
    )
    .set((
        deliveries::status.eq(PENDING),
        deliveries::attempts.eq(0),
        deliveries::next_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Active caterer participants of `organizer` with a service address.
pub fn caterers_of(
    conn: &mut DbConnection,
    organizer: &str,
) -> Result<Vec<ParticipantRow>, StorageError> {
    Ok(participants::table
        .filter(participants::kind.eq("caterer"))
        .filter(participants::organizer.eq(organizer))
        .filter(participants::active.eq(true))
        .filter(participants::address.ne(""))
        .order(participants::code)
        .select(ParticipantRow::as_select())
        .load(conn)?)
}
