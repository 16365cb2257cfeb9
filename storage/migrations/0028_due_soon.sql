-- The on-track band's queue on an index (issue 13). An open request is due
-- soon from clock start + (deadline - clock start) x sla.due_soon_at: each
-- request's own instant, which no index on the deadline can bound, so the
-- on-track queue's first page passed every due-soon request (196 ms at 1M
-- open requests). Each open, unpaused request with a deadline now carries
-- that instant, due_soon_at (the deadline itself when its clock has no
-- start: it is on track until overdue); the on-track queue is read in its
-- order by a partial index.
ALTER TABLE requests ADD COLUMN due_soon_at timestamptz;

-- The fraction due_soon_at was computed with. It is configuration, but the
-- trigger below needs it, so each process writes its sla.due_soon_at here
-- at start (storage.SetDueSoonFraction; NULL until one does), and a change
-- recomputes the open requests in batches (storage.RecomputeDueSoon),
-- recording how far it got so that a pass killed midway resumes.
-- recomputed says every open request's instant is of this fraction; only
-- then may a list use the stored instants (storage.ListRequests). One row.
CREATE TABLE sla_due_soon (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    fraction      float8 CHECK (fraction > 0 AND fraction < 1),
    changed_at    timestamptz,
    recomputed_to uuid,
    recomputed    boolean NOT NULL DEFAULT false
);
INSERT INTO sla_due_soon DEFAULT VALUES;

-- The instant itself, written once for the trigger, the recompute, the band
-- conditions and the counts; rights.DueSoonInstant is the same in Go (a
-- test keeps them equal). In whole microseconds, rounded half to even
-- (round of a float8, as Go's math.RoundToEven), and without calendar
-- days: the time zone of the session must not move it. The period's
-- microseconds come from a float8 of its seconds, rounded: exact for
-- periods of centuries, and date_part's float8 costs what interval
-- arithmetic did, where extract's numeric made the open count half as slow
-- again (0.70 s against 0.46 s over 1M open requests).
CREATE FUNCTION datarights_due_soon_at(clock_started_at timestamptz, due_at timestamptz, fraction float8)
    RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN clock_started_at IS NULL THEN due_at
        ELSE clock_started_at + round(round(date_part('epoch', due_at - clock_started_at) * 1000000) * fraction)
            * interval '1 microsecond' END
$$;

-- Migration 0020's trigger keeps due_soon_at too, on the same changes that
-- reschedule the SLA check: one trigger call per write, and the fraction is
-- looked up only when the deadline or the clock moved (a status change that
-- keeps both, most of them, reads nothing).
CREATE OR REPLACE FUNCTION datarights_sla_recheck() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.completed_at IS NOT NULL OR NEW.status = 'paused' OR NEW.due_at IS NULL THEN
        NEW.sla_check_at := NULL;
        NEW.due_soon_at := NULL;
    ELSIF NEW.clock_started_at IS NULL THEN
        NEW.sla_check_at := NULL;
        NEW.due_soon_at := NEW.due_at;
    ELSIF TG_OP = 'INSERT'
        OR NEW.due_at IS DISTINCT FROM OLD.due_at
        OR NEW.clock_started_at IS DISTINCT FROM OLD.clock_started_at
        OR OLD.status = 'paused'
        OR OLD.completed_at IS NOT NULL
        OR OLD.due_at IS NULL
        OR OLD.clock_started_at IS NULL THEN
        NEW.sla_check_at := NEW.clock_started_at;
        NEW.due_soon_at := datarights_due_soon_at(NEW.clock_started_at, NEW.due_at,
            (SELECT fraction FROM sla_due_soon));
    END IF;
    RETURN NEW;
END
$$;

-- The on-track queue: open, unpaused requests by the instant they become
-- due soon. Existing requests get theirs from the first recompute, not
-- here: this migration does not know the configured fraction, and one
-- UPDATE of every open request would hold their locks for its whole run.
CREATE INDEX requests_open_due_soon ON requests (due_soon_at, id)
    WHERE completed_at IS NULL AND status <> 'paused' AND due_soon_at IS NOT NULL;
