-- Processor secrets are sealed bound to their row (AES-GCM associated data) and record which
-- master key sealed them, for `gateway secret-key rotate`. NULL: sealed before this migration
-- (Fernet, unbound); still read, and re-sealed by a rotation.
ALTER TABLE processor_accounts ADD COLUMN secret_key_id text
    CHECK (secret_key_id ~ '^[0-9a-f]{16}$');
