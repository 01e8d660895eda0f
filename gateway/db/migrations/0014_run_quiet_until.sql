-- When a run was taken over from a holder whose lease ran out, that holder may still be sending
-- its call until its own time limits end: until then an operator's resolution (which may end the
-- run as "did not happen") is refused.
ALTER TABLE workflow_runs ADD COLUMN quiet_until timestamptz;
