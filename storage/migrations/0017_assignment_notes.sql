-- Work on the staff console (issue 11): who a request is assigned to, the
-- customer-service system's ticket number (so staff search by it instead of
-- by a person's email or phone), internal notes, and the record of probes of
-- personal data that belong to no request (an identity lookup before a
-- ticket is filed).
ALTER TABLE requests
    ADD COLUMN assignee   text,
    ADD COLUMN ticket_ref text;

-- Exact search by ticket number; the queue's "mine" and "unassigned" views.
CREATE INDEX requests_ticket_ref ON requests (ticket_ref) WHERE ticket_ref IS NOT NULL;
CREATE INDEX requests_assignee ON requests (assignee, due_at);

-- Internal notes: staff-written, shown to staff, never emailed. Audited as
-- note.added with the note's id and length, not its text.
CREATE TABLE request_notes (
    id          bigserial PRIMARY KEY,
    request_id  uuid NOT NULL REFERENCES requests (id),
    author      text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE INDEX request_notes_request ON request_notes (request_id, id);

-- Staff actions that read personal data but belong to no request (the
-- request audit trail's rows each belong to a request and its hash chain).
-- Append-only like the audit trail; details hold types and names, never
-- values.
CREATE TABLE staff_events (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL,
    actor    text NOT NULL CHECK (actor LIKE 'staff:_%'),
    action   text NOT NULL,
    product  text NOT NULL,
    detail   jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX staff_events_at ON staff_events (at, id);

CREATE TRIGGER staff_events_append_only BEFORE UPDATE OR DELETE ON staff_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER staff_events_no_truncate BEFORE TRUNCATE ON staff_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
