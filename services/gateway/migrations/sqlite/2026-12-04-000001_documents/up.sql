-- Documents participants sent as AppDocument (a bank's registry): kept here,
-- where they arrived, and sent on by reference; the receiving service fetches
-- them chunk by chunk, so no bus message carries more than a chunk.
CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    -- The participant and its MessageId: a STATE request names the upload so.
    participant TEXT NOT NULL,
    message_id TEXT NOT NULL,
    -- What it is (registry) and its RequestCode.
    kind TEXT NOT NULL,
    request_code TEXT NOT NULL,
    size BIGINT NOT NULL,
    -- SHA-256, lower-case hex.
    sha256 TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    received_at TIMESTAMP NOT NULL,
    UNIQUE (participant, message_id)
);

-- A document's bytes, in chunks of 1 MiB, as base64.
CREATE TABLE document_chunks (
    document_id TEXT NOT NULL REFERENCES documents (id),
    idx INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (document_id, idx)
);
