-- Limits on self-service verification, kept here so that they hold across
-- every replica: one row per counted event (a code emailed to a mailbox, a
-- wrong code entered for it, a request or a verification from a network),
-- keyed by a keyed hash of what is limited, never the address or IP itself.
CREATE TABLE throttle_events (
    id     bigserial PRIMARY KEY,
    scope  text NOT NULL,
    key    bytea NOT NULL,
    at     timestamptz NOT NULL
);

CREATE INDEX throttle_events_key ON throttle_events (scope, key, at);
CREATE INDEX throttle_events_at ON throttle_events (at);

-- Codes are HMACs under the service's secret key now ("<key id>:<hex>"):
-- an 8-digit code's plain hash could be reversed from a database copy.
-- Codes of requests still waiting were made with the old scheme; they stop
-- working, and those requests expire.
DELETE FROM verification_codes WHERE consumed_at IS NULL AND code_hash NOT LIKE '%:%';
