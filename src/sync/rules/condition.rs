//! A rule's `when`: a CEL expression over one person's mapped HR fields, compiled once at config
//! load and evaluated per person per run.
//!
//! The words an expression may use are fixed here ([`BUILT_IN`] plus the mapping's custom
//! fields), so a typo in a field name is a problem at load, naming the rule and the word, not a
//! silent "matches nobody" at 3 a.m. A custom field is both a top-level word (`department`) and
//! an entry of `fields` (`fields["cost-centre"]` for refs that are not identifiers); a person
//! without a value for it has `null` there.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use cel::objects::Value;
use cel::{Context, Program};
use chrono::NaiveDate;

use crate::domain::CategoryValue;
use crate::sync::mapping::DesiredUser;

/// The person's fields every expression may use, whatever the mapping.
pub const BUILT_IN: [&str; 10] = [
    "ref",
    "name",
    "email",
    "language",
    "roles",
    "groups",
    "start_date",
    "end_date",
    "days_since_start",
    "fields",
];

/// A compiled `when`. `None` source = everyone synced.
#[derive(Clone)]
pub struct Condition {
    source: Option<String>,
    program: Option<Arc<Program>>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

impl Condition {
    /// Everyone synced.
    pub fn always() -> Self {
        Self {
            source: None,
            program: None,
        }
    }

    /// Compiles `source`, refusing syntax errors (with their line and column) and words that are
    /// neither built in nor one of `custom_fields`.
    pub fn compile(source: &str, custom_fields: &BTreeSet<String>) -> Result<Self, String> {
        let program = Program::compile(source).map_err(|errors| {
            errors
                .errors
                .iter()
                .map(|e| {
                    format!(
                        "syntax error at line {} column {}: {}",
                        e.pos.0,
                        e.pos.1 + 1,
                        e.msg
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let references = program.references();
        let mut unknown: Vec<&str> = references
            .variables()
            .into_iter()
            .filter(|v| !BUILT_IN.contains(v) && !custom_fields.contains(*v))
            .collect();
        unknown.sort_unstable();
        if !unknown.is_empty() {
            let mut known: Vec<&str> = BUILT_IN.to_vec();
            known.extend(custom_fields.iter().map(String::as_str));
            return Err(format!(
                "unknown field(s) {}; an expression may use {}",
                unknown
                    .iter()
                    .map(|u| format!("'{u}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                known.join(", ")
            ));
        }
        Ok(Self {
            source: Some(source.to_owned()),
            program: Some(Arc::new(program)),
        })
    }

    /// The expression as written, for plans and the rule's version.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// Whether `person` matches on `today` (the HR time zone's date). An expression that fails
    /// for this person (a type mismatch, say) or gives something other than a boolean is an
    /// error for this person and rule, never a silent match.
    pub fn matches(
        &self,
        scope: &Context<'_, '_>,
        person: &DesiredUser,
        custom_fields: &BTreeSet<String>,
        today: NaiveDate,
    ) -> Result<bool, String> {
        let Some(program) = &self.program else {
            return Ok(true);
        };
        let mut context = scope.new_inner_scope();
        for (name, value) in person_values(person, custom_fields, today) {
            context.add_variable_from_value(name, value);
        }
        match program.execute(&context) {
            Ok(Value::Bool(matched)) => Ok(matched),
            Ok(other) => Err(format!(
                "'when' gave {:?}, not true or false",
                other.type_of()
            )),
            Err(error) => Err(format!("'when' failed: {error}")),
        }
    }
}

/// The root scope expressions are evaluated under (CEL's standard library), made once per run.
pub fn root_scope() -> Context<'static, 'static> {
    Context::default()
}

fn person_values(
    person: &DesiredUser,
    custom_fields: &BTreeSet<String>,
    today: NaiveDate,
) -> Vec<(String, Value)> {
    let text = |s: &str| Value::String(Arc::new(s.to_owned()));
    let list = |items: Vec<Value>| Value::List(Arc::new(items));
    let date = |d: Option<NaiveDate>| d.map_or(Value::Null, |d| text(&d.to_string()));
    let mut fields: HashMap<String, Value> = custom_fields
        .iter()
        .map(|name| (name.clone(), Value::Null))
        .collect();
    for (category, value) in person.categories.iter() {
        let value = match value {
            CategoryValue::String(s) | CategoryValue::Choice(s) => text(s),
            CategoryValue::Boolean(b) => Value::Bool(*b),
            CategoryValue::Date(d) => text(&d.to_string()),
        };
        fields.insert(category.as_str().to_owned(), value);
    }
    let mut values: Vec<(String, Value)> = fields
        .iter()
        .filter(|(name, _)| !BUILT_IN.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    values.extend([
        ("ref".to_owned(), text(person.employee_ref.as_str())),
        ("name".to_owned(), text(&person.name)),
        ("email".to_owned(), text(person.email.as_str())),
        (
            "language".to_owned(),
            person.language.map_or(Value::Null, |l| text(l.as_str())),
        ),
        (
            "roles".to_owned(),
            list(person.roles.iter().map(|r| text(r.as_str())).collect()),
        ),
        (
            "groups".to_owned(),
            list(person.groups.iter().map(|g| text(g.as_str())).collect()),
        ),
        ("start_date".to_owned(), date(person.start_date)),
        ("end_date".to_owned(), date(person.end_date)),
        (
            "days_since_start".to_owned(),
            person
                .start_date
                .map_or(Value::Null, |s| Value::Int((today - s).num_days())),
        ),
        ("fields".to_owned(), Value::from(fields)),
    ]);
    values
}
