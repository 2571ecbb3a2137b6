-- Accounts of the double-entry ledger. Personal accounts (лицевые счета) belong to
-- a student and a purpose; the others are the counterparties money moves between.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    purpose TEXT NOT NULL,
    student_name TEXT NOT NULL DEFAULT '',
    school TEXT NOT NULL DEFAULT '',
    class_name TEXT NOT NULL DEFAULT '',
    municipality TEXT NOT NULL DEFAULT '',
    organizer TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX accounts_school ON accounts (school, class_name);

-- A movement is one balanced set of postings; its key makes a repeated request
-- take effect once.
CREATE TABLE movements (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    author TEXT NOT NULL,
    reverses TEXT NULL REFERENCES movements (id),
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX movements_one_reversal ON movements (reverses);

CREATE TABLE postings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    movement_id TEXT NOT NULL REFERENCES movements (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    amount_kopecks BIGINT NOT NULL
);
CREATE INDEX postings_account ON postings (account_id, id);
CREATE INDEX postings_movement ON postings (movement_id);

-- Running balance per account, changed only in the transaction that inserts the
-- postings (never edited by hand); the tests check it equals the sum of postings.
CREATE TABLE balances (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    balance_kopecks BIGINT NOT NULL
);

-- Money that cannot be matched to an account yet waits here.
INSERT INTO accounts (id, kind, purpose, created_at) VALUES ('suspense', 'suspense', 'system', CURRENT_TIMESTAMP);
INSERT INTO balances (account_id, balance_kopecks) VALUES ('suspense', 0);
