-- Processor kinds are named by the code's registry (processors/registry.py), not by a database
-- enum: adding a processor needs no migration. An account's settings are its kind's own (in
-- clear, as JSON); its credentials stay sealed.

ALTER TABLE merchants ALTER COLUMN processor DROP DEFAULT;
ALTER TABLE merchants ALTER COLUMN processor TYPE text USING processor::text;
ALTER TABLE merchants ALTER COLUMN processor SET DEFAULT 'sandbox';
ALTER TABLE payments ALTER COLUMN processor TYPE text USING processor::text;
ALTER TABLE processor_accounts ALTER COLUMN kind TYPE text USING kind::text;
DROP TYPE processor_kind;

ALTER TABLE processor_accounts ADD COLUMN settings jsonb NOT NULL DEFAULT '{}';
UPDATE processor_accounts
SET settings = jsonb_build_object('apiBaseUrl', api_base_url, 'multicapture', multicapture);
ALTER TABLE processor_accounts DROP COLUMN api_base_url, DROP COLUMN multicapture;
