-- Fallback: a payment's authorization may be tried on several processor accounts in turn. Each
-- attempt is its own SALE transaction, recording the account that handled it, and its own
-- processor key, committed (with the time it was made) before the attempt's first call.
ALTER TABLE transactions ADD COLUMN processor text, ADD COLUMN processor_account text;
ALTER TABLE workflow_runs ADD COLUMN key_created_at timestamptz;
