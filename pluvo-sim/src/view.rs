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
    /// In creation order.
    #[serde(default)]
    pub trainings: Vec<TrainingView>,
    /// In creation order.
    #[serde(default)]
    pub offer_events: Vec<OfferEventView>,
}

/// A training with its committed direct roles (queries may not show them yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingView {
    pub id: String,
    #[serde(rename = "ref")]
    pub ref_: Option<String>,
    pub title: String,
    pub is_active: bool,
    pub archived: bool,
    /// Refs of linked groups, sorted: their members reach the training via object.
    pub groups: Vec<String>,
    /// Role (`PARTICIPANT`, `TRAINER`, `MENTOR`) to the people holding it directly (ref, or
    /// email for people without one), sorted; roles nobody holds are left out.
    pub roles: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferEventView {
    pub id: String,
    #[serde(rename = "ref")]
    pub ref_: Option<String>,
    pub title: String,
    pub max_subscriptions: Option<u32>,
    /// In enrollment order.
    pub enrollments: Vec<EnrollmentView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollmentView {
    /// Ref, or email for people without one.
    pub user: String,
    pub status: String,
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
                    .filter(|&g| state.groups[g].members.committed().contains(&idx))
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
        let person = |u: usize| {
            let user = &state.users[u];
            user.ref_.clone().unwrap_or_else(|| user.email.clone())
        };
        let trainings = state
            .trainings
            .iter()
            .map(|t| {
                let mut roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for &(u, role) in t.members.committed() {
                    roles
                        .entry(role.as_str().to_owned())
                        .or_default()
                        .push(person(u));
                }
                roles.values_mut().for_each(|people| people.sort());
                let mut groups: Vec<String> =
                    t.groups.iter().map(|&g| state.group_key(g)).collect();
                groups.sort();
                TrainingView {
                    id: t.id.to_string(),
                    ref_: t.ref_.clone(),
                    title: t.title.clone(),
                    is_active: t.is_active,
                    archived: t.archived,
                    groups,
                    roles,
                }
            })
            .collect();
        let offer_events = state
            .offer_events
            .iter()
            .map(|e| OfferEventView {
                id: e.id.to_string(),
                ref_: e.ref_.clone(),
                title: e.title.clone(),
                max_subscriptions: e.max_subscriptions,
                enrollments: e
                    .enrollments
                    .iter()
                    .map(|en| EnrollmentView {
                        user: person(en.user),
                        status: en.status.as_str().to_owned(),
                    })
                    .collect(),
            })
            .collect();
        Self {
            users,
            trainings,
            offer_events,
        }
    }

    /// The training with this ref, if any.
    pub fn training(&self, r: &str) -> Option<&TrainingView> {
        self.trainings.iter().find(|t| t.ref_.as_deref() == Some(r))
    }

    /// The offer event with this ref, if any.
    pub fn offer_event(&self, r: &str) -> Option<&OfferEventView> {
        self.offer_events
            .iter()
            .find(|e| e.ref_.as_deref() == Some(r))
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
