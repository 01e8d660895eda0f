-- Merchants, their API keys and operator keys, and the durable record of idempotency keys.
-- merchants and api_keys are small reference tables; every payment-side table is keyed by
-- merchant_id first (a ready distribution key for Citus).

CREATE TABLE merchants (
    id          text PRIMARY KEY CHECK (id ~ '^mer_[a-z0-9]+$'),
    name        text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- merchant: calls /payments* for one merchant, in one mode. operator: calls /admin/* only.
CREATE TYPE api_key_kind AS ENUM ('merchant', 'operator');
CREATE TYPE api_key_mode AS ENUM ('sandbox', 'live');

CREATE TABLE api_keys (
    -- The non-secret part of the key, by which it is found; the secret is only hashed.
    id           text PRIMARY KEY CHECK (id ~ '^[a-z2-7]{16}$'),
    kind         api_key_kind NOT NULL,
    merchant_id  text REFERENCES merchants (id),
    mode         api_key_mode,
    scopes       text[] NOT NULL DEFAULT '{}',
    secret_hash  bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CONSTRAINT api_keys_merchant_keys_have_merchant_and_mode CHECK (
        (kind = 'merchant' AND merchant_id IS NOT NULL AND mode IS NOT NULL)
        OR (kind = 'operator' AND merchant_id IS NULL AND mode IS NULL AND scopes = '{}')
    )
);
CREATE INDEX api_keys_merchant_id ON api_keys (merchant_id);

-- The durable half of idempotency: Redis answers repeats quickly, this table makes them
-- impossible to miss after a Redis flush or failover.
-- in_flight: a request holds the key until locked_until (a dead request's key can be taken over).
-- processed: the request was answered; repeats get 409 IdempotencyKeyAlreadyExists.
CREATE TYPE idempotency_state AS ENUM ('in_flight', 'processed');

CREATE TABLE idempotency_keys (
    merchant_id     text NOT NULL REFERENCES merchants (id),
    operation       text NOT NULL,
    target          text NOT NULL,      -- the payment id of a follow-up, '' for a create
    key             text NOT NULL CHECK (key ~ '^[!-~]{1,255}$'),
    fingerprint     bytea NOT NULL CHECK (octet_length(fingerprint) = 32),
    state           idempotency_state NOT NULL,
    locked_until    timestamptz,
    payment_id      text,
    payment_status  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, operation, target, key),
    CONSTRAINT idempotency_keys_in_flight_has_lease CHECK ((state = 'in_flight') = (locked_until IS NOT NULL))
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (merchant_id, expires_at);
