-- A merchant's routing rules, versioned: every change kept, with who made it and when; the
-- highest version applies. Versions count per merchant (no global sequence).
CREATE TABLE routing_rules (
    merchant_id text NOT NULL REFERENCES merchants (id),
    version     integer NOT NULL CHECK (version > 0),
    rules       jsonb NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, version)
);
