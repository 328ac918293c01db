//! pluvo-sync keeps Pluvo's users in step with an HRM system.
//!
//! One run is a pipeline, and the modules are its stages:
//!
//! `source` (read HR records) → `mapping` (records → desired users) → `snapshot` (what Pluvo last
//! acknowledged) → `plan` (a pure diff) → `apply` (send the plan through `pluvo`) → `journal`
//! (every run and operation, for auditors). `engine` runs one pass of that pipeline; `cli` is
//! the command line; `settings`, `db`, `clock`, `metrics` and `telemetry` hold it together.
//!
//! Around the pipeline, for `pluvo-sync run`: `schedule` (cron in a time zone), `lease` (one run
//! at a time, across processes), `retention` (pruning the journal), and `daemon`, which composes
//! the scheduler and the admin listener and shuts them down gracefully.

pub mod apply;
pub mod cli;
pub mod clock;
pub mod daemon;
pub mod db;
pub mod domain;
pub mod engine;
pub mod http;
pub mod journal;
pub mod lease;
pub mod mapping;
pub mod metrics;
pub mod plan;
pub mod pluvo;
pub mod retention;
pub mod schedule;
pub mod scheduler;
pub mod server;
pub mod settings;
pub mod snapshot;
pub mod source;
pub mod telemetry;
