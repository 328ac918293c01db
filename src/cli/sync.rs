//! `pluvo-sync sync`: one run, now.

use std::io::IsTerminal;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Cli, Exit};
use crate::domain::{RunStatus, Trigger};
use crate::service::launcher::{LeasedError, Waiting, begin_leased};
use crate::service::lease::LeaseHolder;
use crate::sync::engine::{RunOptions, RunReport};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply archives even when the archive guard would withhold them (an empty export, or more
    /// leavers than `sync.archive_guard` allows). Check `pluvo-sync plan` first.
    #[arg(long)]
    pub allow_mass_archive: bool,

    /// If another run (e.g. the daemon's) is in progress, wait for it instead of exiting with 4.
    #[arg(long)]
    pub wait: bool,

    /// Print the run report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cli: &Cli, args: &Args) -> Exit {
    let (context, engine) = match super::load_engine(cli).await {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    if let Err(exit) = super::refuse_unapplied_rules(&context.settings) {
        return exit;
    }
    let cancel = CancellationToken::new();
    // SIGTERM too: a CronJob or container stop must end the run as `aborted`, not kill it.
    let signals = match crate::service::daemon::ShutdownSignals::register() {
        Ok(signals) => signals,
        Err(error) => {
            errln!("error: cannot install the SIGTERM/SIGINT handlers: {error}");
            return Exit::Failed;
        }
    };
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        let signal = signals.recv().await;
        tracing::warn!(
            signal,
            "stopping: calls in flight finish, no new ones start"
        );
        on_signal.cancel();
    });

    let on_busy = |holder: Option<&LeaseHolder>| {
        errln!(
            "another run is in progress{}; waiting for it to finish (Ctrl-C to give up)",
            describe(holder)
        );
    };
    let waiting = if args.wait {
        Waiting::Until {
            every: Duration::from_secs(2),
            cancel: &cancel,
            on_busy: &on_busy,
        }
    } else {
        Waiting::No
    };
    let options = RunOptions {
        allow_mass_archive: args.allow_mass_archive,
        progress: !args.json && std::io::stderr().is_terminal(),
    };
    let report = match begin_leased(&engine, Trigger::Cli, waiting).await {
        Ok(run) => run.run(options, cancel).await,
        Err(LeasedError::Busy { holder }) => {
            errln!(
                "another run is in progress{}; try again later, or pass --wait to wait for it",
                describe(holder.as_ref())
            );
            return Exit::Busy;
        }
        Err(LeasedError::GaveUp) => return Exit::Busy,
        Err(error @ LeasedError::Lease(_)) => {
            errln!("error: {error}");
            return Exit::Failed;
        }
        Err(LeasedError::Begin { run_id, error }) => RunReport::not_started(run_id, &error),
    };

    if args.json {
        super::print_json(&report);
    } else {
        // What Pluvo acknowledged, not what was planned: a failed run created nobody.
        let done = report.acknowledged;
        outln!(
            "run {} {}: {} created, {} updated, {} archived, {} unarchived; {} operations ok, {} failed, {} skipped; {} records rejected",
            report.run_id,
            report.status,
            done.created,
            done.updated,
            done.archived,
            done.unarchived,
            report.counts.ops_ok,
            report.counts.ops_failed,
            report.counts.ops_skipped,
            report.counts.rows_rejected
        );
        for archive in &report.archives {
            outln!(
                "  - {:<12} archive   {}",
                archive.employee_ref.as_str(),
                archive.why
            );
        }
        if let Some(withheld) = &report.withheld_archives {
            for person in &withheld.people {
                outln!(
                    "  = {:<12} withheld  {}",
                    person.employee_ref.as_str(),
                    person.why
                );
            }
        }
        for error in &report.errors {
            outln!("  ! {error}");
        }
        for rejected in &report.rejected {
            outln!("  x {rejected}");
        }
        if !report.errors.is_empty() {
            outln!("details: pluvo-sync journal show {}", report.run_id);
        }
    }
    match report.status {
        RunStatus::Ok => Exit::Ok,
        RunStatus::Partial => Exit::Partial,
        RunStatus::Failed | RunStatus::Aborted | RunStatus::Running => Exit::Failed,
    }
}

/// " (holder)" for the messages about a run in progress, or nothing when it is unknown.
fn describe(holder: Option<&LeaseHolder>) -> String {
    holder.map(|h| format!(" ({h})")).unwrap_or_default()
}
