//! The pipeline: one run, stage by stage, in the order the data flows.
//!
//! `source` (read HR records) → `mapping` (records → desired users) → `snapshot` (what Pluvo last
//! acknowledged) → `plan` (a pure diff) → `apply` (send the plan through [`crate::pluvo`]) →
//! `journal` (every run and operation, for auditors). `rules` (who each training rule matches
//! now) reads `mapping`'s people and is read by `plan`. `engine` runs one pass of that pipeline and
//! knows nothing of schedules, triggers or listeners: the service adapts the engine, not the
//! reverse, and grants each run a `guard::RunGuard` (its lease, as the engine sees it). A stage imports only the words of [`crate::domain`] and the stages before it.

pub mod apply;
pub mod engine;
pub mod guard;
pub mod journal;
pub mod mapping;
pub mod plan;
pub mod rules;
pub mod snapshot;
pub mod source;
