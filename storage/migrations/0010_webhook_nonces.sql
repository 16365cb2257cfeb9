-- Nonces of signed callbacks (docs/webhook.md, signature v2), each kept
-- until the window of its signed timestamp ends: a message whose nonce is
-- here was accepted once already and is refused. After expires_at the
-- timestamp check refuses the message anyway, and the limits sweep prunes
-- the row. The nonce is a random value the sender chose, not a secret.
CREATE TABLE webhook_nonces (
    nonce      text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX webhook_nonces_expires_at ON webhook_nonces (expires_at);
