//! One run of the pipeline, start to finish: read → map → plan → apply → journal.
//!
//! `pluvo-sync sync`, the scheduler and the HTTP trigger all call the same
//! [`Engine`]; nothing else runs the pipeline.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What started a run; journaled with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `pluvo-sync sync` on the command line.
    Cli,
    /// The cron schedule of `pluvo-sync run`.
    Schedule,
    /// `POST /v1/sync` on the admin listener.
    Http,
    /// `run_on_start` of `pluvo-sync run`.
    Startup,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Cli => "cli",
            Trigger::Schedule => "schedule",
            Trigger::Http => "http",
            Trigger::Startup => "startup",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended. `Running` exists only in the journal while a run is in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// Everything planned was acknowledged, and no record was rejected.
    Ok,
    /// Some people failed or were rejected, or the archive guard withheld archives.
    Partial,
    /// The run could not do its job: the source was unreadable, Pluvo refused every call, …
    Failed,
    /// Shutdown arrived mid-run; what remained is done by the next run.
    Aborted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Aborted => "aborted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            RunStatus::Running,
            RunStatus::Ok,
            RunStatus::Partial,
            RunStatus::Failed,
            RunStatus::Aborted,
        ]
        .into_iter()
        .find(|status| status.as_str() == raw)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
