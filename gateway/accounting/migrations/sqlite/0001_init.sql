-- Keys, tenants and the usage ledger. Money is integer pico-USD (1e-12 USD): sums are exact.
CREATE TABLE tenants (
    name          TEXT PRIMARY KEY,
    budget_pusd   INTEGER,
    budget_period TEXT NOT NULL DEFAULT 'total',
    rpm           INTEGER,
    tpm           INTEGER,
    created_at    REAL NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    digest        BLOB NOT NULL UNIQUE,
    tenant        TEXT NOT NULL,
    name          TEXT,
    admin         INTEGER NOT NULL DEFAULT 0,
    models        TEXT,
    allow_targets TEXT,
    rpm           INTEGER,
    tpm           INTEGER,
    budget_pusd   INTEGER,
    budget_period TEXT NOT NULL DEFAULT 'total',
    created_at    REAL NOT NULL,
    revoked_at    REAL
);

-- Bumped by every key or tenant change; replicas poll it and reload when it moves.
CREATE TABLE key_revision (id INTEGER PRIMARY KEY, revision INTEGER NOT NULL);
INSERT INTO key_revision VALUES (1, 0);

CREATE TABLE ledger (
    request_id         TEXT PRIMARY KEY,
    ts                 REAL NOT NULL,
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
    cache_hit          INTEGER NOT NULL,
    stream             INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_pusd          INTEGER,
    pricing            TEXT NOT NULL,
    cache_savings_pusd INTEGER,
    latency_ms         REAL,
    upstream_ms        REAL,
    ttft_ms            REAL
);
CREATE INDEX ledger_ts ON ledger (ts);
CREATE INDEX ledger_tenant_ts ON ledger (tenant, ts);
CREATE INDEX ledger_key_ts ON ledger (key_id, ts);
