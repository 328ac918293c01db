//! Journal retention: runs, and their operations, older than the retention period are deleted.
//!
//! The journal is the audit trail, so it is kept for `journal.retention_days` (default 400: a
//! year plus slack for an annual audit) and then **pruned**: after every run, and on demand with
//! `pluvo-sync journal prune`. A run's age is its `started_at`. A run still `running` is never
//! pruned, however old: it may be the one in progress, and if it is a crashed run's leftover,
//! the engine is the one to close it. The snapshot is not touched; it is Pluvo's state, not
//! history.

use chrono::{DateTime, Utc};

use super::Journal;
use crate::clock::timestamp;

pub const DEFAULT_RETENTION_DAYS: u32 = 400;

/// `pluvo-sync journal prune` deletes runs younger than this only with `--yes`: a typo such as
/// `--older-than-days 0` would otherwise erase the whole audit trail in one go.
pub const MIN_DAYS_WITHOUT_CONFIRMATION: u32 = 30;

/// What one prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    pub runs: u64,
    pub operations: u64,
}

/// The instant before which runs are pruned, `days` before `now`.
pub fn cutoff(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - chrono::Duration::days(i64::from(days))
}

impl Journal {
    /// What [`Journal::prune`] would delete for `older_than`, deleting nothing.
    pub async fn count_prunable(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<PruneReport, sqlx::Error> {
        let (runs, operations): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM((SELECT COUNT(*) FROM operations o WHERE o.run_id = r.id)), 0)
         FROM runs r WHERE r.started_at < ?1 AND r.status <> 'running'",
    )
    .bind(timestamp(older_than))
    .fetch_one(&self.pool)
    .await?;
        Ok(PruneReport {
            runs: u64::try_from(runs).unwrap_or(0),
            operations: u64::try_from(operations).unwrap_or(0),
        })
    }

    /// Deletes finished runs that started before `older_than`, with their operations, in one
    /// transaction.
    ///
    /// Operations are deleted explicitly rather than left to `ON DELETE CASCADE`, so the result does
    /// not depend on the connection having `PRAGMA foreign_keys` on.
    #[tracing::instrument(skip_all, fields(older_than = %timestamp(older_than)), err)]
    pub async fn prune(&self, older_than: DateTime<Utc>) -> Result<PruneReport, sqlx::Error> {
        let cutoff = timestamp(older_than);
        let mut tx = self.pool.begin().await?;
        let operations = sqlx::query(
            "DELETE FROM operations WHERE run_id IN
             (SELECT id FROM runs WHERE started_at < ?1 AND status <> 'running')",
        )
        .bind(&cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let runs = sqlx::query("DELETE FROM runs WHERE started_at < ?1 AND status <> 'running'")
            .bind(&cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        let report = PruneReport { runs, operations };
        // Callers log what matters to them (the engine only when something went); this is detail.
        tracing::debug!(report.runs, report.operations, "journal pruned");
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use sqlx::SqlitePool;

    use super::*;
    use crate::service::lease::testing as db;
    use crate::sync::journal::testing::insert_run;

    async fn insert_operations(pool: &SqlitePool, run_id: &str, count: usize) {
        for i in 0..count {
            sqlx::query(
                "INSERT INTO operations (run_id, employee_ref, kind, status, at)
                 VALUES (?1, ?2, 'update', 'ok', '2026-01-01T00:00:00Z')",
            )
            .bind(run_id)
            .bind(format!("{i:05}"))
            .execute(pool)
            .await
            .unwrap();
        }
    }

    async fn ids(pool: &SqlitePool, sql: &'static str) -> Vec<String> {
        sqlx::query_scalar(sql).fetch_all(pool).await.unwrap()
    }

    #[tokio::test]
    async fn prunes_old_finished_runs_with_their_operations_and_keeps_the_rest() {
        // Cascading off, as on a connection that never set the pragma: the explicit delete must
        // still leave no orphans.
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open_with(&dir.path().join("pluvo-sync.db"), false).await;
        insert_run(&pool, "old-ok", "2025-01-10T02:30:00Z", "ok").await;
        insert_run(&pool, "old-failed", "2025-01-11T02:30:00Z", "failed").await;
        insert_run(&pool, "old-running", "2025-01-12T02:30:00Z", "running").await;
        insert_run(&pool, "edge", "2025-02-01T00:00:00Z", "ok").await;
        insert_run(&pool, "new", "2026-03-01T02:30:00Z", "partial").await;
        insert_operations(&pool, "old-ok", 3).await;
        insert_operations(&pool, "old-failed", 2).await;
        insert_operations(&pool, "old-running", 1).await;
        insert_operations(&pool, "edge", 1).await;
        insert_operations(&pool, "new", 4).await;
        let journal = Journal::new(pool.clone(), std::sync::Arc::new(crate::clock::SystemClock));

        let now = Utc.with_ymd_and_hms(2026, 3, 8, 0, 0, 0).single().unwrap();
        let older_than = cutoff(now, DEFAULT_RETENTION_DAYS);
        assert_eq!(timestamp(older_than), "2025-02-01T00:00:00Z");
        let would = journal.count_prunable(older_than).await.unwrap();
        let report = journal.prune(older_than).await.unwrap();
        assert_eq!(would, report, "count says what prune then deletes");
        assert_eq!(
            report,
            PruneReport {
                runs: 2,
                operations: 5
            }
        );
        assert_eq!(
            ids(&pool, "SELECT id FROM runs ORDER BY started_at").await,
            ["old-running", "edge", "new"],
            "the cutoff itself is kept, and a running run is never pruned"
        );
        assert_eq!(
            ids(
                &pool,
                "SELECT DISTINCT run_id FROM operations ORDER BY run_id"
            )
            .await,
            ["edge", "new", "old-running"]
        );

        assert_eq!(
            journal.prune(older_than).await.unwrap(),
            PruneReport::default(),
            "pruning again finds nothing"
        );
    }
}
