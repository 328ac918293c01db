//! What tests compare: the committed tenant as plain data.
//!
//! `/_sim/state` and [`crate::SimHandle::state`] return this. It shows committed memberships,
//! including ones queries do not show yet (membership delay), because a test asks "did the
//! sync write the right thing", not "has Pluvo finished processing it".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::State;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateView {
    /// Users with a ref first, ordered by ref; then users without one, ordered by email.
    pub users: Vec<UserView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    #[serde(rename = "ref")]
    pub ref_: Option<String>,
    pub email: String,
    pub name: String,
    pub archived: bool,
    /// Sorted, as Pluvo treats roles as a set.
    pub roles: Vec<String>,
    pub language: Option<String>,
    /// Refs of the groups the user is a committed member of, sorted.
    pub groups: Vec<String>,
    /// Category ref to value: STRING and DATETIME as strings (DATETIME normalised to RFC 3339),
    /// BOOLEAN as a bool, CHOICE as an array of option strings.
    pub categories: BTreeMap<String, serde_json::Value>,
}

impl StateView {
    pub(crate) fn of(state: &State) -> Self {
        let mut users: Vec<UserView> = state
            .users
            .iter()
            .enumerate()
            .map(|(idx, u)| {
                let mut groups: Vec<String> = (0..state.groups.len())
                    .filter(|&g| state.groups[g].members.contains(&idx))
                    .map(|g| state.group_key(g))
                    .collect();
                groups.sort();
                UserView {
                    id: u.id.to_string(),
                    ref_: u.ref_.clone(),
                    email: u.email.clone(),
                    name: u.name.clone(),
                    archived: u.archived,
                    roles: u.roles.clone(),
                    language: u.language.clone(),
                    groups,
                    categories: u
                        .values
                        .iter()
                        .map(|(&c, v)| (state.categories[c].ref_.clone(), state.value_json(c, v)))
                        .collect(),
                }
            })
            .collect();
        users.sort_by(|a, b| {
            (a.ref_.is_none(), &a.ref_, a.email.to_lowercase()).cmp(&(
                b.ref_.is_none(),
                &b.ref_,
                b.email.to_lowercase(),
            ))
        });
        Self { users }
    }

    /// The user with this ref, if any: the common lookup in tests.
    pub fn user(&self, r: &str) -> Option<&UserView> {
        self.users.iter().find(|u| u.ref_.as_deref() == Some(r))
    }

    /// The user with this email (case-insensitive), if any.
    pub fn user_by_email(&self, email: &str) -> Option<&UserView> {
        self.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }
}
