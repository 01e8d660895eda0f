-- Whether any call of a run may have reached its processor. A run whose every call failed before
-- reaching it (connection refused, DNS, 429: nothing was done) ends as a definite failure
-- instead of an unknown outcome; one that may have reached it stays unknown until asked.
-- Runs from before this migration are taken as having reached it (the safe side).
ALTER TABLE workflow_runs ADD COLUMN may_have_reached_processor boolean NOT NULL DEFAULT true;
ALTER TABLE workflow_runs ALTER COLUMN may_have_reached_processor SET DEFAULT false;
