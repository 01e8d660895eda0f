-- Payments, their transactions and events, the durable workflow runs that move money, and the
-- sandbox processor's own ledger. Every payment-side table is keyed by merchant_id first.

-- Which processor a merchant's payments go to, and whether create captures at once.
CREATE TYPE processor_kind AS ENUM ('sandbox', 'manual');
ALTER TABLE merchants
    ADD COLUMN processor processor_kind NOT NULL DEFAULT 'sandbox',
    ADD COLUMN capture_on_create boolean NOT NULL DEFAULT false;

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
    PRIMARY KEY (merchant_id, token)
);

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
    card                 jsonb NOT NULL,   -- network, first6, last4, expiry, holder: what was kept
    card_last4           text NOT NULL,
    processor            processor_kind NOT NULL,
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
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
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
CREATE TYPE run_kind AS ENUM ('authorize', 'capture', 'cancel', 'refund');
CREATE TYPE run_state AS ENUM ('running', 'succeeded', 'failed', 'stuck');

CREATE TABLE workflow_runs (
    merchant_id      text NOT NULL,
    id               text NOT NULL,
    payment_id       text NOT NULL,
    kind             run_kind NOT NULL,
    -- The merchant's X-Idempotency-Key and what it is scoped to ('' for a create): the engine's
    -- own uniqueness, one run per (merchant, operation, payment, key).
    idempotency_key  text,
    target           text NOT NULL DEFAULT '',
    input            jsonb NOT NULL,
    amount           bigint NOT NULL DEFAULT 0 CHECK (amount >= 0),
    transaction_id   text NOT NULL,
    capture_event_id uuid,
    -- Generated and committed before the first call; sent on every retry and every recovery.
    processor_key    text NOT NULL,
    state            run_state NOT NULL,
    recovery_point   text NOT NULL CHECK (recovery_point IN (
                         'call_processor', 'await_settlement', 'finished')),
    attempts         integer NOT NULL DEFAULT 0,
    recoveries       integer NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_expires_at timestamptz,
    next_attempt_at  timestamptz,
    outcome          jsonb,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id),
    UNIQUE (merchant_id, processor_key),
    FOREIGN KEY (merchant_id, payment_id) REFERENCES payments (merchant_id, id),
    CONSTRAINT workflow_runs_open_runs_are_scheduled CHECK (
        (state = 'running') = (next_attempt_at IS NOT NULL))
);
CREATE UNIQUE INDEX workflow_runs_one_per_idempotency_key
    ON workflow_runs (merchant_id, kind, target, idempotency_key)
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
CREATE TABLE sandbox_operations (
    processor_key            text PRIMARY KEY,
    reference                text NOT NULL,
    verb                     text NOT NULL,
    amount                   bigint NOT NULL,
    outcome                  text NOT NULL,
    processor_transaction_id text NOT NULL,
    settled                  boolean NOT NULL DEFAULT true,
    created_at               timestamptz NOT NULL DEFAULT clock_timestamp()
);
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
