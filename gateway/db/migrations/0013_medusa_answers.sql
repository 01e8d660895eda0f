-- What the Medusa surface answered a keyed POST (Idempotency-Key), so that a repeat of a finished
-- request gets the same status and body, as Medusa's client expects when it retries.
CREATE TABLE medusa_answers (
    merchant_id     text NOT NULL REFERENCES merchants (id),
    idempotency_key text NOT NULL,
    status          smallint NOT NULL,
    body            bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, idempotency_key)
);
