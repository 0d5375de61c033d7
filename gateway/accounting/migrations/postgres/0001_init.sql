-- Keys, tenants and the usage ledger. Money is integer pico-USD (1e-12 USD): sums are exact.
CREATE TABLE tenants (
    name          TEXT PRIMARY KEY,
    budget_pusd   BIGINT,
    budget_period TEXT NOT NULL DEFAULT 'total',
    rpm           INTEGER,
    tpm           INTEGER,
    created_at    DOUBLE PRECISION NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    digest        BYTEA NOT NULL UNIQUE,
    tenant        TEXT NOT NULL,
    name          TEXT,
    admin         BOOLEAN NOT NULL DEFAULT FALSE,
    models        TEXT,
    allow_targets TEXT,
    rpm           INTEGER,
    tpm           INTEGER,
    budget_pusd   BIGINT,
    budget_period TEXT NOT NULL DEFAULT 'total',
    created_at    DOUBLE PRECISION NOT NULL,
    revoked_at    DOUBLE PRECISION
);

-- Bumped by every key or tenant change; replicas poll it and reload when it moves.
CREATE TABLE key_revision (id INTEGER PRIMARY KEY, revision BIGINT NOT NULL);
INSERT INTO key_revision VALUES (1, 0);

CREATE TABLE ledger (
    request_id         TEXT PRIMARY KEY,
    ts                 DOUBLE PRECISION NOT NULL,
    tenant             TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    surface            TEXT NOT NULL,
    alias              TEXT,
    experiment         TEXT,
    variant            TEXT,
    target             TEXT,
    region             TEXT,
    status             INTEGER NOT NULL,
    error_class        TEXT,
    attempts           INTEGER NOT NULL,
    cache_hit          BOOLEAN NOT NULL,
    stream             BOOLEAN NOT NULL,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost_pusd          BIGINT,
    pricing            TEXT NOT NULL,
    cache_savings_pusd BIGINT,
    latency_ms         DOUBLE PRECISION,
    upstream_ms        DOUBLE PRECISION,
    ttft_ms            DOUBLE PRECISION
);
CREATE INDEX ledger_ts ON ledger (ts);
CREATE INDEX ledger_tenant_ts ON ledger (tenant, ts);
CREATE INDEX ledger_key_ts ON ledger (key_id, ts);
