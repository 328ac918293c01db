//! How the service starts a run of the pipeline: take the run lease, journal the run's start,
//! then run it in the background, stopping it the moment the lease is lost.
//!
//! This is where the service adapts the [`Engine`]; the engine itself knows nothing of schedules,
//! triggers or leases.

use tokio_util::sync::CancellationToken;

use crate::domain::Trigger;
use crate::service::lease::Lease;
use crate::service::scheduler::{BoxFuture, LaunchError, Launched, Launcher};
use crate::sync::engine::{Engine, RunOptions};

/// The daemon starts runs through this: take the lease, then run in the background.
impl Launcher for Engine {
    fn launch(
        &self,
        trigger: Trigger,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<Launched, LaunchError>> {
        Box::pin(async move {
            let run_id = uuid::Uuid::new_v4().to_string();
            let lease = Lease::for_runs(self.journal().pool().clone(), self.clock().clone());
            let guard = match lease.try_acquire(&run_id).await {
                Ok(Some(guard)) => guard,
                Ok(None) => {
                    let holder = lease.holder().await.ok().flatten();
                    return Err(LaunchError::Busy { holder });
                }
                Err(error) => return Err(LaunchError::Failed(error.into())),
            };
            if let Err(error) = self.begin(&run_id, trigger).await {
                let _ = guard.release().await;
                return Err(LaunchError::Failed(error.into()));
            }
            let engine = self.clone();
            let id = run_id.clone();
            let done = tokio::spawn(async move {
                // The engine stops the run the moment the lease is lost, like a shutdown.
                let report = engine
                    .run_begun(id, trigger, RunOptions::default(), cancel, &guard)
                    .await;
                if let Err(error) = guard.release().await {
                    tracing::warn!(%error, "cannot release the run lease; it expires by itself");
                }
                report.status
            });
            Ok(Launched { run_id, done })
        })
    }
}
