-- One key, one request: an X-Idempotency-Key names one request of a merchant, whatever the
-- endpoint (as Stripe and Adyen scope keys). The same key with another operation, payment or body
-- is refused (422 IdempotencyKeyReused) instead of being executed as new.

-- The edge's durable records: keep the newest record of a key, key them by merchant and key.
DELETE FROM idempotency_keys k
USING idempotency_keys newer
WHERE newer.merchant_id = k.merchant_id AND newer.key = k.key
  AND (newer.created_at, newer.operation, newer.target) > (k.created_at, k.operation, k.target);
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (merchant_id, key);

-- The engine's runs: a key used before this migration by several operations keeps naming its
-- first run; the later ones get their key suffixed with what they were (those requests were key
-- reuses; a repeat of one is now refused as such, never run again).
UPDATE workflow_runs r
SET idempotency_key = left(r.idempotency_key, 200) || ' [' || r.kind || ' ' || r.id || ']'
WHERE r.idempotency_key IS NOT NULL AND EXISTS (
    SELECT 1 FROM workflow_runs first
    WHERE first.merchant_id = r.merchant_id AND first.idempotency_key = r.idempotency_key
      AND (first.created_at, first.id) < (r.created_at, r.id));
DROP INDEX workflow_runs_one_per_idempotency_key;
CREATE UNIQUE INDEX workflow_runs_one_per_idempotency_key
    ON workflow_runs (merchant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
