//! The pipeline: one run, stage by stage, in the order the data flows.
//!
//! `source` (read HR records) → `mapping` (records → desired users) → `snapshot` (what Pluvo last
//! acknowledged) → `plan` (a pure diff) → `apply` (send the plan through [`crate::pluvo`]).
//! `rules` (who each training rule matches now) reads `mapping`'s people and is read by `plan`.
//! `journal` sits between `plan` and `apply` in the imports: it is the one store of runs,
//! operations and the snapshot's writes, which records what the plan planned and through which
//! `apply` commits every acknowledged change, so it knows the plan's words and `apply` knows its.
//! `engine` runs one pass of that pipeline and knows nothing of schedules, triggers or listeners:
//! the service adapts the engine, not the reverse, and grants each run a `guard::RunGuard` (its
//! lease, as the engine sees it). A stage imports only the words of [`crate::domain`] and the
//! stages before it in that order (`source`, `mapping`, `rules`, `snapshot`, `plan`, `journal`,
//! `apply`, `engine`).

pub mod apply;
pub mod engine;
pub mod guard;
pub mod journal;
pub mod mapping;
pub mod plan;
pub mod rules;
pub mod snapshot;
pub mod source;
