-- Outbound calls to participants' own services (class requests pushed to a
-- caterer's accounting system): a queue that survives restarts. The id is the
-- MessageId sent, so the receiver gets each message once.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    participant TEXT NOT NULL REFERENCES participants (code),
    operation TEXT NOT NULL,
    -- The AppData's content as JSON.
    payload TEXT NOT NULL,
    -- pending | delivered | parked
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_at TIMESTAMP NOT NULL,
    last_error TEXT NULL,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP NULL
);
CREATE INDEX deliveries_due ON deliveries (status, next_at);
CREATE INDEX deliveries_participant ON deliveries (participant, created_at);
