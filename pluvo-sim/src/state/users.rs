//! People: their records, how a user is named in a request, and the rules for creating and
//! updating them (unique refs and emails, known roles and languages, all-or-nothing updates).
//!
//! Split from the store so that user rules can grow without wading through groups and
//! categories; everything here is an `impl State` block over the shared indexes in `mod.rs`.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::{ApiError, CategoryValue, ErrorCode, State, parse_datetime, parse_uuid};

pub const ROLES: [&str; 5] = ["PARTICIPANT", "TRAINER", "MANAGER", "PLANNER", "AUTHOR"];
pub const LANGUAGES: [&str; 3] = ["NL", "EN", "DE"];

#[derive(Debug, Clone)]
pub struct UserRec {
    pub id: Uuid,
    pub ref_: Option<String>,
    pub email: String,
    pub name: String,
    pub archived: bool,
    /// Sorted and deduplicated: Pluvo roles are a set.
    pub roles: Vec<String>,
    pub language: Option<String>,
    pub last_login: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Keyed by category index.
    pub values: BTreeMap<usize, CategoryValue>,
}

/// `updateOrCreateUser` selector: exactly one of `ref` / `email`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertSelector {
    Ref(String),
    Email(String),
}

/// `updateUser` / `updateExtraCategoryValues` selector: exactly one of id / ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSelector {
    /// Raw text, validated as a UUID on use.
    Id(String),
    Ref(String),
}

/// Fields of `UserInput`; `None` means "leave unchanged" (an explicit JSON null counts as
/// omitted, as graphene does for optional input fields).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserInput {
    pub name: Option<String>,
    pub email: Option<String>,
    pub ref_: Option<String>,
    pub roles: Option<Vec<String>>,
    pub language: Option<String>,
    pub archived: Option<bool>,
}

/// Filters of `paginatedUsers`.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub q: Option<String>,
    pub archived: Option<bool>,
    pub roles: Option<Vec<String>>,
    pub group_ids: Option<Vec<String>>,
    pub last_login_gt: Option<String>,
    pub last_login_lt: Option<String>,
}

/// A deliberately plain address check: one `@`, a dotted domain, no spaces.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && email.len() <= 254
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

fn normalise_roles(roles: &[String]) -> Result<Vec<String>, ApiError> {
    if let Some(bad) = roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
        return Err(ApiError::bad_input(format!("unknown role `{bad}`")));
    }
    let set: BTreeSet<&String> = roles.iter().collect();
    Ok(set.into_iter().cloned().collect())
}

impl State {
    pub fn user_by_selector(&self, selector: &UserSelector) -> Result<Option<usize>, ApiError> {
        Ok(match selector {
            UserSelector::Id(text) => self
                .user_by_id
                .get(&parse_uuid(text, "a user id")?)
                .copied(),
            UserSelector::Ref(r) => self.user_by_ref.get(r).copied(),
        })
    }

    pub fn user_by_email(&self, email: &str) -> Option<usize> {
        self.user_by_email.get(&email.to_lowercase()).copied()
    }

    pub fn user_by_ref(&self, r: &str) -> Option<usize> {
        self.user_by_ref.get(r).copied()
    }

    /// Users matching `paginatedUsers` filters, in creation order.
    pub fn filter_users(&self, filter: &UserFilter) -> Result<Vec<usize>, ApiError> {
        let q = filter.q.as_ref().map(|q| q.to_lowercase());
        let groups: Option<Vec<usize>> = self.groups_by_ids(filter.group_ids.as_ref())?;
        let gt = filter
            .last_login_gt
            .as_deref()
            .map(parse_datetime)
            .transpose()?;
        let lt = filter
            .last_login_lt
            .as_deref()
            .map(parse_datetime)
            .transpose()?;
        Ok((0..self.users.len())
            .filter(|&i| {
                let u = &self.users[i];
                q.as_ref().is_none_or(|q| {
                    u.name.to_lowercase().contains(q) || u.email.to_lowercase().contains(q)
                }) && filter.archived.is_none_or(|a| u.archived == a)
                    && filter
                        .roles
                        .as_ref()
                        .is_none_or(|roles| roles.iter().any(|r| u.roles.contains(r)))
                    && groups.as_ref().is_none_or(|gs| {
                        gs.iter()
                            .any(|&g| self.groups[g].members.visible().contains(&i))
                    })
                    && gt.is_none_or(|gt| u.last_login.is_some_and(|l| l > gt))
                    && lt.is_none_or(|lt| u.last_login.is_some_and(|l| l < lt))
            })
            .collect())
    }

    fn check_email_free(&self, email: &str, except: Option<usize>) -> Result<(), ApiError> {
        if !valid_email(email) {
            return Err(ApiError::new(
                ErrorCode::InvalidEmail,
                format!("`{email}` is not a valid email address"),
            ));
        }
        match self.user_by_email(email) {
            Some(other) if Some(other) != except => Err(ApiError::new(
                ErrorCode::EmailTaken,
                format!("email `{email}` is already used by another user"),
            )),
            _ => Ok(()),
        }
    }

    fn check_ref_free(&self, r: &str, except: Option<usize>) -> Result<(), ApiError> {
        if r.is_empty() {
            return Err(ApiError::bad_input("`ref` must not be empty"));
        }
        match self.user_by_ref(r) {
            Some(other) if Some(other) != except => Err(ApiError::new(
                ErrorCode::RefTaken,
                format!("ref `{r}` is already used by another user"),
            )),
            _ => Ok(()),
        }
    }

    fn check_language(language: Option<&String>) -> Result<(), ApiError> {
        match language {
            Some(l) if !LANGUAGES.contains(&l.as_str()) => {
                Err(ApiError::bad_input(format!("unknown language `{l}`")))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn create_user(&mut self, input: UserInput) -> Result<usize, ApiError> {
        let name = input
            .name
            .ok_or_else(|| ApiError::bad_input("`user.name` is required to create a user"))?;
        let email = input
            .email
            .ok_or_else(|| ApiError::bad_input("`user.email` is required to create a user"))?;
        self.check_email_free(&email, None)?;
        if let Some(r) = &input.ref_ {
            self.check_ref_free(r, None)?;
        }
        Self::check_language(input.language.as_ref())?;
        let roles = normalise_roles(
            input
                .roles
                .as_deref()
                .unwrap_or(&["PARTICIPANT".to_owned()]),
        )?;
        let id = self.next_id();
        let idx = self.users.len();
        self.user_by_id.insert(id, idx);
        self.user_by_email.insert(email.to_lowercase(), idx);
        if let Some(r) = &input.ref_ {
            self.user_by_ref.insert(r.clone(), idx);
        }
        self.users.push(UserRec {
            id,
            ref_: input.ref_,
            email,
            name,
            archived: input.archived.unwrap_or(false),
            roles,
            language: input.language,
            last_login: None,
            values: BTreeMap::new(),
        });
        Ok(idx)
    }

    /// Validates everything first, then writes: a failed update changes nothing.
    fn update_existing(&mut self, idx: usize, input: UserInput) -> Result<(), ApiError> {
        if let Some(email) = &input.email {
            self.check_email_free(email, Some(idx))?;
        }
        if let Some(r) = &input.ref_ {
            self.check_ref_free(r, Some(idx))?;
        }
        Self::check_language(input.language.as_ref())?;
        let roles = input.roles.as_deref().map(normalise_roles).transpose()?;
        if let Some(name) = &input.name {
            if name.trim().is_empty() {
                return Err(ApiError::bad_input("`user.name` must not be empty"));
            }
        }
        if let Some(email) = input.email {
            let old = std::mem::replace(&mut self.users[idx].email, email);
            self.user_by_email.remove(&old.to_lowercase());
            self.user_by_email
                .insert(self.users[idx].email.to_lowercase(), idx);
        }
        if let Some(r) = input.ref_ {
            if let Some(old) = self.users[idx].ref_.replace(r.clone()) {
                self.user_by_ref.remove(&old);
            }
            self.user_by_ref.insert(r, idx);
        }
        let user = &mut self.users[idx];
        if let Some(name) = input.name {
            user.name = name;
        }
        if let Some(roles) = roles {
            user.roles = roles;
        }
        if let Some(language) = input.language {
            user.language = Some(language);
        }
        if let Some(archived) = input.archived {
            user.archived = archived;
        }
        Ok(())
    }

    /// `updateOrCreateUser`. Returns the user and whether it was created. On a create the
    /// selector supplies `ref`/`email` when the input leaves them out, and must agree with them
    /// when it does not.
    pub fn update_or_create_user(
        &mut self,
        selector: UpsertSelector,
        mut input: UserInput,
    ) -> Result<(usize, bool), ApiError> {
        let existing = match &selector {
            UpsertSelector::Ref(r) => self.user_by_ref(r),
            UpsertSelector::Email(e) => self.user_by_email(e),
        };
        if let Some(idx) = existing {
            self.update_existing(idx, input)?;
            return Ok((idx, false));
        }
        let (slot, value, name) = match &selector {
            UpsertSelector::Ref(r) => (&mut input.ref_, r, "ref"),
            UpsertSelector::Email(e) => (&mut input.email, e, "email"),
        };
        match slot {
            Some(given) if given != value => {
                return Err(ApiError::bad_input(format!(
                    "no user has {name} `{value}`, and `user.{name}` differs from it: cannot create"
                )));
            }
            Some(_) => {}
            None => *slot = Some(value.clone()),
        }
        Ok((self.create_user(input)?, true))
    }

    /// `updateUser`: never creates.
    pub fn update_user(
        &mut self,
        selector: &UserSelector,
        input: UserInput,
    ) -> Result<usize, ApiError> {
        let idx = self.require_user(selector)?;
        self.update_existing(idx, input)?;
        Ok(idx)
    }

    pub(super) fn require_user(&self, selector: &UserSelector) -> Result<usize, ApiError> {
        self.user_by_selector(selector)?.ok_or_else(|| {
            let (what, value) = match selector {
                UserSelector::Id(v) => ("id", v),
                UserSelector::Ref(v) => ("ref", v),
            };
            ApiError::not_found(format!("no user with {what} `{value}`"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::tenant;
    use super::*;
    use crate::state::ErrorCode;

    #[test]
    fn email_validation_table() {
        let cases = [
            ("plain", "a@example.com", true),
            (
                "subdomain and plus",
                "first.last+tag@mail.example.co.uk",
                true,
            ),
            ("no at", "example.com", false),
            ("two ats", "a@b@example.com", false),
            ("no local part", "@example.com", false),
            ("undotted domain", "a@localhost", false),
            ("empty label", "a@example..com", false),
            ("space", "a b@example.com", false),
        ];
        for (name, email, valid) in cases {
            assert_eq!(valid_email(email), valid, "case {name}");
        }
    }

    #[test]
    fn create_selector_must_agree_with_input() {
        let mut state = tenant();
        let input = UserInput {
            name: Some("N".into()),
            email: Some("n@example.com".into()),
            ref_: Some("OTHER".into()),
            ..UserInput::default()
        };
        let err = state
            .update_or_create_user(UpsertSelector::Ref("E9".into()), input)
            .expect_err("mismatch");
        assert_eq!(err.code, ErrorCode::BadUserInput);
        // The email selector supplies the email of a new user.
        let input = UserInput {
            name: Some("N".into()),
            ..UserInput::default()
        };
        let (idx, created) = state
            .update_or_create_user(UpsertSelector::Email("n@example.com".into()), input)
            .expect("create");
        assert!(created);
        assert_eq!(state.users[idx].email, "n@example.com");
        assert_eq!(state.users[idx].roles, vec!["PARTICIPANT"], "default role");
    }
}
