-- The sandbox's ledger simulates a processor's own records: it must survive a gateway process
-- dying (it does: the rows are committed) but need not survive a PostgreSQL crash. Unlogged
-- tables skip the write-ahead log, so the sandbox no longer costs the gateway WAL flushes that
-- a real processor would not cost it.
ALTER TABLE sandbox_operations SET UNLOGGED;
ALTER TABLE sandbox_calls SET UNLOGGED;
