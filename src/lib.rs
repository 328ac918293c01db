//! pluvo-sync keeps Pluvo's users in step with an HRM system.
//!
//! Where things live:
//! - [`domain`]: the words everything else speaks (refs, e-mails, roles, categories, run and
//!   operation states). It imports nothing of the crate.
//! - [`sync`]: the pipeline of one run, stage by stage: `source` → `mapping` → `snapshot` →
//!   `plan` → `apply`, which commits each acknowledged change through `journal` (the one store
//!   of the journal's tables and the snapshot's writes), driven by `engine`, which runs under a
//!   `RunGuard` the service provides. `rules` (training rules: who a `[[assign]]`/`[[enrol]]`
//!   matches now) sits after `mapping`.
//! - [`pluvo`]: the typed GraphQL client (auth, pacing, batching, errors, training membership
//!   and enrolments) that `apply` sends through.
//! - [`service`]: `pluvo-sync run`: schedule, scheduler, launcher (take the lease, begin, run,
//!   release: used by `sync` too), lease, admin server, daemon.
//! - [`cli`]: one file per subcommand.
//! - Plumbing beside them: `settings` (config resolved once), `db` (SQLite and migrations),
//!   `clock` (the one place that reads the wall clock), `http`, `metrics`, `telemetry`.

pub mod cli;
pub mod clock;
pub mod db;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod pluvo;
pub mod service;
pub mod settings;
pub mod sync;
pub mod telemetry;
