-- Prompt and answer text of calls on routes with store_bodies: true (nowhere else: the ledger
-- keeps no text). What `strata feedback export` turns into preference pairs with the ratings.
CREATE TABLE bodies (
    request_id    TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL,
    alias         TEXT,
    variant       TEXT,
    prompt        TEXT NOT NULL,
    prompt_sha256 TEXT NOT NULL,
    answer        TEXT NOT NULL,
    ts            REAL NOT NULL
);
CREATE INDEX bodies_alias_ts ON bodies (alias, ts);
