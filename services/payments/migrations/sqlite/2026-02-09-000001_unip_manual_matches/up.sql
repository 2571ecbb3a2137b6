-- An operator's match of an `unknown_uin` payment to a charge: who, when, why,
-- and what the payment said before. One per payment.
CREATE TABLE unip_manual_matches (
    payment_id TEXT PRIMARY KEY REFERENCES unip_payments (payment_id),
    charge_uin TEXT NOT NULL REFERENCES unip_charges (uin),
    claimed_uin TEXT NOT NULL,
    outcome_before TEXT NOT NULL,
    outcome_after TEXT NOT NULL,
    reason TEXT NOT NULL,
    matched_by TEXT NOT NULL,
    matched_at TIMESTAMP NOT NULL
);
CREATE INDEX unip_manual_matches_charge ON unip_manual_matches (charge_uin);
