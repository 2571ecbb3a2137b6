-- Registries banks delivered through the XML gateway: the gateway keeps the
-- file and sends its reference; payments fetches it, imports it and keeps the
-- outcome here for the bank's STATE requests.
CREATE TABLE registry_uploads (
    -- The gateway's document id.
    upload TEXT PRIMARY KEY,
    bank TEXT NOT NULL,
    sender TEXT NOT NULL,
    format TEXT NOT NULL,
    registry_date DATE NULL,
    file_name TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    -- received | imported | refused
    status TEXT NOT NULL,
    registry_id TEXT NULL,
    already_imported INTEGER NOT NULL DEFAULT 0,
    error_code TEXT NULL,
    error_text TEXT NULL,
    received_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NULL
);
CREATE INDEX registry_uploads_status ON registry_uploads (status, received_at);
