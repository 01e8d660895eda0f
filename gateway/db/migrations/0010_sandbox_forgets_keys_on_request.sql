-- The sandbox can be told to forget idempotency keys after a while, as Stripe does after 24 h
-- (the `sandbox_key_lifetime_seconds` trigger): a repeat after that is done again, as a new
-- operation, while the record of the first stays for status questions. One live operation per
-- key; forgotten ones are kept.
ALTER TABLE sandbox_operations DROP CONSTRAINT sandbox_operations_pkey;
ALTER TABLE sandbox_operations ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE sandbox_operations ADD COLUMN forgotten boolean NOT NULL DEFAULT false;
ALTER TABLE sandbox_operations ADD PRIMARY KEY (reference, id);
CREATE UNIQUE INDEX sandbox_operations_one_per_key ON sandbox_operations (processor_key)
    WHERE NOT forgotten;
