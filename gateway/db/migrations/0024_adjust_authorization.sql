-- Adjusting an authorization (an ESTIMATED one, on a processor that supports incremental
-- authorization) is a money-moving run of its own.
ALTER TYPE run_kind ADD VALUE 'adjust';
