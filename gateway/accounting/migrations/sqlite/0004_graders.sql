-- Grader outcomes, beside the ledger record of the graded request (like feedback): one score
-- per (request, grader); a second grade replaces the first. Never any prompt or answer text.
-- source: "live" (sampled traffic, graded in the gateway) or "replay" (strata ab replay).
CREATE TABLE grades (
    request_id TEXT NOT NULL,
    grader     TEXT NOT NULL,
    score      REAL NOT NULL,
    detail     TEXT,
    source     TEXT NOT NULL,
    ts         REAL NOT NULL,
    PRIMARY KEY (request_id, grader)
);
CREATE INDEX grades_grader_ts ON grades (grader, ts);
-- Calls whose experiment arm was forced by an admin (x-strata-arm, as replay sends): they
-- count for outcomes but not for the sample-ratio check, which is about assignment.
CREATE TABLE forced_arms (
    request_id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    variant    TEXT NOT NULL,
    ts         REAL NOT NULL
);
