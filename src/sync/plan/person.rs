//! One person's plan: the lifecycle decision (create, update, unarchive, archive, or wait for a
//! start or end date), the field-by-field diff, and the custom fields and memberships to change.
//! Whether someone may be planned at all (held, or paired as a renumbering) is decided before.

use chrono::{Days, NaiveDate};

use super::ManagedGroups;
use super::model::{
    ArchiveReason, CategoryChange, FieldChange, Lifecycle, NewUser, PersonPlan, PlanSummary,
    UpcomingEvent, UserChange,
};
use super::policy::{Leavers, Policy, UPCOMING_DAYS};
use crate::domain::EmployeeRef;
use crate::sync::mapping::DesiredUser;
use crate::sync::snapshot::SnapshotUser;

/// The day on which someone with this end date is archived.
fn archive_date(end_date: NaiveDate, policy: &Policy) -> NaiveDate {
    end_date
        .checked_add_days(Days::new(u64::from(policy.archive_after_end_days)))
        .unwrap_or(NaiveDate::MAX)
}

/// The day on which a new hire's account is created; `None` when pre-boarding is off.
fn create_date(desired: &DesiredUser, policy: &Policy) -> Option<NaiveDate> {
    let start = desired.start_date?;
    let lead = policy.preboarding_days?;
    Some(
        start
            .checked_sub_days(Days::new(u64::from(lead)))
            .unwrap_or(NaiveDate::MIN),
    )
}

/// One person's plan: their account change, custom fields and memberships, counted in
/// `summary`. Held people never get here.
pub(super) fn plan_person(
    employee_ref: &EmployeeRef,
    before: Option<&SnapshotUser>,
    desired: Option<&DesiredUser>,
    managed: &ManagedGroups,
    policy: &Policy,
    today: NaiveDate,
    summary: &mut PlanSummary,
) -> PersonPlan {
    let mut person = PersonPlan::new(employee_ref.clone());

    let Some(desired) = desired else {
        // Absent from the source.
        if let Some(before) = before
            && !before.archived
            && policy.leavers == Leavers::Archive
        {
            person.user = Some(UserChange::Archive {
                why: ArchiveReason::AbsentFromSource,
            });
            summary.archive += 1;
        }
        return person;
    };

    if let Some(end_date) = desired.end_date
        && today >= archive_date(end_date, policy)
    {
        // A leaver by date. Someone we never created is not created just to be archived.
        match before {
            Some(before) if !before.archived => {
                person.user = Some(UserChange::Archive {
                    why: ArchiveReason::EndDatePassed { end_date },
                });
                summary.archive += 1;
            }
            Some(_) => {}
            None => summary.left_before_sync += 1,
        }
        return person;
    }

    let Some(before) = before else {
        if create_date(desired, policy).is_some_and(|date| today < date) {
            summary.not_yet_started += 1;
            return person;
        }
        person.user = Some(UserChange::Create {
            user: NewUser {
                name: desired.name.clone(),
                email: desired.email.clone(),
                roles: desired.roles.clone(),
                language: desired.language,
            },
        });
        summary.create += 1;
        person.categories = desired
            .categories
            .iter()
            .map(|(category, value)| CategoryChange {
                category: category.clone(),
                before: None,
                after: value.clone(),
            })
            .collect();
        person.groups_added = desired.groups.iter().cloned().collect();
        count_rest(&person, summary);
        return person;
    };

    let changes = field_changes(before, desired);
    if before.archived {
        person.user = Some(UserChange::Unarchive { changes });
        summary.unarchive += 1;
    } else if !changes.is_empty() {
        person.user = Some(UserChange::Update { changes });
        summary.update += 1;
    }
    person.categories = desired
        .categories
        .iter()
        .filter(|(category, value)| before.categories.get(*category) != Some(*value))
        .map(|(category, value)| CategoryChange {
            category: category.clone(),
            before: before.categories.get(category).cloned(),
            after: value.clone(),
        })
        .collect();
    person.groups_added = desired.groups.difference(&before.groups).cloned().collect();
    person.groups_removed = before
        .groups
        .difference(&desired.groups)
        .filter(|group| managed(group))
        .cloned()
        .collect();
    count_rest(&person, summary);
    person
}

fn count_rest(person: &PersonPlan, summary: &mut PlanSummary) {
    summary.categories += usize::from(!person.categories.is_empty());
    summary.group_add += person.groups_added.len();
    summary.group_remove += person.groups_removed.len();
}

fn field_changes(before: &SnapshotUser, desired: &DesiredUser) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    if before.name != desired.name {
        changes.push(FieldChange::Name {
            before: before.name.clone(),
            after: desired.name.clone(),
        });
    }
    if before.email != desired.email {
        changes.push(FieldChange::Email {
            before: before.email.clone(),
            after: desired.email.clone(),
        });
    }
    if before.roles != desired.roles {
        changes.push(FieldChange::Roles {
            before: before.roles.clone(),
            after: desired.roles.clone(),
        });
    }
    // No language in the source leaves Pluvo's as it is: the API cannot unset one.
    if let Some(language) = desired.language
        && before.language != Some(language)
    {
        changes.push(FieldChange::Language {
            before: before.language,
            after: language,
        });
    }
    changes
}

/// Creates and archives due within [`UPCOMING_DAYS`] after `today`.
pub(super) fn upcoming_events(
    desired: &DesiredUser,
    before: Option<&SnapshotUser>,
    policy: &Policy,
    today: NaiveDate,
) -> Vec<UpcomingEvent> {
    let horizon = today
        .checked_add_days(Days::new(UPCOMING_DAYS))
        .unwrap_or(NaiveDate::MAX);
    let soon = |date: NaiveDate| date > today && date <= horizon;
    let mut events = Vec::new();
    if before.is_none()
        && let (Some(date), Some(start_date)) = (create_date(desired, policy), desired.start_date)
        && soon(date)
    {
        events.push(UpcomingEvent {
            date,
            employee_ref: desired.employee_ref.clone(),
            event: Lifecycle::Create { start_date },
        });
    }
    if let Some(end_date) = desired.end_date {
        let date = archive_date(end_date, policy);
        if soon(date) && before.is_none_or(|b| !b.archived) {
            events.push(UpcomingEvent {
                date,
                employee_ref: desired.employee_ref.clone(),
                event: Lifecycle::Archive { end_date },
            });
        }
    }
    events
}
