//! What the engine itself writes to the journal besides the operations `apply` sends: rejected
//! records, what the plan held back, and the end of the run (with retention and run metrics).

use std::time::Instant;

use crate::domain::{OpKind, OpStatus, RunStatus};
use crate::metrics::names;
use crate::sync::journal::OperationRecord;
use crate::sync::mapping::Mapped;
use crate::sync::plan::Plan;

use super::{Engine, RunReport};

impl Engine {
    /// Rejected records go into the journal so an auditor sees every skipped row and why.
    pub(super) async fn journal_rejected(&self, run_id: &str, mapped: &Mapped) {
        if mapped.rejected.is_empty() {
            return;
        }
        self.metrics.add(
            names::REJECTED_RECORDS_TOTAL,
            vec![],
            mapped.rejected.len() as f64,
        );
        let ops: Vec<OperationRecord> = mapped
            .rejected
            .iter()
            .map(|rejected| {
                // The reason can quote the bad value (an e-mail address), so it goes to the
                // journal and to debug logs only; people are logged by ref.
                tracing::warn!(
                    location = %rejected.location,
                    employee_ref = rejected.employee_ref.as_deref(),
                    field = rejected.field.as_deref(),
                    "record rejected; the reason is in the journal"
                );
                tracing::debug!(location = %rejected.location, reason = %rejected.reason, "rejection reason");
                OperationRecord::new(
                    rejected.employee_ref.clone(),
                    OpKind::RejectedRecord,
                    rejected.field.clone(),
                    serde_json::json!([]),
                )
                .ended(OpStatus::Rejected, rejected.to_string())
            })
            .collect();
        if let Err(error) = self.journal.record(run_id, &ops, &[]).await {
            tracing::error!(%error, "cannot journal rejected records");
        }
    }

    /// What the plan holds back for the operator to decide goes into the journal, where an
    /// auditor looks for why someone was not archived or created: each archive the guard
    /// withheld (with why the person would have gone), and both numbers of a suspected
    /// employee-number change, with the advice, which also goes into the report.
    pub(super) async fn journal_held_by_plan(
        &self,
        run_id: &str,
        plan: &Plan,
        report: &mut RunReport,
    ) {
        let mut ops = Vec::new();
        if let Some(withheld) = &plan.withheld_archives {
            for person in &withheld.people {
                ops.push(
                    OperationRecord::new(
                        Some(person.employee_ref.to_string()),
                        OpKind::Archive,
                        None,
                        serde_json::json!([
                            {"field": "archived", "before": false, "after": true, "why": person.why}
                        ]),
                    )
                    .ended(
                        OpStatus::Skipped,
                        format!("withheld by the archive guard: {}", withheld.reason),
                    ),
                );
            }
        }
        for change in &plan.suspected_ref_changes {
            tracing::warn!(
                absent_ref = %change.absent_ref,
                new_ref = %change.new_ref,
                "suspected employee-number change: both numbers held"
            );
            let advice = change.advice();
            for (employee_ref, other) in [
                (&change.absent_ref, &change.new_ref),
                (&change.new_ref, &change.absent_ref),
            ] {
                ops.push(
                    OperationRecord::new(
                        Some(employee_ref.to_string()),
                        OpKind::SuspectedRefChange,
                        Some(other.to_string()),
                        serde_json::json!([]),
                    )
                    .ended(OpStatus::Rejected, advice.clone()),
                );
            }
            report.errors.push(advice);
        }
        if !ops.is_empty()
            && let Err(error) = self.journal.record(run_id, &ops, &[]).await
        {
            tracing::error!(%error, "cannot journal what the plan held back");
        }
    }

    pub(super) async fn finish(&self, mut report: RunReport, started: Instant) -> RunReport {
        report.duration_ms = started.elapsed().as_millis() as u64;
        let error_summary = (!report.errors.is_empty()).then(|| report.errors.join("\n"));
        if let Err(error) = self
            .journal
            .finish_run(
                &report.run_id,
                report.status,
                &report.counts,
                report.summary.as_ref(),
                error_summary.as_deref(),
            )
            .await
        {
            tracing::error!(%error, "cannot record the end of the run");
        }
        let cutoff = crate::sync::journal::retention::cutoff(
            self.clock.now(),
            self.settings.journal.retention_days,
        );
        match self.journal.prune(cutoff).await {
            Ok(pruned) if pruned.runs > 0 => {
                tracing::info!(
                    runs = pruned.runs,
                    operations = pruned.operations,
                    "pruned the journal"
                )
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot prune the journal"),
        }
        let status = report.status.as_str().to_owned();
        self.metrics
            .inc(names::RUNS_TOTAL, vec![("status", status.clone())]);
        self.metrics.set(
            names::RUN_DURATION,
            vec![("status", status)],
            report.duration_ms as f64 / 1000.0,
        );
        if matches!(report.status, RunStatus::Ok | RunStatus::Partial) {
            self.metrics.set(
                names::LAST_SUCCESS_TIMESTAMP,
                vec![],
                self.clock.now().timestamp() as f64,
            );
        }
        if matches!(report.status, RunStatus::Failed | RunStatus::Aborted) {
            let reason = report
                .errors
                .first()
                .map(|e| crate::telemetry::redact_emails(e));
            tracing::error!(status = %report.status, reason = reason.as_deref(), "run did not complete");
        }
        let done = report.acknowledged;
        tracing::info!(
            status = %report.status,
            duration_ms = report.duration_ms,
            created = done.created,
            updated = done.updated,
            archived = done.archived,
            unarchived = done.unarchived,
            ops_ok = report.counts.ops_ok,
            ops_failed = report.counts.ops_failed,
            ops_skipped = report.counts.ops_skipped,
            rejected = report.counts.rows_rejected,
            "run finished"
        );
        report
    }
}
