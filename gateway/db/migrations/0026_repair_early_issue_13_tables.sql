-- 0022 and 0023 were changed after development databases of the time had applied them (while
-- issue 13 was under way, before it landed): such a database has client sessions without a
-- mode, and a vaulted card that cannot be saved again once deleted. This brings it to what
-- those migrations say now. Any other database is not touched (not even locked).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'client_sessions'
                     AND column_name = 'mode') THEN
        ALTER TABLE client_sessions ADD COLUMN mode api_key_mode;
        -- Sessions made before: whose mode they were is not known, and they last a day: they end.
        DELETE FROM client_sessions WHERE mode IS NULL;
        ALTER TABLE client_sessions ALTER COLUMN mode SET NOT NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_indexes
                   WHERE schemaname = current_schema()
                     AND indexname = 'payment_instruments_vaulted_once'
                     AND indexdef LIKE '%deleted_at IS NULL%') THEN
        DROP INDEX IF EXISTS payment_instruments_vaulted_once;
        CREATE UNIQUE INDEX payment_instruments_vaulted_once
            ON payment_instruments (merchant_id, vaulted_from)
            WHERE vaulted_from IS NOT NULL AND deleted_at IS NULL;
    END IF;
END
$$;
