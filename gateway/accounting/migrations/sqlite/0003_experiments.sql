-- Experiments as shared state (strata ab create …; strata.yaml experiments seed it). Every
-- replica keeps a snapshot of this table and reloads it when experiment_revision moves; every
-- change bumps the row's version too, so a ramp step is a compare-and-set on it.
CREATE TABLE experiments (
    name          TEXT PRIMARY KEY,
    alias         TEXT NOT NULL,
    arms          TEXT NOT NULL,           -- JSON: arm name -> [target, ...] (a fallback chain)
    control       TEXT NOT NULL,           -- arm names
    candidate     TEXT NOT NULL,
    split         TEXT NOT NULL,           -- JSON: arm -> weight at creation
    weights       TEXT NOT NULL,           -- JSON: arm -> weight now (paused/stopped: control)
    sticky_by     TEXT NOT NULL,           -- key | user | request
    salt          TEXT NOT NULL,
    metric        TEXT NOT NULL,           -- feedback | grader:NAME
    guardrails    TEXT NOT NULL,           -- JSON list of guardrails (stats.Guardrail syntax)
    min_samples   INTEGER NOT NULL,
    alpha         REAL NOT NULL,
    status        TEXT NOT NULL,           -- running|paused|stopped|promoted|rolled_back
    winner        TEXT,                    -- the arm promoted
    ramp          TEXT,                    -- JSON list: the candidate share per step, or NULL
    ramp_step     INTEGER,                 -- index into ramp of the step in force
    step_every_s  REAL,
    step_started  REAL,
    source        TEXT NOT NULL,           -- api | config
    seed_hash     TEXT,                    -- of the strata.yaml section it was seeded from
    created_at    REAL NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    REAL NOT NULL,
    version       BIGINT NOT NULL
);
CREATE INDEX experiments_alias ON experiments (alias, created_at);
-- One running or paused experiment per alias, even when two replicas create at once.
CREATE UNIQUE INDEX experiments_one_active ON experiments (alias)
    WHERE status IN ('running', 'paused');

-- The decision record: one row per create, weight change, pause, step, promotion, rollback,
-- with who made it and the statistics it was made on.
CREATE TABLE experiment_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment  TEXT NOT NULL,
    ts          REAL NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,             -- tenant/key id, or gateway:ramp
    status      TEXT NOT NULL,             -- the experiment's status after it
    weights     TEXT NOT NULL,             -- JSON, after it
    version     BIGINT NOT NULL,           -- the experiment's version after it
    reason      TEXT,
    evidence    TEXT                       -- JSON: the report at the time, or null
);
CREATE INDEX experiment_events_experiment ON experiment_events (experiment, id);

-- Bumped by every experiment change; replicas poll it and reload when it moves.
CREATE TABLE experiment_revision (id INTEGER PRIMARY KEY, revision BIGINT NOT NULL);
INSERT INTO experiment_revision VALUES (1, 0);
