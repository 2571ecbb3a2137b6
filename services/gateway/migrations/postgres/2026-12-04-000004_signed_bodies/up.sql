-- The Bodies of signed requests that were answered, by their digest (base64,
-- the signature's own digest over the Body's exclusive c14n): the MessageId
-- is not signed, so a signed Body answered once is refused under another
-- MessageId (BODY_REPLAYED). Written with the log record; kept as long.
CREATE TABLE signed_bodies (
    participant TEXT NOT NULL,
    body_digest TEXT NOT NULL,
    message_id TEXT NOT NULL,
    answered_at TIMESTAMP NOT NULL,
    PRIMARY KEY (participant, body_digest)
);
CREATE INDEX signed_bodies_answered ON signed_bodies (answered_at);
