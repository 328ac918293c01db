-- The assignment ledger: what training rules gave whom, so the plan diffs against what Pluvo
-- acknowledged (never a read-back: training membership is asynchronous) and `journal person` can
-- say why someone has a training, since when, and through which rule. One row per grant; a row
-- is ended (never deleted) when the grant ends, so the history stays for auditors.
CREATE TABLE assignment_ledger (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    employee_ref      TEXT NOT NULL,
    target_kind       TEXT NOT NULL CHECK (target_kind IN ('training', 'offer_event')),
    target_ref        TEXT NOT NULL,                 -- training ref or offer event ref
    role              TEXT NOT NULL DEFAULT '',      -- PARTICIPANT | TRAINER | MENTOR; '' for an offer event
    rule_name         TEXT NOT NULL,
    rule_version      TEXT NOT NULL,                 -- hash of the rule's definition when it granted this
    acknowledged_at   TEXT NOT NULL,
    run_id            TEXT NOT NULL,                 -- the run that granted it; no foreign key: the ledger outlives journal pruning
    linked_via_object INTEGER NOT NULL DEFAULT 0,    -- Pluvo reported access through a group or enrolment
    ended_at          TEXT,
    ended_run_id      TEXT,
    ended_reason      TEXT                           -- e.g. unmatched (remove = when_unmatched)
);

-- At most one live grant per person and target; ended rows are history.
CREATE UNIQUE INDEX assignment_ledger_live
    ON assignment_ledger (employee_ref, target_kind, target_ref, role)
    WHERE ended_at IS NULL;

CREATE INDEX assignment_ledger_person ON assignment_ledger (employee_ref);
