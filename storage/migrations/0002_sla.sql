-- Deadline clock control, SLA flags and reminders.

ALTER TABLE requests
    ADD COLUMN clock jsonb NOT NULL DEFAULT '{}',
    -- When the deadline clock started (received_at or verified_at, per policy).
    ADD COLUMN clock_started_at timestamptz,
    -- Years the deadline was counted through without a published calendar
    -- (weekends only): the deadline must be checked by a person.
    ADD COLUMN deadline_uncovered_years integer[] NOT NULL DEFAULT '{}',
    ADD COLUMN breached_at timestamptz;

CREATE INDEX requests_due ON requests (due_at, id) WHERE completed_at IS NULL;

-- One row per SLA reminder: inserting it is what makes it happen once; sent_at
-- records the email, resent with the same Message-ID after a crash.
CREATE TABLE sla_reminders (
    request_id  uuid NOT NULL REFERENCES requests (id),
    kind        text NOT NULL,
    due_at      timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    sent_at     timestamptz,
    PRIMARY KEY (request_id, kind)
);

CREATE INDEX sla_reminders_unsent ON sla_reminders (created_at) WHERE sent_at IS NULL;
