-- A card token that is not saved for a customer pays once: the payment it paid for.
ALTER TABLE payment_instruments ADD COLUMN used_by text;
