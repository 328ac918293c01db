-- pluvo-sync's one database: what Pluvo last acknowledged (the snapshot), the journal of every
-- run and operation, and the lease that keeps two runs from overlapping.
--
-- Timestamps are RFC 3339 UTC text, so they sort and compare as strings and read well in sqlite3.
-- JSON columns (roles, categories, groups, changes) can be queried with SQLite's json_each().

-- One row per run of the pipeline.
CREATE TABLE runs (
    id                 TEXT PRIMARY KEY,           -- UUID; also the tracing span's run_id
    trigger            TEXT NOT NULL,              -- cli | schedule | http | startup
    started_at         TEXT NOT NULL,
    finished_at        TEXT,
    status             TEXT NOT NULL CHECK (status IN ('running', 'ok', 'partial', 'failed', 'aborted')),
    source             TEXT,                       -- e.g. csv:/data/export.csv (never a secret)
    source_fingerprint TEXT,                       -- SHA-256 of what was read
    rows_read          INTEGER NOT NULL DEFAULT 0,
    rows_rejected      INTEGER NOT NULL DEFAULT 0,
    ops_planned        INTEGER NOT NULL DEFAULT 0,
    ops_ok             INTEGER NOT NULL DEFAULT 0,
    ops_failed         INTEGER NOT NULL DEFAULT 0,
    ops_skipped        INTEGER NOT NULL DEFAULT 0,
    plan_summary       TEXT,                       -- JSON counts by operation kind
    error_summary      TEXT                        -- what went wrong, for humans
);
CREATE INDEX runs_started_at ON runs (started_at);

-- One row per operation attempted (or deliberately not attempted) in a run.
CREATE TABLE operations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    employee_ref TEXT,                             -- NULL only for a rejected record without a readable ref
    kind         TEXT NOT NULL,                    -- create | adopt | update | archive | unarchive | categories
                                                   -- | group_add | group_remove | rejected_record | held
    target       TEXT,                             -- the group ref for group_add / group_remove
    changes      TEXT NOT NULL DEFAULT '[]',       -- JSON [{field, before, after}]
    status       TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'skipped', 'rejected')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    at           TEXT NOT NULL
);
CREATE INDEX operations_run ON operations (run_id);
CREATE INDEX operations_person ON operations (employee_ref, id);

-- What Pluvo acknowledged, per person. Advanced only in the same transaction as the journal row of
-- the acknowledged operation, so a crash can at worst repeat an (idempotent) call, never skip one.
CREATE TABLE snapshot_users (
    employee_ref   TEXT PRIMARY KEY,
    pluvo_id       TEXT,
    email          TEXT NOT NULL,
    name           TEXT NOT NULL,
    roles          TEXT NOT NULL DEFAULT '[]',     -- JSON array of Role
    language       TEXT,
    archived       INTEGER NOT NULL DEFAULT 0,
    categories     TEXT NOT NULL DEFAULT '{}',     -- JSON {category_ref: {type, value}}
    groups         TEXT NOT NULL DEFAULT '[]',     -- JSON array of managed group refs
    content_hash   TEXT NOT NULL,                  -- SHA-256 of the fields above, to spot drift cheaply
    first_seen_run TEXT NOT NULL,
    last_seen_run  TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- At most one run at a time, across processes. A holder that dies leaves a row whose expiry
-- passes; the next taker may then steal it.
CREATE TABLE run_lease (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    run_id      TEXT,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

-- Audit views -------------------------------------------------------------------------------------

-- The most recent run.
CREATE VIEW last_run AS
SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1;

-- Everything that happened to each person: SELECT * FROM person_history WHERE employee_ref = '00042';
CREATE VIEW person_history AS
SELECT o.employee_ref, o.at, o.run_id, r.trigger, o.kind, o.target, o.status, o.changes,
       o.attempts, o.error
FROM operations o JOIN runs r ON r.id = o.run_id
ORDER BY o.employee_ref, o.id;

-- Every failed operation and rejected record, newest first.
CREATE VIEW failures AS
SELECT o.at, o.run_id, o.employee_ref, o.kind, o.target, o.status, o.attempts, o.error
FROM operations o
WHERE o.status IN ('failed', 'rejected')
ORDER BY o.id DESC;
