-- requests_due (due_at, id) of open requests duplicated requests_open_due
-- (coalesce(due_at, 'infinity'), id) of the same rows (migration 0022):
-- every new request and every change of a deadline wrote both. The one
-- query left that read it, the dashboard's due counts, now bounds the
-- coalesced key too.
DROP INDEX requests_due;
