-- A kept answer is for one request: its fingerprint (operation, payment, body) tells a repeat
-- from another request reusing the key. Kept refusals (a refund over what is left) have no run
-- to carry it.
ALTER TABLE medusa_answers ADD COLUMN fingerprint bytea;
