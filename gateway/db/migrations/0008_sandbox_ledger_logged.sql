-- The sandbox simulates a processor, and a processor remembers what it did: after a PostgreSQL
-- crash an unlogged ledger came back empty and the sandbox re-did operations it had forgotten
-- (a capture answered twice). The ledger is written ahead like every other table; its calls log
-- (what tests count) too.
ALTER TABLE sandbox_operations SET LOGGED;
ALTER TABLE sandbox_calls SET LOGGED;
