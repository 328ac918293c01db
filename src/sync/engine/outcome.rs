//! How a run ended: the status decided from what happened, and the report its caller gets.
//!
//! Split from the engine's driving code so the decision (a pure function with a table of named
//! cases) reads on its own, beside the report it fills.

use crate::domain::RunStatus;
use crate::sync::apply::Acknowledged;
use crate::sync::journal::RunCounts;
use crate::sync::plan::{NamedArchive, PlanSummary, WithheldArchives};
use crate::sync::source::RecordError;

/// Everything a finished run's status is decided from; see [`run_status`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunFacts {
    /// A stop came while work remained (calls not sent or not repeated because of it).
    pub interrupted: bool,
    /// Operations Pluvo acknowledged.
    pub acknowledged: u64,
    /// Operations Pluvo refused for the item's own reasons (a conflict, an invalid value).
    pub refused: u64,
    /// Operations that failed for reasons not the item's own: transport, credentials, the
    /// schema, the journal.
    pub systemic: u64,
    pub rows_rejected: u64,
    /// The plan held people back for a person to look at: archives withheld by the guard, or
    /// suspected employee-number changes.
    pub plan_held_back: bool,
}

/// How a run that got as far as applying its plan ended. (A run that cannot read its source or
/// plan is `failed` before this is asked.)
///
/// - `aborted`: stopped with work remaining; the next run does it.
/// - `failed`: something systemic went wrong and nothing at all got through, e.g. no token, or
///   every request failing in transport. The service is not doing its job.
/// - `partial`: some work was not done for reasons of its own (people refused by Pluvo, rows
///   rejected, archives withheld, some calls lost); the rest was. One person's unresolved
///   conflict night after night is `partial`, never `failed`.
/// - `ok`: everything planned was acknowledged.
pub fn run_status(facts: &RunFacts) -> RunStatus {
    if facts.interrupted {
        RunStatus::Aborted
    } else if facts.systemic > 0 && facts.acknowledged == 0 {
        RunStatus::Failed
    } else if facts.systemic > 0
        || facts.refused > 0
        || facts.rows_rejected > 0
        || facts.plan_held_back
    {
        RunStatus::Partial
    } else {
        RunStatus::Ok
    }
}

/// How many rejected records a [`RunReport`] lists; the journal has every one.
pub const REJECTED_SHOWN: usize = 20;

/// How a run ended, for the CLI's exit code, the HTTP trigger and the logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub status: RunStatus,
    pub summary: Option<PlanSummary>,
    /// What was read, planned and done: the numbers the journal's row of this run holds too.
    #[serde(flatten)]
    pub counts: RunCounts,
    /// What Pluvo acknowledged: what a summary may say was created, updated, archived. (The
    /// plan's `summary` says what was intended.)
    pub acknowledged: Acknowledged,
    pub withheld_archives: Option<WithheldArchives>,
    /// The archives the plan sent, each with why the person goes.
    pub archives: Vec<NamedArchive>,
    /// The first [`REJECTED_SHOWN`] rejected records, with line, field and reason; all of them
    /// are in the journal.
    pub rejected: Vec<RecordError>,
    pub errors: Vec<String>,
    pub duration_ms: u64,
}

impl RunReport {
    /// A report for a run that has not got anywhere yet.
    /// The report of a run whose start could not even be journaled.
    pub fn not_started(run_id: String, error: &sqlx::Error) -> Self {
        tracing::error!(%run_id, %error, "cannot start the run: the journal is not writable");
        let mut report = Self::failed(run_id);
        report
            .errors
            .push(format!("cannot write the journal: {error}"));
        report
    }

    pub(super) fn failed(run_id: String) -> Self {
        Self {
            run_id,
            status: RunStatus::Failed,
            summary: None,
            counts: RunCounts::default(),
            acknowledged: Acknowledged::default(),
            withheld_archives: None,
            archives: Vec::new(),
            rejected: Vec::new(),
            errors: Vec::new(),
            duration_ms: 0,
        }
    }
}

/// Rejected records make a run partial, so the report says so: a count with the place of each
/// (no reasons, which can quote an address, in `errors`), and the first [`REJECTED_SHOWN`] in
/// full in `rejected`.
pub(super) fn report_rejected(report: &mut RunReport, rejected: &[RecordError]) {
    if rejected.is_empty() {
        return;
    }
    report.rejected = rejected.iter().take(REJECTED_SHOWN).cloned().collect();
    let places: Vec<String> = report
        .rejected
        .iter()
        .map(|r| match &r.field {
            Some(field) => format!("{} ('{field}')", r.location),
            None => r.location.to_string(),
        })
        .collect();
    let more = if rejected.len() > REJECTED_SHOWN {
        format!(" and {} more", rejected.len() - REJECTED_SHOWN)
    } else {
        String::new()
    };
    report.errors.push(format!(
        "{} record(s) rejected and skipped, so those people are left as they are: {}{more}; \
         fix them in the source (reasons under 'rejected', or in `pluvo-sync journal show`)",
        rejected.len(),
        places.join(", ")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_status_says_what_happened() {
        let base = RunFacts::default();
        let cases = [
            ("nothing to do", base, RunStatus::Ok),
            (
                "all acknowledged",
                RunFacts {
                    acknowledged: 40,
                    ..base
                },
                RunStatus::Ok,
            ),
            (
                "one unresolved conflict and nothing else to do",
                RunFacts { refused: 1, ..base },
                RunStatus::Partial,
            ),
            (
                "refusals beside acknowledged work",
                RunFacts {
                    acknowledged: 10,
                    refused: 2,
                    ..base
                },
                RunStatus::Partial,
            ),
            (
                "every request lost in transport",
                RunFacts {
                    systemic: 12,
                    ..base
                },
                RunStatus::Failed,
            ),
            (
                "no token, and refusals seen before it went",
                RunFacts {
                    systemic: 12,
                    refused: 1,
                    ..base
                },
                RunStatus::Failed,
            ),
            (
                "some calls lost, the rest acknowledged",
                RunFacts {
                    systemic: 2,
                    acknowledged: 30,
                    ..base
                },
                RunStatus::Partial,
            ),
            (
                "rows rejected",
                RunFacts {
                    rows_rejected: 1,
                    ..base
                },
                RunStatus::Partial,
            ),
            (
                "archives withheld",
                RunFacts {
                    plan_held_back: true,
                    ..base
                },
                RunStatus::Partial,
            ),
            (
                "stopped with work remaining",
                RunFacts {
                    interrupted: true,
                    acknowledged: 5,
                    ..base
                },
                RunStatus::Aborted,
            ),
        ];
        for (name, facts, expected) in cases {
            assert_eq!(run_status(&facts), expected, "case {name}");
        }
    }
}
