-- The service's own tables. River's tables are migrated by rivermigrate.

CREATE TABLE requests (
    id               uuid PRIMARY KEY,
    product          text NOT NULL,
    type             text NOT NULL,
    channel          text NOT NULL,
    status           text NOT NULL,
    subject          jsonb NOT NULL,
    delivery_email   text NOT NULL,
    relation         text NOT NULL,
    locale           text NOT NULL,
    verification     jsonb,
    note             text NOT NULL DEFAULT '',
    created_by       text NOT NULL,
    idempotency_key  text,
    -- SHA-256 of the submitted body, to tell a retried submit from a reused key.
    request_hash     text,
    received_at      timestamptz NOT NULL,
    verified_at      timestamptz,
    due_at           timestamptz,
    completed_at     timestamptz,
    updated_at       timestamptz NOT NULL
);

CREATE UNIQUE INDEX requests_idempotency ON requests (created_by, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX requests_received ON requests (received_at DESC, id DESC);
CREATE INDEX requests_status_received ON requests (status, received_at DESC, id DESC);

CREATE TABLE tasks (
    id           uuid PRIMARY KEY,
    request_id   uuid NOT NULL REFERENCES requests (id),
    store        text NOT NULL,
    action       text NOT NULL,
    status       text NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    report       jsonb,
    last_error   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    UNIQUE (request_id, store, action)
);

-- The audit trail is append-only: the trigger refuses updates and deletes so
-- that not even a bug in the service can rewrite history.
CREATE TABLE audit_events (
    id           bigserial PRIMARY KEY,
    request_id   uuid NOT NULL REFERENCES requests (id),
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    from_status  text,
    to_status    text,
    detail       jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_request ON audit_events (request_id, id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE staff_tokens (
    name          text PRIMARY KEY,
    token_sha256  text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);

CREATE TABLE verification_codes (
    request_id   uuid PRIMARY KEY REFERENCES requests (id),
    code_hash    text NOT NULL,
    expires_at   timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    sent_at      timestamptz,
    consumed_at  timestamptz
);

CREATE TABLE exports (
    request_id  uuid PRIMARY KEY REFERENCES requests (id),
    location    text NOT NULL,
    bytes       bigint NOT NULL,
    sha256      text NOT NULL,
    created_at  timestamptz NOT NULL
);

-- One row per message the service has sent; a delivery job that finds its
-- row sends nothing again.
CREATE TABLE deliveries (
    request_id  uuid NOT NULL REFERENCES requests (id),
    kind        text NOT NULL,
    message_id  text NOT NULL,
    sent_at     timestamptz NOT NULL,
    PRIMARY KEY (request_id, kind)
);
