-- The card's issuer country, where the gateway knows it (BIN data; for the sandbox's test cards,
-- the sandbox's own), for routing rules' `issuer_country` condition.
ALTER TABLE payment_instruments ADD COLUMN issuer_country text
    CHECK (issuer_country ~ '^[A-Z]{2}$');
