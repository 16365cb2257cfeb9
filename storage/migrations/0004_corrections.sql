-- A correct request's fields and their new values (field name → value).
-- The values are personal data, like the subject: kept on the request only.
ALTER TABLE requests ADD COLUMN corrections jsonb;
