//! How the service starts a run of the pipeline: take the run lease, journal the run's start,
//! run it, release the lease. `pluvo-sync sync` and the daemon both start runs here, so the
//! order of those steps (and what happens when one fails) is written once.
//!
//! This is where the service adapts the [`Engine`]; the engine itself knows nothing of schedules,
//! triggers or leases, only of the [`crate::sync::engine::RunGuard`] the lease gives it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::Trigger;
use crate::service::lease::{Lease, LeaseGuard, LeaseHolder};
use crate::service::scheduler::{BoxFuture, LaunchError, Launched, Launcher};
use crate::sync::engine::{Engine, RunOptions, RunReport};

/// The run lease of `engine`'s database, on the engine's clock.
pub fn run_lease(engine: &Engine) -> Lease {
    Lease::for_runs(engine.journal().pool().clone(), engine.clock().clone())
}

/// What to do when another run holds the lease.
pub enum Waiting<'a> {
    /// Give up at once with [`LeasedError::Busy`].
    No,
    /// Tell `on_busy` who holds it, then try again every `every` until it is free, or until
    /// `cancel` fires ([`LeasedError::GaveUp`]).
    Until {
        every: Duration,
        cancel: &'a CancellationToken,
        on_busy: &'a (dyn Fn(Option<&LeaseHolder>) + Sync),
    },
}

/// Why a leased run did not begin.
#[derive(Debug, thiserror::Error)]
pub enum LeasedError {
    /// Another run holds the lease. `holder` is `None` when it was released between the failed
    /// take and the look-up.
    #[error("another run is in progress")]
    Busy { holder: Option<LeaseHolder> },
    /// Waiting for the lease was cancelled.
    #[error("gave up waiting for the run in progress")]
    GaveUp,
    // The cause is in the message, not a `#[source]`, so chains printed with `{:#}` do not
    // repeat it.
    #[error("cannot take the run lease: {0}")]
    Lease(sqlx::Error),
    /// The lease was taken (and has been released again) but the run's start could not be
    /// journaled.
    #[error("cannot write the journal: {error}")]
    Begin { run_id: String, error: sqlx::Error },
}

/// A run that holds the run lease and is journaled as `running`; [`LeasedRun::run`] does the
/// rest. Splitting the two lets the daemon answer a trigger with a run id that
/// `/v1/runs/latest` already shows.
#[derive(Debug)]
pub struct LeasedRun {
    engine: Engine,
    guard: LeaseGuard,
    run_id: String,
    trigger: Trigger,
}

/// Takes the run lease for a new run (waiting for it as `waiting` says) and journals the run's
/// start. Nothing is left held when this fails.
pub async fn begin_leased(
    engine: &Engine,
    trigger: Trigger,
    waiting: Waiting<'_>,
) -> Result<LeasedRun, LeasedError> {
    let run_id = uuid::Uuid::new_v4().to_string();
    let lease = run_lease(engine);
    let guard = match lease.try_acquire(&run_id).await {
        Ok(Some(guard)) => guard,
        Ok(None) => {
            let holder = lease.holder().await.ok().flatten();
            let Waiting::Until {
                every,
                cancel,
                on_busy,
            } = waiting
            else {
                return Err(LeasedError::Busy { holder });
            };
            on_busy(holder.as_ref());
            lease
                .acquire_waiting(&run_id, every, cancel)
                .await
                .map_err(LeasedError::Lease)?
                .ok_or(LeasedError::GaveUp)?
        }
        Err(error) => return Err(LeasedError::Lease(error)),
    };
    if let Err(error) = engine.begin(&run_id, trigger).await {
        release(guard).await;
        return Err(LeasedError::Begin { run_id, error });
    }
    Ok(LeasedRun {
        engine: engine.clone(),
        guard,
        run_id,
        trigger,
    })
}

impl LeasedRun {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Runs to the end, then releases the lease. Losing the lease mid-run stops the run the way
    /// `cancel` (a shutdown) does; see [`Engine::run_begun`].
    pub async fn run(self, options: RunOptions, cancel: CancellationToken) -> RunReport {
        let LeasedRun {
            engine,
            guard,
            run_id,
            trigger,
        } = self;
        let report = engine
            .run_begun(run_id, trigger, options, cancel, &guard)
            .await;
        release(guard).await;
        report
    }
}

async fn release(guard: LeaseGuard) {
    if let Err(error) = guard.release().await {
        tracing::warn!(%error, "cannot release the run lease; it expires by itself");
    }
}

/// The daemon starts runs through this: take the lease, then run in the background.
impl Launcher for Engine {
    fn launch(
        &self,
        trigger: Trigger,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<Launched, LaunchError>> {
        Box::pin(async move {
            let run =
                begin_leased(self, trigger, Waiting::No)
                    .await
                    .map_err(|error| match error {
                        LeasedError::Busy { holder } => LaunchError::Busy { holder },
                        error => LaunchError::Failed(error.into()),
                    })?;
            let run_id = run.run_id().to_owned();
            let done =
                tokio::spawn(async move { run.run(RunOptions::default(), cancel).await.status });
            Ok(Launched { run_id, done })
        })
    }
}
