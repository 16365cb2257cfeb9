-- Data a delete or cancellation kept restricted: under a retention period
-- (until set) or with no end (until NULL, on_delete: restrict). The retention
-- sweep erases a hold's rows when until has passed and marks it released.
CREATE TABLE retention_holds (
    request_id   uuid NOT NULL REFERENCES requests (id),
    store        text NOT NULL,
    dataset      text NOT NULL,
    retention    text NOT NULL DEFAULT '',
    rows         bigint NOT NULL,
    -- When the business relationship ended: periods count from here where a
    -- row does not say when its own began.
    ended_at     timestamptz NOT NULL,
    until        timestamptz,
    created_at   timestamptz NOT NULL,
    checked_at   timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text NOT NULL DEFAULT '',
    released_at  timestamptz,
    PRIMARY KEY (request_id, store, dataset)
);

CREATE INDEX retention_holds_due ON retention_holds (until) WHERE released_at IS NULL AND until IS NOT NULL;
