//! Reading the journal back: for the `journal` subcommands (which only format), and for the
//! admin listener's `/v1/runs/latest`, `/readyz` and `/metrics`.

use super::{Journal, OperationRow, Run};
use crate::domain::RunStatus;

/// Column lists as macros, so that every query stays a `&'static str` (sqlx refuses built strings).
macro_rules! run_columns {
    () => {
        "id, trigger, started_at, finished_at, status, source, source_fingerprint, rows_read, \
         rows_rejected, ops_planned, ops_ok, ops_failed, ops_skipped, plan_summary, error_summary"
    };
}
macro_rules! op_columns {
    () => {
        "id, run_id, employee_ref, kind, target, changes, status, attempts, error, duration_ms, at"
    };
}

impl Journal {
    /// The newest runs first.
    pub async fn runs(&self, limit: u32) -> Result<Vec<Run>, sqlx::Error> {
        sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
    }

    /// One run by id, or by a unique prefix of its id (as `git` does for commits).
    pub async fn run(&self, id_or_prefix: &str) -> Result<Option<Run>, sqlx::Error> {
        let mut runs: Vec<Run> = sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE id = ?1 OR id LIKE ?2 ESCAPE '\\' ORDER BY id = ?1 DESC LIMIT 2"
        ))
        .bind(id_or_prefix)
        .bind(format!(
            "{}%",
            id_or_prefix.replace('%', "\\%").replace('_', "\\_")
        ))
        .fetch_all(&self.pool)
        .await?;
        // Two matches are ambiguous, unless the first is the whole id.
        if runs.len() == 1 || runs.first().is_some_and(|first| first.id == id_or_prefix) {
            Ok(Some(runs.swap_remove(0)))
        } else {
            Ok(None)
        }
    }

    pub async fn latest_run(&self) -> Result<Option<Run>, sqlx::Error> {
        Ok(self.runs(1).await?.into_iter().next())
    }

    pub async fn operations_of_run(&self, run_id: &str) -> Result<Vec<OperationRow>, sqlx::Error> {
        sqlx::query_as(concat!(
            "SELECT ",
            op_columns!(),
            " FROM operations WHERE run_id = ? ORDER BY id"
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn operations_of_person(
        &self,
        employee_ref: &str,
    ) -> Result<Vec<OperationRow>, sqlx::Error> {
        sqlx::query_as(concat!(
            "SELECT ",
            op_columns!(),
            " FROM operations WHERE employee_ref = ? ORDER BY id"
        ))
        .bind(employee_ref)
        .fetch_all(&self.pool)
        .await
    }

    /// Whether the database answers at all.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// How the latest `limit` finished runs ended, newest first.
    pub async fn latest_finished_statuses(
        &self,
        limit: u32,
    ) -> Result<Vec<RunStatus>, sqlx::Error> {
        let statuses: Vec<String> = sqlx::query_scalar(
            "SELECT status FROM runs WHERE status <> 'running'
             ORDER BY started_at DESC, rowid DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        statuses
            .into_iter()
            .map(|status| {
                RunStatus::try_from(status).map_err(|error| sqlx::Error::ColumnDecode {
                    index: "status".to_owned(),
                    source: Box::new(error),
                })
            })
            .collect()
    }

    /// How many runs the journal holds, by status (as journaled).
    pub async fn runs_by_status(&self) -> Result<Vec<(String, u64)>, sqlx::Error> {
        sqlx::query_as("SELECT status, COUNT(*) FROM runs GROUP BY status")
            .fetch_all(&self.pool)
            .await
    }

    /// When the latest run that did its job (`ok` or `partial`) finished, as journaled.
    pub async fn last_success_at(&self) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT MAX(finished_at) FROM runs WHERE status IN ('ok', 'partial')")
            .fetch_one(&self.pool)
            .await
    }
}
