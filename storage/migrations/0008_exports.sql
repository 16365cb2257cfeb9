-- Exported copies: how each is delivered (attachment or link), its archive
-- password until it has been shown once, its download link and expiry, and
-- when it was purged.
ALTER TABLE exports
    ADD COLUMN file_name          text NOT NULL DEFAULT '',
    ADD COLUMN encryption         text NOT NULL DEFAULT 'none',
    ADD COLUMN password           text,
    ADD COLUMN password_shown_at  timestamptz,
    ADD COLUMN password_shown_via text NOT NULL DEFAULT '',
    ADD COLUMN delivery           text NOT NULL DEFAULT 'attachment',
    ADD COLUMN link_token         text UNIQUE,
    ADD COLUMN link_url           text NOT NULL DEFAULT '',
    ADD COLUMN expires_at         timestamptz,
    ADD COLUMN purged_at          timestamptz,
    ADD COLUMN purge_reason       text NOT NULL DEFAULT '',
    -- Set once the archive is gone from its destination: a purge is
    -- recorded first, and the file deleted after (again by the sweep, if
    -- the process died in between).
    ADD COLUMN file_deleted       boolean NOT NULL DEFAULT false;

CREATE INDEX exports_unpurged ON exports (expires_at) WHERE purged_at IS NULL;
CREATE INDEX exports_undeleted ON exports (purged_at) WHERE purged_at IS NOT NULL AND NOT file_deleted;

-- Every download of an export through the service's link.
CREATE TABLE downloads (
    id          bigserial PRIMARY KEY,
    request_id  uuid NOT NULL REFERENCES requests (id),
    at          timestamptz NOT NULL,
    bytes       bigint NOT NULL,
    complete    boolean NOT NULL
);

CREATE INDEX downloads_request ON downloads (request_id, at);

-- A self-service requester's key to the status page, given once when the
-- code is verified; only its hash is kept.
ALTER TABLE requests ADD COLUMN access_token_hash text;
