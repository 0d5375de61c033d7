-- Ratings of served requests (POST /v1/feedback), one per request: a second rating replaces
-- the first. Kept beside the ledger, keyed by the same request id.
CREATE TABLE feedback (
    request_id TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    score      REAL NOT NULL,
    label      TEXT,
    comment    TEXT,
    ts         REAL NOT NULL
);
CREATE INDEX feedback_tenant_ts ON feedback (tenant, ts);
-- Per-experiment reads (strata ab status) scan one experiment's records in time order.
CREATE INDEX ledger_experiment_ts ON ledger (experiment, ts);
