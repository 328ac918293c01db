//! From an HR record to the Pluvo user that person should be.
//!
//! The rules are declared in config (`[mapping]`, see [`settings`] for an annotated example) and
//! resolved once into [`MappingRules`]; a rule that cannot work (a bad template, an unknown role or
//! date format) fails at start-up, naming its key, rather than on every row. Mapping is pure:
//! records in, [`Mapped`] out. A record that does not map is a [`RecordError`] naming its row and
//! field; it never aborts the others.
//!
//! Mapping also decides who is *held*: anyone whose record was rejected, and everyone who shares
//! an employee number or an e-mail address with another record. Those people are left exactly as
//! they are this run. Applying one of two conflicting rows would be a coin toss, and treating a
//! person with an unreadable row as absent would archive them.
//!
//! Groups are *managed* when a rule can produce them: the static list, and every ref a group
//! template could render. The sync never removes a membership of a group it does not manage.
//!
//! Rooms: this file maps a whole read and decides who is held; `rules.rs` resolves `[mapping]`
//! into [`MappingRules`]; `record.rs` maps one record; [`limits`], [`template`] and [`value`]
//! read and check single values; [`settings`] is the config as written.

pub mod limits;
mod record;
mod rules;
pub mod settings;
pub mod template;
pub mod value;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::{Categories, Email, EmployeeRef, Groups, Language, Roles};
use crate::sync::source::{Location, RecordError, SourceData};

pub use rules::{CategoryKind, CategoryRule, MappingConfigError, MappingRules};
pub use settings::{CategoryType, MappingSettings};
pub use template::{Template, slug};
pub use value::DateFormat;

/// The Pluvo user an employee should be, as the HR system says now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredUser {
    pub employee_ref: EmployeeRef,
    pub name: String,
    pub email: Email,
    pub roles: Roles,
    pub language: Option<Language>,
    /// Only categories with a value; an empty cell leaves Pluvo's value as it is.
    pub categories: Categories,
    pub groups: Groups,
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

impl MappingRules {
    /// Maps one read. Pure: the same data gives the same result.
    #[tracing::instrument(skip_all, fields(records = data.records.len()))]
    pub fn map(&self, data: SourceData) -> Mapped {
        let SourceData {
            records,
            rejected: unreadable,
            ..
        } = data;
        let mut mapped = Mapped::default();

        // Records that share an employee number: none of them is applied.
        let refs: Vec<Option<EmployeeRef>> = records
            .iter()
            .map(|record| {
                record
                    .get(&self.ref_column)
                    .and_then(|raw| EmployeeRef::parse(raw).ok())
            })
            .collect();
        let mut rows_by_ref: HashMap<&EmployeeRef, Vec<&Location>> = HashMap::new();
        for (employee_ref, record) in refs.iter().zip(&records) {
            if let Some(employee_ref) = employee_ref {
                rows_by_ref
                    .entry(employee_ref)
                    .or_default()
                    .push(&record.location);
            }
        }

        let mut candidates: Vec<(&Location, DesiredUser)> = Vec::with_capacity(records.len());
        for (employee_ref, record) in refs.iter().zip(&records) {
            let rows = employee_ref
                .as_ref()
                .and_then(|employee_ref| rows_by_ref.get(employee_ref))
                .filter(|rows| rows.len() > 1);
            if let (Some(employee_ref), Some(rows)) = (employee_ref, rows) {
                let others = list_others(rows.iter().copied(), &record.location);
                mapped.rejected.push(RecordError {
                    location: record.location.clone(),
                    employee_ref: Some(employee_ref.to_string()),
                    field: Some(self.ref_column.clone()),
                    reason: format!(
                        "employee number {employee_ref} is also on {others}; none of these rows \
                         is applied until only one remains"
                    ),
                    structural: false,
                });
                mapped.held.insert(employee_ref.clone());
                continue;
            }
            match self.map_record(record) {
                Ok(user) => candidates.push((&record.location, user)),
                Err(error) => {
                    if let Some(employee_ref) = employee_ref {
                        mapped.held.insert(employee_ref.clone());
                    }
                    mapped.rejected.push(error);
                }
            }
        }

        // Two people with one address: Pluvo addresses are unique, and which of them owns it is
        // a question for HR, not for the sync.
        let mut by_email: HashMap<&Email, Vec<usize>> = HashMap::new();
        for (index, (_, user)) in candidates.iter().enumerate() {
            by_email.entry(&user.email).or_default().push(index);
        }
        let mut shared_email = vec![false; candidates.len()];
        for indices in by_email.values().filter(|indices| indices.len() > 1) {
            for &index in indices {
                shared_email[index] = true;
                let (location, user) = &candidates[index];
                let others = indices
                    .iter()
                    .filter(|&&other| other != index)
                    .map(|&other| {
                        let (location, user) = &candidates[other];
                        format!("employee {} ({location})", user.employee_ref)
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                mapped.rejected.push(RecordError {
                    location: (*location).clone(),
                    employee_ref: Some(user.employee_ref.to_string()),
                    field: Some(self.email_column.clone()),
                    reason: format!(
                        "the same e-mail address as {others}; Pluvo addresses are unique, so \
                         none of them is applied"
                    ),
                    structural: false,
                });
                mapped.held.insert(user.employee_ref.clone());
            }
        }

        // Rows the source could not read still name people, when their number was readable.
        let mut unreadable_rows: HashMap<EmployeeRef, Location> = HashMap::new();
        for error in &unreadable {
            if let Some(employee_ref) = error
                .employee_ref
                .as_deref()
                .and_then(|raw| EmployeeRef::parse(raw).ok())
            {
                unreadable_rows
                    .entry(employee_ref.clone())
                    .or_insert_with(|| error.location.clone());
                mapped.held.insert(employee_ref);
            }
        }
        mapped.rejected.extend(unreadable);

        for ((location, user), shared) in candidates.into_iter().zip(shared_email) {
            if shared {
                continue;
            }
            if let Some(other) = unreadable_rows.get(&user.employee_ref) {
                mapped.rejected.push(RecordError {
                    location: location.clone(),
                    employee_ref: Some(user.employee_ref.to_string()),
                    field: Some(self.ref_column.clone()),
                    reason: format!(
                        "employee number {} is also on {other}, which could not be read; \
                         neither row is applied",
                        user.employee_ref
                    ),
                    structural: false,
                });
                continue;
            }
            mapped.people.insert(user.employee_ref.clone(), user);
        }

        mapped.rejected.sort_by(|a, b| a.location.cmp(&b.location));
        tracing::debug!(
            people = mapped.people.len(),
            held = mapped.held.len(),
            rejected = mapped.rejected.len(),
            "mapped the records"
        );
        mapped
    }
}

/// "line 4 and line 9": the other places, for a message about `this` one.
fn list_others<'a>(all: impl Iterator<Item = &'a Location>, this: &Location) -> String {
    let others: Vec<String> = all
        .filter(|location| *location != this)
        .map(ToString::to_string)
        .collect();
    others.join(" and ")
}

#[cfg(test)]
mod tests;
