//! `pluvo-sync journal …`: the audit trail, for people (tables) and machines (`--json`).
//! The same data is in the database's `runs` and `operations` tables and the views `last_run`,
//! `person_history` and `failures`, for `sqlite3`.

use super::{Cli, Context, Exit};
use crate::db::Access;
use crate::sync::journal::retention::MIN_DAYS_WITHOUT_CONFIRMATION;
use crate::sync::journal::{Journal, OperationRow, Run};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List recent runs, newest first.
    Runs {
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show one run and every operation in it.
    Show {
        /// The run id, or a unique prefix of it.
        run: String,
        #[arg(long)]
        json: bool,
    },
    /// Everything that ever happened to one person.
    Person {
        /// The employee number (Pluvo ref).
        employee_ref: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete runs (and their operations) older than the retention period now. Runs are also
    /// pruned after every run; the snapshot is never touched.
    Prune {
        /// Keep this many days instead of `journal.retention_days`.
        #[arg(long)]
        older_than_days: Option<u32>,
        /// Confirm pruning runs younger than 30 days (`--older-than-days 0` empties the audit
        /// trail).
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run(cli: &Cli, command: &Command) -> Exit {
    let context = match Context::load(cli) {
        Ok(context) => context,
        Err(exit) => return exit,
    };
    // Reading never creates or migrates anything; only prune writes, and only to a database
    // that exists.
    let access = match command {
        Command::Prune { .. } => Access::ReadWrite,
        _ => Access::ReadOnly,
    };
    let journal = match crate::db::open_existing(&context.settings.database, access).await {
        Ok(pool) => Journal::new(pool, context.clock.clone()),
        Err(error) => {
            errln!("error: {error}");
            return Exit::Failed;
        }
    };
    let result = match command {
        Command::Prune {
            older_than_days,
            yes,
        } => {
            let days = older_than_days.unwrap_or(context.settings.journal.retention_days);
            prune(&journal, days, *yes).await
        }
        Command::Runs { limit, json } => journal.runs(*limit).await.map(|runs| {
            if *json {
                super::print_json(&runs)
            } else {
                print_runs(&runs);
                Exit::Ok
            }
        }),
        Command::Show { run, json } => match journal.run(run).await {
            Ok(Some(found)) => journal.operations_of_run(&found.id).await.map(|ops| {
                if *json {
                    super::print_json(&serde_json::json!({"run": found, "operations": ops}))
                } else {
                    print_runs(std::slice::from_ref(&found));
                    if let Some(errors) = &found.error_summary {
                        outln!("\n{errors}");
                    }
                    outln!();
                    print_operations(&ops, true);
                    Exit::Ok
                }
            }),
            Ok(None) => {
                errln!(
                    "error: no run with id (or unique id prefix) '{run}'; see `pluvo-sync journal runs`"
                );
                Ok(Exit::Failed)
            }
            Err(error) => Err(error),
        },
        Command::Person { employee_ref, json } => {
            journal.operations_of_person(employee_ref).await.map(|ops| {
                if *json {
                    super::print_json(&ops)
                } else if ops.is_empty() {
                    outln!("nothing journaled for employee {employee_ref}");
                    Exit::Ok
                } else {
                    print_operations(&ops, false);
                    Exit::Ok
                }
            })
        }
    };
    result.unwrap_or_else(|error| {
        errln!("error: cannot read the journal: {error}");
        Exit::Failed
    })
}

/// Prunes runs older than `days`. Below [`MIN_DAYS_WITHOUT_CONFIRMATION`] this erases recent
/// audit history (0 days: all of it), so it needs `--yes`; without it, nothing is deleted and the
/// message says how much would have been.
async fn prune(journal: &Journal, days: u32, yes: bool) -> Result<Exit, sqlx::Error> {
    let cutoff = crate::sync::journal::retention::cutoff(journal.now(), days);
    if days < MIN_DAYS_WITHOUT_CONFIRMATION && !yes {
        let would = journal.count_prunable(cutoff).await?;
        errln!(
            "error: pruning runs older than {days} day(s) would delete {} run(s) and {} \
             operation(s) of the audit trail, including the last {MIN_DAYS_WITHOUT_CONFIRMATION} \
             days; nothing was deleted. Add --yes if that is intended.",
            would.runs,
            would.operations
        );
        return Ok(Exit::Usage);
    }
    let pruned = journal.prune(cutoff).await?;
    outln!(
        "pruned {} run(s) and {} operation(s) older than {days} days",
        pruned.runs,
        pruned.operations
    );
    Ok(Exit::Ok)
}

fn print_runs(runs: &[Run]) {
    outln!(
        "{:<36}  {:<8}  {:<20}  {:<8}  {:>6}  {:>6}  {:>6}  {:>8}",
        "run",
        "trigger",
        "started",
        "status",
        "ok",
        "failed",
        "skipped",
        "rejected"
    );
    for run in runs {
        outln!(
            "{:<36}  {:<8}  {:<20}  {:<8}  {:>6}  {:>6}  {:>6}  {:>8}",
            run.id,
            run.trigger.as_str(),
            run.started_at,
            run.status.as_str(),
            run.counts.ops_ok,
            run.counts.ops_failed,
            run.counts.ops_skipped,
            run.counts.rows_rejected
        );
    }
}

fn print_operations(ops: &[OperationRow], by_run: bool) {
    for op in ops {
        let who = if by_run {
            op.employee_ref.clone().unwrap_or_else(|| "-".to_owned())
        } else {
            op.run_id.chars().take(8).collect()
        };
        let target = op
            .target
            .as_deref()
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        let changes = match &*op.changes {
            serde_json::Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|c| {
                    // An archive says why the person goes: absent, or their end date passed.
                    let why = serde_json::from_value::<crate::sync::plan::ArchiveReason>(
                        c["why"].clone(),
                    )
                    .map(|why| format!(" ({why})"))
                    .unwrap_or_default();
                    format!(
                        "{}: {} → {}{why}",
                        c["field"].as_str().unwrap_or("?"),
                        c["before"],
                        c["after"]
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            _ => String::new(),
        };
        let error = op
            .error
            .as_deref()
            .map(|e| format!("  [{e}]"))
            .unwrap_or_default();
        outln!(
            "{}  {:<12} {:<15} {:<8} {}{}{}",
            op.at,
            who,
            format!("{}{}", op.kind, target),
            op.status,
            changes,
            if op.attempts > 1 {
                format!(" ({} attempts)", op.attempts)
            } else {
                String::new()
            },
            error
        );
    }
}
