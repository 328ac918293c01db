//! The audit trail: one row per run, one row per operation, in the same database as the snapshot.
//!
//! The journal is written as the run goes, not at the end, so a run killed halfway still shows
//! what it did. An acknowledged operation and the snapshot row it advances are committed together
//! ([`Journal::record`]); secrets and tokens are never written here.
//!
//! [`Journal`] is the one store of the journal's tables (`runs`, `operations`) and of the
//! snapshot's writes: nothing else in the program sends SQL to them. Its methods are grouped by
//! job: this file writes runs and operations, `read.rs` answers the `journal` subcommands and the
//! admin listener, `retention.rs` prunes, and `snapshot.rs` advances the snapshot (whose reads,
//! for planning, stay in `sync::snapshot`).

mod ledger;
mod read;
pub mod retention;
mod run;
mod snapshot;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::SqlitePool;

use crate::clock::{SharedClock, timestamp};
use crate::domain::{OpKind, OpStatus, RunStatus, Trigger};
use crate::sync::plan::PlanSummary;
use crate::sync::snapshot::SnapshotUser;

pub use run::{JsonText, OperationRow, Run, RunCounts};

/// The most the journal keeps of one value in an operation's `changes`. A value Pluvo refused
/// can be megabytes (a job title pasted with a whole document); the journal keeps 400 days, and
/// what an auditor needs is which field changed and how it began.
pub const MAX_VALUE_BYTES: usize = 1024;

/// The most the journal keeps of one error text (which can quote a value back).
pub const MAX_ERROR_BYTES: usize = 4 * 1024;

/// `text`, cut to at most `max` bytes at a character boundary, with a marker saying how long it
/// was, so a cut value can never be mistaken for the whole one.
pub fn cap_text(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!(
        "{}… [truncated: {} bytes in all]",
        &text[..end],
        text.len()
    ))
}

/// `value` with every string in it capped at [`MAX_VALUE_BYTES`].
fn cap_values(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(cap_text(text, MAX_VALUE_BYTES).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(cap_values).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| (key.clone(), cap_values(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One operation, ready to be journaled.
#[derive(Debug, Clone, Serialize)]
pub struct OperationRecord {
    pub employee_ref: Option<String>,
    pub kind: OpKind,
    pub target: Option<String>,
    /// `[{field, before, after}]`.
    pub changes: serde_json::Value,
    pub status: OpStatus,
    pub attempts: u32,
    pub error: Option<String>,
    pub duration_ms: u64,
    /// People per document of the call that carried it (the adaptive batch size), for calls
    /// batched that way.
    pub batch_size: Option<u32>,
}

impl OperationRecord {
    /// An operation that succeeded without anything sent yet: no attempts, no time, no error.
    /// Every row the apply and engine stages journal starts here, so the defaults are decided in
    /// one place; [`Self::sent`] and [`Self::ended`] say what else happened.
    pub fn new(
        employee_ref: Option<String>,
        kind: OpKind,
        target: Option<String>,
        changes: serde_json::Value,
    ) -> Self {
        Self {
            employee_ref,
            kind,
            target,
            changes,
            status: OpStatus::Ok,
            attempts: 0,
            error: None,
            duration_ms: 0,
            batch_size: None,
        }
    }

    /// The row of a call that took `attempts` requests and `elapsed`.
    pub fn sent(self, attempts: u32, elapsed: std::time::Duration) -> Self {
        Self {
            attempts,
            duration_ms: elapsed.as_millis() as u64,
            ..self
        }
    }

    /// The row of an operation sent in a batched document of `size` people (0: none was sent).
    pub fn in_batch(self, size: usize) -> Self {
        Self {
            batch_size: u32::try_from(size).ok().filter(|n| *n > 0),
            ..self
        }
    }

    /// The row of an operation that ended with `status` because of `error`.
    pub fn ended(self, status: OpStatus, error: impl Into<String>) -> Self {
        Self {
            status,
            error: Some(error.into()),
            ..self
        }
    }
}

/// The store of the journal's tables and the snapshot's writes; cheap to clone.
#[derive(Debug, Clone)]
pub struct Journal {
    pool: SqlitePool,
    clock: SharedClock,
}

impl Journal {
    pub fn new(pool: SqlitePool, clock: SharedClock) -> Self {
        Self { pool, clock }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub async fn start_run(
        &self,
        run_id: &str,
        trigger: Trigger,
        source: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO runs (id, trigger, started_at, status, source) VALUES (?, ?, ?, 'running', ?)")
            .bind(run_id)
            .bind(trigger.as_str())
            .bind(timestamp(self.clock.now()))
            .bind(source)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records what was read, once the source has been read.
    pub async fn source_read(&self, run_id: &str, fingerprint: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE runs SET source_fingerprint = ? WHERE id = ?")
            .bind(fingerprint)
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records how the run ended: its status, its counts, what it planned and what went wrong.
    pub async fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        counts: &RunCounts,
        plan_summary: Option<&PlanSummary>,
        error_summary: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE runs SET finished_at = ?, status = ?, rows_read = ?, rows_rejected = ?, ops_planned = ?, \
             ops_ok = ?, ops_failed = ?, ops_skipped = ?, plan_summary = ?, error_summary = ? WHERE id = ?",
        )
        .bind(timestamp(self.clock.now()))
        .bind(status.as_str())
        .bind(counts.rows_read as i64)
        .bind(counts.rows_rejected as i64)
        .bind(counts.ops_planned as i64)
        .bind(counts.ops_ok as i64)
        .bind(counts.ops_failed as i64)
        .bind(counts.ops_skipped as i64)
        .bind(plan_summary.and_then(|summary| serde_json::to_string(summary).ok()))
        .bind(error_summary.map(|e| cap_text(e, 8 * MAX_ERROR_BYTES)))
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Journals `operations` and advances the snapshot for `acknowledged` people, atomically.
    pub async fn record(
        &self,
        run_id: &str,
        operations: &[OperationRecord],
        acknowledged: &[&SnapshotUser],
    ) -> Result<(), sqlx::Error> {
        let now = timestamp(self.clock.now());
        let mut tx = self.pool.begin().await?;
        for op in operations {
            sqlx::query(
                "INSERT INTO operations (run_id, employee_ref, kind, target, changes, status, attempts, error, \
                 duration_ms, at, batch_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(run_id)
            .bind(op.employee_ref.as_deref())
            .bind(op.kind.as_str())
            .bind(op.target.as_deref())
            .bind(cap_values(&op.changes).to_string())
            .bind(op.status.as_str())
            .bind(i64::from(op.attempts))
            .bind(op.error.as_deref().map(|e| cap_text(e, MAX_ERROR_BYTES)))
            .bind(i64::try_from(op.duration_ms).unwrap_or(i64::MAX))
            .bind(&now)
            .bind(op.batch_size.map(i64::from))
            .execute(&mut *tx)
            .await?;
        }
        for user in acknowledged {
            snapshot::store(&mut tx, user, run_id, &now).await?;
        }
        tx.commit().await
    }

    /// Records what a run set out to do, once it has planned: if its process dies, the journal
    /// still says how much there was.
    pub async fn planned(
        &self,
        run_id: &str,
        counts: &RunCounts,
        plan_summary: Option<&PlanSummary>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE runs SET rows_read = ?, rows_rejected = ?, ops_planned = ?, plan_summary = ? \
             WHERE id = ?",
        )
        .bind(counts.rows_read as i64)
        .bind(counts.rows_rejected as i64)
        .bind(counts.ops_planned as i64)
        .bind(plan_summary.and_then(|summary| serde_json::to_string(summary).ok()))
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks runs left `running` by a process that died (e.g. `kill -9`) as `aborted`, so they
    /// do not look alive forever. Called by whoever holds the lease, so no live run is touched.
    pub async fn close_orphaned_runs(&self) -> Result<u64, sqlx::Error> {
        self.close_left_running(
            None,
            "the process running it stopped before it finished (killed, or the machine went \
             down); the counts are those of its journaled operations, and the next run did what \
             remained",
        )
        .await
    }

    /// Marks `run_id`, if still `running`, as `aborted`: its process is about to exit without
    /// the run having finished (a shutdown whose grace period ran out).
    pub async fn close_abandoned_run(&self, run_id: &str) -> Result<u64, sqlx::Error> {
        self.close_left_running(
            Some(run_id),
            "aborted by shutdown: a call was still under way when the grace period ran out; the \
             counts are those of its journaled operations, and the next run does what remained",
        )
        .await
    }

    /// Closes runs still `running` (all, or only `run_id`) as `aborted`, their counts rebuilt
    /// from the operations they journaled: what Pluvo acknowledged is in the journal even when
    /// the run never got to write its totals.
    async fn close_left_running(
        &self,
        run_id: Option<&str>,
        why: &str,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'aborted', finished_at = ?1, \
             ops_ok = (SELECT COUNT(*) FROM operations o WHERE o.run_id = runs.id AND o.status = 'ok'), \
             ops_failed = (SELECT COUNT(*) FROM operations o WHERE o.run_id = runs.id AND o.status = 'failed'), \
             ops_skipped = (SELECT COUNT(*) FROM operations o WHERE o.run_id = runs.id AND o.status = 'skipped'), \
             error_summary = CASE WHEN error_summary IS NULL THEN ?2 ELSE ?2 || char(10) || error_summary END \
             WHERE status = 'running' AND (?3 IS NULL OR id = ?3)",
        )
        .bind(timestamp(self.clock.now()))
        .bind(why)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Journal rows for the tests of what reads them (retention, the admin listener).

    use sqlx::SqlitePool;

    pub(crate) async fn insert_run(pool: &SqlitePool, id: &str, started_at: &str, status: &str) {
        let finished = (status != "running").then_some(started_at);
        sqlx::query(
            "INSERT INTO runs (id, trigger, started_at, finished_at, status)
             VALUES (?1, 'schedule', ?2, ?3, ?4)",
        )
        .bind(id)
        .bind(started_at)
        .bind(finished)
        .bind(status)
        .execute(pool)
        .await
        .expect("insert run");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::Categories;
    use crate::domain::{Email, EmployeeRef, Groups, Roles};

    async fn journal() -> (Journal, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("j.db")).await.unwrap();
        let clock = ManualClock::new("2026-11-23T01:00:00Z".parse().unwrap());
        (Journal::new(pool, Arc::new(clock)), dir)
    }

    fn user(employee: &str) -> SnapshotUser {
        SnapshotUser {
            employee_ref: EmployeeRef::parse(employee).unwrap(),
            pluvo_id: Some("3f1c0a52-0000-4000-8000-000000000001".into()),
            email: Email::parse("a@example.com").unwrap(),
            name: "A".into(),
            roles: Roles::new(),
            language: None,
            archived: false,
            categories: Categories::new(),
            groups: Groups::new(),
        }
    }

    #[tokio::test]
    async fn an_operation_and_its_snapshot_row_commit_together() {
        let (journal, _dir) = journal().await;
        journal
            .start_run("run-1", Trigger::Cli, "csv:x")
            .await
            .unwrap();
        let op = OperationRecord {
            employee_ref: Some("007".into()),
            kind: OpKind::Create,
            target: None,
            changes: serde_json::json!([{"field": "name", "before": null, "after": "A"}]),
            status: OpStatus::Ok,
            attempts: 1,
            error: None,
            duration_ms: 12,
            batch_size: None,
        };
        journal
            .record("run-1", &[op], &[&user("007")])
            .await
            .unwrap();
        journal
            .finish_run(
                "run-1",
                RunStatus::Ok,
                &RunCounts {
                    ops_ok: 1,
                    ..RunCounts::default()
                },
                None,
                None,
            )
            .await
            .unwrap();

        let snapshot = crate::sync::snapshot::load(journal.pool()).await.unwrap();
        assert_eq!(snapshot.len(), 1);
        let ops = journal.operations_of_person("007").await.unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].changes[0]["after"], "A");
        let run = journal.run("run").await.unwrap().unwrap();
        assert_eq!((run.status.as_str(), run.counts.ops_ok), ("ok", 1));
        let failures: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM failures")
            .fetch_one(journal.pool())
            .await
            .unwrap();
        assert_eq!(failures, 0);
    }

    #[tokio::test]
    async fn a_failed_transaction_leaves_neither_journal_nor_snapshot() {
        let (journal, _dir) = journal().await;
        // No run row: the foreign key refuses the operation, so the snapshot must not move.
        let op = OperationRecord {
            employee_ref: Some("007".into()),
            kind: OpKind::Create,
            target: None,
            changes: serde_json::json!([]),
            status: OpStatus::Ok,
            attempts: 1,
            error: None,
            duration_ms: 1,
            batch_size: None,
        };
        assert!(
            journal
                .record("missing-run", &[op], &[&user("007")])
                .await
                .is_err()
        );
        assert!(
            crate::sync::snapshot::load(journal.pool())
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// A 50 MB value Pluvo refused once filled a 56 MB journal kept for 400 days.
    #[tokio::test]
    async fn huge_values_and_errors_are_stored_capped_and_marked() {
        let (journal, _dir) = journal().await;
        journal
            .start_run("run-1", Trigger::Cli, "csv:x")
            .await
            .unwrap();
        let huge = "é".repeat(25 * 1024 * 1024);
        let op = OperationRecord {
            employee_ref: Some("007".into()),
            kind: OpKind::Categories,
            target: None,
            changes: serde_json::json!([{"field": "job_title", "before": "Chef", "after": huge}]),
            status: OpStatus::Failed,
            attempts: 1,
            error: Some(format!("Pluvo refused '{huge}'")),
            duration_ms: 1,
            batch_size: None,
        };
        journal.record("run-1", &[op], &[]).await.unwrap();
        let ops = journal.operations_of_person("007").await.unwrap();
        let after = ops[0].changes[0]["after"].as_str().unwrap();
        assert!(after.len() <= MAX_VALUE_BYTES + 50, "{}", after.len());
        assert!(after.starts_with("éé"));
        assert!(
            after.ends_with("[truncated: 52428800 bytes in all]"),
            "{after:.60}"
        );
        assert_eq!(
            ops[0].changes[0]["before"], "Chef",
            "short values are kept whole"
        );
        let error = ops[0].error.as_deref().unwrap();
        assert!(error.len() <= MAX_ERROR_BYTES + 50, "{}", error.len());
        assert!(error.starts_with("Pluvo refused 'éé") && error.contains("[truncated: "));
        let size: i64 =
            sqlx::query_scalar("SELECT SUM(LENGTH(changes) + LENGTH(error)) FROM operations")
                .fetch_one(journal.pool())
                .await
                .unwrap();
        assert!(size < 8 * 1024, "{size} bytes stored");
    }

    fn op(status: OpStatus) -> OperationRecord {
        OperationRecord {
            employee_ref: Some("007".into()),
            kind: OpKind::Create,
            target: None,
            changes: serde_json::json!([]),
            status,
            attempts: 1,
            error: None,
            duration_ms: 1,
            batch_size: None,
        }
    }

    /// A run whose process died keeps what it journaled: closing it counts those operations,
    /// and keeps what it had planned.
    #[tokio::test]
    async fn orphaned_runs_are_closed_as_aborted_with_their_journaled_counts() {
        let (journal, _dir) = journal().await;
        journal
            .start_run("run-1", Trigger::Schedule, "csv:x")
            .await
            .unwrap();
        let planned = RunCounts {
            rows_read: 9,
            ops_planned: 7,
            ..RunCounts::default()
        };
        journal.planned("run-1", &planned, None).await.unwrap();
        let ops = [
            op(OpStatus::Ok),
            op(OpStatus::Ok),
            op(OpStatus::Ok),
            op(OpStatus::Failed),
            op(OpStatus::Skipped),
        ];
        journal.record("run-1", &ops, &[]).await.unwrap();
        journal
            .start_run("run-2", Trigger::Schedule, "csv:x")
            .await
            .unwrap();
        assert_eq!(journal.close_abandoned_run("run-2").await.unwrap(), 1);
        assert_eq!(journal.close_orphaned_runs().await.unwrap(), 1);
        let run = journal.run("run-1").await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Aborted);
        assert_eq!(
            (
                run.counts.ops_ok,
                run.counts.ops_failed,
                run.counts.ops_skipped
            ),
            (3, 1, 1),
            "{run:#?}"
        );
        assert_eq!((run.counts.rows_read, run.counts.ops_planned), (9, 7));
        assert!(run.finished_at.is_some());
        assert!(run.error_summary.unwrap().contains("journaled operations"));
        let abandoned = journal.run("run-2").await.unwrap().unwrap();
        assert_eq!(abandoned.status, RunStatus::Aborted);
        assert!(abandoned.error_summary.unwrap().contains("grace period"));
    }
}
