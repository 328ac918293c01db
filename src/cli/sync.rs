//! `pluvo-sync sync`: one run, now.

use std::io::IsTerminal;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Cli, Exit};
use crate::domain::{RunStatus, Trigger};
use crate::service::lease::Lease;
use crate::sync::engine::RunOptions;

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
    let (_context, engine) = match super::load_engine(cli).await {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
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

    let run_id = uuid::Uuid::new_v4().to_string();
    let lease = Lease::for_runs(engine.journal().pool().clone(), engine.clock().clone());
    let guard = match lease.try_acquire(&run_id).await {
        Ok(Some(guard)) => guard,
        Ok(None) => {
            let holder = lease.holder().await.ok().flatten();
            let holder = holder.map(|h| format!(" ({h})")).unwrap_or_default();
            if !args.wait {
                errln!(
                    "another run is in progress{holder}; try again later, or pass --wait to wait for it"
                );
                return Exit::Busy;
            }
            errln!(
                "another run is in progress{holder}; waiting for it to finish (Ctrl-C to give up)"
            );
            match lease
                .acquire_waiting(&run_id, Duration::from_secs(2), &cancel)
                .await
            {
                Ok(Some(guard)) => guard,
                Ok(None) => return Exit::Busy,
                Err(error) => {
                    errln!("error: cannot take the run lease: {error}");
                    return Exit::Failed;
                }
            }
        }
        Err(error) => {
            errln!("error: cannot take the run lease: {error}");
            return Exit::Failed;
        }
    };
    let options = RunOptions {
        allow_mass_archive: args.allow_mass_archive,
        progress: !args.json && std::io::stderr().is_terminal(),
    };
    // Losing the lease mid-run stops it like a signal does (see `Engine::run_begun`).
    let report = engine
        .run_once(run_id, Trigger::Cli, options, cancel, &guard)
        .await;
    if let Err(error) = guard.release().await {
        tracing::warn!(%error, "cannot release the run lease; it expires by itself");
    }

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
            report.ops_ok,
            report.ops_failed,
            report.ops_skipped,
            report.rows_rejected
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
