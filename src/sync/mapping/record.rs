//! One HR record to one [`DesiredUser`]: each field read, checked against what Pluvo accepts
//! ([`limits`]) and rendered by its rule, or the first reason it cannot be, as a [`RecordError`]
//! naming the row and field. Conflicts between records (shared numbers and addresses) are the
//! caller's business, in `mapping/mod.rs`.

use chrono::NaiveDate;

use super::DesiredUser;
use super::limits;
use super::rules::{CategoryKind, DateRule, MappingRules};
use crate::domain::{Categories, Email, EmployeeRef, GroupRef, Language};
use crate::sync::source::{RecordError, SourceRecord};

impl MappingRules {
    /// One record to one user, or the first reason it cannot be one.
    pub(super) fn map_record(&self, record: &SourceRecord) -> Result<DesiredUser, RecordError> {
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
