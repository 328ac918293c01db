//! `pluvo-sync journal …`: the audit trail, for people (tables) and machines (`--json`).
//! The same data is in the database's `runs` and `operations` tables and the views `last_run`,
//! `person_history` and `failures`, for `sqlite3`.

use super::{Cli, Context, Exit};
use crate::journal::{OperationRow, RunRow};

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
    },
}

pub async fn run(cli: &Cli, command: &Command) -> Exit {
    let context = match Context::load(cli) {
        Ok(context) => context,
        Err(exit) => return exit,
    };
    let journal = match context.journal().await {
        Ok(journal) => journal,
        Err(exit) => return exit,
    };
    let result = match command {
        Command::Prune { older_than_days } => {
            let days = older_than_days.unwrap_or(context.settings.journal.retention_days);
            let cutoff = crate::retention::cutoff(journal.now(), days);
            crate::retention::prune(journal.pool(), cutoff)
                .await
                .map(|pruned| {
                    println!(
                        "pruned {} run(s) and {} operation(s) older than {days} days",
                        pruned.runs, pruned.operations
                    );
                    Exit::Ok
                })
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
                        println!("\n{errors}");
                    }
                    println!();
                    print_operations(&ops, true);
                    Exit::Ok
                }
            }),
            Ok(None) => {
                eprintln!(
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
                    println!("nothing journaled for employee {employee_ref}");
                    Exit::Ok
                } else {
                    print_operations(&ops, false);
                    Exit::Ok
                }
            })
        }
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: cannot read the journal: {error}");
        Exit::Failed
    })
}

fn print_runs(runs: &[RunRow]) {
    println!(
        "{:<36}  {:<8}  {:<20}  {:<8}  {:>6}  {:>6}  {:>6}  {:>8}",
        "run", "trigger", "started", "status", "ok", "failed", "skipped", "rejected"
    );
    for run in runs {
        println!(
            "{:<36}  {:<8}  {:<20}  {:<8}  {:>6}  {:>6}  {:>6}  {:>8}",
            run.id,
            run.trigger,
            run.started_at,
            run.status,
            run.ops_ok,
            run.ops_failed,
            run.ops_skipped,
            run.rows_rejected
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
        let changes = match &op.changes {
            serde_json::Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|c| {
                    // An archive says why the person goes: absent, or their end date passed.
                    let why =
                        serde_json::from_value::<crate::plan::ArchiveReason>(c["why"].clone())
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
        println!(
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
