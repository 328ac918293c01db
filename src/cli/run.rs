//! `pluvo-sync run`: the long-lived service. Syncs on the schedule, serves the admin listener
//! (trigger, health, readiness, metrics), and stops gracefully on SIGTERM or SIGINT.

use std::sync::Arc;

use super::{Cli, Context, Exit};
use crate::service::daemon::{self, Daemon};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(cli: &Cli, _args: &Args) -> Exit {
    let context = match Context::load(cli) {
        Ok(context) => context,
        Err(exit) => return exit,
    };
    let settings = &context.settings;
    if let Err(exit) = super::refuse_unapplied_rules(settings) {
        return exit;
    }
    // The schedule and listener were resolved with the rest of the configuration; what is left
    // is what only `run` requires, checked before anything starts, so a missing schedule or
    // token stops the container at once with exit 2 instead of failing at 02:00.
    let Some(schedule) = settings.schedule.clone() else {
        errln!("error: schedule.cron: `pluvo-sync run` needs a [schedule] with a cron expression");
        return Exit::Usage;
    };
    let server = match settings.server.for_run() {
        Ok(server) => server,
        Err(error) => {
            errln!(
                "error: {}",
                settings.environment.annotate(&error.to_string())
            );
            return Exit::Usage;
        }
    };
    let engine = match context.engine().await {
        Ok(engine) => engine,
        Err(exit) => return exit,
    };
    crate::metrics::describe_all(&context.metrics);
    let lease = crate::service::launcher::run_lease(&engine);
    let daemon = Daemon {
        schedule,
        server,
        shutdown_grace: settings.shutdown_grace,
        journal: engine.journal().clone(),
        launcher: Arc::new(engine),
        lease,
        clock: context.clock.clone(),
        metrics: context.metrics.clone(),
    };
    match daemon::serve(daemon).await {
        Ok(()) => Exit::Ok,
        Err(error) => {
            errln!("error: {error}");
            if error.exit_code() == 2 {
                Exit::Usage
            } else {
                Exit::Failed
            }
        }
    }
}
