-- Participants of the XML gateway: every external information system (ИС) that
-- may call it, or that it calls. Codes are SMEV-style (the envelope's Sender/Code).
CREATE TABLE participants (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    inn TEXT NOT NULL,
    ogrn TEXT NOT NULL,
    -- agency | bank | caterer | terminal
    kind TEXT NOT NULL,
    -- test | production
    contour TEXT NOT NULL,
    -- The «Технический специалист»: JSON {name, phone, email}.
    contacts TEXT NOT NULL,
    -- The address of the participant's own service (outbound calls).
    address TEXT NOT NULL DEFAULT '',
    -- JSON array of PEM certificates (used by signature checks).
    certificates TEXT NOT NULL DEFAULT '[]',
    -- The bank code payments knows (kind bank) or the organizer (kind caterer).
    bank TEXT NULL,
    organizer TEXT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    updated_at TIMESTAMP NOT NULL
);

-- Rights: participant × operation (<service>.<Operation>); deny by default.
CREATE TABLE participant_rights (
    participant TEXT NOT NULL REFERENCES participants (code),
    operation TEXT NOT NULL,
    granted_at TIMESTAMP NOT NULL,
    granted_by TEXT NOT NULL,
    PRIMARY KEY (participant, operation)
);

-- Every change of participants and rights: who, when, before, after (JSON).
CREATE TABLE gateway_audit (
    id TEXT PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    action TEXT NOT NULL,
    before_value TEXT NULL,
    after_value TEXT NULL
);
CREATE INDEX gateway_audit_entity ON gateway_audit (entity, entity_id, at);

-- The message log: every exchange, in one hash chain (each record's hash covers
-- the hash of the one before it).
CREATE TABLE message_log (
    seq INTEGER PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    -- in: a participant called us; out: we called a participant.
    direction TEXT NOT NULL,
    participant TEXT NOT NULL,
    service TEXT NOT NULL,
    operation TEXT NOT NULL,
    message_id TEXT NOT NULL,
    request_id_ref TEXT NULL,
    origin_request_id_ref TEXT NULL,
    case_number TEXT NULL,
    -- The status of the answer (RESULT, REJECT, INVALID, FAILURE, ...).
    status TEXT NOT NULL,
    outcome TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    request_body TEXT NOT NULL,
    response_body TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX message_log_message ON message_log (participant, message_id);
CREATE INDEX message_log_request_ref ON message_log (request_id_ref);
CREATE INDEX message_log_origin_ref ON message_log (origin_request_id_ref);
CREATE INDEX message_log_case ON message_log (case_number);
CREATE INDEX message_log_at ON message_log (at);

-- The head of the chain: the last record's seq and hash, and where the chain
-- starts after retention removed older records.
CREATE TABLE message_log_head (
    id INTEGER PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL,
    base_seq BIGINT NOT NULL,
    base_hash TEXT NOT NULL
);
INSERT INTO message_log_head (id, last_seq, last_hash, base_seq, base_hash)
VALUES (1, 0, '', 0, '');
