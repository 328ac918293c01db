//! The tenant's data and the rules Pluvo enforces on it.
//!
//! Everything here is synchronous and clock-free (the caller passes `now`), so the rules can be
//! tested without a server. Records live in `Vec`s and are addressed by index: users, groups and
//! categories are never deleted (leavers are archived), so an index is a stable handle and the
//! `Vec` order is creation order, which is also the paging order.
//!
//! Memberships have two faces. The *committed* set is what the last write said and what
//! `/_sim/state` shows; the *visible* set is what queries show, and it trails the committed set
//! by the membership delay, like Pluvo's asynchronous group processing.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng, rngs::StdRng};
use uuid::Uuid;

use crate::seed::{CategoryType, Seed, SeedError, SeedUser};

/// Machine-readable error kinds, sent as `extensions.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    EmailTaken,
    RefTaken,
    InvalidEmail,
    NotFound,
    BadUserInput,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailTaken => "EMAIL_TAKEN",
            Self::RefTaken => "REF_TAKEN",
            Self::InvalidEmail => "INVALID_EMAIL",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [
            Self::EmailTaken,
            Self::RefTaken,
            Self::InvalidEmail,
            Self::NotFound,
            Self::BadUserInput,
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

pub const ROLES: [&str; 5] = ["PARTICIPANT", "TRAINER", "MANAGER", "PLANNER", "AUTHOR"];
pub const LANGUAGES: [&str; 3] = ["NL", "EN", "DE"];

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

#[derive(Debug, Clone)]
struct PendingChange {
    effective_at: Instant,
    user: usize,
    present: bool,
}

#[derive(Debug, Clone)]
pub struct GroupRec {
    pub id: Uuid,
    pub ref_: Option<String>,
    pub name: String,
    pub members: BTreeSet<usize>,
    pub visible: BTreeSet<usize>,
    pending: VecDeque<PendingChange>,
    pub managers: BTreeSet<usize>,
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
    /// Seeded so a reset tenant gets the same ids again.
    ids: StdRng,
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

/// A user named in `addUsersToGroup`, reported back exactly as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserKey {
    Id(String),
    Ref(String),
}

impl UserKey {
    pub fn as_given(&self) -> &str {
        match self {
            Self::Id(s) | Self::Ref(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSelector {
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

/// Result of `addUsersToGroup` / `removeUsersFromGroup`, identifiers as passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipOutcome {
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    pub failed: Vec<String>,
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

fn normalise_roles(roles: &[String]) -> Result<Vec<String>, ApiError> {
    if let Some(bad) = roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
        return Err(ApiError::bad_input(format!("unknown role `{bad}`")));
    }
    let set: BTreeSet<&String> = roles.iter().collect();
    Ok(set.into_iter().cloned().collect())
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
            ids: StdRng::seed_from_u64(0x9_1u64 << 32 | 0x5eed),
        }
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
                members: BTreeSet::new(),
                visible: BTreeSet::new(),
                pending: VecDeque::new(),
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
                    group.members.insert(idx);
                    group.visible.insert(idx);
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

    fn seed_category_value(
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

    /// Applies membership changes whose delay has passed.
    pub fn settle(&mut self, now: Instant) {
        for group in &mut self.groups {
            while group.pending.front().is_some_and(|p| p.effective_at <= now) {
                if let Some(change) = group.pending.pop_front() {
                    if change.present {
                        group.visible.insert(change.user);
                    } else {
                        group.visible.remove(&change.user);
                    }
                }
            }
        }
    }

    // ---- lookups -------------------------------------------------------------------------

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

    pub fn group_by_selector(&self, selector: &GroupSelector) -> Result<Option<usize>, ApiError> {
        Ok(match selector {
            GroupSelector::Id(text) => self
                .group_by_id
                .get(&parse_uuid(text, "a group id")?)
                .copied(),
            GroupSelector::Ref(r) => self.group_by_ref.get(r).copied(),
        })
    }

    fn category_index(&self, id: Option<&str>, r: Option<&str>) -> Result<usize, ApiError> {
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

    /// Groups whose visible members include `user`.
    pub fn visible_groups_of(&self, user: usize) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.groups[g].visible.contains(&user))
            .collect()
    }

    pub fn managed_groups_of(&self, user: usize) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.groups[g].managers.contains(&user))
            .collect()
    }

    /// Users matching `paginatedUsers` filters, in creation order.
    pub fn filter_users(&self, filter: &UserFilter) -> Result<Vec<usize>, ApiError> {
        let q = filter.q.as_ref().map(|q| q.to_lowercase());
        let groups: Option<Vec<usize>> = match &filter.group_ids {
            None => None,
            Some(ids) => Some(
                ids.iter()
                    .map(|id| {
                        self.group_by_selector(&GroupSelector::Id(id.clone()))?
                            .ok_or_else(|| ApiError::not_found(format!("no group with id `{id}`")))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
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
                    && groups
                        .as_ref()
                        .is_none_or(|gs| gs.iter().any(|&g| self.groups[g].visible.contains(&i)))
                    && gt.is_none_or(|gt| u.last_login.is_some_and(|l| l > gt))
                    && lt.is_none_or(|lt| u.last_login.is_some_and(|l| l < lt))
            })
            .collect())
    }

    pub fn filter_groups(&self, q: Option<&str>) -> Vec<usize> {
        let q = q.map(str::to_lowercase);
        (0..self.groups.len())
            .filter(|&g| {
                let group = &self.groups[g];
                q.as_ref().is_none_or(|q| {
                    group.name.to_lowercase().contains(q)
                        || group
                            .ref_
                            .as_ref()
                            .is_some_and(|r| r.to_lowercase().contains(q))
                })
            })
            .collect()
    }

    // ---- users ---------------------------------------------------------------------------

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

    fn create_user(&mut self, input: UserInput) -> Result<usize, ApiError> {
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

    fn require_user(&self, selector: &UserSelector) -> Result<usize, ApiError> {
        self.user_by_selector(selector)?.ok_or_else(|| {
            let (what, value) = match selector {
                UserSelector::Id(v) => ("id", v),
                UserSelector::Ref(v) => ("ref", v),
            };
            ApiError::not_found(format!("no user with {what} `{value}`"))
        })
    }

    // ---- extra categories ----------------------------------------------------------------

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

    /// `addUsersToGroup` (`add`) or `removeUsersFromGroup`. Unknown users are reported, not
    /// fatal; an unknown group fails the whole field.
    pub fn change_membership(
        &mut self,
        group: &GroupSelector,
        users: &[UserKey],
        add: bool,
        now: Instant,
        delay: Duration,
    ) -> Result<MembershipOutcome, ApiError> {
        let g = self.group_by_selector(group)?.ok_or_else(|| {
            let (what, value) = match group {
                GroupSelector::Id(v) => ("id", v),
                GroupSelector::Ref(v) => ("ref", v),
            };
            ApiError::not_found(format!("no group with {what} `{value}`"))
        })?;
        let mut outcome = MembershipOutcome::default();
        for key in users {
            let found = match key {
                UserKey::Id(text) => Uuid::parse_str(text)
                    .ok()
                    .and_then(|id| self.user_by_id.get(&id).copied()),
                UserKey::Ref(r) => self.user_by_ref(r),
            };
            let Some(user) = found else {
                outcome.failed.push(key.as_given().to_owned());
                continue;
            };
            let group = &mut self.groups[g];
            let changed = if add {
                group.members.insert(user)
            } else {
                group.members.remove(&user)
            };
            if !changed {
                outcome.unchanged.push(key.as_given().to_owned());
                continue;
            }
            outcome.changed.push(key.as_given().to_owned());
            if delay.is_zero() {
                if add {
                    group.visible.insert(user);
                } else {
                    group.visible.remove(&user);
                }
            } else {
                group.pending.push_back(PendingChange {
                    effective_at: now + delay,
                    user,
                    present: add,
                });
            }
        }
        Ok(outcome)
    }

    /// Ref of a category, group or user for display; records without a ref show their id.
    pub fn group_key(&self, g: usize) -> String {
        let group = &self.groups[g];
        group.ref_.clone().unwrap_or_else(|| group.id.to_string())
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> State {
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

    #[test]
    fn membership_becomes_visible_after_the_delay() {
        let mut state = tenant();
        let t0 = Instant::now();
        let delay = Duration::from_secs(60);
        let group = GroupSelector::Ref("g".into());
        let users = [UserKey::Ref("E1".into()), UserKey::Ref("E2".into())];
        state
            .change_membership(&group, &users, true, t0, delay)
            .expect("add");
        state
            .change_membership(
                &group,
                &users[..1],
                false,
                t0 + Duration::from_secs(30),
                delay,
            )
            .expect("remove");
        let cases = [
            ("nothing visible yet", 59, vec![]),
            ("both adds visible", 60, vec![0, 1]),
            ("removal not yet visible", 89, vec![0, 1]),
            ("removal visible", 90, vec![1]),
        ];
        for (name, secs, visible) in cases {
            state.settle(t0 + Duration::from_secs(secs));
            let expected: BTreeSet<usize> = visible.into_iter().collect();
            assert_eq!(state.groups[0].visible, expected, "case {name}");
        }
        assert_eq!(
            state.groups[0].members,
            BTreeSet::from([1]),
            "committed at once"
        );
    }
}
