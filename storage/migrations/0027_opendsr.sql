-- Issue 14: partners file requests through the OpenDSR API
-- (docs/opendsr.md). A partner's request is a request like any other
-- (channel 'partner', created_by 'partner:<name>', idempotency_key its
-- subject_request_id); this table keeps what OpenDSR adds to it. The
-- callback URLs are the partner's own endpoints, not personal data.
CREATE TABLE opendsr_requests (
    request_id         uuid PRIMARY KEY REFERENCES requests (id),
    partner            text NOT NULL,
    subject_request_id text NOT NULL,
    callback_urls      text[] NOT NULL DEFAULT '{}',
    UNIQUE (partner, subject_request_id)
);

-- One row per callback owed: a change of the request's OpenDSR status,
-- for one of its callback URLs. Written in the transaction that changes the
-- status, with the River job that delivers it, so none is lost; delivered_at
-- is set in the transaction that completes that job.
CREATE TABLE opendsr_callbacks (
    id             bigserial PRIMARY KEY,
    request_id     uuid NOT NULL REFERENCES requests (id),
    url            text NOT NULL,
    request_status text NOT NULL,
    status         text NOT NULL, -- the request's own status then (extensions)
    created_at     timestamptz NOT NULL,
    delivered_at   timestamptz,
    attempts       int NOT NULL DEFAULT 0,
    last_error     text
);
CREATE INDEX opendsr_callbacks_request ON opendsr_callbacks (request_id);
CREATE INDEX opendsr_callbacks_undelivered ON opendsr_callbacks (created_at) WHERE delivered_at IS NULL;

-- Partners act on requests (filing, cancelling): the audit trail names them.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor
    CHECK (actor ~ '^(system|requester|(staff|store|recipient|partner):.+)$') NOT VALID;
