-- When each API key was last used (to the minute: written at most once a minute per key), and an
-- audit log of what operators do to keys: creation and revocation, by whom.
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;

CREATE TABLE audit_log (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,      -- who: "cli user@host", "operator key ID", "gateway serve"
    action      text NOT NULL,      -- e.g. api_key.created, api_key.revoked
    subject     text NOT NULL,      -- what: a key id
    merchant_id text REFERENCES merchants (id),
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_time ON audit_log (at DESC);
