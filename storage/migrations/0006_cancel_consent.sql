-- What a request's answer says beyond its store reports (an earlier
-- cancellation, consents withdrawn, third parties told), and a
-- withdraw_consent request's purposes.
ALTER TABLE requests
    ADD COLUMN outcome jsonb,
    ADD COLUMN purposes text[] NOT NULL DEFAULT '{}';

CREATE INDEX requests_completed_cancellations ON requests (product, completed_at)
    WHERE type = 'cancel_account' AND status = 'completed';

-- The consent ledger: every consent a person gave or withdrew, per product
-- and purpose, under one identity (consent.identity, e.g. user_id). The
-- current state of a consent is its newest event. Append-only, like the
-- audit trail.
CREATE TABLE consent_events (
    id          bigserial PRIMARY KEY,
    product     text NOT NULL,
    identity    text NOT NULL,
    subject     text NOT NULL,
    purpose     text NOT NULL,
    granted     boolean NOT NULL,
    at          timestamptz NOT NULL,
    source      text NOT NULL,
    request_id  uuid REFERENCES requests (id),
    actor       text NOT NULL,
    note        text NOT NULL DEFAULT ''
);

CREATE INDEX consent_events_subject ON consent_events (product, identity, subject, purpose, at, id);

CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
