//! What the rest of pluvo-sync sends to and gets from [`super::PluvoClient`], in domain words.
//!
//! These types are deliberately narrower than the API: there is no way to express `sendInvite`
//! (the client always sends `false`), and ids come back as the strings Pluvo returned.

use std::time::Duration;

use chrono::NaiveTime;

use super::PluvoError;
use super::operations::{CategoryValueInput, ChoiceValueInput, UserInput};
use crate::domain::CategoryValue;
use crate::domain::{CategoryRef, Email, EmployeeRef, GroupRef, Language, Role};

/// How `updateOrCreateUser` finds the user. A user pluvo-sync already knows must be selected by
/// [`Selector::Ref`]: selecting by e-mail after an address change would create a second account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Ref(EmployeeRef),
    Email(Email),
}

/// The fields to set; `None` leaves Pluvo's value unchanged (the field is not sent at all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFields {
    pub name: Option<String>,
    pub email: Option<Email>,
    pub r#ref: Option<EmployeeRef>,
    /// Replaces the user's roles (CONTRACT.md, "Users").
    pub roles: Option<Vec<Role>>,
    pub language: Option<Language>,
    pub archived: Option<bool>,
}

/// One `updateOrCreateUser`. `sendInvite: false` is always sent; there is no way to ask for more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserUpsert {
    pub selector: Selector,
    pub fields: UserFields,
}

/// One `updateExtraCategoryValues` for a user. Categories not named keep their value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryUpdate {
    pub user: EmployeeRef,
    pub values: Vec<(CategoryRef, CategoryValue)>,
}

/// One person's writes in a combined document ([`super::PluvoClient::write_people`]): their
/// `updateOrCreateUser`, then their `updateExtraCategoryValues`. Both address the person by
/// `employee_ref`, so the custom fields can only ever reach the account the upsert selected (or
/// created, running first), never another one; an upsert by e-mail (an adoption) has no place
/// here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonWrite {
    pub employee_ref: EmployeeRef,
    /// The fields to upsert, if the person's user changes.
    pub user: Option<UserFields>,
    /// Custom-field values to set afterwards; none sends no field.
    pub categories: Vec<(CategoryRef, CategoryValue)>,
}

/// What Pluvo answered for one [`PersonWrite`]: each part that was sent, judged on its own.
/// A custom-field result beside a failed upsert says nothing the caller may rely on: the
/// account may not exist (yet) under that ref.
#[derive(Debug, Clone)]
pub struct PersonWritten {
    pub user: Option<Result<UpsertedUser, PluvoError>>,
    pub categories: Option<Result<(), PluvoError>>,
}

/// People to add to (or remove from) one group. Any number: the client sends them in root
/// fields of at most [`super::REFS_PER_MEMBERSHIP_FIELD`] refs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub group: GroupRef,
    /// `addUsersToGroup` when true, `removeUsersFromGroup` when false.
    pub adding: bool,
    pub users: Vec<EmployeeRef>,
}

/// The outcome of one batched call: one result per input item, in input order.
#[derive(Debug, Clone)]
pub struct Batch<T> {
    /// HTTP requests sent for the batch (retries and a token renewal included; 0 when nothing
    /// needed sending).
    pub attempts: u32,
    pub elapsed: Duration,
    pub items: Vec<Result<T, PluvoError>>,
    /// Items per document the batch went in: the size it was sent at, or, when Pluvo refused
    /// that as too big, the smallest size its work was re-sent in (0 when nothing was sent).
    pub batch_size: usize,
}

impl<T> Batch<T> {
    pub fn succeeded(&self) -> usize {
        self.items.iter().filter(|r| r.is_ok()).count()
    }
}

/// What `updateOrCreateUser` answered for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertedUser {
    /// Pluvo's id (a UUID), as text.
    pub id: String,
    pub r#ref: Option<String>,
    /// True when no user matched the selector and Pluvo created one.
    pub created: bool,
}

/// The answer to `addUsersToGroup` / `removeUsersFromGroup`: ids (or refs) as Pluvo returned them.
/// Changes are applied asynchronously; do not read the group back to confirm them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    pub attempts: u32,
    /// Added (resp. removed) now.
    pub done: Vec<String>,
    /// Already a member (resp. already not a member): not an error.
    pub already: Vec<String>,
    pub failed: Vec<String>,
}

impl Membership {
    /// Pluvo's verdict on one user of the call. The API reports the identifiers it was given
    /// (refs here), but ids are accepted too, should a tenant answer with those.
    pub fn verdict(&self, employee_ref: &str, pluvo_id: Option<&str>) -> Result<(), String> {
        let named = |list: &[String]| {
            list.iter()
                .any(|id| id == employee_ref || Some(id.as_str()) == pluvo_id)
        };
        if named(&self.failed) {
            Err(
                "Pluvo reported this user as failed (is the user archived, or unknown to Pluvo?)"
                    .to_owned(),
            )
        } else if named(&self.done) || named(&self.already) {
            Ok(())
        } else {
            Err(
                "Pluvo's answer did not mention this user; the change is retried next run"
                    .to_owned(),
            )
        }
    }
}

/// A user as Pluvo has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUser {
    pub id: String,
    pub r#ref: Option<String>,
    pub email: Option<String>,
    pub name: String,
    pub archived: bool,
    /// Refs of the groups the user participates in (as far as Pluvo shows them yet).
    pub groups: Vec<String>,
}

/// A group as Pluvo has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteGroup {
    pub id: String,
    pub r#ref: Option<String>,
    pub name: String,
}

/// A custom field defined for users, with its choice options (empty for non-choice types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCategory {
    pub id: String,
    pub r#ref: Option<String>,
    pub title: String,
    /// Pluvo's type name, as returned (e.g. `STRING`, `CHOICE`, `BOOLEAN`, `DATETIME`).
    pub category_type: String,
    pub choices: Vec<String>,
}

impl From<&UserFields> for UserInput {
    fn from(fields: &UserFields) -> Self {
        UserInput {
            name: fields.name.clone(),
            email: fields.email.as_ref().map(|e| e.as_str().to_owned()),
            user_ref: fields.r#ref.as_ref().map(|r| r.as_str().to_owned()),
            roles: fields
                .roles
                .as_ref()
                .map(|roles| roles.iter().copied().map(Into::into).collect()),
            language: fields.language.map(Into::into),
            archived: fields.archived,
        }
    }
}

/// One category value as Pluvo takes it: a date becomes midnight UTC of that day, a choice the
/// one-element list `choiceValues: [{stringValue}]`.
pub(crate) fn category_value_input(
    category: &CategoryRef,
    value: &CategoryValue,
) -> CategoryValueInput {
    let mut input = CategoryValueInput {
        category_ref: Some(category.as_str().to_owned()),
        ..CategoryValueInput::default()
    };
    match value {
        CategoryValue::String(text) => input.string_value = Some(text.clone()),
        CategoryValue::Choice(option) => {
            input.choice_values = Some(vec![ChoiceValueInput {
                string_value: option.clone(),
            }]);
        }
        CategoryValue::Boolean(flag) => input.boolean_value = Some(*flag),
        CategoryValue::Date(date) => {
            input.datetime_value = Some(date.and_time(NaiveTime::MIN).and_utc())
        }
    }
    input
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use serde_json::json;

    use super::*;

    #[test]
    fn unset_user_fields_are_left_out_not_nulled() {
        let fields = UserFields {
            name: Some("Ann".into()),
            roles: Some(vec![Role::Participant, Role::Manager]),
            language: Some(Language::Nl),
            ..UserFields::default()
        };
        assert_eq!(
            serde_json::to_value(UserInput::from(&fields)).unwrap(),
            json!({"name": "Ann", "roles": ["PARTICIPANT", "MANAGER"], "language": "NL"})
        );
        let all = UserFields {
            email: Some(Email::parse("a@b.nl").unwrap()),
            r#ref: Some(EmployeeRef::parse("007").unwrap()),
            archived: Some(false),
            ..UserFields::default()
        };
        assert_eq!(
            serde_json::to_value(UserInput::from(&all)).unwrap(),
            json!({"email": "a@b.nl", "ref": "007", "archived": false})
        );
    }

    #[test]
    fn category_values_take_the_shape_pluvo_expects() {
        let category = CategoryRef::parse("dept").unwrap();
        let cases = [
            (
                "string",
                CategoryValue::String("Sales".into()),
                json!({"categoryRef": "dept", "stringValue": "Sales"}),
            ),
            (
                "boolean",
                CategoryValue::Boolean(true),
                json!({"categoryRef": "dept", "booleanValue": true}),
            ),
            (
                "choice",
                CategoryValue::Choice("North".into()),
                json!({"categoryRef": "dept", "choiceValues": [{"stringValue": "North"}]}),
            ),
            (
                "date at midnight utc",
                CategoryValue::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
                json!({"categoryRef": "dept", "datetimeValue": "2024-02-29T00:00:00Z"}),
            ),
        ];
        for (name, value, expected) in cases {
            let input = category_value_input(&category, &value);
            assert_eq!(
                serde_json::to_value(input).unwrap(),
                expected,
                "case {name}"
            );
        }
    }
}
