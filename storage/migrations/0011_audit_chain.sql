-- A tamper-evident audit trail.
--
-- Every event carries the hash of the event before it in its request's chain
-- (prev_hash) and its own hash over a canonical encoding of the row, so an
-- edited or removed event breaks the chain at that point. A global sequence
-- (seq) orders all events, and the audit_anchor job periodically records in
-- audit_anchors a running hash over every event in seq order, MACed with the
-- service's secret key (never in the database): removing a whole request's
-- events, or rewriting hashes wholesale, no longer matches the anchors.
-- `datarights audit verify` checks both (storage/audit.go mirrors the
-- encoding below; change the two together, with a new version tag).
--
-- This migration leaves a gap after 0009 on purpose: 0010 is another piece
-- of work's, and the runner applies whatever is missing, in order.

ALTER TABLE audit_events
    ADD COLUMN seq          bigint,
    -- The event's position in its request's chain: 1, 2, 3…
    ADD COLUMN request_seq  integer,
    ADD COLUMN prev_hash    bytea,
    ADD COLUMN hash         bytea;

-- Not a column default: the trigger assigns seq after it has taken the
-- request's chain lock, so within a request seq grows with request_seq, and
-- a value a client sends is ignored.
CREATE SEQUENCE audit_events_seq_seq AS bigint OWNED BY audit_events.seq;

-- The newest event of each request's chain. Its row lock is what serialises
-- concurrent inserts for one request (a lock on the previous event itself
-- would not see an event committed while waiting); only the trigger, running
-- as the tables' owner, reads or writes it.
CREATE TABLE audit_heads (
    request_id   uuid PRIMARY KEY,
    request_seq  integer NOT NULL,
    hash         bytea NOT NULL
);

-- One length-prefixed field of the canonical encoding (-1 for NULL), so no
-- field can be shifted into the next. These two are plain SQL functions
-- without SET clauses so that Postgres inlines them into the trigger (which
-- pins search_path); pg_catalog's functions come first on any path.
CREATE FUNCTION audit_field(b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE
AS $$ SELECT coalesce(int4send(octet_length(b)) || b, int4send(-1)) $$;

-- The hash of one event: SHA-256 of the version tag, then id, request id,
-- seq, request_seq and the time in microseconds since 1970 as fixed-width
-- big-endian integers, then actor, action, from and to status, detail (as
-- Postgres prints jsonb, which is canonical: keys sorted, no spaces
-- varying) and prev_hash as length-prefixed fields.
CREATE FUNCTION audit_event_hash(id bigint, request_id uuid, seq bigint, request_seq integer, at timestamptz,
        actor text, action text, from_status text, to_status text, detail jsonb, prev_hash bytea)
    RETURNS bytea LANGUAGE sql STABLE
AS $$
    SELECT sha256(
        convert_to('datarights/audit/v1', 'UTF8')
        || int8send(id) || uuid_send(request_id) || int8send(seq) || int4send(request_seq)
        || int8send((extract(epoch FROM at) * 1000000)::bigint)
        || audit_field(convert_to(actor, 'UTF8'))
        || audit_field(convert_to(action, 'UTF8'))
        || audit_field(convert_to(from_status, 'UTF8'))
        || audit_field(convert_to(to_status, 'UTF8'))
        || audit_field(convert_to(detail::text, 'UTF8'))
        || audit_field(prev_hash))
$$;

-- Backfill: existing events get seq in id order and their chains in id
-- order within each request. The append-only trigger is off for this
-- transaction only.
ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;

UPDATE audit_events e SET seq = o.seq, request_seq = o.request_seq
FROM (SELECT id, row_number() OVER (ORDER BY id) AS seq,
             row_number() OVER (PARTITION BY request_id ORDER BY id) AS request_seq
      FROM audit_events) o
WHERE e.id = o.id;

DO $$
DECLARE
    ev   record;
    prev bytea;
    h    bytea;
BEGIN
    FOR ev IN SELECT * FROM audit_events ORDER BY request_id, request_seq LOOP
        IF ev.request_seq = 1 THEN
            prev := NULL;
        END IF;
        h := audit_event_hash(ev.id, ev.request_id, ev.seq, ev.request_seq::integer, ev.at, ev.actor, ev.action,
                              ev.from_status, ev.to_status, ev.detail, prev);
        UPDATE audit_events SET prev_hash = prev, hash = h WHERE id = ev.id;
        prev := h;
    END LOOP;
END $$;

SELECT setval('audit_events_seq_seq', max(seq)) FROM audit_events HAVING max(seq) IS NOT NULL;

INSERT INTO audit_heads (request_id, request_seq, hash)
SELECT DISTINCT ON (request_id) request_id, request_seq, hash FROM audit_events ORDER BY request_id, request_seq DESC;

ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;

ALTER TABLE audit_events
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN request_seq SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL;

CREATE UNIQUE INDEX audit_events_seq ON audit_events (seq);
CREATE UNIQUE INDEX audit_events_chain ON audit_events (request_id, request_seq);
DROP INDEX audit_events_request;

-- Every event names who acted: the service, the requester, a staff member,
-- or a third party (a store's service calling back, a recipient). Events
-- written before this migration stay as they were (NOT VALID).
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor
    CHECK (actor ~ '^(system|requester|(staff|store|recipient):.+)$') NOT VALID;

-- Chains each new event onto its request's chain. SECURITY DEFINER: it runs
-- as the tables' owner, so the service's runtime role needs no access to
-- audit_heads or the sequence, and cannot choose what is computed here.
CREATE FUNCTION audit_events_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
AS $$
DECLARE
    head     audit_heads%ROWTYPE;
    has_head boolean;
BEGIN
    -- The foreign key would take this lock after the insert; taking it
    -- first keeps the lock order request, then chain. Otherwise a writer
    -- holding the chain waits here for one that holds the request
    -- (LockRequest) and waits for the chain: a deadlock.
    PERFORM 1 FROM requests WHERE id = NEW.request_id FOR KEY SHARE;
    LOOP
        SELECT * INTO head FROM audit_heads WHERE request_id = NEW.request_id FOR UPDATE;
        has_head := FOUND;
        IF has_head THEN
            NEW.request_seq := head.request_seq + 1;
            NEW.prev_hash := head.hash;
        ELSE
            NEW.request_seq := 1;
            NEW.prev_hash := NULL;
        END IF;
        NEW.seq := nextval('audit_events_seq_seq');
        NEW.hash := audit_event_hash(NEW.id, NEW.request_id, NEW.seq, NEW.request_seq, NEW.at, NEW.actor, NEW.action,
                                     NEW.from_status, NEW.to_status, NEW.detail, NEW.prev_hash);
        IF has_head THEN
            UPDATE audit_heads SET request_seq = NEW.request_seq, hash = NEW.hash WHERE request_id = NEW.request_id;
            RETURN NEW;
        END IF;
        -- The request's first event. Another first event at the same time:
        -- this waits for it to commit, inserts nothing, and goes round
        -- again to chain onto it (with a new, higher seq).
        INSERT INTO audit_heads (request_id, request_seq, hash) VALUES (NEW.request_id, 1, NEW.hash)
            ON CONFLICT (request_id) DO NOTHING;
        IF FOUND THEN
            RETURN NEW;
        END IF;
    END LOOP;
END;
$$;

CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_chain();

-- Triggers refuse what grants should already forbid: if somebody grants
-- UPDATE, DELETE or TRUNCATE later, the trail still cannot be rewritten
-- without dropping a trigger (which needs the owner, and shows).
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER consent_events_no_truncate BEFORE TRUNCATE ON consent_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Anchors: the events with seq <= last_seq (events of them), folded in seq
-- order into chain_hash; mac is the HMAC (keyring purpose "audit-anchor",
-- key key_id) over n, last_seq, events, chain_hash, at and the previous
-- anchor's mac, so anchors cannot be forged, edited or dropped from the
-- middle without the key.
CREATE TABLE audit_anchors (
    n           bigint PRIMARY KEY,
    last_seq    bigint NOT NULL,
    events      bigint NOT NULL,
    chain_hash  bytea NOT NULL,
    at          timestamptz NOT NULL,
    key_id      text NOT NULL,
    mac         bytea NOT NULL
);

CREATE TRIGGER audit_anchors_append_only BEFORE UPDATE OR DELETE ON audit_anchors
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_anchors_no_truncate BEFORE TRUNCATE ON audit_anchors
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- The highest seq an anchor may cover: it waits until no transaction is
-- inserting audit events (SHARE conflicts with the inserts' ROW EXCLUSIVE),
-- so every seq handed out so far is committed or gone, and any later event
-- gets a higher one. The lock is held to the end of the caller's
-- transaction, which should be short (the anchor job commits at once).
-- SECURITY DEFINER because the runtime role may not lock the table itself.
CREATE FUNCTION audit_anchor_horizon() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
AS $$
BEGIN
    LOCK TABLE audit_events IN SHARE MODE;
    RETURN (SELECT coalesce(max(seq), 0) FROM audit_events);
END;
$$;

-- SECURITY DEFINER functions run with a fixed search_path (this schema
-- after pg_catalog), so that nobody calling them can slip in a table or
-- function of the same name.
DO $$ BEGIN
    EXECUTE format('ALTER FUNCTION audit_events_chain() SET search_path = pg_catalog, %I', current_schema());
    EXECUTE format('ALTER FUNCTION audit_anchor_horizon() SET search_path = pg_catalog, %I', current_schema());
END $$;

REVOKE EXECUTE ON FUNCTION audit_anchor_horizon() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_events_chain() FROM PUBLIC;
