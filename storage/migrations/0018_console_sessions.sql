-- The staff console's sign-in: sessions and one-time sign-in links. Both
-- keep only the SHA-256 of their secret, so a copy of the database signs
-- no one in. A session names the staff member, whose role and products are
-- read from staff_tokens on every page: revoking or replacing the token
-- ends it (token_sha256 must still be the staff member's token).
CREATE TABLE console_sessions (
    id_sha256     bytea PRIMARY KEY,
    staff_name    text NOT NULL REFERENCES staff_tokens (name),
    token_sha256  text NOT NULL,
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    -- The absolute end; the idle end is last_seen_at + the idle timeout.
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz
);

CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

CREATE TABLE console_signin_links (
    token_sha256  bytea PRIMARY KEY,
    staff_name    text NOT NULL REFERENCES staff_tokens (name),
    created_at    timestamptz NOT NULL,
    created_by    text NOT NULL,
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);
