//! What a run needs from whoever lets it run: may it still send, and when must it stop.
//!
//! The service grants runs through its run lease (one run at a time, across processes); the
//! engine must not know leases exist, since the pipeline runs before the service in the order of
//! imports. So the engine asks this trait, and `service::lease::LeaseGuard` answers it. It lives
//! beside the stages rather than inside `engine`, so the lease can implement it without
//! importing the engine (and, through it, the settings that import the service).

use tokio_util::sync::CancellationToken;

use crate::pluvo::SendFence;

/// The right to run, as the engine sees it.
pub trait RunGuard: Send + Sync {
    /// Asked right before every request to Pluvo: true while the run may still send. It must be
    /// cheap (no I/O) and must say no from the moment the right may have lapsed, even before
    /// [`RunGuard::lost`] fires: a process resuming from a pause may otherwise send first.
    fn send_fence(&self) -> SendFence;

    /// Cancelled the moment the run lost its right; the engine then stops the run the way a
    /// shutdown stops it, and journals it `aborted`.
    fn lost(&self) -> CancellationToken;
}
