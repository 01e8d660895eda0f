-- The current schema, whole: what the numbered migrations in migrations/ build, written as one.
-- A test builds a database from each and compares them; change both together.

-- Merchants and their keys; payments, their transactions and events; the durable workflow
-- runs that move money; the sandbox processor's own ledger. Every payment-side table is keyed by
-- merchant_id first (a ready distribution key for Citus).

CREATE TABLE merchants (
    id                text PRIMARY KEY CHECK (id ~ '^mer_[a-z0-9]+$'),
    name              text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    -- Which processor kind (processors/registry.py) a merchant's payments go to, and whether
    -- create captures at once.
    processor         text NOT NULL DEFAULT 'sandbox',
    capture_on_create boolean NOT NULL DEFAULT false,
    -- One of the merchant's processor accounts (NULL: the built-in sandbox or manual).
    processor_account text,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Processor accounts (Stripe first), with credentials encrypted at rest.
CREATE TABLE processor_accounts (
    merchant_id       text NOT NULL REFERENCES merchants (id),
    name              text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    kind              text NOT NULL,
    -- The processor's credentials (JSON of its kind's credentials), sealed under the master key
    -- (workflows/credentials.py), bound to this row: never in clear.
    secret_ciphertext bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    settings          jsonb NOT NULL DEFAULT '{}',  -- the kind's settings, in clear
    -- Which master key sealed them (NULL: an unbound Fernet token from before 0011).
    secret_key_id     text CHECK (secret_key_id ~ '^[0-9a-f]{16}$'),
    -- disabled: no new payment goes to it; its payments' follow-ups still do.
    state             text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
    PRIMARY KEY (merchant_id, name)
);
ALTER TABLE merchants ADD CONSTRAINT merchants_processor_account_fkey
    FOREIGN KEY (id, processor_account) REFERENCES processor_accounts (merchant_id, name);

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
    last_used_at timestamptz,  -- to the minute: written at most once a minute per key
    CONSTRAINT api_keys_merchant_keys_have_merchant_and_mode CHECK (
        (kind = 'merchant' AND merchant_id IS NOT NULL AND mode IS NOT NULL)
        OR (kind = 'operator' AND merchant_id IS NULL AND mode IS NULL AND scopes = '{}')
    )
);
CREATE INDEX api_keys_merchant_id ON api_keys (merchant_id);

-- What operators did to keys (creation, revocation), and who did it.
CREATE TABLE audit_log (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,      -- who: "cli user@host", "operator key ID", "gateway serve"
    action      text NOT NULL,      -- e.g. api_key.created, api_key.revoked
    subject     text NOT NULL,      -- what: a key id
    merchant_id text REFERENCES merchants (id),
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_time ON audit_log (at DESC);

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
    -- One key, one request of the merchant, whatever the endpoint.
    PRIMARY KEY (merchant_id, key),
    CONSTRAINT idempotency_keys_in_flight_has_lease CHECK ((state = 'in_flight') = (locked_until IS NOT NULL))
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (merchant_id, expires_at);

-- Cards turned into tokens. Nothing but network, first 6, last 4, expiry and holder name is
-- kept: never the full number, never the CVV.
CREATE TABLE payment_instruments (
    merchant_id      text NOT NULL REFERENCES merchants (id),
    token            text NOT NULL,
    mode             api_key_mode NOT NULL,
    network          text NOT NULL,
    first6           text NOT NULL CHECK (first6 ~ '^[0-9]{6}$'),
    last4            text NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    expiration_month text NOT NULL CHECK (expiration_month ~ '^(0[1-9]|1[0-2])$'),
    expiration_year  text NOT NULL CHECK (expiration_year ~ '^[0-9]{4}$'),
    cardholder_name  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Where known (BIN data): for routing rules.
    issuer_country   text CHECK (issuer_country ~ '^[A-Z]{2}$'),
    -- Tokenized with a client session's token: a payment with it takes the session's details.
    client_session   uuid,
    -- Vaulted: saved for a customer (a token of its own, made once from `vaulted_from`), perhaps
    -- the customer's default; deleted: kept, but no new payment takes it.
    customer_id      text CHECK (length(customer_id) BETWEEN 1 AND 255),
    vaulted_from     text,
    is_default       boolean NOT NULL DEFAULT false,
    deleted_at       timestamptz,
    -- Not saved (single-use): the payment it paid for.
    used_by          text,
    PRIMARY KEY (merchant_id, token)
);
CREATE UNIQUE INDEX payment_instruments_vaulted_once
    ON payment_instruments (merchant_id, vaulted_from)
    WHERE vaulted_from IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX payment_instruments_by_customer
    ON payment_instruments (merchant_id, customer_id) WHERE customer_id IS NOT NULL;
CREATE UNIQUE INDEX payment_instruments_one_default
    ON payment_instruments (merchant_id, mode, customer_id)
    WHERE is_default AND deleted_at IS NULL;

-- Primer's payment statuses. Transitions (workflows/lifecycle.py holds the rules):
--   PENDING -> AUTHORIZED | DECLINED | FAILED | CANCELLED   (authorization answered, or voided)
--   AUTHORIZED -> SETTLING | PARTIALLY_SETTLED | SETTLED | CANCELLED   (capture, cancel)
--   SETTLING -> PARTIALLY_SETTLED | SETTLED   (asynchronous settlement confirmed)
--   PARTIALLY_SETTLED -> SETTLED | PARTIALLY_SETTLED   (further captures; a cancel keeps it)
CREATE TYPE payment_status AS ENUM (
    'PENDING', 'FAILED', 'AUTHORIZED', 'SETTLING', 'PARTIALLY_SETTLED', 'SETTLED', 'DECLINED',
    'CANCELLED'
);

CREATE TABLE payments (
    merchant_id          text NOT NULL REFERENCES merchants (id),
    id                   text NOT NULL,
    mode                 api_key_mode NOT NULL,
    status               payment_status NOT NULL,
    status_reason        jsonb,
    order_id             text NOT NULL,
    currency_code        text NOT NULL CHECK (currency_code ~ '^[A-Z]{3}$'),
    amount               bigint NOT NULL CHECK (amount >= 0),
    customer_id          text,
    customer             jsonb,
    order_details        jsonb,
    metadata             jsonb,
    payment_options      jsonb,
    payment_method_token text NOT NULL,
    -- CARD_PAN: a card tokenized here; PROCESSOR_TOKEN: the processor's own token (pm_...),
    -- for which the gateway holds no card data.
    card_token_type      text NOT NULL DEFAULT 'CARD_PAN'
                         CHECK (card_token_type IN ('CARD_PAN', 'PROCESSOR_TOKEN')),
    card                 jsonb,   -- network, first6, last4, expiry, holder: what was kept
    card_last4           text,
    processor            text NOT NULL,
    processor_account    text,
    processor_merchant_id text NOT NULL,
    amount_authorized    bigint NOT NULL DEFAULT 0,
    amount_captured      bigint NOT NULL DEFAULT 0,
    amount_refunded      bigint NOT NULL DEFAULT 0,
    -- Amounts of captures and refunds sent to the processor and not yet answered. They count
    -- against the limits, so concurrent requests can never together pass them.
    capture_reserved     bigint NOT NULL DEFAULT 0,
    refund_reserved      bigint NOT NULL DEFAULT 0,
    -- After a final capture or a cancel, no further capture.
    captures_closed      boolean NOT NULL DEFAULT false,
    required_action      jsonb,   -- e.g. 3-D Secure: what the customer still has to do
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- The SALE in force: the authorization's last attempt (NULL: held, sent nowhere).
    sale_id              text,
    PRIMARY KEY (merchant_id, id),
    CONSTRAINT payments_authorized_within_amount CHECK (amount_authorized BETWEEN 0 AND amount),
    CONSTRAINT payments_captured_within_authorized CHECK (
        amount_captured >= 0 AND capture_reserved >= 0
        AND amount_captured + capture_reserved <= amount_authorized),
    CONSTRAINT payments_refunded_within_captured CHECK (
        amount_refunded >= 0 AND refund_reserved >= 0
        AND amount_refunded + refund_reserved <= amount_captured)
);
CREATE INDEX payments_by_date ON payments (merchant_id, created_at DESC, id DESC);
CREATE INDEX payments_by_order ON payments (merchant_id, order_id);
CREATE INDEX payments_by_customer ON payments (merchant_id, customer_id);

-- One SALE per authorization attempt, one REFUND per refund. processor_status is the
-- transaction's own status at the processor (a REFUND is SETTLED when the money went back).
CREATE TYPE transaction_type AS ENUM ('SALE', 'REFUND');

CREATE TABLE transactions (
    merchant_id              text NOT NULL,
    id                       text NOT NULL,
    payment_id               text NOT NULL,
    type                     transaction_type NOT NULL,
    amount                   bigint NOT NULL CHECK (amount >= 0),
    currency_code            text NOT NULL,
    order_id                 text,
    reason                   text,
    processor_transaction_id text,
    processor_status         payment_status NOT NULL,
    status_reason            jsonb,
    -- The processor's answer is not known yet (timeout): the run that owns it will find out.
    outcome_unknown          boolean NOT NULL DEFAULT false,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    -- The processor account that handled it (NULL: rows from before 0018, the payment's).
    processor                text,
    processor_account        text,
    PRIMARY KEY (merchant_id, id),
    FOREIGN KEY (merchant_id, payment_id) REFERENCES payments (merchant_id, id)
);
CREATE INDEX transactions_by_payment ON transactions (merchant_id, payment_id, created_at);

-- Events of a SALE: AUTHORIZATION_SUCCEEDED, CAPTURE_SUCCEEDED (amount, final),
-- CANCELLATION_SUCCEEDED. Refunds may target one capture event; refunded counts those.
CREATE TABLE transaction_events (
    merchant_id     text NOT NULL,
    id              uuid NOT NULL,
    payment_id      text NOT NULL,
    transaction_id  text NOT NULL,
    type            text NOT NULL CHECK (type IN (
                        'AUTHORIZATION_SUCCEEDED', 'CAPTURE_SUCCEEDED', 'CANCELLATION_SUCCEEDED')),
    amount          bigint CHECK (amount >= 0),
    final           boolean,
    refunded        bigint NOT NULL DEFAULT 0,
    refund_reserved bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (merchant_id, id),
    FOREIGN KEY (merchant_id, transaction_id) REFERENCES transactions (merchant_id, id),
    CONSTRAINT transaction_events_refunds_within_capture CHECK (
        refunded >= 0 AND refund_reserved >= 0
        AND refunded + refund_reserved <= coalesce(amount, 0))
);
CREATE INDEX transaction_events_by_payment ON transaction_events (merchant_id, payment_id, created_at);

-- A workflow run: one money-moving operation, persisted before the processor is called.
-- running: in progress, or waiting for recovery (next_attempt_at says when a worker may take it)
-- succeeded: the processor did it.  failed: a definitive no (decline, rejected request).
-- stuck: the outcome stayed unknown after every automatic recovery; an operator replays it.
CREATE TYPE run_kind AS ENUM ('authorize', 'capture', 'cancel', 'refund', 'adjust');
CREATE TYPE run_state AS ENUM ('running', 'succeeded', 'failed', 'stuck');

CREATE TABLE workflow_runs (
    merchant_id      text NOT NULL,
    id               text NOT NULL,
    payment_id       text NOT NULL,
    kind             run_kind NOT NULL,
    -- The merchant's X-Idempotency-Key (one run per merchant and key: the engine's own
    -- uniqueness) and the payment it is about ('' for a create).
    idempotency_key  text,
    target           text NOT NULL DEFAULT '',
    -- The request's fingerprint: a repeat with another body is told apart after Redis forgot.
    request_fingerprint bytea CHECK (octet_length(request_fingerprint) = 32),
    input            jsonb NOT NULL,
    amount           bigint NOT NULL DEFAULT 0 CHECK (amount >= 0),
    transaction_id   text NOT NULL,
    capture_event_id uuid,
    -- Generated and committed before the first call; sent on every retry and every recovery.
    processor_key    text NOT NULL,
    state            run_state NOT NULL,
    recovery_point   text NOT NULL CHECK (recovery_point IN (
                         'call_processor', 'await_action', 'await_settlement', 'finished')),
    attempts         integer NOT NULL DEFAULT 0,
    recoveries       integer NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_expires_at timestamptz,
    next_attempt_at  timestamptz,
    outcome          jsonb,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Whether any call may have reached the processor: a run none of whose calls did ends as a
    -- definite failure (nothing was done), not as an unknown outcome.
    -- Taken over from a holder whose lease ran out: it may still be sending until then.
    quiet_until      timestamptz,
    may_have_reached_processor boolean NOT NULL DEFAULT false,
    -- When processor_key was made, if not with the run (an authorization's next attempt).
    key_created_at   timestamptz,
    -- A processor's event concerns it: due at once when its holder lets it go (not a recovery).
    woken            boolean NOT NULL DEFAULT false,
    PRIMARY KEY (merchant_id, id),
    UNIQUE (merchant_id, processor_key),
    FOREIGN KEY (merchant_id, payment_id) REFERENCES payments (merchant_id, id),
    CONSTRAINT workflow_runs_open_runs_are_scheduled CHECK (
        (state = 'running') = (next_attempt_at IS NOT NULL))
);
CREATE UNIQUE INDEX workflow_runs_one_per_idempotency_key
    ON workflow_runs (merchant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX workflow_runs_due ON workflow_runs (next_attempt_at) WHERE state = 'running';
CREATE INDEX workflow_runs_by_id ON workflow_runs (id);  -- operators name a run by id alone
CREATE INDEX workflow_runs_by_payment ON workflow_runs (merchant_id, payment_id, created_at);
CREATE INDEX workflow_runs_by_state ON workflow_runs (state, updated_at DESC);

-- What happened to a run, for operators. Append-only.
CREATE TABLE workflow_history (
    merchant_id text NOT NULL,
    run_id      text NOT NULL,
    id          uuid NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    event       text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (merchant_id, run_id, at, id),
    FOREIGN KEY (merchant_id, run_id) REFERENCES workflow_runs (merchant_id, id)
);

-- The sandbox processor's own ledger, as a real processor keeps one: what it did once per
-- idempotency key, and every call it received (so tests and developers can count them).
-- Logged like every table: a processor remembers what it did, through a PostgreSQL crash too.
-- A key it was told to forget (`forgotten`) no longer protects a repeat, which is done again.
CREATE TABLE sandbox_operations (
    processor_key            text NOT NULL,
    reference                text NOT NULL,
    verb                     text NOT NULL,
    amount                   bigint NOT NULL,
    outcome                  text NOT NULL,
    processor_transaction_id text NOT NULL,
    settled                  boolean NOT NULL DEFAULT true,
    created_at               timestamptz NOT NULL DEFAULT clock_timestamp(),
    id                       uuid NOT NULL DEFAULT gen_random_uuid(),
    forgotten                boolean NOT NULL DEFAULT false,
    PRIMARY KEY (reference, id)
);
CREATE UNIQUE INDEX sandbox_operations_one_per_key ON sandbox_operations (processor_key)
    WHERE NOT forgotten;
CREATE INDEX sandbox_operations_by_reference ON sandbox_operations (reference, verb);

CREATE TABLE sandbox_calls (
    reference     text NOT NULL,
    id            uuid NOT NULL,
    processor_key text NOT NULL,
    verb          text NOT NULL,
    amount        bigint NOT NULL DEFAULT 0,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (reference, id)
);

-- What the Medusa surface answered a keyed POST (Idempotency-Key), so that a repeat of a finished
-- request gets the same status and body, as Medusa's client expects when it retries.
CREATE TABLE medusa_answers (
    merchant_id     text NOT NULL REFERENCES merchants (id),
    idempotency_key text NOT NULL,
    status          smallint NOT NULL,
    body            bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    fingerprint     bytea,  -- of the request answered (operation, payment, body)
    PRIMARY KEY (merchant_id, idempotency_key)
);

-- A merchant's routing rules, versioned: every change kept, with who made it and when; the
-- highest version applies. Versions count per merchant (no global sequence).
CREATE TABLE routing_rules (
    merchant_id text NOT NULL REFERENCES merchants (id),
    version     integer NOT NULL CHECK (version > 0),
    rules       jsonb NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, version)
);

-- Webhooks out (a transactional outbox) and processor events in.
CREATE TABLE webhook_endpoints (
    merchant_id         text NOT NULL REFERENCES merchants (id),
    id                  uuid NOT NULL,
    mode                api_key_mode NOT NULL,
    url                 text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    description         text CHECK (length(description) <= 255),
    state               text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
    -- The signing secret, sealed under the master key; the one it replaced, for a day.
    secret_ciphertext   bytea NOT NULL,
    secret_key_id       text,
    previous_ciphertext bytea,
    previous_key_id     text,
    rotated_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id)
);

CREATE TABLE webhook_events (
    merchant_id    text NOT NULL,
    id             uuid NOT NULL,
    payment_id     text NOT NULL,
    -- Per payment, in the order of the changes (the payment's lock orders them).
    sequence       integer NOT NULL CHECK (sequence > 0),
    type           text NOT NULL CHECK (type IN ('PAYMENT.STATUS', 'PAYMENT.REFUND')),
    -- The payment as the change left it, in the domain's encoding (rendered at delivery).
    snapshot       jsonb NOT NULL,
    transaction_id text,  -- PAYMENT.REFUND: the refund's transaction
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id),
    UNIQUE (merchant_id, payment_id, sequence),
    FOREIGN KEY (merchant_id, payment_id) REFERENCES payments (merchant_id, id)
);

CREATE TABLE webhook_deliveries (
    merchant_id      text NOT NULL,
    event_id         uuid NOT NULL,
    endpoint_id      uuid NOT NULL,
    payment_id       text NOT NULL,
    sequence         integer NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,  -- started (a claim starts one)
    claim            uuid,  -- the latest claim: only it records the delivery's outcome
    -- Pending: when it is due (a claimed one: when its claim runs out).
    next_attempt_at  timestamptz,
    first_attempt_at timestamptz,
    finished_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, event_id, endpoint_id),
    FOREIGN KEY (merchant_id, event_id) REFERENCES webhook_events (merchant_id, id),
    FOREIGN KEY (merchant_id, endpoint_id) REFERENCES webhook_endpoints (merchant_id, id),
    CONSTRAINT webhook_deliveries_pending_are_scheduled CHECK (
        (state = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_in_order
    ON webhook_deliveries (merchant_id, endpoint_id, payment_id, sequence);
-- Dead letters, by when they died (redelivery since a time; their count in /metrics).
CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (finished_at) WHERE state = 'dead';

CREATE TABLE webhook_attempts (
    merchant_id text NOT NULL,
    event_id    uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    number      integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    status_code integer,  -- NULL: no answer (refused, timed out)
    latency_ms  integer NOT NULL,
    error       text,
    answer      text,  -- the first 1 KB of the receiver's answer
    PRIMARY KEY (merchant_id, event_id, endpoint_id, number),
    FOREIGN KEY (merchant_id, event_id, endpoint_id)
        REFERENCES webhook_deliveries (merchant_id, event_id, endpoint_id)
);

CREATE TABLE processor_events (
    merchant_id text NOT NULL,
    account     text NOT NULL,
    id          text NOT NULL,  -- the processor's event id
    type        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, account, id)
);

-- Primer's client sessions (an order's details under a client token, stored hashed).
CREATE TABLE client_sessions (
    merchant_id text NOT NULL REFERENCES merchants (id),
    id          uuid NOT NULL,
    mode        api_key_mode NOT NULL,  -- a sandbox key's sessions are not a live key's
    token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    fields      jsonb NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id)
);
