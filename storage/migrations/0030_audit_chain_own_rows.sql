-- The chain trigger skips its lock on the request when this transaction
-- wrote the request's row (issue 13: intake's cost per ticket). Everything
-- else is as in migration 0011.
CREATE OR REPLACE FUNCTION audit_events_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
AS $$
DECLARE
    head     audit_heads%ROWTYPE;
    has_head boolean;
BEGIN
    -- The foreign key would take this lock after the insert; taking it
    -- first keeps the lock order request, then chain. Otherwise a writer
    -- holding the chain waits here for one that holds the request
    -- (LockRequest) and waits for the chain: a deadlock.
    --
    -- Not when this transaction wrote the request's current row version
    -- (xmin): then it holds that row already (a row it inserted is seen by
    -- nobody else; one it updated is locked against FOR UPDATE until it
    -- ends), so the foreign key's lock cannot wait either. Locking a row
    -- one inserted oneself still writes the lock into it, a WAL record per
    -- new request at intake (a third of its first event's cost). A row
    -- written in a subtransaction has another xmin and is locked as before.
    PERFORM 1 FROM requests WHERE id = NEW.request_id AND xmin <> xid(pg_current_xact_id()) FOR KEY SHARE;
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

-- CREATE OR REPLACE resets the function's settings: the fixed search_path
-- again (migration 0011).
DO $$ BEGIN
    EXECUTE format('ALTER FUNCTION audit_events_chain() SET search_path = pg_catalog, %I', current_schema());
END $$;
