-- Banks' online payments (cash desks, terminals, internet banking): one row per
-- (bank, bank transaction id), so a retried `pay` takes effect once.
CREATE TABLE bank_payments (
    id TEXT PRIMARY KEY,
    bank TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    account TEXT NOT NULL,
    amount_kopecks BIGINT NOT NULL,
    -- The bank's own date and time of the payment.
    txn_at TIMESTAMP NOT NULL,
    accepted_at TIMESTAMP NOT NULL,
    -- Tyumen date of acceptance: a cancel is possible the same banking day only.
    banking_day DATE NOT NULL,
    movement_id TEXT NOT NULL,
    status TEXT NOT NULL,
    cancelled_at TIMESTAMP NULL,
    UNIQUE (bank, txn_id)
);
CREATE INDEX bank_payments_day ON bank_payments (bank, banking_day);
