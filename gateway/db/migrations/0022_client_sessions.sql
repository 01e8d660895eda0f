-- Primer's client sessions: an order's details kept under a client token (stored as its SHA-256
-- only), for a day by default; a card tokenized with the token belongs to the session, and a
-- payment made with that card takes the session's details.
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

ALTER TABLE payment_instruments ADD COLUMN client_session uuid;
