-- Imported payment registries; the id is the SHA-256 of the file, so the same
-- file uploaded again is recognised and changes nothing.
CREATE TABLE registries (
    id TEXT PRIMARY KEY,
    bank TEXT NOT NULL,
    registry_date DATE NOT NULL,
    format TEXT NOT NULL,
    file_name TEXT NOT NULL,
    lines_total BIGINT NOT NULL,
    amount_total_kopecks BIGINT NOT NULL,
    status TEXT NOT NULL,
    -- Lines already reconciled: an interrupted import resumes after them.
    processed_lines BIGINT NOT NULL,
    -- Lines per outcome so far, as a JSON object {"matched": 998, …}.
    counts TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NULL
);
CREATE INDEX registries_bank_date ON registries (bank, registry_date);

-- Every line that did not simply match, and every posted payment missing from
-- the registry: the reconciliation report.
CREATE TABLE registry_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    registry_id TEXT NOT NULL REFERENCES registries (id),
    line_no BIGINT NOT NULL,
    txn_id TEXT NOT NULL,
    account TEXT NOT NULL,
    outcome TEXT NOT NULL,
    amount_kopecks BIGINT NOT NULL,
    posted_kopecks BIGINT NULL,
    paid_at TIMESTAMP NULL,
    note TEXT NOT NULL,
    UNIQUE (registry_id, line_no, txn_id)
);
-- txn_id first: a chunk asks for ~1000 txn ids of one registry, and a plan that
-- scanned by registry_id alone would re-read every earlier item of the import.
CREATE INDEX registry_items_txn ON registry_items (txn_id, registry_id);

-- Which registry confirmed an online payment.
ALTER TABLE bank_payments ADD COLUMN registry_id TEXT NULL;
