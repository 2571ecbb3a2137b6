-- Internet acquiring: each meal organizer chooses its acquiring bank. The
-- secrets are read only by the service itself; the REST API never returns them.
CREATE TABLE acquiring_organizers (
    organizer TEXT PRIMARY KEY,
    base_url TEXT NOT NULL,
    merchant_login TEXT NOT NULL,
    merchant_password TEXT NOT NULL,
    callback_secret TEXT NOT NULL,
    top_up_limit_kopecks BIGINT NOT NULL CHECK (top_up_limit_kopecks > 0),
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- A parent's top-up: one order registered with the organizer's bank. `id` is the
-- order number the bank knows us by. `status_rank` only grows (updates carry a
-- `status_rank < new` guard), so a final status is never overwritten by a late
-- or duplicate notification.
CREATE TABLE acquiring_orders (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    organizer TEXT NOT NULL,
    parent TEXT NOT NULL,
    amount_kopecks BIGINT NOT NULL CHECK (amount_kopecks > 0),
    bank_order_id TEXT NULL,
    payment_url TEXT NULL,
    status TEXT NOT NULL,
    status_rank INTEGER NOT NULL,
    refund_reserved_kopecks BIGINT NOT NULL DEFAULT 0,
    refunded_kopecks BIGINT NOT NULL DEFAULT 0,
    credit_movement TEXT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    polled_at TIMESTAMP NULL,
    CHECK (0 <= refunded_kopecks AND refunded_kopecks <= refund_reserved_kopecks AND refund_reserved_kopecks <= amount_kopecks),
    UNIQUE (organizer, bank_order_id)
);
CREATE INDEX acquiring_orders_open ON acquiring_orders (status_rank, created_at);
CREATE INDEX acquiring_orders_account ON acquiring_orders (account_id);

-- Refunds of a paid top-up, partial ones too. A refund is `pending` from the
-- moment its amount is reserved until the bank confirms it (`done`).
CREATE TABLE acquiring_refunds (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES acquiring_orders (id),
    idempotency_key TEXT NOT NULL UNIQUE,
    amount_kopecks BIGINT NOT NULL CHECK (amount_kopecks > 0),
    reason TEXT NOT NULL,
    author TEXT NOT NULL,
    status TEXT NOT NULL,
    movement_id TEXT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX acquiring_refunds_order ON acquiring_refunds (order_id);
