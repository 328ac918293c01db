//! The diff: what must change in Pluvo so that it matches the HR system.
//!
//! [`plan`] is a pure function of the snapshot (what Pluvo acknowledged), the mapped source (what
//! HR says now), the [`Policy`] and *today* in the tenant's time zone. It performs no I/O and reads
//! no clock, so the same inputs always give the same [`Plan`], which can be printed (`plan`),
//! journaled, and asserted in tests.
//!
//! Words used here:
//! - a **leaver** is someone who is absent from the source, or whose end date has passed;
//! - **archive** is how a leaver leaves (Pluvo accounts are never deleted: history stays);
//! - an **unarchive** brings a rehire back on the same account;
//! - a person is **held** when a record of theirs was rejected: nothing about them changes, and in
//!   particular they are not archived because their row was unreadable;
//! - the **archive guard** withholds all archives when the source looks wrong (empty, or far more
//!   leavers than usual). Creates and updates still go ahead;
//! - a **suspected employee-number change** is a person absent from the source whose e-mail
//!   address a new record has: one person, renumbered. Both numbers are held, so the account is
//!   neither archived nor duplicated.
//!
//! This file walks both sides and assembles the plan; the rooms beside it hold the rest:
//! `policy.rs` (the operator's decisions), `model.rs` (the plan as a value), `person.rs` (one
//! person's diff) and `guard.rs` (the archive guard and suspected employee-number changes).

pub mod assignments;
mod guard;
mod model;
mod person;
mod policy;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use itertools::{EitherOrBoth, Itertools};

use crate::domain::{EmployeeRef, GroupRef};
use crate::sync::mapping::Mapped;
use crate::sync::snapshot::Snapshot;

pub use model::{
    ArchiveReason, CategoryChange, FieldChange, GroupChanges, Lifecycle, NamedArchive, NewUser,
    PersonPlan, Plan, PlanSummary, SuspectedRefChange, UpcomingEvent, UserChange, WithheldArchives,
};
pub use policy::{ArchiveGuard, Leavers, Policy, UPCOMING_DAYS};

/// Decides which groups the sync may remove people from: only those its rules can produce
/// (`MappingRules::is_managed`, passed in by the engine so the plan does not depend on how
/// mapping is configured).
pub type ManagedGroups<'a> = dyn Fn(&GroupRef) -> bool + Sync + 'a;

/// Computes the plan. Linear in the number of people: both sides are walked once, in ref order.
pub fn plan(
    snapshot: &Snapshot,
    mapped: &Mapped,
    managed: &ManagedGroups,
    policy: &Policy,
    today: NaiveDate,
) -> Plan {
    let mut summary = PlanSummary {
        desired: mapped.people.len(),
        snapshot: snapshot.len(),
        held: mapped.held.len(),
        ..PlanSummary::default()
    };
    let mut people = Vec::new();
    let mut upcoming = Vec::new();
    let suspected_ref_changes = guard::suspected_ref_changes(snapshot, mapped);
    summary.suspected_ref_changes = suspected_ref_changes.len();
    let paired: BTreeSet<&EmployeeRef> = suspected_ref_changes
        .iter()
        .flat_map(|change| [&change.absent_ref, &change.new_ref])
        .collect();

    // Both sides are sorted by ref, so one merge walks them together.
    let by_ref = snapshot
        .iter()
        .merge_join_by(mapped.people.iter(), |(known, _), (listed, _)| {
            known.cmp(listed)
        });
    for pair in by_ref {
        let (employee_ref, before, desired) = match pair {
            EitherOrBoth::Left((r, s)) => (r, Some(s), None),
            EitherOrBoth::Right((r, d)) => (r, None, Some(d)),
            EitherOrBoth::Both((r, s), (_, d)) => (r, Some(s), Some(d)),
        };
        if mapped.held.contains(employee_ref) || paired.contains(employee_ref) {
            continue;
        }
        if let Some(desired) = desired {
            upcoming.extend(person::upcoming_events(desired, before, policy, today));
        }
        let person = person::plan_person(
            employee_ref,
            before,
            desired,
            managed,
            policy,
            today,
            &mut summary,
        );
        if person.is_empty() {
            summary.unchanged += usize::from(before.is_some());
        } else {
            summary.other_changes += usize::from(person.user.is_none());
            people.push(person);
        }
    }

    let withheld_archives = guard::guard_archives(&mut people, snapshot, mapped, policy);
    if let Some(withheld) = &withheld_archives {
        summary.withheld_archives = withheld.would_archive;
        summary.archive -= withheld.would_archive;
    }

    let mut groups: BTreeMap<GroupRef, GroupChanges> = BTreeMap::new();
    for person in &people {
        for group in &person.groups_added {
            groups
                .entry(group.clone())
                .or_default()
                .add
                .insert(person.employee_ref.clone());
        }
        for group in &person.groups_removed {
            groups
                .entry(group.clone())
                .or_default()
                .remove
                .insert(person.employee_ref.clone());
        }
    }
    summary.operations = people.iter().map(PersonPlan::operation_count).sum();
    upcoming.sort_by(|a, b| (a.date, &a.employee_ref).cmp(&(b.date, &b.employee_ref)));

    Plan {
        today,
        summary,
        people,
        groups,
        withheld_archives,
        upcoming,
        held: mapped.held.iter().cloned().collect(),
        suspected_ref_changes,
    }
}

#[cfg(test)]
mod tests;
