//! The plan as a value: what changes per person and per group, what is coming up, and what is
//! withheld or held for the operator, with the counts that summarise it. These types are what
//! `plan --json` prints and the journal stores, so their serialised shape is an interface.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::{
    CategoryRef, CategoryValue, Email, EmployeeRef, GroupRef, Language, OpKind, Roles,
};

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
    pub(super) fn new(employee_ref: EmployeeRef) -> Self {
        Self {
            employee_ref,
            user: None,
            categories: Vec::new(),
            groups_added: Vec::new(),
            groups_removed: Vec::new(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
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

/// What `sync` would change, and what it leaves for the operator: the value `plan` prints,
/// `sync` applies and the journal records.
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
