//! The operator's side of planning: what happens to leavers, when new hires are created, and
//! the archive guard's limits. These are settings, not data: [`Policy`] comes from config (and
//! `--allow-mass-archive`), and the same inputs under another policy give another plan.

use serde::{Deserialize, Serialize};

/// How far ahead `plan` reports lifecycle events.
pub const UPCOMING_DAYS: u64 = 7;

/// What to do with people the source no longer lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Leavers {
    /// Archive them (the default: an HR export lists everyone who works here).
    #[default]
    Archive,
    /// Leave them as they are: for a source that lists only some people.
    Keep,
}

/// Limits above which archives are withheld unless `--allow-mass-archive` is given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArchiveGuard {
    /// Archiving up to this many people is always allowed…
    pub max_people: usize,
    /// …or up to this percentage of the active users, whichever is larger.
    pub max_percent: f64,
}

impl Default for ArchiveGuard {
    fn default() -> Self {
        Self {
            max_people: 10,
            max_percent: 5.0,
        }
    }
}

/// The decisions that are the operator's, not the data's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub leavers: Leavers,
    /// Days after the end date on which the account is archived: 0 archives on the end date
    /// itself, 1 (the default) the day after, more adds grace days.
    pub archive_after_end_days: u32,
    /// Create new hires this many days before their start date; `None` creates them as soon as
    /// they appear in the source.
    pub preboarding_days: Option<u32>,
    pub guard: ArchiveGuard,
    pub allow_mass_archive: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            leavers: Leavers::Archive,
            archive_after_end_days: 1,
            preboarding_days: None,
            guard: ArchiveGuard::default(),
            allow_mass_archive: false,
        }
    }
}
