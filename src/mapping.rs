//! From an HR record to the Pluvo user that person should be.
//!
//! The rules are declared in config (`[mapping]`) and resolved once into [`MappingRules`]. Mapping
//! is pure: records in, [`Mapped`] out. A record that does not map is a [`RecordError`] naming its
//! row and field; it never aborts the others.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::{CategoryRef, Email, EmployeeRef, GroupRef, Language, Role};
use crate::source::RecordError;

/// The value of one custom field ("extra category"), typed as the category is in Pluvo.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum CategoryValue {
    String(String),
    /// The option's text, as Pluvo's `choiceValues: [{stringValue}]` names it.
    Choice(String),
    Boolean(bool),
    Date(NaiveDate),
}

/// The Pluvo user an employee should be, as the HR system says now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredUser {
    pub employee_ref: EmployeeRef,
    pub name: String,
    pub email: Email,
    pub roles: BTreeSet<Role>,
    pub language: Option<Language>,
    /// Only categories with a value; an empty cell leaves Pluvo's value as it is.
    pub categories: BTreeMap<CategoryRef, CategoryValue>,
    pub groups: BTreeSet<GroupRef>,
    /// First working day, when the source has it (pre-boarding).
    pub start_date: Option<NaiveDate>,
    /// Last working day, when the source has it (leavers).
    pub end_date: Option<NaiveDate>,
}

/// The result of mapping one read.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    pub people: BTreeMap<EmployeeRef, DesiredUser>,
    /// People who appear in the source but whose record(s) were rejected, duplicates included.
    /// They are left exactly as they are this run: not updated, and above all not archived.
    pub held: BTreeSet<EmployeeRef>,
    pub rejected: Vec<RecordError>,
}
