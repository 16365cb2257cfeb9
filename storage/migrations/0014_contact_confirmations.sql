-- Addresses a request must prove before it goes on: a corrected email or
-- phone (it would become where the person's codes and copies go), and a
-- staff ticket's delivery email for a copy. Each gets a one-time code;
-- only its keyed MAC is kept. The address itself stays in the request
-- (corrections, delivery_email).
CREATE TABLE contact_confirmations (
    request_id    uuid NOT NULL REFERENCES requests (id),
    field         text NOT NULL,   -- delivery_email, or the corrected field
    kind          text NOT NULL CHECK (kind IN ('email', 'phone')),
    code_mac      text,
    expires_at    timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    sent_at       timestamptz,
    confirmed_at  timestamptz,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (request_id, field)
);
