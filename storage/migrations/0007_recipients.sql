-- Notices to third parties the data was shared with, asking them to erase
-- it, and their acknowledgements. ack_token is the capability in an emailed
-- notice's acknowledgement link: kept as is, so that a resent notice is the
-- same message with the same link.
CREATE TABLE recipient_notices (
    request_id       uuid NOT NULL REFERENCES requests (id),
    recipient        text NOT NULL,
    channel          text NOT NULL,
    status           text NOT NULL,
    ack_token        text UNIQUE,
    message_id       text NOT NULL DEFAULT '',
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz,
    acknowledged_at  timestamptz,
    acknowledged_by  text NOT NULL DEFAULT '',
    note             text NOT NULL DEFAULT '',
    PRIMARY KEY (request_id, recipient)
);

CREATE INDEX recipient_notices_open ON recipient_notices (recipient) WHERE acknowledged_at IS NULL;
