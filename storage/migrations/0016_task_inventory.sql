-- What a store held about the subject before an erasure changed anything:
-- datasets and row counts, taken and committed before the erase. A rerun
-- after a crash between the store's commit and the task's record
-- reconciles its own report with it, so the answer states what was
-- actually erased rather than "nothing found" (rights.ReconcileErasure).
ALTER TABLE tasks ADD COLUMN inventory jsonb;
