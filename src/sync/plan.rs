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

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::iter::Peekable;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::domain::CategoryValue;
use crate::domain::{CategoryRef, Email, EmployeeRef, GroupRef, Language, OpKind, Roles};
use crate::sync::mapping::{DesiredUser, Mapped};
use crate::sync::snapshot::{Snapshot, SnapshotUser};
#[cfg(doc)]
use crate::sync::source::RecordError;

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

/// The user fields to create a new account with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub email: Email,
    pub roles: Roles,
    pub language: Option<Language>,
}

/// One changed user field, with its value before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum FieldChange {
    Name {
        before: String,
        after: String,
    },
    Email {
        before: Email,
        after: Email,
    },
    Roles {
        before: Roles,
        after: Roles,
    },
    Language {
        before: Option<Language>,
        after: Language,
    },
}

impl FieldChange {
    pub fn field(&self) -> &'static str {
        match self {
            FieldChange::Name { .. } => "name",
            FieldChange::Email { .. } => "email",
            FieldChange::Roles { .. } => "roles",
            FieldChange::Language { .. } => "language",
        }
    }
}

/// Why someone is archived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ArchiveReason {
    AbsentFromSource,
    EndDatePassed { end_date: NaiveDate },
}

impl std::fmt::Display for ArchiveReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveReason::AbsentFromSource => f.write_str("absent from the source"),
            ArchiveReason::EndDatePassed { end_date } => write!(f, "end date {end_date} passed"),
        }
    }
}

/// Someone to archive, and why: named in `plan`, `sync` and the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedArchive {
    pub employee_ref: EmployeeRef,
    pub why: ArchiveReason,
}

/// The change to a person's Pluvo account itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum UserChange {
    Create {
        user: NewUser,
    },
    Update {
        changes: Vec<FieldChange>,
    },
    /// A rehire: the archived account comes back, with whatever else changed meanwhile.
    Unarchive {
        changes: Vec<FieldChange>,
    },
    Archive {
        why: ArchiveReason,
    },
}

impl UserChange {
    pub fn kind(&self) -> OpKind {
        match self {
            UserChange::Create { .. } => OpKind::Create,
            UserChange::Update { .. } => OpKind::Update,
            UserChange::Unarchive { .. } => OpKind::Unarchive,
            UserChange::Archive { .. } => OpKind::Archive,
        }
    }
}

/// One custom field to set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryChange {
    pub category: CategoryRef,
    pub before: Option<CategoryValue>,
    pub after: CategoryValue,
}

/// Everything that changes for one person. People with nothing to change are not in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonPlan {
    pub employee_ref: EmployeeRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserChange>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub categories: Vec<CategoryChange>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub groups_added: Vec<GroupRef>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub groups_removed: Vec<GroupRef>,
}

impl PersonPlan {
    fn new(employee_ref: EmployeeRef) -> Self {
        Self {
            employee_ref,
            user: None,
            categories: Vec::new(),
            groups_added: Vec::new(),
            groups_removed: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.user.is_none()
            && self.categories.is_empty()
            && self.groups_added.is_empty()
            && self.groups_removed.is_empty()
    }

    /// The archive of this person, if that is their change.
    pub fn archive(&self) -> Option<NamedArchive> {
        match &self.user {
            Some(UserChange::Archive { why }) => Some(NamedArchive {
                employee_ref: self.employee_ref.clone(),
                why: why.clone(),
            }),
            _ => None,
        }
    }

    /// Journal operations this person accounts for: the user call, the custom-field call, and
    /// one per membership change.
    pub fn operation_count(&self) -> usize {
        usize::from(self.user.is_some())
            + usize::from(!self.categories.is_empty())
            + self.groups_added.len()
            + self.groups_removed.len()
    }
}

/// The membership changes of one group, sent as one batched call each way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GroupChanges {
    pub add: BTreeSet<EmployeeRef>,
    pub remove: BTreeSet<EmployeeRef>,
}

/// A lifecycle event coming up, for the "next 7 days" section of `plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpcomingEvent {
    pub date: NaiveDate,
    pub employee_ref: EmployeeRef,
    pub event: Lifecycle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Lifecycle {
    /// Pre-boarding starts: the account is created (starts work on `start_date`).
    Create { start_date: NaiveDate },
    /// The end date has passed: the account is archived.
    Archive { end_date: NaiveDate },
}

/// Why archives were withheld, and whose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WithheldArchives {
    pub would_archive: usize,
    pub active_users: usize,
    pub limit: usize,
    pub reason: String,
    /// Everyone whose archive was withheld, in ref order, with why they would have gone.
    #[serde(default)]
    pub people: Vec<NamedArchive>,
}

/// A person absent from the source and a new record with the same e-mail address: one person
/// whose employee number changed, or is written differently (`E 000043` for `000043`). Archiving
/// the one and creating the other would take the person's account away and then fail, because
/// Pluvo addresses are unique. Both are held; the operator decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspectedRefChange {
    /// The number Pluvo knows, missing from the source.
    pub absent_ref: EmployeeRef,
    /// The number the source now has for that address.
    pub new_ref: EmployeeRef,
}

impl SuspectedRefChange {
    /// What happened and what to do, naming both numbers (no name or address).
    pub fn advice(&self) -> String {
        let (old, new) = (&self.absent_ref, &self.new_ref);
        format!(
            "suspected employee-number change: {old} is missing from the source and new employee \
             {new} has the same e-mail address, so neither is archived nor created. If the source \
             writes the number wrongly, correct it there. If the number really changed, change the \
             user's ref in Pluvo from {old} to {new} and remove {old} from the snapshot \
             (sqlite3 <database> \"DELETE FROM snapshot_users WHERE employee_ref = '{old}'\"); the \
             next run then updates the account as {new}"
        )
    }
}

/// Counts by kind, for summaries and the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PlanSummary {
    pub desired: usize,
    pub snapshot: usize,
    pub unchanged: usize,
    pub create: usize,
    pub update: usize,
    pub archive: usize,
    pub unarchive: usize,
    pub categories: usize,
    pub group_add: usize,
    pub group_remove: usize,
    pub held: usize,
    pub not_yet_started: usize,
    /// In the source with an end date that passed before the sync ever created them: nothing
    /// to create, nothing to archive.
    pub left_before_sync: usize,
    /// Known people whose only changes are custom fields or group memberships.
    pub other_changes: usize,
    pub withheld_archives: usize,
    /// Pairs of numbers held as one person whose number changed ([`SuspectedRefChange`]).
    pub suspected_ref_changes: usize,
    pub operations: usize,
}

impl PlanSummary {
    /// Everyone the plan looked at, each counted once under what happens to them: the
    /// snapshot's people and the source's (held ones included), without double counting those in
    /// both. `plan` prints this breakdown, so it must add up.
    pub fn people(&self) -> usize {
        self.create
            + self.update
            + self.unarchive
            + self.archive
            + self.withheld_archives
            + self.other_changes
            + self.unchanged
            + self.not_yet_started
            + self.left_before_sync
            + self.held
            + 2 * self.suspected_ref_changes
    }
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub today: NaiveDate,
    pub summary: PlanSummary,
    pub people: Vec<PersonPlan>,
    pub groups: BTreeMap<GroupRef, GroupChanges>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withheld_archives: Option<WithheldArchives>,
    pub upcoming: Vec<UpcomingEvent>,
    pub held: Vec<EmployeeRef>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub suspected_ref_changes: Vec<SuspectedRefChange>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.people.is_empty()
    }

    /// Whether the plan leaves something for the operator to decide: archives the guard
    /// withheld, or people held as a suspected employee-number change. Such a run is partial.
    pub fn needs_attention(&self) -> bool {
        self.withheld_archives.is_some() || !self.suspected_ref_changes.is_empty()
    }

    /// The archives this plan sends, with why each person goes.
    pub fn archives(&self) -> Vec<NamedArchive> {
        self.people.iter().filter_map(PersonPlan::archive).collect()
    }
}

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
    let suspected_ref_changes = suspected_ref_changes(snapshot, mapped);
    summary.suspected_ref_changes = suspected_ref_changes.len();
    let paired: BTreeSet<&EmployeeRef> = suspected_ref_changes
        .iter()
        .flat_map(|change| [&change.absent_ref, &change.new_ref])
        .collect();

    for pair in merge_join(snapshot.iter(), mapped.people.iter()) {
        let (employee_ref, before, desired) = match pair {
            Pair::Left(r, s) => (r, Some(s), None),
            Pair::Right(r, d) => (r, None, Some(d)),
            Pair::Both(r, s, d) => (r, Some(s), Some(d)),
        };
        if mapped.held.contains(employee_ref) || paired.contains(employee_ref) {
            continue;
        }
        if let Some(desired) = desired {
            upcoming.extend(upcoming_events(desired, before, policy, today));
        }
        let person = plan_person(
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

    let withheld_archives = guard_archives(&mut people, snapshot, mapped, policy);
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

/// Pairs each person Pluvo knows who is absent from the source with a new record (a number
/// Pluvo does not know) that has their e-mail address. Addresses are compared normalised (trimmed
/// and lower-cased, see [`Email`]), so `Ann@Example.com` in the export pairs with
/// `ann@example.com` in the snapshot.
fn suspected_ref_changes(snapshot: &Snapshot, mapped: &Mapped) -> Vec<SuspectedRefChange> {
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

fn plan_person(
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

fn upcoming_events(
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

/// Withholds archives when the source looks wrong, and says why:
/// - a record without a readable employee number could be anyone, and a record with the wrong
///   number of cells ([`RecordError::structural`]) may hide other rows, so nobody's absence can
///   be trusted: archives of absent people are withheld (archives by end date still go ahead);
/// - an empty source, or more archives than the guard allows, withholds every archive.
fn guard_archives(
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

enum Pair<'a, K, L, R> {
    Left(&'a K, &'a L),
    Right(&'a K, &'a R),
    Both(&'a K, &'a L, &'a R),
}

/// Walks two maps sorted by the same key side by side.
fn merge_join<'a, K: Ord + 'a, L: 'a, R: 'a>(
    left: impl Iterator<Item = (&'a K, &'a L)>,
    right: impl Iterator<Item = (&'a K, &'a R)>,
) -> impl Iterator<Item = Pair<'a, K, L, R>> {
    struct Join<A: Iterator, B: Iterator> {
        left: Peekable<A>,
        right: Peekable<B>,
    }
    impl<'a, K: Ord + 'a, L: 'a, R: 'a, A, B> Iterator for Join<A, B>
    where
        A: Iterator<Item = (&'a K, &'a L)>,
        B: Iterator<Item = (&'a K, &'a R)>,
    {
        type Item = Pair<'a, K, L, R>;
        fn next(&mut self) -> Option<Self::Item> {
            let order = match (self.left.peek(), self.right.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((l, _)), Some((r, _))) => l.cmp(r),
            };
            match order {
                Ordering::Less => self.left.next().map(|(k, l)| Pair::Left(k, l)),
                Ordering::Greater => self.right.next().map(|(k, r)| Pair::Right(k, r)),
                Ordering::Equal => {
                    let (k, l) = self.left.next()?;
                    let (_, r) = self.right.next()?;
                    Some(Pair::Both(k, l, r))
                }
            }
        }
    }
    Join {
        left: left.peekable(),
        right: right.peekable(),
    }
}

#[cfg(test)]
mod tests;
