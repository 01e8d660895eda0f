-- Webhooks out: a merchant's endpoints, the events of its payments (a transactional outbox:
-- written in the transaction of the change that causes them), one delivery per event and
-- endpoint, and each delivery's attempts. Processor events in: their ids, once each.
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

-- A processor's event concerns the run: due at once when its holder (if any) lets it go, and
-- that turn is not counted among its recoveries.
ALTER TABLE workflow_runs ADD COLUMN woken boolean NOT NULL DEFAULT false;

CREATE TABLE processor_events (
    merchant_id text NOT NULL,
    account     text NOT NULL,
    id          text NOT NULL,  -- the processor's event id
    type        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, account, id)
);
