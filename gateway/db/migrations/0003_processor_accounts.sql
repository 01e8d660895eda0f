-- Processor accounts (Stripe first), with credentials encrypted at rest; payments paid with a
-- processor's own token (a Stripe PaymentMethod) carry no card data of ours; authorizations that
-- wait for the customer (3-D Secure) are polled until they are answered.

ALTER TYPE processor_kind ADD VALUE IF NOT EXISTS 'stripe';

CREATE TABLE processor_accounts (
    merchant_id       text NOT NULL REFERENCES merchants (id),
    name              text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    kind              processor_kind NOT NULL,
    api_base_url      text NOT NULL CHECK (api_base_url ~ '^https?://'),
    -- The processor's secret key, a Fernet token under GATEWAY_SECRET_KEY: never in clear.
    secret_ciphertext bytea NOT NULL,
    multicapture      boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, name)
);

-- A merchant routed to one of its processor accounts (NULL: the built-in sandbox or manual).
ALTER TABLE merchants ADD COLUMN processor_account text;
ALTER TABLE merchants ADD CONSTRAINT merchants_processor_account_fkey
    FOREIGN KEY (id, processor_account) REFERENCES processor_accounts (merchant_id, name);

ALTER TABLE payments
    ADD COLUMN processor_account text,
    ADD COLUMN card_token_type text NOT NULL DEFAULT 'CARD_PAN'
        CHECK (card_token_type IN ('CARD_PAN', 'PROCESSOR_TOKEN')),
    ADD COLUMN required_action jsonb,
    ALTER COLUMN card DROP NOT NULL,
    ALTER COLUMN card_last4 DROP NOT NULL;

ALTER TABLE workflow_runs DROP CONSTRAINT workflow_runs_recovery_point_check;
ALTER TABLE workflow_runs ADD CONSTRAINT workflow_runs_recovery_point_check CHECK (
    recovery_point IN ('call_processor', 'await_action', 'await_settlement', 'finished'));
