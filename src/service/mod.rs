//! The long-running service of `pluvo-sync run`, around the pipeline of [`crate::sync`].
//!
//! `schedule` (cron in a time zone), `scheduler` (the loop that fires it), `launcher` (how a run
//! of the engine is started under the lease, by the daemon and by `pluvo-sync sync`), `lease` (one run at a time, across processes),
//! `server` (the admin listener: trigger, runs, health and metrics), and `daemon`, which composes
//! them and shuts them down gracefully.

pub mod daemon;
pub mod launcher;
pub mod lease;
pub mod schedule;
pub mod scheduler;
pub mod server;
