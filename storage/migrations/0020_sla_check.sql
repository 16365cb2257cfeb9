-- The SLA sweep visits only the requests that have something due: each open
-- request with a running clock carries the instant it must next be looked
-- at. The sweep sets it to the next reminder or the deadline after recording
-- what is due; it is NULL when nothing more can become due (closed, paused,
-- no deadline, breach recorded).
--
-- Any change of the deadline, the clock, the status or completion resets it,
-- by this trigger, to "look now" (the clock's start, which is in the past):
-- whoever changes a deadline cannot forget to reschedule its reminders, and
-- a reset that was not needed costs one visit that finds nothing new.
ALTER TABLE requests ADD COLUMN sla_check_at timestamptz;

CREATE FUNCTION datarights_sla_recheck() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.completed_at IS NOT NULL OR NEW.status = 'paused' OR NEW.due_at IS NULL OR NEW.clock_started_at IS NULL THEN
        NEW.sla_check_at := NULL;
    ELSIF TG_OP = 'INSERT'
        OR NEW.due_at IS DISTINCT FROM OLD.due_at
        OR NEW.clock_started_at IS DISTINCT FROM OLD.clock_started_at
        OR OLD.status = 'paused'
        OR OLD.completed_at IS NOT NULL
        OR OLD.due_at IS NULL
        OR OLD.clock_started_at IS NULL THEN
        NEW.sla_check_at := NEW.clock_started_at;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER requests_sla_recheck
    BEFORE INSERT OR UPDATE OF due_at, clock_started_at, status, completed_at ON requests
    FOR EACH ROW EXECUTE FUNCTION datarights_sla_recheck();

UPDATE requests SET sla_check_at = clock_started_at
    WHERE completed_at IS NULL AND status <> 'paused' AND due_at IS NOT NULL AND clock_started_at IS NOT NULL;

CREATE INDEX requests_sla_check ON requests (sla_check_at) WHERE sla_check_at IS NOT NULL;
