-- Why a request was refused (PIPL Art. 50: a refusal states its reason).
ALTER TABLE requests ADD COLUMN refusal jsonb;
