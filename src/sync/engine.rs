//! One run of the pipeline, start to finish: read → map → plan → apply → journal.
//!
//! `pluvo-sync sync`, the scheduler and the HTTP trigger all call the same
//! [`Engine`]; nothing else runs the pipeline.

use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::domain::{OpKind, OpStatus, RunStatus, Trigger};
use crate::metrics::{Metrics, names};
use crate::pluvo::{PluvoClient, PluvoError, SendFence};
use crate::service::lease::LeaseGuard;
use crate::settings::Settings;
use crate::sync::apply::{Acknowledged, Applier, ChoiceOptions};
use crate::sync::journal::{Journal, OperationRecord, RunTotals};
use crate::sync::mapping::Mapped;
use crate::sync::plan::{NamedArchive, Plan, PlanSummary, WithheldArchives};
use crate::sync::snapshot::{Snapshot, SnapshotError, Tenant};
use crate::sync::source::{RecordError, SourceError};

/// Everything a finished run's status is decided from; see [`run_status`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunFacts {
    /// A stop came while work remained (calls not sent or not repeated because of it).
    pub interrupted: bool,
    /// Operations Pluvo acknowledged.
    pub acknowledged: u64,
    /// Operations Pluvo refused for the item's own reasons (a conflict, an invalid value).
    pub refused: u64,
    /// Operations that failed for reasons not the item's own: transport, credentials, the
    /// schema, the journal.
    pub systemic: u64,
    pub rows_rejected: u64,
    /// The plan held people back for a person to look at: archives withheld by the guard, or
    /// suspected employee-number changes.
    pub plan_held_back: bool,
}

/// How a run that got as far as applying its plan ended. (A run that cannot read its source or
/// plan is `failed` before this is asked.)
///
/// - `aborted`: stopped with work remaining; the next run does it.
/// - `failed`: something systemic went wrong and nothing at all got through, e.g. no token, or
///   every request failing in transport. The service is not doing its job.
/// - `partial`: some work was not done for reasons of its own (people refused by Pluvo, rows
///   rejected, archives withheld, some calls lost); the rest was. One person's unresolved
///   conflict night after night is `partial`, never `failed`.
/// - `ok`: everything planned was acknowledged.
pub fn run_status(facts: &RunFacts) -> RunStatus {
    if facts.interrupted {
        RunStatus::Aborted
    } else if facts.systemic > 0 && facts.acknowledged == 0 {
        RunStatus::Failed
    } else if facts.systemic > 0
        || facts.refused > 0
        || facts.rows_rejected > 0
        || facts.plan_held_back
    {
        RunStatus::Partial
    } else {
        RunStatus::Ok
    }
}

/// Why a run could not even start, or could not plan.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Pluvo(#[from] PluvoError),
}

/// Choices made per run rather than per deployment.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Lift the archive guard for this run (`--allow-mass-archive`).
    pub allow_mass_archive: bool,
    /// Show a progress bar (interactive `sync` on a terminal).
    pub progress: bool,
}

/// Read, mapped and planned, but nothing sent: what `plan` prints and `sync` applies.
#[derive(Debug)]
pub struct Prepared {
    pub source: String,
    pub fingerprint: String,
    pub rows_read: usize,
    pub mapped: Mapped,
    pub snapshot: Snapshot,
    pub plan: Plan,
}

/// How many rejected records a [`RunReport`] lists; the journal has every one.
pub const REJECTED_SHOWN: usize = 20;

/// How a run ended, for the CLI's exit code, the HTTP trigger and the logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub status: RunStatus,
    pub summary: Option<PlanSummary>,
    pub rows_rejected: usize,
    pub ops_ok: u64,
    pub ops_failed: u64,
    pub ops_skipped: u64,
    /// What Pluvo acknowledged: what a summary may say was created, updated, archived. (The
    /// plan's `summary` says what was intended.)
    pub acknowledged: Acknowledged,
    pub withheld_archives: Option<WithheldArchives>,
    /// The archives the plan sent, each with why the person goes.
    pub archives: Vec<NamedArchive>,
    /// The first [`REJECTED_SHOWN`] rejected records, with line, field and reason; all of them
    /// are in the journal.
    pub rejected: Vec<RecordError>,
    pub errors: Vec<String>,
    pub duration_ms: u64,
}

impl RunReport {
    /// A report for a run that has not got anywhere yet.
    fn failed(run_id: String) -> Self {
        Self {
            run_id,
            status: RunStatus::Failed,
            summary: None,
            rows_rejected: 0,
            ops_ok: 0,
            ops_failed: 0,
            ops_skipped: 0,
            acknowledged: Acknowledged::default(),
            withheld_archives: None,
            archives: Vec::new(),
            rejected: Vec::new(),
            errors: Vec::new(),
            duration_ms: 0,
        }
    }
}

/// The pipeline with everything it needs, built once per process.
#[derive(Debug, Clone)]
pub struct Engine {
    settings: Arc<Settings>,
    journal: Journal,
    client: PluvoClient,
    metrics: Arc<Metrics>,
    clock: SharedClock,
}

impl Engine {
    pub fn new(
        settings: Arc<Settings>,
        journal: Journal,
        client: PluvoClient,
        metrics: Arc<Metrics>,
        clock: SharedClock,
    ) -> Self {
        Self {
            settings,
            journal,
            client,
            metrics,
            clock,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn client(&self) -> &PluvoClient {
        &self.client
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The Pluvo tenant this engine is configured for.
    pub fn tenant(&self) -> Tenant {
        Tenant::new(
            &self.settings.pluvo.graphql_url,
            &self.settings.pluvo.client_id,
        )
    }

    /// Reads the source, maps it, loads the snapshot and plans. Sends nothing.
    pub async fn prepare(&self, options: RunOptions) -> Result<Prepared, EngineError> {
        let required = self.settings.mapping.required_columns();
        let description = self.settings.source.describe();
        let data = self.settings.source.read(&required).await?;
        let fingerprint = data.fingerprint.clone();
        let rows_read = data.records.len() + data.rejected.len();
        let mapped = self.settings.mapping.map(data);
        crate::sync::snapshot::check_tenant(self.journal.pool(), &self.tenant()).await?;
        let snapshot = crate::sync::snapshot::load(self.journal.pool()).await?;
        let today = self
            .clock
            .now()
            .with_timezone(&self.settings.time_zone)
            .date_naive();
        let mut policy = self.settings.policy.clone();
        policy.allow_mass_archive = options.allow_mass_archive;
        let plan = crate::sync::plan::plan(
            &snapshot,
            &mapped,
            &|group| self.settings.mapping.is_managed(group),
            &policy,
            today,
        );
        Ok(Prepared {
            source: description,
            fingerprint,
            rows_read,
            mapped,
            snapshot,
            plan,
        })
    }

    /// One run, journaled from start to end, under the run lease `lease` holds. Every log line of
    /// the run carries its `run_id`, which is also its key in the journal.
    pub async fn run_once(
        &self,
        run_id: String,
        trigger: Trigger,
        options: RunOptions,
        cancel: CancellationToken,
        lease: &LeaseGuard,
    ) -> RunReport {
        match self.begin(&run_id, trigger).await {
            Ok(()) => {
                self.run_begun(run_id, trigger, options, cancel, lease)
                    .await
            }
            Err(error) => {
                tracing::error!(%run_id, %error, "cannot start the run: the journal is not writable");
                let mut report = RunReport::failed(run_id);
                report
                    .errors
                    .push(format!("cannot write the journal: {error}"));
                report
            }
        }
    }

    /// The start of a run: close runs a dead process left `running` (the caller holds the lease,
    /// so none of them is alive), then journal this one as `running`. Split from the rest so the
    /// daemon can answer a trigger with a run id that `/v1/runs/latest` already shows.
    pub async fn begin(&self, run_id: &str, trigger: Trigger) -> Result<(), sqlx::Error> {
        match self.journal.close_orphaned_runs().await {
            Ok(0) => {}
            Ok(closed) => tracing::warn!(
                closed,
                "marked runs left behind by a stopped process as aborted"
            ),
            Err(error) => tracing::warn!(%error, "cannot close orphaned runs"),
        }
        self.journal
            .start_run(run_id, trigger, &self.settings.source.describe())
            .await
    }

    /// The rest of a run [`Engine::begin`] started.
    ///
    /// Losing `lease` stops the run the way `cancel` (a shutdown) does: another process may be
    /// running on the same people now. The heartbeat's discovery cancels the run, and every
    /// request first asks the lease's fence, so nothing is sent even in the moment between a
    /// lapse and its discovery (a process resuming from a pause).
    #[tracing::instrument(name = "run", skip_all, fields(%run_id, %trigger))]
    pub async fn run_begun(
        &self,
        run_id: String,
        trigger: Trigger,
        options: RunOptions,
        cancel: CancellationToken,
        lease: &LeaseGuard,
    ) -> RunReport {
        let stop = cancel.child_token();
        let lost = lease.lost();
        let watcher = {
            let (stop, lost) = (stop.clone(), lost.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = lost.cancelled() => {
                        tracing::error!("the run lease was lost; stopping this run");
                        stop.cancel();
                    }
                    () = stop.cancelled() => {}
                }
            })
        };
        let fence = lease.fence();
        let fence: SendFence = Arc::new(move || fence.holds());
        let report = self
            .run_stoppable(run_id, options, stop.clone(), fence, &lost)
            .await;
        stop.cancel();
        let _ = watcher.await;
        report
    }

    async fn run_stoppable(
        &self,
        run_id: String,
        options: RunOptions,
        cancel: CancellationToken,
        fence: SendFence,
        lost: &CancellationToken,
    ) -> RunReport {
        let started = Instant::now();
        let mut report = RunReport::failed(run_id.clone());
        let mut totals = RunTotals::default();
        tracing::info!("run started");

        let prepared = match self.prepare(options).await {
            Ok(prepared) => prepared,
            Err(error) => {
                tracing::error!(%error, "run failed before anything was sent");
                report.errors.push(error.to_string());
                return self.finish(report, totals, started).await;
            }
        };
        // The first sync ties the database to its tenant (prepare already refused another one).
        if let Err(error) = crate::sync::snapshot::bind_tenant(
            self.journal.pool(),
            &self.tenant(),
            &crate::clock::timestamp(self.clock.now()),
        )
        .await
        {
            tracing::error!(%error, "run failed before anything was sent");
            report.errors.push(error.to_string());
            return self.finish(report, totals, started).await;
        }
        let Prepared {
            fingerprint,
            rows_read,
            mapped,
            mut snapshot,
            plan,
            ..
        } = prepared;
        if let Err(error) = self.journal.source_read(&run_id, &fingerprint).await {
            tracing::warn!(%error, "cannot record the source fingerprint");
        }
        totals.rows_read = rows_read as u64;
        totals.rows_rejected = mapped.rejected.len() as u64;
        totals.ops_planned = plan.summary.operations as u64;
        totals.plan_summary = serde_json::to_value(plan.summary).ok();
        report.rows_rejected = mapped.rejected.len();
        report.summary = Some(plan.summary);
        report.withheld_archives = plan.withheld_archives.clone();
        if let Err(error) = self.journal.planned(&run_id, &totals).await {
            tracing::warn!(%error, "cannot record what the run planned");
        }
        report.archives = plan.archives();
        report_rejected(&mut report, &mapped.rejected);
        self.journal_rejected(&run_id, &mapped).await;
        self.journal_held_by_plan(&run_id, &plan, &mut report).await;
        tracing::info!(
            rows = rows_read,
            rejected = mapped.rejected.len(),
            create = plan.summary.create,
            update = plan.summary.update,
            archive = plan.summary.archive,
            unarchive = plan.summary.unarchive,
            operations = plan.summary.operations,
            "planned"
        );
        if let Some(withheld) = &plan.withheld_archives {
            tracing::warn!(
                would_archive = withheld.would_archive,
                limit = withheld.limit,
                reason = %withheld.reason,
                "archives withheld by the archive guard; rerun with --allow-mass-archive if they are intended"
            );
            report.errors.push(format!(
                "{} archive(s) withheld: {}; rerun with --allow-mass-archive if this is intended",
                withheld.would_archive, withheld.reason
            ));
        }

        let progress = if options.progress {
            ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} operations ({eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            )
        } else {
            ProgressBar::hidden()
        };
        // Stopping must not wait out a Retry-After pause or a backoff sleep of a call in flight.
        let client = self
            .client
            .with_cancel(cancel.clone())
            .with_send_fence(fence);
        let choices = self.choice_options(&client, &plan).await;
        let applier = Applier {
            client: &client,
            managed: &|group| self.settings.mapping.is_managed(group),
            journal: &self.journal,
            metrics: &self.metrics,
            run_id: &run_id,
            cancel,
            progress,
            choices: choices.as_ref(),
        };
        let outcome = applier.apply(&plan, &mut snapshot).await;
        report.ops_ok = outcome.ok;
        report.ops_failed = outcome.failed;
        report.ops_skipped = outcome.skipped;
        report.acknowledged = outcome.acknowledged;
        report.errors.extend(outcome.errors.iter().cloned());
        totals.ops_ok = outcome.ok;
        totals.ops_failed = outcome.failed;
        totals.ops_skipped = outcome.skipped;

        if !outcome.aborted
            && let Err(error) = crate::sync::snapshot::mark_seen(
                self.journal.pool(),
                &run_id,
                mapped.people.keys().chain(&mapped.held),
            )
            .await
        {
            tracing::warn!(%error, "cannot record who was in the source");
        }

        // Skipped operations (not sent because of the stop, or because the person's user call
        // failed) are left for the next run, as are those never reached.
        let remaining = totals
            .ops_planned
            .saturating_sub(outcome.ok + outcome.failed);
        report.status = run_status(&RunFacts {
            // A lost lease stops the run like a shutdown: work left undone is the next run's.
            interrupted: outcome.aborted || lost.is_cancelled(),
            acknowledged: outcome.ok,
            refused: outcome.failed - outcome.systemic.min(outcome.failed),
            systemic: outcome.systemic,
            rows_rejected: mapped.rejected.len() as u64,
            plan_held_back: plan.needs_attention(),
        });
        if report.status == RunStatus::Aborted {
            let why = if lost.is_cancelled() {
                "stopped because the run lease was lost (this process stalled past its expiry, \
                 or another process took it over)"
            } else {
                "aborted by shutdown"
            };
            report.errors.insert(
                0,
                format!("{why}; {remaining} operation(s) remained for the next run"),
            );
        }
        self.finish(report, totals, started).await
    }

    /// Pluvo's choice options, read once per run when the plan sets a custom field; without
    /// them (Pluvo could not say) every value is sent and Pluvo judges it.
    async fn choice_options(&self, client: &PluvoClient, plan: &Plan) -> Option<ChoiceOptions> {
        if plan.people.iter().all(|p| p.categories.is_empty()) {
            return None;
        }
        match client.user_categories().await {
            Ok(categories) => Some(ChoiceOptions::from_remote(&categories)),
            Err(error) => {
                tracing::warn!(%error, "cannot read Pluvo's custom fields; every value is sent as it is");
                None
            }
        }
    }

    /// Rejected records go into the journal so an auditor sees every skipped row and why.
    async fn journal_rejected(&self, run_id: &str, mapped: &Mapped) {
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
    async fn journal_held_by_plan(&self, run_id: &str, plan: &Plan, report: &mut RunReport) {
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

    async fn finish(
        &self,
        mut report: RunReport,
        mut totals: RunTotals,
        started: Instant,
    ) -> RunReport {
        report.duration_ms = started.elapsed().as_millis() as u64;
        if !report.errors.is_empty() {
            totals.error_summary = Some(report.errors.join("\n"));
        }
        if let Err(error) = self
            .journal
            .finish_run(&report.run_id, report.status, &totals)
            .await
        {
            tracing::error!(%error, "cannot record the end of the run");
        }
        let cutoff = crate::sync::journal::retention::cutoff(
            self.clock.now(),
            self.settings.journal.retention_days,
        );
        match crate::sync::journal::retention::prune(self.journal.pool(), cutoff).await {
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
            ops_ok = report.ops_ok,
            ops_failed = report.ops_failed,
            ops_skipped = report.ops_skipped,
            rejected = report.rows_rejected,
            "run finished"
        );
        report
    }
}

/// Rejected records make a run partial, so the report says so: a count with the place of each
/// (no reasons, which can quote an address, in `errors`), and the first [`REJECTED_SHOWN`] in
/// full in `rejected`.
fn report_rejected(report: &mut RunReport, rejected: &[RecordError]) {
    if rejected.is_empty() {
        return;
    }
    report.rejected = rejected.iter().take(REJECTED_SHOWN).cloned().collect();
    let places: Vec<String> = report
        .rejected
        .iter()
        .map(|r| match &r.field {
            Some(field) => format!("{} ('{field}')", r.location),
            None => r.location.to_string(),
        })
        .collect();
    let more = if rejected.len() > REJECTED_SHOWN {
        format!(" and {} more", rejected.len() - REJECTED_SHOWN)
    } else {
        String::new()
    };
    report.errors.push(format!(
        "{} record(s) rejected and skipped, so those people are left as they are: {}{more}; \
         fix them in the source (reasons under 'rejected', or in `pluvo-sync journal show`)",
        rejected.len(),
        places.join(", ")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_status_says_what_happened() {
        let base = RunFacts::default();
        let cases = [
            ("nothing to do", base, RunStatus::Ok),
            (
                "all acknowledged",
                RunFacts {
                    acknowledged: 40,
                    ..base
                },
                RunStatus::Ok,
            ),
            (
                "one unresolved conflict and nothing else to do",
                RunFacts { refused: 1, ..base },
                RunStatus::Partial,
            ),
            (
                "refusals beside acknowledged work",
                RunFacts {
                    acknowledged: 10,
                    refused: 2,
                    ..base
                },
                RunStatus::Partial,
            ),
            (
                "every request lost in transport",
                RunFacts {
                    systemic: 12,
                    ..base
                },
                RunStatus::Failed,
            ),
            (
                "no token, and refusals seen before it went",
                RunFacts {
                    systemic: 12,
                    refused: 1,
                    ..base
                },
                RunStatus::Failed,
            ),
            (
                "some calls lost, the rest acknowledged",
                RunFacts {
                    systemic: 2,
                    acknowledged: 30,
                    ..base
                },
                RunStatus::Partial,
            ),
            (
                "rows rejected",
                RunFacts {
                    rows_rejected: 1,
                    ..base
                },
                RunStatus::Partial,
            ),
            (
                "archives withheld",
                RunFacts {
                    plan_held_back: true,
                    ..base
                },
                RunStatus::Partial,
            ),
            (
                "stopped with work remaining",
                RunFacts {
                    interrupted: true,
                    acknowledged: 5,
                    ..base
                },
                RunStatus::Aborted,
            ),
        ];
        for (name, facts, expected) in cases {
            assert_eq!(run_status(&facts), expected, "case {name}");
        }
    }
}
