//! `pluvo-sync plan`: what `sync` would do, without sending anything.

use std::fmt::Write as _;

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Cli, Exit};
use crate::settings::Settings;
use crate::sync::engine::{Prepared, RunOptions};
use crate::sync::plan::assignments::{
    AssignmentPlan, Ledger, RemovalGuard, Target, plan_assignments,
};
use crate::sync::plan::{Lifecycle, PlanSummary, UserChange};
use crate::sync::rules::RuleError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plan as `sync --allow-mass-archive` would.
    #[arg(long)]
    pub allow_mass_archive: bool,

    /// Print the whole plan as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cli: &Cli, args: &Args) -> Exit {
    let (context, engine) = match super::load_engine(cli).await {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    let options = RunOptions {
        allow_mass_archive: args.allow_mass_archive,
        progress: false,
    };
    let prepared = match engine.prepare(options).await {
        Ok(prepared) => prepared,
        Err(error) => {
            errln!("error: {error}");
            return Exit::Failed;
        }
    };
    let rules = if context.settings.rules.is_empty() {
        None
    } else {
        match engine.journal().assignment_ledger().await {
            Ok(ledger) => Some(plan_rules(&context.settings, &prepared, &ledger)),
            Err(error) => {
                errln!("error: cannot read the assignment ledger: {error}");
                return Exit::Failed;
            }
        }
    };
    let exit = if args.json {
        let mut json = serde_json::json!({
            "source": prepared.source,
            "fingerprint": prepared.fingerprint,
            "rows_read": prepared.rows_read,
            "rejected": prepared.mapped.rejected,
            "plan": prepared.plan,
        });
        // Only a config with rules gains the key, so the output of one without is unchanged.
        if let (Some(rules), Some(object)) = (&rules, json.as_object_mut()) {
            object.insert(
                "training_rules".to_owned(),
                serde_json::to_value(rules).unwrap_or_default(),
            );
        }
        super::print_json(&json)
    } else {
        out!(
            "{}",
            render(&prepared, &context.settings.time_zone.to_string())
        );
        if let Some(rules) = &rules {
            out!("{}", render_rules(rules));
        }
        Exit::Ok
    };
    // The process ends right after this command (src/main.rs). Freeing every person's desired and
    // acknowledged state first would be most of a million small frees at 100k people, for no one.
    std::mem::forget(prepared);
    exit
}

/// What the training rules would do, beside the user plan.
#[derive(Debug, Serialize)]
pub struct RulePlan {
    #[serde(flatten)]
    pub plan: AssignmentPlan,
    /// Expressions that failed for a person: that person is not matched by that rule.
    pub errors: Vec<RuleError>,
}

/// Evaluates the rules for everyone synced now (not people the plan archives) and diffs them
/// against the ledger, with the archive guard's limits as the removal guard's.
fn plan_rules(settings: &Settings, prepared: &Prepared, ledger: &Ledger) -> RulePlan {
    let leaving: BTreeSet<_> = prepared
        .plan
        .people
        .iter()
        .filter(|p| matches!(p.user, Some(UserChange::Archive { .. })))
        .map(|p| &p.employee_ref)
        .collect();
    let people: Vec<_> = prepared
        .mapped
        .people
        .values()
        .filter(|p| !leaving.contains(&p.employee_ref))
        .collect();
    let synced = people.iter().map(|p| p.employee_ref.clone()).collect();
    let evaluation = settings
        .rules
        .evaluate(people.iter().copied(), prepared.plan.today);
    let guard = RemovalGuard {
        max_people: settings.policy.guard.max_people,
        max_percent: settings.policy.guard.max_percent,
        allow_mass_removal: false,
    };
    RulePlan {
        plan: plan_assignments(&settings.rules, &evaluation, ledger, &synced, guard),
        errors: evaluation.errors,
    }
}

/// The rules' section of the text plan: per rule, who is added, removed, or left because their
/// access comes from a group; people by employee number only.
pub fn render_rules(rules: &RulePlan) -> String {
    let mut out = String::from("\nTraining rules (not applied by this version; see README):\n");
    if rules.plan.rules.is_empty() {
        out.push_str("  nothing to assign or enrol\n");
    }
    let refs = |people: &[crate::domain::EmployeeRef]| {
        people
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for ops in &rules.plan.rules {
        let target = match &ops.target {
            Some(Target::Training { training, role }) => format!("training {training} as {role}"),
            Some(Target::OfferEvent { offer_event }) => format!("offer event {offer_event}"),
            None => String::new(),
        };
        let _ = writeln!(out, "  {} → {target}", ops.rule);
        for (what, people) in [
            ("add", &ops.add),
            ("remove", &ops.remove),
            ("left (access via a group or enrolment)", &ops.left_linked),
        ] {
            if !people.is_empty() {
                let _ = writeln!(out, "    {what} {}: {}", people.len(), refs(people));
            }
        }
    }
    if let Some(why) = &rules.plan.withheld_removals {
        let _ = writeln!(out, "  removals withheld: {why}");
    }
    for error in &rules.errors {
        let _ = writeln!(
            out,
            "  rule {} could not be evaluated for {}: {}",
            error.rule, error.person, error.message
        );
    }
    out
}

/// The human-readable plan: a summary, then one line per person.
pub fn render(prepared: &Prepared, time_zone: &str) -> String {
    let plan = &prepared.plan;
    let s = &plan.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for {} ({time_zone}), source {}",
        plan.today, prepared.source
    );
    let _ = writeln!(
        out,
        "  {} records read, {} rejected, {} people in the source, {} known to Pluvo, {} unchanged",
        prepared.rows_read,
        prepared.mapped.rejected.len(),
        s.desired,
        s.snapshot,
        s.unchanged
    );
    let _ = writeln!(
        out,
        "  create {} · update {} · archive {} · unarchive {} · custom fields {} · group adds {} · group removes {} · not yet started {}",
        s.create,
        s.update,
        s.archive,
        s.unarchive,
        s.categories,
        s.group_add,
        s.group_remove,
        s.not_yet_started
    );
    let _ = writeln!(out, "  {}", people_breakdown(s));
    let _ = writeln!(out, "  {} operation(s) to send", s.operations);
    if !plan.people.is_empty() {
        out.push('\n');
    }
    for person in &plan.people {
        let (mark, action, detail) = match &person.user {
            Some(UserChange::Create { user }) => {
                ('+', "create", format!("{} <{}>", user.name, user.email))
            }
            Some(UserChange::Update { changes }) => ('~', "update", describe_changes(changes)),
            Some(UserChange::Unarchive { changes }) => {
                ('^', "unarchive", describe_changes(changes))
            }
            Some(UserChange::Archive { why }) => ('-', "archive", why.to_string()),
            None => ('~', "", String::new()),
        };
        let mut extras = Vec::new();
        if !person.categories.is_empty() {
            let names: Vec<&str> = person
                .categories
                .iter()
                .map(|c| c.category.as_str())
                .collect();
            extras.push(format!("fields {}", names.join(", ")));
        }
        let groups: Vec<String> = person
            .groups_added
            .iter()
            .map(|g| format!("+{g}"))
            .chain(person.groups_removed.iter().map(|g| format!("-{g}")))
            .collect();
        if !groups.is_empty() {
            extras.push(format!("groups {}", groups.join(" ")));
        }
        let detail = [detail]
            .into_iter()
            .filter(|d| !d.is_empty())
            .chain(extras)
            .collect::<Vec<_>>()
            .join("; ");
        let _ = writeln!(
            out,
            "  {mark} {:<12} {:<9} {detail}",
            person.employee_ref.as_str(),
            action
        );
    }
    if let Some(withheld) = &plan.withheld_archives {
        let _ = writeln!(
            out,
            "\nArchive guard: {} archive(s) withheld: {}.\n  Creates and updates go ahead. If the archives are intended, run `pluvo-sync sync --allow-mass-archive`.",
            withheld.would_archive, withheld.reason
        );
        for person in &withheld.people {
            let _ = writeln!(
                out,
                "  = {:<12} withheld  {}",
                person.employee_ref.as_str(),
                person.why
            );
        }
    }
    if !plan.suspected_ref_changes.is_empty() {
        let _ = writeln!(
            out,
            "\nSuspected employee-number changes (both numbers held: nobody archived or created):"
        );
        for change in &plan.suspected_ref_changes {
            let _ = writeln!(out, "  {}", change.advice());
        }
    }
    if !plan.upcoming.is_empty() {
        let _ = writeln!(
            out,
            "\nComing up in the next {} days:",
            crate::sync::plan::UPCOMING_DAYS
        );
        for event in &plan.upcoming {
            let what = match event.event {
                Lifecycle::Create { start_date } => {
                    format!("create (pre-boarding; starts {start_date})")
                }
                Lifecycle::Archive { end_date } => format!("archive (end date {end_date})"),
            };
            let _ = writeln!(out, "  {}  {:<12} {what}", event.date, event.employee_ref);
        }
    }
    if !prepared.mapped.rejected.is_empty() {
        let _ = writeln!(
            out,
            "\nRejected records (skipped; these people are left as they are):"
        );
        for rejected in &prepared.mapped.rejected {
            let _ = writeln!(out, "  {rejected}");
        }
    }
    if plan.people.is_empty() {
        let _ = writeln!(out, "\nNothing to change.");
    } else {
        let _ = writeln!(
            out,
            "\nNothing was sent. Run `pluvo-sync sync` to apply this plan."
        );
    }
    out
}

/// "13 people: 1 to create, 2 to archive, …": every person the plan looked at, once, so the
/// parts add up to the total.
pub fn people_breakdown(s: &PlanSummary) -> String {
    let parts = [
        (s.create, "to create"),
        (s.update, "to update"),
        (s.unarchive, "to unarchive"),
        (s.archive, "to archive"),
        (s.withheld_archives, "archive(s) withheld"),
        (s.other_changes, "with only custom-field or group changes"),
        (s.unchanged, "unchanged"),
        (s.not_yet_started, "not yet started"),
        (s.left_before_sync, "left before they were ever synced"),
        (s.held, "held (rejected rows)"),
        (
            2 * s.suspected_ref_changes,
            "held as suspected employee-number changes",
        ),
    ];
    let shown: Vec<String> = parts
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} {what}"))
        .collect();
    format!("{} people: {}", s.people(), shown.join(", "))
}

fn describe_changes(changes: &[crate::sync::plan::FieldChange]) -> String {
    use crate::sync::plan::FieldChange::*;
    changes
        .iter()
        .map(|change| match change {
            Name { before, after } => format!("name {before} → {after}"),
            Email { before, after } => format!("email {before} → {after}"),
            Roles { before, after } => format!(
                "roles {} → {}",
                before
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                after
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Language { before, after } => format!(
                "language {} → {after}",
                before.map_or("-".to_owned(), |l| l.to_string())
            ),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
