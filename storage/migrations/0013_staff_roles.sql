-- Staff identities: every token belongs to a named person with one role
-- and the products they work on (empty: every product). Tokens issued
-- before roles existed could do everything short of administration; they
-- become approvers, with every product.
ALTER TABLE staff_tokens
    ADD COLUMN role     text NOT NULL DEFAULT 'approver'
        CHECK (role IN ('agent', 'approver', 'auditor', 'admin')),
    ADD COLUMN products text[] NOT NULL DEFAULT '{}',
    -- Who issued the token ("config", "env", "cli" or staff:<admin>).
    ADD COLUMN created_by text NOT NULL DEFAULT '';

ALTER TABLE staff_tokens ALTER COLUMN role DROP DEFAULT;
