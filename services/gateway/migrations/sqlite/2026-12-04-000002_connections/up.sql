-- A participant's connection procedure (000 §3, 003 §4.2): where it stands,
-- the review's deadline in working days, and the act of connection.
CREATE TABLE connections (
    participant TEXT PRIMARY KEY REFERENCES participants (code),
    -- review | shortcomings | declined | approved | requirements_sent |
    -- testing | connected | production
    state TEXT NOT NULL,
    -- When the (last) application arrived and when it must be answered.
    received_on DATE NOT NULL,
    review_due DATE NOT NULL,
    act_number TEXT NULL,
    act_on DATE NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Every step taken, in order: what, on which day, by whom, and how many
-- working days late it answered the application (a review's end).
CREATE TABLE connection_steps (
    id TEXT PRIMARY KEY,
    participant TEXT NOT NULL REFERENCES participants (code),
    step TEXT NOT NULL,
    on_date DATE NOT NULL,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    note TEXT NOT NULL,
    late_days BIGINT NULL
);
CREATE INDEX connection_steps_participant ON connection_steps (participant, at);
