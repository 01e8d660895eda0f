-- Vaulted payment methods: a card saved for a customer (its own token, made from the token it
-- was vaulted from, once), the customer's default, and a deleted one kept but unusable.
ALTER TABLE payment_instruments
    ADD COLUMN customer_id text CHECK (length(customer_id) BETWEEN 1 AND 255),
    ADD COLUMN vaulted_from text,
    ADD COLUMN is_default boolean NOT NULL DEFAULT false,
    ADD COLUMN deleted_at timestamptz;
CREATE UNIQUE INDEX payment_instruments_vaulted_once
    ON payment_instruments (merchant_id, vaulted_from)
    WHERE vaulted_from IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX payment_instruments_by_customer
    ON payment_instruments (merchant_id, customer_id) WHERE customer_id IS NOT NULL;
CREATE UNIQUE INDEX payment_instruments_one_default
    ON payment_instruments (merchant_id, mode, customer_id)
    WHERE is_default AND deleted_at IS NULL;
