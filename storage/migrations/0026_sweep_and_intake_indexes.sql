-- The export sweep's two remaining scans of every export ever made (issue
-- 13: a sweep costs what is due, not what was ever done). Each query's
-- WHERE names the same predicate, so the planner reads only the rows it
-- may change: none, most of the time.

-- storage.ExpirePasswords: attached archives' passwords never shown.
CREATE INDEX exports_unshown_passwords ON exports (created_at)
    WHERE (password IS NOT NULL OR password_sealed IS NOT NULL) AND password_shown_at IS NULL;

-- storage.LegacyExportSecrets: plain values from before migration 0012, sealed
-- by the first sweep after the upgrade; afterwards the index is empty.
CREATE INDEX exports_legacy_secrets ON exports (request_id)
    WHERE password IS NOT NULL OR link_token IS NOT NULL OR link_url <> '';

-- Intake writes every index of requests for each new request, and most
-- are never assigned when filed: the assignee index keeps only assigned
-- ones ("mine", "assigned to X" use it; "unassigned" reads the open
-- queue's own index).
DROP INDEX requests_assignee;
CREATE INDEX requests_assignee ON requests (assignee, due_at) WHERE assignee IS NOT NULL;

-- The paused band's queue, in deadline order: paused requests are few, and
-- reading the open queue's index for them would pass every other one.
CREATE INDEX requests_paused_due ON requests ((coalesce(due_at, 'infinity'::timestamptz)), id)
    WHERE completed_at IS NULL AND status = 'paused';

-- The no-deadline band's queue (requests not verified yet), likewise: its
-- rows sit at the far end of the open queue's index, all with one key.
CREATE INDEX requests_no_deadline ON requests ((coalesce(due_at, 'infinity'::timestamptz)), id)
    WHERE completed_at IS NULL AND due_at IS NULL;
