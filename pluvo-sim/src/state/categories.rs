//! Extra categories: typed fields (string, boolean, datetime, choice) that carry the values a
//! tenant adds to people, and the rules for writing those values.
//!
//! Split from the store because value typing is its own rulebook (one value field per type,
//! choice options by value, all values checked before any is written) and grows with every new
//! category type.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::seed::CategoryType;

use super::users::UserSelector;
use super::{ApiError, State, exactly_one, format_datetime, parse_datetime, parse_uuid};

#[derive(Debug, Clone, PartialEq)]
pub enum CategoryValue {
    String(String),
    /// Indices into the category's options.
    Choice(Vec<usize>),
    Boolean(bool),
    /// Normalised RFC 3339.
    Datetime(String),
}

#[derive(Debug, Clone)]
pub struct ChoiceOption {
    pub id: Uuid,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct CategoryRec {
    pub id: Uuid,
    pub ref_: String,
    pub title: String,
    pub kind: CategoryType,
    pub options: Vec<ChoiceOption>,
}

/// One `ExtraCategoryValueInput`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValueInput {
    pub category_id: Option<String>,
    pub category_ref: Option<String>,
    pub string_value: Option<String>,
    pub boolean_value: Option<bool>,
    pub datetime_value: Option<String>,
    pub choice_values: Option<Vec<String>>,
}

impl State {
    pub(super) fn seed_category_value(
        &self,
        c: usize,
        value: &serde_json::Value,
    ) -> Result<CategoryValue, ApiError> {
        let mut input = ValueInput::default();
        match (self.categories[c].kind, value) {
            (CategoryType::String, serde_json::Value::String(s)) => {
                input.string_value = Some(s.clone())
            }
            (CategoryType::Boolean, serde_json::Value::Bool(b)) => input.boolean_value = Some(*b),
            (CategoryType::Datetime, serde_json::Value::String(s)) => {
                input.datetime_value = Some(s.clone())
            }
            (CategoryType::Choice, serde_json::Value::String(s)) => {
                input.choice_values = Some(vec![s.clone()])
            }
            (CategoryType::Choice, serde_json::Value::Array(items)) => {
                let values: Option<Vec<String>> = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect();
                input.choice_values = Some(
                    values.ok_or_else(|| ApiError::bad_input("choice values must be strings"))?,
                );
            }
            (kind, other) => {
                return Err(ApiError::bad_input(format!(
                    "{other} is not a {} value",
                    kind.as_str()
                )));
            }
        }
        self.resolve_value(c, &input)
    }

    pub(super) fn category_index(
        &self,
        id: Option<&str>,
        r: Option<&str>,
    ) -> Result<usize, ApiError> {
        let found = match exactly_one(id, r, ("categoryId", "categoryRef"))? {
            Ok(id) => {
                let uuid = parse_uuid(id, "a category id")?;
                self.category_by_id
                    .get(&uuid)
                    .copied()
                    .ok_or_else(|| format!("id `{id}`"))
            }
            Err(r) => self
                .category_by_ref
                .get(r)
                .copied()
                .ok_or_else(|| format!("ref `{r}`")),
        };
        found.map_err(|which| ApiError::not_found(format!("no extra category with {which}")))
    }

    fn resolve_value(&self, c: usize, input: &ValueInput) -> Result<CategoryValue, ApiError> {
        let category = &self.categories[c];
        let given = [
            input.string_value.is_some(),
            input.boolean_value.is_some(),
            input.datetime_value.is_some(),
            input.choice_values.is_some(),
        ]
        .iter()
        .filter(|&&g| g)
        .count();
        if given != 1 {
            return Err(ApiError::bad_input(format!(
                "category `{}`: give exactly one of stringValue, booleanValue, datetimeValue, choiceValues",
                category.ref_
            )));
        }
        let mismatch = || {
            ApiError::bad_input(format!(
                "category `{}` has type {}: use the matching value field",
                category.ref_,
                category.kind.as_str()
            ))
        };
        Ok(match category.kind {
            CategoryType::String => {
                CategoryValue::String(input.string_value.clone().ok_or_else(mismatch)?)
            }
            CategoryType::Boolean => {
                CategoryValue::Boolean(input.boolean_value.ok_or_else(mismatch)?)
            }
            CategoryType::Datetime => {
                let text = input.datetime_value.as_deref().ok_or_else(mismatch)?;
                CategoryValue::Datetime(format_datetime(parse_datetime(text)?))
            }
            CategoryType::Choice => {
                let wanted = input.choice_values.as_ref().ok_or_else(mismatch)?;
                let mut picked = BTreeSet::new();
                for value in wanted {
                    let option = category
                        .options
                        .iter()
                        .position(|o| &o.value == value)
                        .ok_or_else(|| {
                            ApiError::not_found(format!(
                                "category `{}` has no choice option `{value}`",
                                category.ref_
                            ))
                        })?;
                    picked.insert(option);
                }
                CategoryValue::Choice(picked.into_iter().collect())
            }
        })
    }

    /// `updateExtraCategoryValues` for a user: all values are checked before any is written.
    /// Returns the user and the categories written, in input order.
    pub fn update_category_values(
        &mut self,
        selector: &UserSelector,
        values: &[ValueInput],
    ) -> Result<(usize, Vec<usize>), ApiError> {
        let idx = self.require_user(selector)?;
        let mut resolved = Vec::with_capacity(values.len());
        for input in values {
            let c =
                self.category_index(input.category_id.as_deref(), input.category_ref.as_deref())?;
            if resolved.iter().any(|(seen, _)| *seen == c) {
                return Err(ApiError::bad_input(format!(
                    "category `{}` is named twice",
                    self.categories[c].ref_
                )));
            }
            resolved.push((c, self.resolve_value(c, input)?));
        }
        let written = resolved.iter().map(|(c, _)| *c).collect();
        for (c, value) in resolved {
            // An empty choice list clears the category: the only way the API offers to unset one.
            if value == CategoryValue::Choice(Vec::new()) {
                self.users[idx].values.remove(&c);
            } else {
                self.users[idx].values.insert(c, value);
            }
        }
        Ok((idx, written))
    }

    // ---- groups --------------------------------------------------------------------------

    pub fn value_json(&self, c: usize, value: &CategoryValue) -> serde_json::Value {
        match value {
            CategoryValue::String(s) | CategoryValue::Datetime(s) => {
                serde_json::Value::String(s.clone())
            }
            CategoryValue::Boolean(b) => serde_json::Value::Bool(*b),
            CategoryValue::Choice(options) => serde_json::Value::Array(
                options
                    .iter()
                    .map(|&o| {
                        serde_json::Value::String(self.categories[c].options[o].value.clone())
                    })
                    .collect(),
            ),
        }
    }
}
