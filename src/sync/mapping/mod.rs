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

pub mod limits;
pub mod settings;
pub mod template;
pub mod value;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::{
    Categories, CategoryRef, CategoryValue, Email, EmployeeRef, GroupRef, Groups, Language, Role,
    Roles,
};
use crate::sync::source::{Location, RecordError, SourceData, SourceRecord};

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

/// A `[mapping]` setting that cannot be applied. `key` is the path in the settings file, e.g.
/// `mapping.groups.templates[1]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct MappingConfigError {
    pub key: String,
    pub reason: String,
}

impl MappingConfigError {
    fn new(key: impl Into<String>, reason: impl ToString) -> Self {
        Self {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

/// How a category's cells are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoryKind {
    String,
    Choice,
    Boolean,
    Date(DateFormat),
}

impl CategoryKind {
    /// The type as config (and the `check` command) names it.
    pub fn type_name(self) -> &'static str {
        match self {
            CategoryKind::String => "string",
            CategoryKind::Choice => "choice",
            CategoryKind::Boolean => "boolean",
            CategoryKind::Date(_) => "date",
        }
    }

    /// Whether a Pluvo category of `category_type` (STRING, CHOICE, BOOLEAN, DATETIME) can hold
    /// values of this kind.
    pub fn matches_pluvo_type(self, category_type: &str) -> bool {
        let wanted = match self {
            CategoryKind::String => "STRING",
            CategoryKind::Choice => "CHOICE",
            CategoryKind::Boolean => "BOOLEAN",
            CategoryKind::Date(_) => "DATETIME",
        };
        category_type.eq_ignore_ascii_case(wanted)
    }
}

/// One custom field: which column fills which Pluvo category, read how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryRule {
    category: CategoryRef,
    column: String,
    kind: CategoryKind,
}

impl CategoryRule {
    pub fn category_ref(&self) -> &CategoryRef {
        &self.category
    }

    pub fn column(&self) -> &str {
        &self.column
    }

    pub fn kind(&self) -> CategoryKind {
        self.kind
    }

    fn read(&self, raw: &str) -> Result<CategoryValue, String> {
        Ok(match self.kind {
            CategoryKind::String => CategoryValue::String(raw.to_owned()),
            CategoryKind::Choice => CategoryValue::Choice(raw.to_owned()),
            CategoryKind::Boolean => CategoryValue::Boolean(value::parse_bool(raw)?),
            CategoryKind::Date(format) => CategoryValue::Date(format.parse_date(raw)?),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LanguageRule {
    column: Option<String>,
    default: Option<Language>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct DateRule {
    column: String,
    format: DateFormat,
}

impl DateRule {
    fn resolve(
        settings: &settings::DateColumnSettings,
        key: &str,
    ) -> Result<Self, MappingConfigError> {
        Ok(Self {
            column: column_name(&settings.column, &format!("{key}.column"))?,
            format: date_format(settings.format.as_deref(), &format!("{key}.format"))?,
        })
    }
}

/// `[mapping]`, checked and ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRules {
    ref_column: String,
    name: Template,
    email_column: String,
    language: Option<LanguageRule>,
    roles: Roles,
    start_date: Option<DateRule>,
    end_date: Option<DateRule>,
    categories: Vec<CategoryRule>,
    static_groups: Groups,
    group_templates: Vec<Template>,
}

fn column_name(raw: &str, key: &str) -> Result<String, MappingConfigError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(MappingConfigError::new(key, "the column name is empty"));
    }
    Ok(name.to_owned())
}

fn date_format(raw: Option<&str>, key: &str) -> Result<DateFormat, MappingConfigError> {
    raw.map_or(Ok(DateFormat::Iso), |raw| {
        DateFormat::parse_name(raw).map_err(|reason| MappingConfigError::new(key, reason))
    })
}

impl MappingRules {
    pub fn from_settings(settings: &MappingSettings) -> Result<Self, MappingConfigError> {
        let name = Template::parse(&settings.name)
            .map_err(|error| MappingConfigError::new("mapping.name", error))?;

        let language = match &settings.language {
            None => None,
            Some(language) => {
                let column = language
                    .column
                    .as_deref()
                    .map(|column| column_name(column, "mapping.language.column"))
                    .transpose()?;
                let default = language
                    .default
                    .as_deref()
                    .map(Language::parse)
                    .transpose()
                    .map_err(|error| MappingConfigError::new("mapping.language.default", error))?;
                if column.is_none() && default.is_none() {
                    return Err(MappingConfigError::new(
                        "mapping.language",
                        "needs a column, a default, or both; leave it out to let Pluvo decide",
                    ));
                }
                Some(LanguageRule { column, default })
            }
        };

        let roles = match &settings.roles {
            None => Roles::from([Role::Participant]),
            Some(raw) => {
                let roles = raw
                    .iter()
                    .enumerate()
                    .map(|(index, role)| {
                        Role::parse(role).map_err(|error| {
                            MappingConfigError::new(format!("mapping.roles[{index}]"), error)
                        })
                    })
                    .collect::<Result<Roles, _>>()?;
                if roles.is_empty() {
                    return Err(MappingConfigError::new(
                        "mapping.roles",
                        "a user needs at least one role; leave the key out for PARTICIPANT",
                    ));
                }
                roles
            }
        };

        let mut categories: Vec<CategoryRule> = Vec::with_capacity(settings.categories.len());
        for (index, category) in settings.categories.iter().enumerate() {
            let key = format!("mapping.categories[{index}]");
            let category_ref = CategoryRef::parse(&category.category_ref)
                .map_err(|error| MappingConfigError::new(format!("{key}.ref"), error))?;
            if categories.iter().any(|rule| rule.category == category_ref) {
                return Err(MappingConfigError::new(
                    format!("{key}.ref"),
                    format!("category '{category_ref}' is mapped twice"),
                ));
            }
            let kind = match (category.kind, &category.format) {
                (CategoryType::Date, format) => {
                    CategoryKind::Date(date_format(format.as_deref(), &format!("{key}.format"))?)
                }
                (_, Some(_)) => {
                    return Err(MappingConfigError::new(
                        format!("{key}.format"),
                        "a format only applies to type = \"date\"",
                    ));
                }
                (CategoryType::String, None) => CategoryKind::String,
                (CategoryType::Choice, None) => CategoryKind::Choice,
                (CategoryType::Boolean, None) => CategoryKind::Boolean,
            };
            categories.push(CategoryRule {
                category: category_ref,
                column: column_name(&category.column, &format!("{key}.column"))?,
                kind,
            });
        }

        let static_groups = settings
            .groups
            .static_groups
            .iter()
            .enumerate()
            .map(|(index, group)| {
                GroupRef::parse(group).map_err(|error| {
                    MappingConfigError::new(format!("mapping.groups.static[{index}]"), error)
                })
            })
            .collect::<Result<_, _>>()?;
        let group_templates = settings
            .groups
            .templates
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                let key = format!("mapping.groups.templates[{index}]");
                let template =
                    Template::parse(raw).map_err(|error| MappingConfigError::new(&key, error))?;
                // A bare `{department|slug}` would claim every slug-shaped group in Pluvo,
                // including ones made by hand, and the sync would strip their members.
                if !template.has_text() {
                    return Err(MappingConfigError::new(
                        key,
                        "needs fixed text as well, such as 'dept-{department|slug}', so the groups \
                         it makes can be told apart from groups made by hand",
                    ));
                }
                Ok(template)
            })
            .collect::<Result<_, _>>()?;

        Ok(Self {
            ref_column: column_name(&settings.employee_ref, "mapping.ref")?,
            name,
            email_column: column_name(&settings.email, "mapping.email")?,
            language,
            roles,
            start_date: settings
                .start_date
                .as_ref()
                .map(|date| DateRule::resolve(date, "mapping.start_date"))
                .transpose()?,
            end_date: settings
                .end_date
                .as_ref()
                .map(|date| DateRule::resolve(date, "mapping.end_date"))
                .transpose()?,
            categories,
            static_groups,
            group_templates,
        })
    }

    /// Every column a rule reads, each once, in the order the rules name them. A source fails
    /// the run when one is missing.
    pub fn required_columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = Vec::new();
        let named = [self.ref_column.as_str(), self.email_column.as_str()]
            .into_iter()
            .chain(self.name.columns())
            .chain(
                self.language
                    .iter()
                    .filter_map(|rule| rule.column.as_deref()),
            )
            .chain(self.start_date.iter().map(|rule| rule.column.as_str()))
            .chain(self.end_date.iter().map(|rule| rule.column.as_str()))
            .chain(self.categories.iter().map(|rule| rule.column.as_str()))
            .chain(self.group_templates.iter().flat_map(Template::columns));
        for column in named {
            if !columns.iter().any(|seen| seen.eq_ignore_ascii_case(column)) {
                columns.push(column.to_owned());
            }
        }
        columns
    }

    /// The employee-number column, for `CsvSource::with_ref_column`.
    pub fn ref_column(&self) -> &str {
        &self.ref_column
    }

    /// The custom fields the rules fill, for the `check` command to compare with Pluvo.
    pub fn categories(&self) -> &[CategoryRule] {
        &self.categories
    }

    pub fn static_groups(&self) -> &Groups {
        &self.static_groups
    }

    pub fn group_templates(&self) -> &[Template] {
        &self.group_templates
    }

    /// Whether the rules can produce `group`, and so whether the sync may add and remove its
    /// members. A group no rule produces is left alone.
    pub fn is_managed(&self, group: &GroupRef) -> bool {
        self.static_groups.contains(group)
            || self
                .group_templates
                .iter()
                .any(|template| template.could_produce(group.as_str()))
    }

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

    /// One record to one user, or the first reason it cannot be one.
    fn map_record(&self, record: &SourceRecord) -> Result<DesiredUser, RecordError> {
        let error = |employee_ref: Option<&EmployeeRef>, field: &str, reason: String| RecordError {
            location: record.location.clone(),
            employee_ref: employee_ref.map(ToString::to_string),
            field: Some(field.to_owned()),
            reason,
            structural: false,
        };
        let employee_ref = match record.get(&self.ref_column).map(EmployeeRef::parse) {
            None => {
                return Err(error(
                    None,
                    &self.ref_column,
                    "the employee number is empty".to_owned(),
                ));
            }
            Some(Err(invalid)) => return Err(error(None, &self.ref_column, invalid.0)),
            Some(Ok(employee_ref)) => employee_ref,
        };
        let fail = |field: &str, reason: String| error(Some(&employee_ref), field, reason);

        let email = match record.get(&self.email_column) {
            None => {
                return Err(fail(
                    &self.email_column,
                    "the e-mail address is empty".to_owned(),
                ));
            }
            Some(raw) => {
                // Length first: the lenient parser quotes the value, and it may be megabytes.
                let email = limits::check_email_length(raw)
                    .and_then(|()| Email::parse(raw).map_err(|invalid| invalid.0))
                    .map_err(|why| fail(&self.email_column, why))?;
                limits::check_email(email.as_str()).map_err(|why| fail(&self.email_column, why))?;
                email
            }
        };

        let name = self
            .name
            .render_lenient(|column| record.get(column))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let name_columns = || self.name.columns().collect::<Vec<_>>().join(", ");
        if name.is_empty() {
            let columns = name_columns();
            return Err(fail(
                &columns,
                format!("the name is empty: {columns} are all blank"),
            ));
        }
        limits::check_text(&name)
            .map_err(|why| fail(&name_columns(), format!("the name {why}")))?;

        let language = match &self.language {
            None => None,
            Some(rule) => match rule
                .column
                .as_deref()
                .and_then(|column| record.get(column).map(|raw| (column, raw)))
            {
                Some((column, raw)) => {
                    Some(Language::parse(raw).map_err(|invalid| fail(column, invalid.0))?)
                }
                None => rule.default,
            },
        };

        let date = |rule: &Option<DateRule>| -> Result<Option<NaiveDate>, RecordError> {
            let Some(rule) = rule else { return Ok(None) };
            record
                .get(&rule.column)
                .map(|raw| {
                    rule.format
                        .parse_date(raw)
                        .map_err(|why| fail(&rule.column, why))
                })
                .transpose()
        };
        let start_date = date(&self.start_date)?;
        let end_date = date(&self.end_date)?;

        let mut categories = Categories::new();
        for rule in &self.categories {
            if let Some(raw) = record.get(&rule.column) {
                if matches!(rule.kind, CategoryKind::String | CategoryKind::Choice) {
                    limits::check_text(raw)
                        .map_err(|why| fail(&rule.column, format!("the value {why}")))?;
                }
                let value = rule.read(raw).map_err(|why| fail(&rule.column, why))?;
                categories.insert(rule.category.clone(), value);
            }
        }

        let mut groups = self.static_groups.clone();
        for template in &self.group_templates {
            if let Some(rendered) = template.render_all(|column| record.get(column)) {
                let group = GroupRef::parse(&rendered).map_err(|invalid| {
                    let columns = template.columns().collect::<Vec<_>>().join(", ");
                    fail(&columns, format!("group template '{template}': {invalid}"))
                })?;
                groups.insert(group);
            }
        }

        Ok(DesiredUser {
            employee_ref,
            name,
            email,
            roles: self.roles.clone(),
            language,
            categories,
            groups,
            start_date,
            end_date,
        })
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
