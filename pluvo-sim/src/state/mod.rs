//! The tenant's data and the rules Pluvo enforces on it: the shared store and what every area uses.
//!
//! Everything here is synchronous and clock-free (the caller passes `now`), so the rules can be
//! tested without a server. Records live in `Vec`s and are addressed by index: users, groups and
//! categories are never deleted (leavers are archived), so an index is a stable handle and the
//! `Vec` order is creation order, which is also the paging order.
//!
//! This file holds the [`State`] store with its indexes, the error type every rule returns, the
//! scalar parsing shared by all areas, and seeding (which touches every area at once). The rules
//! of each area live in their own room: [`users`], [`groups`] (memberships, including delayed
//! ones), [`categories`] (extra categories and their typed values), [`trainings`] (trainings
//! and who reaches them, per role and via groups), [`events`] (offer events and enrollments)
//! and [`reports`] (portfolio rows, progress, certificates), with [`delayed`] holding the
//! asynchronous set that training memberships share; a new area adds a file here instead of
//! growing one.

mod categories;
mod delayed;
mod events;
mod groups;
mod reports;
mod seeding;
mod trainings;
mod users;

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use rand::{RngCore, SeedableRng, rngs::StdRng};
use uuid::Uuid;

use crate::seed::{CategoryType, Seed, SeedError, SeedUser};

pub use categories::{CategoryRec, CategoryValue, ChoiceOption, ValueInput};
pub use events::{EnrollmentRec, EnrollmentStatus, OfferEventRec};
pub use groups::{GroupRec, UserKey};
pub use reports::{CertificateRec, Progress, ReportFilter, ReportRow};
pub use trainings::{TrainingFilter, TrainingInput, TrainingRec, TrainingRole, parse_date};
pub use users::{UpsertSelector, UserFilter, UserInput, UserRec, UserSelector};

/// Machine-readable error kinds, sent as `extensions.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    EmailTaken,
    RefTaken,
    InvalidEmail,
    NotFound,
    BadUserInput,
    TrainingRefTaken,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailTaken => "EMAIL_TAKEN",
            Self::RefTaken => "REF_TAKEN",
            Self::InvalidEmail => "INVALID_EMAIL",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::TrainingRefTaken => "TRAINING_REF_TAKEN",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [
            Self::EmailTaken,
            Self::RefTaken,
            Self::InvalidEmail,
            Self::NotFound,
            Self::BadUserInput,
            Self::TrainingRefTaken,
        ]
        .into_iter()
        .find(|c| c.as_str() == code)
    }
}

/// A rule violation: becomes a GraphQL field error on the root field that caused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadUserInput, message)
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
}

/// An admin-made record named by exactly one of its id (raw text, validated as a UUID on use)
/// or its ref: a group, a training or an offer event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Id(String),
    Ref(String),
}

impl Selector {
    /// "id `…`" or "ref `…`", for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Id(v) => format!("id `{v}`"),
            Self::Ref(v) => format!("ref `{v}`"),
        }
    }
}

/// The whole tenant.
#[derive(Debug, Clone)]
pub struct State {
    pub users: Vec<UserRec>,
    user_by_id: HashMap<Uuid, usize>,
    user_by_ref: HashMap<String, usize>,
    user_by_email: HashMap<String, usize>,
    pub groups: Vec<GroupRec>,
    group_by_id: HashMap<Uuid, usize>,
    group_by_ref: HashMap<String, usize>,
    pub categories: Vec<CategoryRec>,
    category_by_id: HashMap<Uuid, usize>,
    category_by_ref: HashMap<String, usize>,
    pub trainings: Vec<TrainingRec>,
    training_by_id: HashMap<Uuid, usize>,
    training_by_ref: HashMap<String, usize>,
    pub offer_events: Vec<OfferEventRec>,
    offer_event_by_id: HashMap<Uuid, usize>,
    offer_event_by_ref: HashMap<String, usize>,
    /// In the order they were awarded.
    pub certificates: Vec<CertificateRec>,
    /// Seeded so a reset tenant gets the same ids again.
    ids: StdRng,
}

/// Picks the one selector that was given; Pluvo rejects none or both.
pub fn exactly_one<T>(
    first: Option<T>,
    second: Option<T>,
    names: (&str, &str),
) -> Result<Result<T, T>, ApiError> {
    match (first, second) {
        (Some(a), None) => Ok(Ok(a)),
        (None, Some(b)) => Ok(Err(b)),
        (None, None) => Err(ApiError::bad_input(format!(
            "one of `{}` or `{}` is required",
            names.0, names.1
        ))),
        (Some(_), Some(_)) => Err(ApiError::bad_input(format!(
            "give only one of `{}` and `{}`",
            names.0, names.1
        ))),
    }
}

/// Parses a `DateTime` scalar (RFC 3339, or a bare date meaning midnight UTC).
pub fn parse_datetime(text: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, ApiError> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(dt);
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc().fixed_offset())
        .ok_or_else(|| ApiError::bad_input(format!("`{text}` is not a valid DateTime (RFC 3339)")))
}

fn format_datetime(dt: chrono::DateTime<chrono::FixedOffset>) -> String {
    dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

fn parse_uuid(text: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::bad_input(format!("`{text}` is not a valid UUID for {what}")))
}

impl Default for State {
    fn default() -> Self {
        Self::empty()
    }
}

impl State {
    fn empty() -> Self {
        Self {
            users: Vec::new(),
            user_by_id: HashMap::new(),
            user_by_ref: HashMap::new(),
            user_by_email: HashMap::new(),
            groups: Vec::new(),
            group_by_id: HashMap::new(),
            group_by_ref: HashMap::new(),
            categories: Vec::new(),
            category_by_id: HashMap::new(),
            category_by_ref: HashMap::new(),
            trainings: Vec::new(),
            training_by_id: HashMap::new(),
            training_by_ref: HashMap::new(),
            offer_events: Vec::new(),
            offer_event_by_id: HashMap::new(),
            offer_event_by_ref: HashMap::new(),
            certificates: Vec::new(),
            ids: StdRng::seed_from_u64(0x9_1u64 << 32 | 0x5eed),
        }
    }

    /// Applies membership changes whose delay has passed, in groups and trainings.
    pub fn settle(&mut self, now: Instant) {
        self.settle_groups(now);
        for training in &mut self.trainings {
            training.members.settle(now);
        }
    }

    /// The user a request names, if any.
    pub fn user_of_key(&self, key: &UserKey) -> Option<usize> {
        match key {
            UserKey::Id(text) => Uuid::parse_str(text)
                .ok()
                .and_then(|id| self.user_by_id.get(&id).copied()),
            UserKey::Ref(r) => self.user_by_ref(r),
            UserKey::Email(e) => self.user_by_email(e),
        }
    }

    /// The user an admin call names; unknown is an error.
    pub fn require_user_key(&self, key: &UserKey) -> Result<usize, ApiError> {
        self.user_of_key(key)
            .ok_or_else(|| ApiError::not_found(format!("no user `{}`", key.as_given())))
    }

    fn next_id(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        self.ids.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// Builds the tenant a seed describes.
    pub fn from_seed(seed: &Seed) -> Result<Self, SeedError> {
        let mut state = Self::empty();
        for group in &seed.groups {
            if let Some(r) = &group.ref_ {
                if state.group_by_ref.contains_key(r) {
                    return Err(SeedError::Invalid(format!("duplicate group ref `{r}`")));
                }
            }
            let id = state.next_id();
            let idx = state.groups.len();
            state.group_by_id.insert(id, idx);
            if let Some(r) = &group.ref_ {
                state.group_by_ref.insert(r.clone(), idx);
            }
            state.groups.push(GroupRec {
                id,
                ref_: group.ref_.clone(),
                name: group.name.clone(),
                members: delayed::DelayedSet::default(),
                managers: BTreeSet::new(),
            });
        }
        for category in &seed.categories {
            if state.category_by_ref.contains_key(&category.ref_) {
                return Err(SeedError::Invalid(format!(
                    "duplicate category ref `{}`",
                    category.ref_
                )));
            }
            let is_choice = category.kind == CategoryType::Choice;
            if is_choice == category.options.is_empty() {
                return Err(SeedError::Invalid(format!(
                    "category `{}`: options are required for CHOICE and only allowed there",
                    category.ref_
                )));
            }
            let id = state.next_id();
            let options = category
                .options
                .iter()
                .map(|value| ChoiceOption {
                    id: state.next_id(),
                    value: value.clone(),
                })
                .collect();
            let idx = state.categories.len();
            state.category_by_id.insert(id, idx);
            state.category_by_ref.insert(category.ref_.clone(), idx);
            state.categories.push(CategoryRec {
                id,
                ref_: category.ref_.clone(),
                title: category.title.clone(),
                kind: category.kind,
                options,
            });
        }
        state.add_seed_users(&seed.users)?;
        state.add_seed_learning(seed)?;
        Ok(state)
    }

    /// Adds people as an admin would, all or nothing.
    pub fn add_seed_users(&mut self, users: &[SeedUser]) -> Result<(), SeedError> {
        let mut next = self.clone();
        for user in users {
            next.add_seed_user(user).map_err(|e| {
                SeedError::Invalid(format!(
                    "user `{}`: {}",
                    user.ref_.as_deref().unwrap_or(&user.email),
                    e.message
                ))
            })?;
        }
        *self = next;
        Ok(())
    }

    fn add_seed_user(&mut self, seed: &SeedUser) -> Result<(), ApiError> {
        let input = UserInput {
            name: Some(seed.name.clone()),
            email: Some(seed.email.clone()),
            ref_: seed.ref_.clone(),
            roles: seed.roles.clone(),
            language: seed.language.clone(),
            archived: Some(seed.archived),
        };
        let idx = self.create_user(input)?;
        if let Some(text) = &seed.last_login {
            self.users[idx].last_login = Some(parse_datetime(text)?);
        }
        for (list, managers) in [(&seed.groups, false), (&seed.manages, true)] {
            for group_ref in list {
                let g = *self
                    .group_by_ref
                    .get(group_ref)
                    .ok_or_else(|| ApiError::not_found(format!("unknown group `{group_ref}`")))?;
                let group = &mut self.groups[g];
                if managers {
                    group.managers.insert(idx);
                } else {
                    group.members.insert_now(idx);
                }
            }
        }
        for (category_ref, value) in &seed.categories {
            let c = self.category_index(None, Some(category_ref))?;
            let value = self.seed_category_value(c, value)?;
            self.users[idx].values.insert(c, value);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A tenant with one group `g` and two people, `E1` and `E2`, shared by the areas' tests.
    pub(crate) fn tenant() -> State {
        let seed = Seed::from_toml_str("[[groups]]\nref = \"g\"\nname = \"G\"\n").expect("seed");
        let mut state = State::from_seed(&seed).expect("state");
        for (r, email) in [("E1", "one@example.com"), ("E2", "two@example.com")] {
            let input = UserInput {
                name: Some(r.into()),
                email: Some(email.into()),
                ..UserInput::default()
            };
            state
                .update_or_create_user(UpsertSelector::Ref(r.into()), input)
                .expect("create");
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_parsing_table() {
        let cases = [
            (
                "utc",
                "2021-03-01T08:30:00Z",
                Some("2021-03-01T08:30:00+00:00"),
            ),
            (
                "offset kept",
                "2021-03-01T08:30:00+01:00",
                Some("2021-03-01T08:30:00+01:00"),
            ),
            (
                "bare date is midnight utc",
                "2021-03-01",
                Some("2021-03-01T00:00:00+00:00"),
            ),
            ("garbage", "soon", None),
            ("impossible date", "2021-02-30", None),
        ];
        for (name, text, expected) in cases {
            assert_eq!(
                parse_datetime(text).ok().map(format_datetime).as_deref(),
                expected,
                "case {name}"
            );
        }
    }
}
