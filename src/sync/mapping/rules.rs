//! `[mapping]` resolved: [`MappingRules`] and the per-field rules it is made of, built once from
//! [`MappingSettings`] so that a rule that cannot work fails at start-up naming its key
//! ([`MappingConfigError`]), never on every row. Also what other parts ask of the rules: the
//! columns a source must have, the custom fields to check against Pluvo, and which groups the
//! sync manages.

use super::settings::{self, CategoryType, MappingSettings};
use super::template::Template;
use super::value::{self, DateFormat};
use crate::domain::{CategoryRef, CategoryValue, GroupRef, Groups, Language, Role, Roles};

/// A `[mapping]` setting that cannot be applied. `key` is the path in the settings file, e.g.
/// `mapping.groups.templates[1]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct MappingConfigError {
    pub key: String,
    pub reason: String,
}

impl MappingConfigError {
    pub(super) fn new(key: impl Into<String>, reason: impl ToString) -> Self {
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
    pub(super) category: CategoryRef,
    pub(super) column: String,
    pub(super) kind: CategoryKind,
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

    pub(super) fn read(&self, raw: &str) -> Result<CategoryValue, String> {
        Ok(match self.kind {
            CategoryKind::String => CategoryValue::String(raw.to_owned()),
            CategoryKind::Choice => CategoryValue::Choice(raw.to_owned()),
            CategoryKind::Boolean => CategoryValue::Boolean(value::parse_bool(raw)?),
            CategoryKind::Date(format) => CategoryValue::Date(format.parse_date(raw)?),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LanguageRule {
    pub(super) column: Option<String>,
    pub(super) default: Option<Language>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DateRule {
    pub(super) column: String,
    pub(super) format: DateFormat,
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
    pub(super) ref_column: String,
    pub(super) name: Template,
    pub(super) email_column: String,
    pub(super) language: Option<LanguageRule>,
    pub(super) roles: Roles,
    pub(super) start_date: Option<DateRule>,
    pub(super) end_date: Option<DateRule>,
    pub(super) categories: Vec<CategoryRule>,
    pub(super) static_groups: Groups,
    pub(super) group_templates: Vec<Template>,
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
}
