-- The staff queue sorted by deadline reads open requests in
-- (coalesce(due_at, 'infinity'), id) order, the keyset its cursor uses;
-- with this index the first and any later page cost the page, not the
-- backlog.
CREATE INDEX requests_open_due ON requests ((coalesce(due_at, 'infinity'::timestamptz)), id) WHERE completed_at IS NULL;
