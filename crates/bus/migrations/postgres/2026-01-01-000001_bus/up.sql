-- Transactional outbox: rows are written in the same transaction as the state
-- change they announce; the relay publishes them and stamps published_at.
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    message_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    headers TEXT NOT NULL,
    -- When set, the message goes straight to this queue (replays, replies).
    destination TEXT NULL,
    created_at TIMESTAMP NOT NULL,
    published_at TIMESTAMP NULL
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Inbox: one row per (consumer, message) written with the consumer's effect, so a
-- redelivered message is recognised and skipped.
CREATE TABLE inbox (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    processed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (consumer, message_id)
);

-- Messages that failed every attempt, kept for an operator to inspect and replay.
CREATE TABLE dead_letters (
    id BIGSERIAL PRIMARY KEY,
    consumer TEXT NOT NULL,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    headers TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    dead_at TIMESTAMP NOT NULL,
    replayed_at TIMESTAMP NULL
);
CREATE INDEX dead_letters_open ON dead_letters (id) WHERE replayed_at IS NULL;
