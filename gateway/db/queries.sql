-- Queries of the edge: API keys, the durable idempotency record.

-- name: create_api_key
-- The key and its audit line, in one statement.
WITH created AS (
    INSERT INTO api_keys (id, kind, merchant_id, mode, scopes, secret_hash)
    VALUES (%(id)s, %(kind)s, %(merchant_id)s, %(mode)s, %(scopes)s, %(secret_hash)s)
    RETURNING id, kind, merchant_id, mode, scopes, created_at, revoked_at
), audited AS (
    INSERT INTO audit_log (actor, action, subject, merchant_id, detail)
    SELECT %(actor)s, 'api_key.created', id, merchant_id,
        jsonb_build_object('kind', kind, 'mode', mode, 'scopes', scopes)
    FROM created
)
SELECT * FROM created;

-- name: touch_api_key
-- A key's last use, to the minute.
UPDATE api_keys SET last_used_at = now()
WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- name: audit_log
SELECT a.at, a.actor, a.action, a.subject, m.name AS merchant_name, a.detail
FROM audit_log a LEFT JOIN merchants m ON m.id = a.merchant_id
ORDER BY a.at DESC, a.id LIMIT %(limit)s;

-- name: find_api_key
SELECT k.id, k.kind, k.merchant_id, k.mode, k.scopes, k.secret_hash, k.revoked_at
FROM api_keys k WHERE k.id = %(id)s;

-- name: list_api_keys
SELECT k.id, k.kind, m.name AS merchant_name, k.mode, k.scopes, k.created_at, k.revoked_at,
    k.last_used_at
FROM api_keys k LEFT JOIN merchants m ON m.id = k.merchant_id
ORDER BY k.created_at, k.id;

-- name: revoke_api_key
-- Also says when the key was revoked before, if it was (NULL: revoked now). A revocation (not a
-- repeat of one) gets its audit line in the same statement.
WITH earlier AS (SELECT id, revoked_at FROM api_keys WHERE id = %(id)s FOR UPDATE),
revoked AS (
    UPDATE api_keys k SET revoked_at = coalesce(k.revoked_at, now())
    FROM earlier WHERE k.id = earlier.id
    RETURNING k.id, k.merchant_id, k.revoked_at, earlier.revoked_at AS revoked_before
), audited AS (
    INSERT INTO audit_log (actor, action, subject, merchant_id)
    SELECT %(actor)s, 'api_key.revoked', id, merchant_id FROM revoked
    WHERE revoked_before IS NULL
)
SELECT id, revoked_at, revoked_before FROM revoked;

-- name: claim_idempotency_key
-- Take the key if nobody has it, if it expired, or if the request holding it died (lease over).
-- Returns a row only when this request now holds the key.
INSERT INTO idempotency_keys AS k
    (merchant_id, operation, target, key, fingerprint, state, locked_until, expires_at)
VALUES (%(merchant_id)s, %(operation)s, %(target)s, %(key)s, %(fingerprint)s, 'in_flight',
        now() + make_interval(secs => %(lease_seconds)s),
        now() + make_interval(secs => %(ttl_seconds)s))
ON CONFLICT (merchant_id, key) DO UPDATE
    SET operation = EXCLUDED.operation, target = EXCLUDED.target,
        fingerprint = EXCLUDED.fingerprint, state = 'in_flight',
        locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at,
        payment_id = NULL, payment_status = NULL, created_at = now()
    WHERE k.expires_at < now()
       OR (k.state = 'in_flight' AND k.locked_until < now() AND k.fingerprint = EXCLUDED.fingerprint)
RETURNING 1;

-- name: find_idempotency_key
SELECT fingerprint, state, payment_id, payment_status,
       greatest(0, ceil(extract(epoch FROM locked_until - now())))::int AS lease_left_seconds,
       greatest(1, ceil(extract(epoch FROM expires_at - now())))::int AS ttl_left_seconds
FROM idempotency_keys
WHERE merchant_id = %(merchant_id)s AND key = %(key)s AND expires_at >= now();

-- name: complete_idempotency_key
UPDATE idempotency_keys
SET state = 'processed', locked_until = NULL,
    payment_id = %(payment_id)s, payment_status = %(payment_status)s
WHERE merchant_id = %(merchant_id)s AND key = %(key)s AND fingerprint = %(fingerprint)s
  AND state = 'in_flight';

-- name: release_idempotency_key
DELETE FROM idempotency_keys
WHERE merchant_id = %(merchant_id)s AND key = %(key)s AND fingerprint = %(fingerprint)s
  AND state = 'in_flight';

-- name: medusa_answer
SELECT status, body, fingerprint FROM medusa_answers
WHERE merchant_id = %(merchant_id)s AND idempotency_key = %(key)s;

-- name: keep_medusa_answer
-- The first answer kept wins: a concurrent rebuild never replaces it.
INSERT INTO medusa_answers (merchant_id, idempotency_key, status, body, fingerprint)
VALUES (%(merchant_id)s, %(key)s, %(status)s, %(body)s, %(fingerprint)s)
ON CONFLICT (merchant_id, idempotency_key) DO NOTHING;
