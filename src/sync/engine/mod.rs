//! One run of the pipeline, start to finish: read → map → plan → apply → journal.
//!
//! `pluvo-sync sync`, the scheduler and the HTTP trigger all call the same
//! [`Engine`]; nothing else runs the pipeline.

mod journaling;
mod outcome;

pub use crate::sync::guard::RunGuard;
use outcome::report_rejected;
pub use outcome::{REJECTED_SHOWN, RunFacts, RunReport, run_status};

use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::domain::{RunStatus, Trigger};
use crate::metrics::Metrics;
use crate::pluvo::{PluvoClient, PluvoError, SendFence};
use crate::settings::Settings;
use crate::sync::apply::{Applier, ChoiceOptions};
use crate::sync::journal::Journal;
use crate::sync::mapping::Mapped;
use crate::sync::plan::Plan;
use crate::sync::snapshot::{Snapshot, SnapshotError, Tenant};
use crate::sync::source::SourceError;

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

    /// One run, journaled from start to end, under `guard` (the service's run lease). Every log
    /// line of the run carries its `run_id`, which is also its key in the journal.
    pub async fn run_once(
        &self,
        run_id: String,
        trigger: Trigger,
        options: RunOptions,
        cancel: CancellationToken,
        guard: &dyn RunGuard,
    ) -> RunReport {
        match self.begin(&run_id, trigger).await {
            Ok(()) => {
                self.run_begun(run_id, trigger, options, cancel, guard)
                    .await
            }
            Err(error) => RunReport::not_started(run_id, &error),
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
    /// Losing `guard` stops the run the way `cancel` (a shutdown) does: another process may be
    /// running on the same people now. [`RunGuard::lost`] cancels the run, and every request
    /// first asks [`RunGuard::send_fence`], so nothing is sent even in the moment between a
    /// lapse and its discovery (a process resuming from a pause).
    #[tracing::instrument(name = "run", skip_all, fields(%run_id, %trigger))]
    pub async fn run_begun(
        &self,
        run_id: String,
        trigger: Trigger,
        options: RunOptions,
        cancel: CancellationToken,
        guard: &dyn RunGuard,
    ) -> RunReport {
        let stop = cancel.child_token();
        let lost = guard.lost();
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
        let fence = guard.send_fence();
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
        tracing::info!("run started");

        let prepared = match self.prepare(options).await {
            Ok(prepared) => prepared,
            Err(error) => {
                tracing::error!(%error, "run failed before anything was sent");
                report.errors.push(error.to_string());
                return self.finish(report, started).await;
            }
        };
        // The first sync ties the database to its tenant (prepare already refused another one).
        if let Err(error) = self.journal.bind_tenant(&self.tenant()).await {
            tracing::error!(%error, "run failed before anything was sent");
            report.errors.push(error.to_string());
            return self.finish(report, started).await;
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
        report.counts.rows_read = rows_read as u64;
        report.counts.rows_rejected = mapped.rejected.len() as u64;
        report.counts.ops_planned = plan.summary.operations as u64;
        report.summary = Some(plan.summary);
        report.withheld_archives = plan.withheld_archives.clone();
        if let Err(error) = self
            .journal
            .planned(&run_id, &report.counts, report.summary.as_ref())
            .await
        {
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
        report.counts.ops_ok = outcome.ok;
        report.counts.ops_failed = outcome.failed;
        report.counts.ops_skipped = outcome.skipped;
        report.acknowledged = outcome.acknowledged;
        report.errors.extend(outcome.errors.iter().cloned());

        if !outcome.aborted
            && let Err(error) = self
                .journal
                .mark_seen(&run_id, mapped.people.keys().chain(&mapped.held))
                .await
        {
            tracing::warn!(%error, "cannot record who was in the source");
        }

        // Skipped operations (not sent because of the stop, or because the person's user call
        // failed) are left for the next run, as are those never reached.
        let remaining = report
            .counts
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
        self.finish(report, started).await
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
}
