-- The repeat check (storage.FindRepeat) finds earlier requests naming the
-- same person by any one identity. A GIN index on the identities serves
-- "contains this identity" probes, one per identity, OR-ed by a bitmap; the
-- product, right and time window are checked on the few rows found. Without
-- it the check read every request of the product and right (7.8 s at 1M
-- open requests).
CREATE INDEX requests_identities ON requests USING gin ((subject->'identities') jsonb_path_ops);
