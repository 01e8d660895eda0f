-- The engine's own uniqueness (one run per merchant, operation, payment and idempotency key) is
-- the durable idempotency record of payment requests. With the request's fingerprint beside
-- the key, a repeat that Redis forgot is told apart: the same request (409) or another one
-- reusing the key (422).
ALTER TABLE workflow_runs ADD COLUMN request_fingerprint bytea
    CHECK (octet_length(request_fingerprint) = 32);
