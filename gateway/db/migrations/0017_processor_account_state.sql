-- An account can be disabled: no new payment goes to it (the routing rules pass over it, and a
-- merchant routed to it is refused), while the captures, refunds and recoveries of its payments
-- still use it.
ALTER TABLE processor_accounts ADD COLUMN state text NOT NULL DEFAULT 'active'
    CHECK (state IN ('active', 'disabled'));
