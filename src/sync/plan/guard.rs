//! The plan's safety checks across people, run over the whole source rather than one person: the
//! archive guard, which withholds archives when the source looks wrong, and the pairing of an
//! absent person with a new record at their address (a suspected employee-number change).

use std::collections::BTreeMap;

use super::ArchiveReason;
use super::model::{NamedArchive, PersonPlan, SuspectedRefChange, UserChange, WithheldArchives};
use super::policy::Policy;
use crate::domain::EmployeeRef;
use crate::sync::mapping::Mapped;
use crate::sync::snapshot::Snapshot;
#[cfg(doc)]
use crate::sync::source::RecordError;

/// Pairs each person Pluvo knows who is absent from the source with a new record (a number
/// Pluvo does not know) that has their e-mail address. Addresses are compared normalised (trimmed
/// and lower-cased, see [`Email`]), so `Ann@Example.com` in the export pairs with
/// `ann@example.com` in the snapshot.
pub(super) fn suspected_ref_changes(
    snapshot: &Snapshot,
    mapped: &Mapped,
) -> Vec<SuspectedRefChange> {
    let absent_by_email: BTreeMap<&str, &EmployeeRef> = snapshot
        .iter()
        .filter(|(employee_ref, _)| {
            !mapped.people.contains_key(*employee_ref) && !mapped.held.contains(*employee_ref)
        })
        .map(|(employee_ref, user)| (user.email.as_str(), employee_ref))
        .collect();
    if absent_by_email.is_empty() {
        return Vec::new();
    }
    let mut pairs: Vec<SuspectedRefChange> = mapped
        .people
        .iter()
        .filter(|(employee_ref, _)| !snapshot.contains_key(*employee_ref))
        .filter_map(|(new_ref, desired)| {
            absent_by_email
                .get(desired.email.as_str())
                .map(|absent_ref| SuspectedRefChange {
                    absent_ref: (*absent_ref).clone(),
                    new_ref: new_ref.clone(),
                })
        })
        .collect();
    pairs.sort_by(|a, b| a.absent_ref.cmp(&b.absent_ref));
    pairs
}

/// Withholds archives when the source looks wrong, and says why:
/// - a record without a readable employee number could be anyone, and a record with the wrong
///   number of cells ([`RecordError::structural`]) may hide other rows, so nobody's absence can
///   be trusted: archives of absent people are withheld (archives by end date still go ahead);
/// - an empty source, or more archives than the guard allows, withholds every archive.
pub(super) fn guard_archives(
    people: &mut Vec<PersonPlan>,
    snapshot: &Snapshot,
    mapped: &Mapped,
    policy: &Policy,
) -> Option<WithheldArchives> {
    let is_archive = |p: &PersonPlan| matches!(p.user, Some(UserChange::Archive { .. }));
    let is_absent = |p: &PersonPlan| {
        matches!(
            p.user,
            Some(UserChange::Archive {
                why: ArchiveReason::AbsentFromSource
            })
        )
    };
    let would_archive = people.iter().filter(|p| is_archive(p)).count();
    if would_archive == 0 || policy.allow_mass_archive {
        return None;
    }
    let active_users = snapshot.values().filter(|u| !u.archived).count();
    // Rounded down: the percentage is a ceiling, not a target.
    let by_percent = (policy.guard.max_percent / 100.0 * active_users as f64).floor() as usize;
    let limit = policy.guard.max_people.max(by_percent);
    // A row without a readable number could be anyone; a row with the wrong number of cells
    // may have swallowed (or be split from) other people's rows.
    let suspect = mapped
        .rejected
        .iter()
        .filter(|r| r.employee_ref.is_none() || r.structural)
        .count();

    let (reason, withhold_all) = if mapped.people.is_empty() && mapped.held.is_empty() {
        ("the source lists no employees at all".to_owned(), true)
    } else if would_archive > limit {
        let reason = format!(
            "{would_archive} of {active_users} active users would be archived, more than the limit of {limit} \
             (max({} people, {}%))",
            policy.guard.max_people, policy.guard.max_percent
        );
        (reason, true)
    } else if suspect > 0 && people.iter().any(is_absent) {
        let reason = format!(
            "{suspect} record(s) have no readable employee number or the wrong number of cells, so \
             people missing from the source may be on them; fix those rows and the archives follow \
             on the next run"
        );
        (reason, false)
    } else {
        return None;
    };
    let (withheld, kept): (Vec<PersonPlan>, Vec<PersonPlan>) =
        std::mem::take(people).into_iter().partition(|p| {
            if withhold_all {
                is_archive(p)
            } else {
                is_absent(p)
            }
        });
    *people = kept;
    let withheld: Vec<NamedArchive> = withheld.iter().filter_map(PersonPlan::archive).collect();
    Some(WithheldArchives {
        would_archive: withheld.len(),
        active_users,
        limit,
        reason,
        people: withheld,
    })
}
