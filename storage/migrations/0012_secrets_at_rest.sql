-- Secrets at rest. A download link's token and a recipient notice's
-- acknowledgement token are kept only as a SHA-256 hash, to find the row a
-- link names, and a recipe ("d:<key id>:<salt>") from which the service
-- rebuilds the same token with its secret key, so that a resent email
-- carries the same link. Archive passwords and presigned URLs (bearer
-- credentials) are sealed with the secret key. A database dump alone opens
-- nothing.
ALTER TABLE exports
    ADD COLUMN link_token_hash bytea UNIQUE,
    ADD COLUMN link_secret     text,
    ADD COLUMN password_sealed text,
    ADD COLUMN link_url_sealed text;

ALTER TABLE recipient_notices
    ADD COLUMN ack_token_hash bytea UNIQUE,
    ADD COLUMN ack_secret     text;

-- Links already emailed keep working: their hashes are taken here. The
-- plain values themselves can only be sealed by the service, which holds
-- the key: the export sweep does it on its first run after the upgrade
-- (jobs.SealLegacySecrets) and empties the old columns, which a later
-- migration drops.
UPDATE exports SET link_token_hash = sha256(convert_to(link_token, 'UTF8')) WHERE link_token IS NOT NULL;
UPDATE recipient_notices SET ack_token_hash = sha256(convert_to(ack_token, 'UTF8')) WHERE ack_token IS NOT NULL;
