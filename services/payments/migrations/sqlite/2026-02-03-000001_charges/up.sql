-- ИС УНиП (the region's system of charges and payments): charges (начисления)
-- issued by agencies' information systems, payments banks report against them,
-- and the quittance (квитирование) outcome of each payment. Separate from the
-- personal-account ledger: these are state-service fees.

-- The fixed first 8 characters of each supplier's УИНs, configured by the
-- operator or derived on the supplier's first charge.
CREATE TABLE unip_suppliers (
    participant TEXT PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    configured INTEGER NOT NULL DEFAULT 0,
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- One counter for all suppliers: positions 9–19 of every УИН. The row is updated
-- (and so locked) before it is read, so concurrent charges get distinct numbers.
CREATE TABLE unip_uin_sequence (
    id INTEGER PRIMARY KEY,
    last_value BIGINT NOT NULL
);
INSERT INTO unip_uin_sequence (id, last_value) VALUES (1, 0);

CREATE TABLE unip_charges (
    uin TEXT PRIMARY KEY,
    supplier TEXT NOT NULL,
    -- The supplier's Idempotency-Key: a repeated request returns this charge.
    idempotency_key TEXT NOT NULL,
    status TEXT NOT NULL,
    amount_kopecks BIGINT NOT NULL CHECK (amount_kopecks > 0),
    -- Sum of the payments matched to the charge; balance = amount - paid.
    paid_kopecks BIGINT NOT NULL DEFAULT 0,
    purpose TEXT NOT NULL,
    due_date DATE NOT NULL,
    kbk TEXT NOT NULL,
    oktmo TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    cancelled_by TEXT NULL,
    cancelled_at TIMESTAMP NULL,
    cancel_reason TEXT NULL,
    UNIQUE (supplier, idempotency_key)
);
CREATE INDEX unip_charges_supplier ON unip_charges (supplier, status, created_at);

-- Payer and payee of a charge, written once with it (a table of their own keeps
-- each table within the column limit of the diesel build).
CREATE TABLE unip_charge_parties (
    uin TEXT PRIMARY KEY REFERENCES unip_charges (uin),
    payer_name TEXT NOT NULL,
    payer_inn TEXT NULL,
    payer_snils TEXT NULL,
    payee_name TEXT NOT NULL,
    payee_inn TEXT NOT NULL,
    payee_kpp TEXT NOT NULL,
    payee_account TEXT NOT NULL,
    payee_bik TEXT NOT NULL
);

-- Every payment received, matched or not. The payment id (УИП) is the key, so
-- importing it twice fails on the constraint even under concurrency.
CREATE TABLE unip_payments (
    payment_id TEXT PRIMARY KEY,
    -- The УИН as the payment gives it; charge_uin is set only when a charge with
    -- it existed at import (matched, partial, overpaid, cancelled_charge).
    uin TEXT NOT NULL,
    charge_uin TEXT NULL REFERENCES unip_charges (uin),
    -- The charge's supplier, so an information system's report shows its lines.
    supplier TEXT NULL,
    amount_kopecks BIGINT NOT NULL CHECK (amount_kopecks > 0),
    payment_date DATE NOT NULL,
    payer_name TEXT NOT NULL,
    payer_inn TEXT NULL,
    payer_snils TEXT NULL,
    -- Who reported it: `bank:<code>` or `is:<participant>`.
    source TEXT NOT NULL,
    outcome TEXT NOT NULL,
    -- What the charge still asked after this payment (matched payments only).
    remaining_kopecks BIGINT NULL,
    overpayment_kopecks BIGINT NOT NULL DEFAULT 0,
    received_by TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX unip_payments_date ON unip_payments (payment_date, received_at);
CREATE INDEX unip_payments_charge ON unip_payments (charge_uin);
CREATE INDEX unip_payments_supplier ON unip_payments (supplier, payment_date);
